"""What the report writes: file modes, the one-file bundle, thumbnails from decoded images."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest
from PIL import Image
from report_sample import ROWS, RUN, parse, png, sample_manifest, sample_report

from pipeline.report import THUMB_DIR, THUMB_MAX, save_thumbnail, thumb_path, write_report


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_report_and_thumbnails_get_the_users_umask(out: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        report = sample_report(out)
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert stat.S_IMODE(report.stat().st_mode) == expected
    thumbs = sorted((out / THUMB_DIR).iterdir())
    assert len(thumbs) == 12
    for thumb in thumbs:
        assert stat.S_IMODE(thumb.stat().st_mode) == expected, thumb


def test_no_temp_file_is_left_behind(out: Path) -> None:
    sample_report(out)
    leftovers = [p for p in out.rglob("*") if p.name.endswith((".part", ".tmp"))]
    assert leftovers == []


def _decoded(uri: str) -> Image.Image:
    head, _, data = uri.partition(",")
    assert head in ("data:image/jpeg;base64", "data:image/png;base64"), head
    img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    img.load()
    return img


def test_bundle_embeds_every_thumbnail_and_links_to_no_file(out: Path) -> None:
    manifest = sample_manifest(out)
    report = write_report(out, manifest, RUN, ROWS, bundle=True)
    parsed = parse(report)
    assert len(parsed.imgs) == 12
    for src in parsed.imgs:
        img = _decoded(src)
        assert 0 < max(img.size) <= THUMB_MAX
    html = report.read_text(encoding="utf-8")
    assert ".ideopipe/thumbs" not in html
    for file in manifest["file"].dropna():
        assert f'href="{file}"' not in html  # the full files do not travel with the page
    assert "every thumbnail is inside it" in html


def test_bundle_embeds_small_images_as_they_are(out: Path) -> None:
    manifest = sample_manifest(out)
    files = manifest["file"].notna()
    # Record the real (small) sizes: these files are used as their own thumbnails.
    manifest.loc[files, "width"] = manifest.loc[files, "width"] // 4
    manifest.loc[files, "height"] = manifest.loc[files, "height"] // 4
    big = manifest["op"].eq("upscale") & files
    manifest.loc[big, ["width", "height"]] = [512, 384]
    report = write_report(out, manifest, RUN, ROWS, bundle=True)
    kinds = sorted(src.split(";")[0] for src in parse(report).imgs)
    assert kinds.count("data:image/png") == int((files & ~big).sum()) == 8
    assert kinds.count("data:image/jpeg") == int(big.sum()) == 4


def test_default_report_stays_light(out: Path) -> None:
    report = sample_report(out)
    html = report.read_text(encoding="utf-8")
    assert "data:image" not in html
    assert all(src.startswith(".ideopipe/thumbs/") for src in parse(report).imgs)
    pictures = sum(p.stat().st_size for p in (out / THUMB_DIR).iterdir())
    bundled = write_report(out, sample_manifest(out), RUN, ROWS, bundle=True)
    assert len(bundled.read_bytes()) > len(html.encode()) + pictures  # base64 is 4/3 of the bytes


def test_thumbnail_from_a_decoded_image_is_the_one_the_report_uses(out: Path) -> None:
    manifest = sample_manifest(out)
    first = manifest.loc[0]
    with Image.open(out / first["file"]) as img:
        img.load()
        made = save_thumbnail(out, first["image_id"], first["file"], img)
    assert made == thumb_path(out, first["image_id"], first["file"])
    with Image.open(made) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= THUMB_MAX
    # Mark it, so that a rebuild would show.
    marked = Image.new("RGB", (7, 5), "red")
    save_thumbnail(out, first["image_id"], first["file"], marked)
    write_report(out, manifest, RUN, ROWS)
    with Image.open(made) as thumb:
        assert thumb.size == (7, 5)  # fresh, so the report kept it
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f'src="{made.relative_to(out).as_posix()}" width="7" height="5"' in html


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "I;16"])
def test_thumbnails_of_every_mode_are_rgb(out: Path, mode: str) -> None:
    img = Image.new("RGBA", (960, 240), (200, 40, 40, 120)).convert(mode)
    made = save_thumbnail(out, "x", "x.png", img)
    with Image.open(made) as thumb:
        assert thumb.mode == "RGB"
        assert thumb.size == (THUMB_MAX, THUMB_MAX // 4)


def test_an_unwritable_thumbnail_folder_leaves_placeholders_not_a_crash(out: Path) -> None:
    manifest = sample_manifest(out)
    (out / ".ideopipe").mkdir(parents=True)
    (out / THUMB_DIR).write_text("a file where the folder should be")
    report = write_report(out, manifest, RUN, ROWS)
    cards = parse(report).cards
    assert cards["mug-blue-g0"]["img"] is None
    assert "kind-placeholder" in cards["mug-blue-g0"]["classes"]


def test_sources_outside_the_output_folder_are_linked_relative(out: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photos" / "mug blue.png"
    png(photo, (600, 400), (30, 90, 200), "photo")
    manifest = sample_manifest(out)
    inputs = {"task-mug-blue-g0": {"image": [str(photo)], "mask": []}}
    html = write_report(out, manifest, RUN, ROWS, inputs=inputs).read_text(encoding="utf-8")
    assert 'href="../photos/mug%20blue.png"' in html
