"""Input-image URLs fetched at run time: redirects, bytes and masks are checked before sending."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator

import pytest
from PIL import Image

from pipeline import api
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
    return api.run_file(path, RunOptions(base_url=emulator.base_url, yes=True, quiet=True,
                                         environ=KEYS))


@pytest.mark.parametrize(("route", "message"), [
    ("/to-metadata", "private or link-local"),
    ("/to-private", "private or link-local"),
    ("/not-an-image", "not a PNG, JPEG or WebP"),
    ("/missing.png", "answered 404"),
])
def test_bad_input_url_fails_the_task_without_sending(emulator, write_recipe, site, route,
                                                      message):
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
