"""Result downloads: guarded, retried only when safe, bounded, verified; whole runs against a bad server."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline import api, download, images
from pipeline.cli import main
from pipeline.errors import DownloadError, DownloadExpired, InputError
from pipeline.fetch import Fetcher, FetchRefused, FetchTimeout, FetchTooLarge, Guard
from pipeline.manifest import read_manifest
from pipeline.runner import RunOptions
from pipeline.transport import Deadline, Timeouts
from tests.badserver import BadServer, Reply

KEY = "sk-live-Download9Key7Secret3Z"
GENERATE = "/v1/ideogram-v3/generate"
QUICK = Timeouts(connect=2, read=5, total=10)


def image_bytes(fmt: str = "PNG", side: int = 24) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), "orange").save(out, fmt)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def bad() -> Iterator[BadServer]:
    with BadServer() as server:
        yield server


def fetcher(bad: BadServer) -> Fetcher:
    return Fetcher(Guard.for_base_url(bad.base_url))


# -- retries: only a broken body is tried again, all within one deadline -----------------------


def test_a_broken_body_is_fetched_again(bad):
    good = image_bytes()
    bad.script("/a.png", Reply(200, good, length=len(good) + 100), Reply(200, good))
    assert download.get(fetcher(bad), bad.url("/a.png"), QUICK) == good
    assert len(bad.seen) == 2


@pytest.mark.parametrize(
    ("reply", "url", "error"),
    [
        (Reply(404), "/a.png", DownloadExpired),
        (Reply(410), "/a.png", DownloadExpired),
        (Reply(302, headers={"Location": "http://10.9.9.9/a.png"}), "/a.png", FetchRefused),
        (Reply(200, b"x" * 5000, length=50_000_000), "/a.png", FetchTooLarge),
    ],
)
def test_what_cannot_get_better_is_not_retried(bad, reply, url, error):
    bad.script(url, reply)
    with pytest.raises(error):
        download.get(fetcher(bad), bad.url(url), QUICK, max_bytes=1_000_000)
    assert len(bad.seen) == 1


def test_retries_share_one_total_deadline(bad):
    bad.script("/slow.png", Reply(200, image_bytes(), trickle=0.05))
    start = time.monotonic()
    with pytest.raises(FetchTimeout):
        download.get(fetcher(bad), bad.url("/slow.png"), Timeouts(connect=2, read=5, total=1.2))
    assert time.monotonic() - start < 2.5
    assert len(bad.seen) == 1


def test_a_callers_deadline_replaces_the_total(bad):
    image = image_bytes()
    bad.script("/slow.png", Reply(200, image, trickle=3.0 / len(image)))
    deadline = Deadline(1.0)  # what is left of a task's timeouts.total
    start = time.monotonic()
    with pytest.raises(FetchTimeout):
        download.get(
            fetcher(bad), bad.url("/slow.png"), Timeouts(connect=2, read=5, total=60), deadline=deadline
        )
    assert time.monotonic() - start < 2.0


def test_nothing_is_fetched_once_the_tasks_deadline_has_passed(bad):
    bad.script("/a.png", Reply(200, image_bytes()))
    deadline = Deadline(0.01)
    while not deadline.expired():
        time.sleep(0.005)
    with pytest.raises(FetchTimeout, match="no time left"):
        download.get(fetcher(bad), bad.url("/a.png"), QUICK, deadline=deadline)
    assert bad.seen == []


# -- verification: sniff and decode once -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a PNG, JPEG or WebP"),
        (b"GIF89a" + b"\0" * 40, "not a PNG, JPEG or WebP"),
        (b"<html>expired</html>", "not a PNG, JPEG or WebP"),
        (image_bytes()[:60], "does not decode"),
        (image_bytes("JPEG")[:80], "does not decode"),
        (b"RIFF\0\0\0\0WEBPVP8 garbage", "does not decode"),
        (png_claiming(100_000, 100_000), "limited to|decompression bomb"),
    ],
)
def test_bytes_that_are_not_a_whole_image_are_never_saved(tmp_path, data, message):
    dest = tmp_path / "out" / "a.png"
    with pytest.raises(DownloadError, match=message):
        download.save(data, dest)
    assert not dest.exists()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_whole_image_is_saved_with_its_true_format(tmp_path, fmt):
    data = image_bytes(fmt)
    saved = download.save(data, tmp_path / "a.png")
    assert (saved.format, saved.width, saved.size) == (fmt, 24, len(data))
    assert (tmp_path / "a.png").read_bytes() == data


def test_a_thumbnail_comes_from_the_decoded_image():
    decoded = images.decode(image_bytes(side=800))
    small = Image.open(io.BytesIO(images.thumbnail(decoded, 100)))
    assert small.format == "JPEG" and max(small.size) == 100


# -- whole runs against a misbehaving provider -------------------------------------------------


def answer(url: str) -> dict:
    return {
        "created": "2026-01-01T00:00:00Z",
        "data": [
            {
                "url": url,
                "seed": 5,
                "is_image_safe": True,
                "prompt": "kettle",
                "resolution": "1024x1024",
                "style_type": "GENERAL",
            }
        ],
    }


ONE_STEP = """
version: 1
name: hostile-server
rows: [{p: kettle}]
steps:
  - id: one
    op: generate
    model: V_3
    prompt: "{{ p }}"
output: {dir: out}
"""


def run(bad: BadServer, write_recipe, **options):
    path = write_recipe(ONE_STEP)
    opts = RunOptions(
        base_url=bad.base_url,
        yes=True,
        environ={"IDEOGRAM_API_KEY": KEY},
        timeouts=Timeouts(connect=2, read=5, total=5),
        **options,
    )
    return api.run_file(path, opts)


def leaks_under(folder: Path) -> list[str]:
    hits = []
    for f in folder.rglob("*"):
        if f.is_file():
            text = f.read_bytes().decode("latin-1")
            hits += [f"{f.name}:{KEY[i : i + 8]}" for i in range(len(KEY) - 7) if KEY[i : i + 8] in text]
    return hits


@pytest.mark.parametrize(
    "result_url",
    [
        "http://169.254.169.254/latest/meta-data/x.png",
        "http://10.0.0.7/x.png",
        "http://[::1]/x.png",
        "file:///etc/passwd",
        "http://127.0.0.2/x.png",
    ],
)
def test_a_result_url_on_a_private_address_is_never_fetched(bad, write_recipe, result_url):
    bad.script(GENERATE, Reply(200, answer(result_url)))
    result = run(bad, write_recipe)
    frame = read_manifest(result.manifest)
    assert list(frame["status"]) != ["ok"]
    assert frame["error"].str.contains("public address|http\\(s\\)").all()
    assert [s.path for s in bad.seen] == [GENERATE]


def test_a_result_redirect_to_a_private_address_is_refused(bad, write_recipe):
    bad.script(GENERATE, Reply(200, answer(bad.url("/img.png"))))
    bad.script("/img.png", Reply(302, headers={"Location": "http://169.254.169.254/x.png"}))
    frame = read_manifest(run(bad, write_recipe).manifest)
    assert frame["error"].str.contains("169.254.169.254").all()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_result_is_saved(bad, write_recipe, encoding):
    png = image_bytes()
    bad.script(GENERATE, Reply(200, answer(bad.url("/img.png"))))
    bad.script("/img.png", Reply(200, png, encoding=encoding))
    result = run(bad, write_recipe)
    assert result.exit_code == 0
    frame = read_manifest(result.manifest)
    assert (result.out_dir / frame["file"].iloc[0]).read_bytes() == png


def test_an_api_redirect_fails_the_task_and_the_key_goes_nowhere(bad, write_recipe):
    bad.script(GENERATE, Reply(307, headers={"Location": "http://steal.example.test/v1/gen"}))
    result = run(bad, write_recipe)
    assert result.exit_code == 1
    frame = read_manifest(result.manifest)
    assert frame["error"].str.contains("steal.example.test").all()
    assert len(bad.seen) == 1


def test_a_key_echoed_by_the_server_is_kept_nowhere(bad, write_recipe):
    echoed = f"invalid request for key {KEY}"
    pad = "x" * (290 - len(echoed))  # a cut at 300 characters splits the second copy
    bad.script(GENERATE, Reply(400, {"error": echoed + pad + KEY}))
    result = run(bad, write_recipe)
    assert result.exit_code == 1
    assert leaks_under(result.out_dir) == []


def test_cli_refuses_plain_http_to_a_remote_host(tmp_path, write_recipe, monkeypatch, capsys):
    monkeypatch.setenv("IDEOGRAM_API_KEY", KEY)
    path = write_recipe("""
version: 1
name: plain
rows: [{p: kettle}]
steps: [{id: one, op: generate, model: V_3, prompt: "{{ p }}"}]
output: {dir: out}
""")
    code = main(["run", str(path), "--yes", "--base-url", "http://api.example.test"])
    err = capsys.readouterr().err
    assert code == 2 and "--allow-http" in err and "Traceback" not in err


@pytest.mark.parametrize("key", ["sk-live\nabcdefgh12345", "sk live abcdefgh12345"])
def test_cli_refuses_a_malformed_key_without_echoing_it(bad, write_recipe, monkeypatch, capsys, key):
    monkeypatch.setenv("IDEOGRAM_API_KEY", key)
    path = write_recipe("""
version: 1
name: plain
rows: [{p: kettle}]
steps: [{id: one, op: generate, model: V_3, prompt: "{{ p }}"}]
output: {dir: out}
""")
    code = main(["run", str(path), "--yes", "--base-url", bad.base_url])
    err = capsys.readouterr().err
    assert code == 2 and "malformed" in err
    assert "abcdefgh" not in err and bad.seen == []


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "lots"])
def test_cli_refuses_an_absurd_max_cost(bad, write_recipe, monkeypatch, capsys, value):
    monkeypatch.setenv("IDEOGRAM_API_KEY", KEY)
    path = write_recipe("""
version: 1
name: plain
rows: [{p: kettle}]
steps: [{id: one, op: generate, model: V_3, prompt: "{{ p }}"}]
output: {dir: out}
""")
    code = main(["run", str(path), "--yes", "--base-url", bad.base_url, "--max-cost", value])
    assert code == 2 and "--max-cost" in capsys.readouterr().err
    assert bad.seen == [] and not (path.parent / "out").exists()


@pytest.mark.parametrize(
    ("timeouts", "max_cost"),
    [("{total: 1.0e+9}", None), ("{read: .inf}", None), ("{connect: 1}", float("nan"))],
)
def test_a_run_with_absurd_limits_is_refused_before_anything_is_written(
    bad, write_recipe, timeouts, max_cost
):
    path = write_recipe(f"""
version: 1
name: limits
rows: [{{p: kettle}}]
timeouts: {timeouts}
steps: [{{id: one, op: generate, model: V_3, prompt: "{{{{ p }}}}"}}]
output: {{dir: out}}
""")
    opts = RunOptions(base_url=bad.base_url, yes=True, environ={"IDEOGRAM_API_KEY": KEY}, max_cost=max_cost)
    with pytest.raises(InputError) as caught:
        api.run_file(path, opts)
    assert caught.value.exit_code == 2
    out = path.parent / "out"
    assert bad.seen == [] and not (out.exists() and any(out.rglob("*")))  # (preflight may make it)


def test_a_task_never_outlives_its_total_and_a_late_image_is_fetched_later(bad, write_recipe):
    text = json.dumps(answer(bad.url("/late.png")))
    image = image_bytes()
    bad.script(GENERATE, Reply(200, text, trickle=2.0 / len(text)))
    bad.script("/late.png", Reply(200, image, trickle=4.0 / len(image)), Reply(200, image))
    path = write_recipe(ONE_STEP)
    opts = RunOptions(
        base_url=bad.base_url,
        yes=True,
        environ={"IDEOGRAM_API_KEY": KEY},
        timeouts=Timeouts(connect=2, read=5, total=2.5),
    )
    started = time.monotonic()
    first = api.run_file(path, opts)
    assert time.monotonic() - started < 2.5 + 1.5  # the request took 2 s: the image got the rest
    frame = read_manifest(first.manifest)
    assert frame["status"].tolist() == ["failed"]
    assert "2.5 s" in frame["error"].iloc[0]
    again = api.run_file(path, dataclasses.replace(opts, retry_failed=True))
    assert read_manifest(again.manifest)["status"].tolist() == ["ok"]
    assert [s.path for s in bad.seen].count(GENERATE) == 1  # paid once, fetched again
