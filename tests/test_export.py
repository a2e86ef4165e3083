"""`ideopipe export` on a real emulator run: exact sizes, fit, colour, alpha, metadata, names, zip."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
from conftest import TEST_KEY
from PIL import Image, ImageCms, PngImagePlugin

from pipeline import api
from pipeline.export import ExportError, export, load_presets
from pipeline.export.cli import main
from pipeline.export.imaging import open_srgb
from pipeline.manifest import read_manifest
from pipeline.runner import RunOptions

RECIPE = """
version: 1
name: deliver
provider: ideogram
rows:
  key: "{{ sku }}"
  inline:
    - {sku: A1, product: kettle}
    - {sku: B2, product: teapot}
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "A {{ product }} on a table"
    aspect_ratio: 1x1
    num_images: 2
output:
  dir: out
"""
UNIQUE = "{{ row_key }}-{{ image_id }}-{{ preset }}.{{ ext }}"
PRESETS = sorted(load_presets())


@pytest.fixture
def run(emulator, write_recipe) -> Path:
    """The output folder of a real emulator run: 2 rows x 2 images (256x256 PNG)."""
    path = write_recipe(RECIPE)
    result = api.run_file(
        path,
        RunOptions(base_url=emulator.base_url, yes=True, quiet=True, environ={"IDEOGRAM_API_KEY": TEST_KEY}),
    )
    assert result.exit_code == 0
    return result.out_dir


def rows(out: Path) -> pd.DataFrame:
    return read_manifest(out).sort_values("image_id").reset_index(drop=True)


def replace_source(out: Path, n: int, image: Image.Image, **save) -> dict:
    """Swap the n-th good image of the run for `image` (same path); returns its manifest row."""
    row = rows(out).iloc[n].to_dict()
    image.save(out / row["file"], "PNG", **save)
    return row


def delivery(to: Path) -> list[dict[str, str]]:
    with open(to / "delivery.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its (mtime_ns, inode)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- sizes and formats -----------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_every_preset_reads_back_at_its_exact_size_and_format(run, tmp_path, fmt, pil_format):
    to = tmp_path / "deliver"
    result = export(run, to, sizes=[",".join(PRESETS), "1000x300"], fmt=fmt, name=UNIQUE)
    table = load_presets()
    lines = delivery(to)
    assert len(lines) == 4 * (len(PRESETS) + 1) == len(result.files)
    for line in lines:
        path = to / line["file"]
        with Image.open(path) as im:
            assert im.format == pil_format
            assert im.size == (int(line["width"]), int(line["height"]))
        preset = line["preset"]
        expected = (table[preset].width, table[preset].height) if preset else (1000, 300)
        assert im.size == expected
        assert hashlib.sha256(path.read_bytes()).hexdigest() == line["sha256"]
        assert line["format"] == fmt and path.suffix == {"jpeg": ".jpg"}.get(fmt, f".{fmt}")
    assert {line["image_id"] for line in lines} == set(rows(run)["image_id"])


def test_builtin_presets_are_the_documented_table():
    table = load_presets()
    assert {
        "instagram-square",
        "instagram-story",
        "facebook-feed",
        "linkedin-post",
        "x-post",
        "youtube-thumbnail",
        "web-hero-2x",
    } <= set(table)
    assert (table["instagram-story"].width, table["instagram-story"].height) == (1080, 1920)
    assert (table["youtube-thumbnail"].width, table["youtube-thumbnail"].height) == (1280, 720)
    assert all(p.source.startswith("https://") for p in table.values())


def test_cover_crops_around_the_centre_and_contain_letterboxes(run, tmp_path):
    bands = Image.new("RGB", (400, 200), (0, 200, 0))
    bands.paste((220, 0, 0), (0, 0, 100, 200))
    bands.paste((0, 0, 220), (300, 0, 400, 200))
    row = replace_source(run, 0, bands)
    step = ["--step", "hero", "--only", "all"]
    to = tmp_path / "cover"
    assert main([str(run), "--to", str(to), "--sizes", "100x100", "--name", UNIQUE, *step]) == 0
    with Image.open(to / f"{row['row_key']}-{row['image_id']}-100x100.png") as im:
        assert im.size == (100, 100)
        # the centre 200x200 of the source is all green: no red or blue band survives the crop
        assert {im.getpixel(xy) for xy in [(0, 0), (99, 0), (0, 99), (99, 99), (50, 50)]} == {(0, 200, 0)}
    to = tmp_path / "contain"
    assert (
        main(
            [
                str(run),
                "--to",
                str(to),
                "--sizes",
                "100x100",
                "--fit",
                "contain",
                "--background",
                "#ff00ff",
                "--name",
                UNIQUE,
                *step,
            ]
        )
        == 0
    )
    with Image.open(to / f"{row['row_key']}-{row['image_id']}-100x100.png") as im:
        assert im.size == (100, 100)
        assert im.getpixel((50, 5)) == im.getpixel((50, 94)) == (255, 0, 255)  # bars
        assert im.getpixel((50, 50)) == (0, 200, 0)
        assert im.getpixel((5, 50))[0] > 200 and im.getpixel((95, 50))[2] > 200  # whole width kept


# -- colour, transparency, metadata ---------------------------------------------------------


def _s15(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def wide_rgb_icc() -> bytes:
    """An ICC v2 matrix/TRC profile with Adobe RGB (1998)-like primaries: not sRGB."""
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    name = b"Wide test RGB\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(name)) + name + b"\0" * 8 + b"\0\0\0" + b"\0" * 67
    tags = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0none\0"),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.6097, 0.3111, 0.0195)),
        (b"gXYZ", _xyz(0.2053, 0.6257, 0.0609)),
        (b"bXYZ", _xyz(0.1492, 0.0632, 0.7446)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", offset + len(body))
        + b"none"
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def test_a_wide_gamut_profile_is_converted_to_srgb(run, tmp_path):
    icc = wide_rgb_icc()
    source = Image.new("RGB", (64, 64), (40, 200, 60))
    row = replace_source(run, 1, source, icc_profile=icc)
    reference = ImageCms.profileToProfile(
        source, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    expected = reference.getpixel((0, 0))
    assert abs(expected[2] - 60) > 15  # the conversion is visible, not a no-op
    for fmt in ("png", "webp"):
        to = tmp_path / fmt
        export(run, to, sizes="32x32", fmt=fmt, quality=100, name=UNIQUE)
        with Image.open(to / f"{row['row_key']}-{row['image_id']}-32x32.{fmt}") as im:
            assert "icc_profile" not in im.info  # untagged = sRGB on the web
            got = im.convert("RGB").getpixel((16, 16))
        assert all(abs(a - b) <= 3 for a, b in zip(got, expected)), (got, expected)


def test_a_lab_image_with_an_imagecms_lab_profile_becomes_srgb(tmp_path):
    lab_profile = ImageCms.createProfile("LAB")
    rgb = Image.new("RGB", (8, 8), (200, 30, 30))
    lab = ImageCms.profileToProfile(rgb, ImageCms.createProfile("sRGB"), lab_profile, outputMode="LAB")
    path = tmp_path / "lab.tif"
    lab.save(path, icc_profile=ImageCms.ImageCmsProfile(lab_profile).tobytes())
    back = open_srgb(str(path))
    assert back.mode == "RGB"
    assert all(abs(a - b) <= 3 for a, b in zip(back.getpixel((4, 4)), (200, 30, 30)))


def half_transparent() -> Image.Image:
    im = Image.new("RGBA", (200, 200), (10, 20, 200, 255))
    im.paste((0, 0, 0, 0), (0, 0, 100, 200))  # left half fully transparent
    return im


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
def test_transparency_is_kept_where_the_format_allows_and_flattened_in_jpeg(run, tmp_path, fmt):
    row = replace_source(run, 2, half_transparent())
    to = tmp_path / "t"
    export(run, to, sizes="100x100", fmt=fmt, background="#ff0000", name=UNIQUE, quality=95)
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    with Image.open(to / f"{row['row_key']}-{row['image_id']}-100x100.{ext}") as im:
        if fmt == "jpeg":
            assert im.mode == "RGB"
            left = im.getpixel((10, 50))
            assert left[0] > 240 and left[1] < 15 and left[2] < 15  # flattened on the background
        else:
            assert im.mode == "RGBA"
            assert im.getpixel((10, 50))[3] == 0
            assert im.getpixel((90, 50))[3] == 255


def test_metadata_is_stripped_except_the_note(run, tmp_path):
    src = Image.new("RGB", (128, 128), (120, 130, 140))
    exif = Image.Exif()
    exif[0x013B] = "Secret Artist"  # Artist
    exif[0x8298] = "Secret Copyright"
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "Secret comment")
    row = replace_source(
        run,
        3,
        src,
        exif=exif.tobytes(),
        pnginfo=text,
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    )
    for fmt in ("png", "jpeg", "webp"):
        to = tmp_path / fmt
        export(run, to, sizes="64x64", fmt=fmt, name=UNIQUE)
        path = to / f"{row['row_key']}-{row['image_id']}-64x64.{'jpg' if fmt == 'jpeg' else fmt}"
        assert b"Secret" not in path.read_bytes()
        with Image.open(path) as im:
            assert "icc_profile" not in im.info
            if fmt == "png":
                assert set(im.text) == {"Software", "Description"}
                note, software = im.text["Description"], im.text["Software"]
            else:
                tags = dict(im.getexif())
                assert set(tags) == {0x010E, 0x0131}
                note, software = tags[0x010E], tags[0x0131]
        assert software.startswith("ideopipe ")
        assert f"seed {row['seed']}" in note and row["image_id"] in note
        assert "recipe recipe.yaml," in note and str(tmp_path) not in note  # no local paths


# -- delivery.csv, zip, idempotence ---------------------------------------------------------


def test_zip_holds_exactly_the_files_of_delivery_csv(run, tmp_path):
    to = tmp_path / "z"
    assert (
        main(
            [
                str(run),
                "--to",
                str(to),
                "--sizes",
                "instagram-square,64x64",
                "--zip",
                "--name",
                "{{ row_key }}/{{ image_id }}-{{ preset }}.{{ ext }}",
            ]
        )
        == 0
    )
    lines = delivery(to)
    with zipfile.ZipFile(to / "delivery.zip") as zf:
        assert zf.namelist() == sorted(line["file"] for line in lines)
        for line in lines:
            data = zf.read(line["file"])
            assert hashlib.sha256(data).hexdigest() == line["sha256"]
            assert zf.getinfo(line["file"]).date_time == (1980, 1, 1, 0, 0, 0)
    assert len(lines) == 8


def test_a_second_export_changes_nothing(run, tmp_path, capsys):
    to = tmp_path / "again"
    argv = [
        str(run),
        "--to",
        str(to),
        "--sizes",
        "x-post,instagram-story",
        "--zip",
        "--format",
        "jpeg",
        "--name",
        UNIQUE,
    ]
    assert main(argv) == 0
    before = tree(to)
    assert len(before) == 8 + 3  # images + delivery.csv, delivery.zip, the index
    capsys.readouterr()
    assert main(argv) == 0
    assert tree(to) == before
    assert "0 written, 8 unchanged" in capsys.readouterr().err
    # a tampered file is put back; the others are left alone
    victim = to / delivery(to)[0]["file"]
    victim.write_bytes(b"not an image")
    assert main(argv) == 0
    after = tree(to)
    assert after[victim.name] != before[victim.name]
    assert {k: v for k, v in after.items() if k != victim.name} == {
        k: v for k, v in before.items() if k != victim.name
    }
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == delivery(to)[0]["sha256"]


# -- refusals: every problem at once, nothing written ---------------------------------------

ESCAPES = (
    "{% set k = row_key ~ '-' ~ image_index %}"
    "{{ {'A1-0': '../up.png', 'A1-1': '/abs.png', 'B2-0': 'same.png', 'B2-1': 'SAME.png'}[k] "
    "if width == 100 else {'A1-0': 'con.png', 'A1-1': 'x' * 300 ~ '.png', "
    "'B2-0': 'link/in.png', 'B2-1': 'ok.png'}[k] }}"
)


def test_every_name_problem_is_reported_at_once_and_nothing_is_written(run, tmp_path, capsys):
    to = tmp_path / "deliver"
    to.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (to / "link").symlink_to(outside)
    (outside / "victim.png").write_bytes(b"keep me")
    (to / "ok.png").symlink_to(outside / "victim.png")
    before = tree(tmp_path)
    assert main([str(run), "--to", str(to), "--sizes", "100x100,200x200", "--name", ESCAPES]) == 2
    err = capsys.readouterr().err
    assert "contains '..'" in err
    assert "absolute path" in err
    assert "2 exports are named 'same.png' (ignoring case)" in err
    assert "'con.png' is a reserved file name" in err
    assert "over 255 bytes" in err
    assert "'link' is a symbolic link" in err and "'ok.png' is a symbolic link" in err
    assert "7 problem(s); nothing was written" in err
    assert "Traceback" not in err
    assert tree(tmp_path) == before
    assert [p.name for p in outside.iterdir()] == ["victim.png"]
    assert (outside / "victim.png").read_bytes() == b"keep me" and not (tmp_path / "up.png").exists()


def test_the_default_name_clashes_when_a_step_makes_two_images_per_row(run, tmp_path, capsys):
    to = tmp_path / "d"
    assert main([str(run), "--to", str(to), "--sizes", "64x64"]) == 2
    err = capsys.readouterr().err
    assert err.count("2 exports are named") == 2 and "add {{ image_id }} (unique per image)" in err
    assert not to.exists()


def test_a_symlinked_target_or_the_run_folder_is_refused(run, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    with pytest.raises(ExportError, match="symbolic link"):
        export(run, tmp_path / "alias", sizes="64x64", name=UNIQUE)
    with pytest.raises(ExportError, match="run's own output folder"):
        export(run, run, sizes="64x64", name=UNIQUE)
    assert not list(real.iterdir())


# -- selection and options ------------------------------------------------------------------


def test_review_filters_need_the_review_columns(run, tmp_path, capsys):
    to = tmp_path / "picked"
    assert main([str(run), "--to", str(to), "--sizes", "64x64", "--only", "approved", "--name", UNIQUE]) == 2
    err = capsys.readouterr().err
    assert "no 'review' column" in err and not to.exists()
    assert main([str(run), "--to", str(to), "--sizes", "64x64", "--only", "stars>=4", "--name", UNIQUE]) == 2
    assert "no 'stars' column" in capsys.readouterr().err
    frame = rows(run)
    frame["review"] = ["approved", "rejected", "approved", "unreviewed"]
    frame["stars"] = [5, 4, 3, pd.NA]
    frame.to_csv(run / "manifest.csv", index=False)
    export(run, to, sizes="64x64", only="approved", name=UNIQUE)
    assert {d["image_id"] for d in delivery(to)} == set(frame["image_id"][[0, 2]])
    export(run, tmp_path / "stars", sizes="64x64", only="stars>=4", name=UNIQUE)
    assert {d["image_id"] for d in delivery(tmp_path / "stars")} == set(frame["image_id"][[0, 1]])
    with pytest.raises(ExportError, match="expected all, approved or stars>=N"):
        export(run, to, sizes="64x64", only="stars>=9")


def test_failed_images_are_never_exported(run, tmp_path):
    frame = rows(run)
    frame.loc[0, "status"] = "failed"
    frame.loc[1, "status"] = "cached"  # older manifests said cached for a good image
    frame.to_csv(run / "manifest.csv", index=False)
    export(run, tmp_path / "d", sizes="64x64", name=UNIQUE)
    assert {d["image_id"] for d in delivery(tmp_path / "d")} == set(frame["image_id"][1:])


def test_a_user_presets_file_extends_the_table_and_its_errors_name_file_and_line(run, tmp_path, capsys):
    good = tmp_path / "shop.yaml"
    good.write_text(
        "presets:\n  shop-tile: {size: 600x500, source: https://example.test}\n"
        "  instagram-square: {size: 1080x1350, note: our feed is 4:5 now}\n"
    )
    export(run, tmp_path / "shop", sizes="shop-tile,instagram-square", presets_file=good, name=UNIQUE)
    assert {(d["width"], d["height"], d["preset"]) for d in delivery(tmp_path / "shop")} == {
        ("600", "500", "shop-tile"),
        ("1080", "1350", "instagram-square"),
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "presets:\n  ok: {size: 10x10}\n  wide: {size: 20000x10}\n"
        "  odd:\n    size: 10 by 10\n    colour: red\n"
    )
    assert main([str(run), "--to", str(tmp_path / "x"), "--sizes", "ok", "--presets", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3:" in err and "each side must be 1 to 10000" in err
    assert f"{bad}:5:" in err and "is not a size" in err
    assert f"{bad}:6:" in err and "unknown key" in err
    assert not (tmp_path / "x").exists()


def test_bad_options_are_all_reported_at_once(run, tmp_path, capsys):
    argv = ["--to", str(tmp_path / "x"), "--sizes", "instagram-sqare,0x10", "--quality", "0"]
    argv += ["--background", "nope", "--only", "best", "--name", "{{ row_key", "--step", "heor"]
    assert main([str(run), *argv]) == 2
    err = capsys.readouterr().err
    assert "--quality: 0: expected a number from 1 to 100" in err
    assert "--background: 'nope' is not a colour" in err
    assert "did you mean 'instagram-square'?" in err and "'0x10': each side" in err
    assert "--only: 'best': expected all, approved or stars>=N" in err
    assert "--name: template syntax error" in err
    assert "--step: unknown step 'heor'" in err
    assert "7 problem(s); nothing was written" in err
    assert main([str(tmp_path / "nowhere"), *argv]) == 2
    assert "no manifest" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_original_keeps_each_images_size(run, tmp_path):
    export(run, tmp_path / "o", sizes="original", fmt="webp", name=UNIQUE)
    for line in delivery(tmp_path / "o"):
        with Image.open(tmp_path / "o" / line["file"]) as im:
            assert im.size == (256, 256) and im.format == "WEBP"


def test_the_verb_runs_as_a_module(run, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.export.cli",
            str(run),
            "--to",
            str(tmp_path / "m"),
            "--sizes",
            "32x32",
            "--name",
            UNIQUE,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "exported 4 file(s)" in proc.stderr


def test_names_may_not_reach_into_the_run_folder(run, tmp_path, capsys):
    to = run.parent  # an ancestor of the run: names could reach its files
    before = tree(run)
    name = "out/{{ 'manifest.csv' if image_index == 0 else file }}"
    assert main([str(run), "--to", str(to), "--sizes", "64x64", "--name", name]) == 2
    err = capsys.readouterr().err
    assert err.count("would write into the run's own files") == 4
    assert tree(run) == before


def garbled_pixels(png: bytes) -> bytes:
    """The same PNG with its pixel data (IDAT) replaced by noise under valid chunk CRCs."""
    out, pos = png[:8], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":
            data = bytes((b * 7 + 13) % 256 for b in data)
        out += struct.pack(">I", length) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        pos += 12 + length
    return out


def test_an_image_that_fails_to_decode_stops_the_export_with_nothing_written(run, tmp_path, capsys):
    row = rows(run).iloc[0]
    source = run / row["file"]
    source.write_bytes(garbled_pixels(source.read_bytes()))
    to = tmp_path / "d"
    assert main([str(run), "--to", str(to), "--sizes", "64x64,128x128", "--name", UNIQUE]) == 2
    err = capsys.readouterr().err
    assert f"image {row['image_id']} 64x64: cannot decode the image" in err
    assert "1 problem(s); nothing was written" in err
    assert not to.exists()


def test_contain_keeps_the_pictures_transparency_and_fills_only_the_bars(run, tmp_path):
    wide = Image.new("RGBA", (400, 200), (10, 20, 200, 255))
    wide.paste((0, 0, 0, 0), (0, 0, 200, 200))
    row = replace_source(run, 0, wide)
    export(run, tmp_path / "c", sizes="100x100", fit="contain", background="#00ff00", name=UNIQUE)
    with Image.open(tmp_path / "c" / f"{row['row_key']}-{row['image_id']}-100x100.png") as im:
        assert im.mode == "RGBA"
        assert im.getpixel((50, 5)) == (0, 255, 0, 255)  # bar
        assert im.getpixel((10, 50))[3] == 0  # transparent half of the picture
        assert im.getpixel((90, 50)) == (10, 20, 200, 255)


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (lambda: Image.new("CMYK", (120, 60), (0, 255, 255, 0)), "JPEG"),  # red in CMYK
        (lambda: Image.new("RGB", (120, 60), (255, 0, 0)).convert("P"), "PNG"),
        (lambda: Image.new("LA", (120, 60), (76, 255)), "PNG"),
    ],
)
def test_other_source_modes_come_out_as_srgb(run, tmp_path, make, mode):
    row = rows(run).iloc[0]
    make().save(run / row["file"], mode)
    export(run, tmp_path / "m", sizes="original", name=UNIQUE)
    with Image.open(tmp_path / "m" / f"{row['row_key']}-{row['image_id']}-original.png") as im:
        assert im.size == (120, 60) and im.mode == "RGB"
        r, g, b = im.getpixel((60, 30))
        assert (r > 200 and g < 40 and b < 40) if make().mode != "LA" else (r == g == b == 76)


def test_exif_orientation_is_applied_before_sizing(run, tmp_path):
    row = rows(run).iloc[0]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.new("RGB", (120, 60), (200, 10, 10)).save(run / row["file"], "JPEG", exif=exif.tobytes())
    export(run, tmp_path / "o", sizes="original", name=UNIQUE)
    line = next(d for d in delivery(tmp_path / "o") if d["image_id"] == row["image_id"])
    assert (line["width"], line["height"]) == ("60", "120")
    with Image.open(tmp_path / "o" / line["file"]) as im:
        assert im.size == (60, 120)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ''.__class__.__mro__ }}.png", "refused by the sandbox"),
        ("{{ nope }}.png", "undefined variable"),
        ("{{ row_key ", "template syntax error"),
        ("={{ image_id }}.png", "starts with '='; spreadsheets and shells misread it"),
        ("{{ 'É' if image_index == 0 else 'é' }}-{{ row_key }}.png", "exports are named 'É-A1.png'"),
    ],
)
def test_hostile_or_broken_name_templates_are_refused(run, tmp_path, capsys, template, message):
    assert main([str(run), "--to", str(tmp_path / "x"), "--sizes", "32x32", "--name", template]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_name_failing_everywhere_is_reported_once(run, tmp_path, capsys):
    argv = ["--to", str(tmp_path / "x"), "--sizes", "32x32,64x64", "--name", "{{ nope }}"]
    assert main([str(run), *argv]) == 2
    err = capsys.readouterr().err
    assert "(and 7 more): the name undefined variable" in err
    assert "1 problem(s)" in err


def test_files_of_an_earlier_export_that_are_no_longer_wanted_are_reported(run, tmp_path, capsys):
    to = tmp_path / "d"
    assert main([str(run), "--to", str(to), "--sizes", "32x32,64x64", "--zip", "--name", UNIQUE]) == 0
    result = export(run, to, sizes="32x32", name=UNIQUE)
    assert len(result.stale) == 5 and "delivery.zip" in result.stale
    assert {(d["width"], d["preset"]) for d in delivery(to)} == {("32", "")}  # no preset: a size
    assert main([str(run), "--to", str(to), "--sizes", "32x32", "--name", UNIQUE]) == 0
    assert "5 file(s) from an earlier export" in capsys.readouterr().err  # until deleted
    for name in result.stale:
        (to / name).unlink()
    assert export(run, to, sizes="32x32", name=UNIQUE).stale == []


def test_delivery_csv_neutralises_formula_cells_but_keeps_file_names_verbatim(run, tmp_path):
    frame = rows(run)
    frame["row_key"] = ["=HYPERLINK(1)", "A1", "B2", "B2"]
    frame.to_csv(run / "manifest.csv", index=False)
    export(run, tmp_path / "d", sizes="32x32", name="k{{ row_key | replace('=', '') }}-{{ image_id }}.png")
    lines = {d["image_id"]: d for d in delivery(tmp_path / "d")}
    first = lines[frame["image_id"][0]]
    assert first["row_key"] == "'=HYPERLINK(1)" and first["file"].startswith("kHYPERLINK(1)-")
    assert all((tmp_path / "d" / d["file"]).is_file() for d in lines.values())
