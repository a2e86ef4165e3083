"""Input-image URLs fetched at run time: redirects, bytes and masks are checked before sending."""

from __future__ import annotations

import http.server
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline import api
from pipeline.inputs import BadImage, inspect_file, local_file, read_image_file
from pipeline.manifest import read_manifest
from pipeline.runner import RunOptions

KEYS = {"IDEOGRAM_API_KEY": "runtime-inputs-key"}


def png(size: tuple[int, int], colour: str = "red", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


ROUTES = {
    "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data"}, b""),
    "/to-private": (302, {"Location": "http://10.1.2.3/x.png"}, b""),
    "/not-an-image": (200, {"Content-Type": "image/png"}, b"<html>hello</html>"),
    "/photo.png": (200, {"Content-Type": "image/png"}, png((64, 64))),
    "/to-photo": (302, {"Location": "/photo.png"}, b""),
    "/small-mask.png": (200, {"Content-Type": "image/png"}, png((32, 32), "black", "L")),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, headers, body = ROUTES.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_remix(emulator, write_recipe, image: str, mask: str | None = None):
    op = "edit" if mask else "remix"
    extra = f'\n    mask: "{mask}"' if mask else "\n    image_weight: 50"
    path = write_recipe(f"""
version: 1
name: urls
rows: [{{p: kettle}}]
steps:
  - id: one
    op: {op}
    prompt: "{{{{ p }}}}"
    image: "{image}"{extra}
output: {{dir: out}}
""")
    return api.run_file(path, RunOptions(base_url=emulator.base_url, yes=True, quiet=True, environ=KEYS))


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("/to-metadata", "private or link-local"),
        ("/to-private", "private or link-local"),
        ("/not-an-image", "not a PNG, JPEG or WebP"),
        ("/missing.png", "answered 404"),
    ],
)
def test_bad_input_url_fails_the_task_without_sending(emulator, write_recipe, site, route, message):
    result = run_remix(emulator, write_recipe, site + route)
    frame = read_manifest(result.manifest)
    assert list(frame["status"]) == ["failed"]
    assert message in frame["error"].iloc[0]
    assert emulator.ledger()["requests"] == 0


def test_a_redirect_to_an_allowed_host_is_followed(emulator, write_recipe, site):
    result = run_remix(emulator, write_recipe, site + "/to-photo")
    assert list(read_manifest(result.manifest)["status"]) == ["ok"]


def test_mask_of_another_size_is_refused_before_sending(emulator, write_recipe, site):
    result = run_remix(emulator, write_recipe, site + "/photo.png", mask=site + "/small-mask.png")
    frame = read_manifest(result.manifest)
    assert list(frame["status"]) == ["failed"]
    assert "must be the same size" in frame["error"].iloc[0]
    assert emulator.ledger()["requests"] == 0


# -- local files: opened once, without following links; the bytes checked are the bytes sent ---


def jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "blue").save(out, "JPEG")
    return out.getvalue()


def remix_file(write_recipe, image: Path):
    path = write_recipe(f"""
version: 1
name: files
rows: [{{p: kettle}}]
steps:
  - id: one
    op: remix
    prompt: "{{{{ p }}}}"
    image: "{image}"
    image_weight: 50
output: {{dir: out}}
""")
    return api.plan_file(path)


# (a FIFO swapped in is refused by read_image_file below; a whole run is not tried with one
# because the report's thumbnailer opens input files with a blocking open)
@pytest.mark.parametrize("swap", ["symlink", "edit", "remove"])
def test_a_file_swapped_after_planning_is_never_sent(emulator, write_recipe, tmp_path, swap):
    image = tmp_path / "photo.png"
    image.write_bytes(png((64, 64)))
    plan = remix_file(write_recipe, image)
    image.unlink()
    if swap == "symlink":
        (tmp_path / "other.png").write_bytes(png((64, 64), "green"))
        image.symlink_to(tmp_path / "other.png")
    elif swap == "edit":
        image.write_bytes(png((64, 64), "green"))
    result = api.run_plan(plan, RunOptions(base_url=emulator.base_url, yes=True, quiet=True, environ=KEYS))
    frame = read_manifest(result.manifest)
    assert list(frame["status"]) == ["failed"]
    expected = {"symlink": "symbolic link", "edit": "changed since", "remove": "not found"}[swap]
    assert expected in frame["error"].iloc[0]
    assert emulator.ledger()["requests"] == 0


def test_the_true_type_of_a_file_is_sent_whatever_its_name(emulator, write_recipe, tmp_path):
    image = tmp_path / "looks-like.png"
    image.write_bytes(jpeg())
    got = read_image_file(str(image))
    assert (got.content_type, got.data) == ("image/jpeg", jpeg())
    result = api.run_plan(
        remix_file(write_recipe, image),
        RunOptions(base_url=emulator.base_url, yes=True, quiet=True, environ=KEYS),
    )
    assert list(read_manifest(result.manifest)["status"]) == ["ok"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.symlink_to(p.parent / "real.png"), "symbolic link"),
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.mkdir(), "not a regular file|cannot open"),
        (lambda p: (p.write_bytes(b""), os.truncate(p, 11 * 1024 * 1024)), "limited to"),
        (lambda p: p.write_bytes(b"<svg/>"), "not a PNG, JPEG or WebP"),
        (lambda p: p.write_bytes(png((8, 8))[:40]), "does not decode"),
    ],
)
def test_read_image_file_refuses(tmp_path, make, message):
    (tmp_path / "real.png").write_bytes(png((8, 8)))
    target = tmp_path / "input.png"
    make(target)
    with pytest.raises(BadImage, match=message):
        read_image_file(str(target))


def test_an_edited_file_is_described_afresh():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.png"
        path.write_bytes(png((8, 8)))
        first = inspect_file(str(path))
        path.write_bytes(png((16, 16)))
        second = inspect_file(str(path))
    assert (first.width, second.width) == (8, 16) and first.sha256 != second.sha256


# -- under the recipe's folder no folder of an input's path may be a link -----------------------


def test_a_folder_swapped_for_a_link_after_planning_is_never_sent(emulator, write_recipe, tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(png((64, 64)))
    plan = remix_file(write_recipe, Path("pics/a.png"))
    (tmp_path / "pics").rename(tmp_path / "real")  # the same bytes: only the walk can tell
    (tmp_path / "pics").symlink_to(tmp_path / "real", target_is_directory=True)
    result = api.run_plan(plan, RunOptions(base_url=emulator.base_url, yes=True, quiet=True, environ=KEYS))
    frame = read_manifest(result.manifest)
    assert list(frame["status"]) == ["failed"]
    assert "symbolic link" in frame["error"].iloc[0]
    assert emulator.ledger()["requests"] == 0


@pytest.mark.parametrize("link", ["a", "a/b", "a/b/c.png"])
def test_no_link_below_the_root_is_followed(tmp_path, link):
    root = tmp_path / "recipe"
    real = tmp_path / "real"
    (real / "b").mkdir(parents=True)
    (real / "b" / "c.png").write_bytes(png((8, 8)))
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c.png").write_bytes(png((8, 8)))
    here = root / link
    if here.is_dir():
        import shutil

        shutil.rmtree(here)
    else:
        here.unlink()
    here.symlink_to(real / Path(link).relative_to("a") if link != "a" else real)
    ref = local_file(root, "a/b/c.png")
    assert ref.root == str(root.resolve())
    with pytest.raises(BadImage, match="symbolic link"):
        read_image_file(ref.value, root=ref.root)
    with pytest.raises(BadImage, match="symbolic link"):
        inspect_file(ref.value, ref.root)


def test_real_folders_below_the_root_are_read(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.png").write_bytes(png((8, 8)))
    ref = local_file(tmp_path, "a/./b/../b/c.png")
    assert ref.value == str(tmp_path.resolve() / "a" / "b" / "c.png")
    assert read_image_file(ref.value, root=ref.root).data == png((8, 8))


@pytest.mark.parametrize("text", ["{elsewhere}/linked/c.png", "../elsewhere/linked/c.png"])
def test_a_path_outside_the_recipe_folder_keeps_its_rules(tmp_path, text):
    root, elsewhere = tmp_path / "recipe", tmp_path / "elsewhere"
    root.mkdir()
    (elsewhere / "real").mkdir(parents=True)
    (elsewhere / "real" / "c.png").write_bytes(png((8, 8)))
    (elsewhere / "linked").symlink_to(elsewhere / "real", target_is_directory=True)
    ref = local_file(root, text.format(elsewhere=elsewhere))
    assert (ref.root, ref.value) == ("", str((elsewhere / "real" / "c.png").resolve()))
    assert inspect_file(ref.value, ref.root).width == 8
