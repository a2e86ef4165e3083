"""The emulator over real HTTP: endpoints, flavors, strictness, determinism, faults, ledger."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.client import HTTPConnection
from typing import Any

import pytest
import requests
from PIL import Image, ImageDraw

from pipeline import spec
from pipeline.emulator import Emulator, EmulatorConfig

FLAVORS = ("ideogram", "aihubmix", "crazyrouter")


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small PNG with a white square, so it is not a flat colour."""
    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).rectangle((4, 4, size[0] // 2, size[1] // 2), fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def mask(size: tuple[int, int] = (64, 48), mode: str = "L") -> bytes:
    """A black-and-white mask: black (edit) on the left half, white (keep) on the right."""
    img = Image.new(mode, size, 255 if mode == "L" else (255, 255, 255))
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2, size[1]), fill=0)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def open_png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def auth(flavor: str) -> dict[str, str]:
    return {"Authorization": "Bearer test-key"} if flavor == "crazyrouter" else {"Api-Key": "k"}


def form(**fields: Any) -> list[tuple[str, Any]]:
    """requests `files=` for a multipart body; bytes become file parts, lists repeat."""
    parts: list[tuple[str, Any]] = []
    for name, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, bytes):
                parts.append((name, (f"{name}.png", v, "image/png")))
            else:
                parts.append((name, (None, v if isinstance(v, str) else json.dumps(v))))
    return parts


# One valid request per endpoint: path and keyword arguments for requests.post.
VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "/v1/ideogram-v3/generate": lambda: {
        "files": form(prompt="a lighthouse at dusk", num_images="2", aspect_ratio="16x9")
    },
    "/v1/ideogram-v3/remix": lambda: {
        "files": form(prompt="as a watercolour", image=png(), image_weight="60")
    },
    "/v1/ideogram-v3/edit": lambda: {
        "files": form(prompt="add a moon", image=png(), mask=mask(), magic_prompt="OFF")
    },
    "/v1/ideogram-v3/reframe": lambda: {"files": form(image=png(), resolution="1312x736")},
    "/v1/ideogram-v3/replace-background": lambda: {
        "files": form(prompt="a beach", image=png(), style_reference_images=[png(), png(colour=(0, 0, 90))])
    },
    "/generate": lambda: {
        "json": {
            "image_request": {
                "prompt": "a futuristic city",
                "model": "V_2",
                "aspect_ratio": "ASPECT_16_9",
                "style_type": "RENDER_3D",
            }
        }
    },
    "/remix": lambda: {
        "files": form(
            image_request={"prompt": "watercolor", "aspect_ratio": "ASPECT_10_16", "model": "V_2"},
            image_file=png(),
        )
    },
    "/upscale": lambda: {"files": form(image_request="{}", image_file=png())},
    "/edit": lambda: {"files": form(prompt="remove text", model="V_2", image_file=png(), mask=mask())},
    "/reframe": lambda: {"files": form(resolution="RESOLUTION_1024_1024", model="V_2", image_file=png())},
    "/describe": lambda: {"files": form(image_file=png())},
}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as e:
        yield e


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


class Client:
    """Posts to one emulator with its flavor's prefix and auth."""

    def __init__(self, emu: Emulator, session: requests.Session):
        self.emu, self.s = emu, session
        self.headers = auth(emu.config.flavor)

    def post(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        return self.s.post(
            self.emu.base_url + path,
            headers=self.headers if headers is None else headers,
            timeout=20,
            **kw,
        )

    def ok(self, path: str, **kw: Any) -> dict[str, Any]:
        r = self.post(path, **kw)
        assert r.status_code == 200, r.text
        body = r.json()
        assert spec.validate(body, spec.response_schema(path)) == []
        return body

    def image(self, url: str) -> bytes:
        r = self.s.get(url, timeout=20)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "image/png"
        assert int(r.headers["Content-Length"]) == len(r.content)
        return r.content

    def generate(self, **fields: Any) -> dict[str, Any]:
        return self.ok("/v1/ideogram-v3/generate", files=form(**fields))


@pytest.fixture
def client(emu: Emulator, http: requests.Session) -> Client:
    return Client(emu, http)


# ---- endpoints and flavors ---------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("path", list(VALID))
def test_every_endpoint_answers_spec_shaped(flavor: str, path: str, http: requests.Session) -> None:
    with Emulator(flavor=flavor) as emu:
        c = Client(emu, http)
        body = c.ok(path, **VALID[path]())
        if path == "/describe":
            assert body["descriptions"][0]["text"]
            return
        assert body["data"]
        for item in body["data"]:
            assert item["is_image_safe"] is True
            assert item["url"].startswith(emu.root_url + "/files/")
            img = open_png(c.image(item["url"]))
            if path == "/upscale":
                assert img.size == (128, 96)
                assert item["upscaled_resolution"] == "128x96"
            else:
                w, h = map(int, item["resolution"].split("x"))
                assert img.size == (round(w * 0.25), round(h * 0.25))
        assert emu.ledger()["billed_images"] == {path: len(body["data"])}


@pytest.mark.parametrize(
    ("flavor", "url"),
    [
        ("ideogram", "/v1/ideogram-v3/generate"),
        ("aihubmix", "/ideogram/v1/ideogram-v3/generate"),
        ("crazyrouter", "/ideogram/v1/ideogram-v3/generate"),
    ],
)
def test_base_url_carries_the_flavor_prefix(flavor: str, url: str, http: requests.Session) -> None:
    with Emulator(flavor=flavor) as emu:
        r = http.post(emu.root_url + url, headers=auth(flavor), files=form(prompt="x"))
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("flavor", "path"),
    [
        ("aihubmix", "/v1/ideogram-v3/generate"),  # missing prefix
        ("aihubmix", "/ideogram/eidt"),  # the typo in the aihubmix document
        ("ideogram", "/ideogram/generate"),
        ("ideogram", "/v1/ideogram-v3/upscale"),
    ],
)
def test_unknown_paths_are_404(flavor: str, path: str, http: requests.Session) -> None:
    with Emulator(flavor=flavor) as emu:
        r = http.post(emu.root_url + path, headers=auth(flavor), files=form(prompt="x"))
        assert r.status_code == 404


@pytest.mark.parametrize(
    ("flavor", "headers"),
    [
        ("ideogram", {}),
        ("ideogram", {"Api-Key": ""}),
        ("ideogram", {"Authorization": "Bearer k"}),
        ("aihubmix", {}),
        ("crazyrouter", {}),
        ("crazyrouter", {"Api-Key": "k"}),
        ("crazyrouter", {"Authorization": "Bearer "}),
    ],
)
def test_missing_key_is_401(flavor: str, headers: dict[str, str], http: requests.Session) -> None:
    with Emulator(flavor=flavor) as emu:
        c = Client(emu, http)
        r = c.post("/v1/ideogram-v3/generate", headers=headers, files=form(prompt="x"))
        assert r.status_code == 401
        assert emu.ledger()["billed_total"] == 0
        assert emu.ledger()["rejected"] == {"auth": 1}


def test_require_key_false_accepts_anonymous_requests(http: requests.Session) -> None:
    with Emulator(require_key=False) as emu:
        r = http.post(emu.base_url + "/v1/ideogram-v3/generate", files=form(prompt="x"))
        assert r.status_code == 200


# ---- strict requests ---------------------------------------------------------------------

BAD: list[tuple[str, str, dict[str, Any], int]] = [
    (
        "unknown multipart field",
        "/v1/ideogram-v3/generate",
        {"files": form(prompt="x", colour="red")},
        400,
    ),
    ("unknown JSON field", "/v1/ideogram-v3/generate", {"json": {"prompt": "x", "foo": 1}}, 400),
    (
        "unknown image_request field",
        "/generate",
        {"json": {"image_request": {"prompt": "x", "quality": "max"}}},
        400,
    ),
    ("missing prompt", "/v1/ideogram-v3/generate", {"files": form(num_images="1")}, 400),
    (
        "num_images over 8",
        "/v1/ideogram-v3/generate",
        {"files": form(prompt="x", num_images="9")},
        400,
    ),
    (
        "seed not an integer",
        "/v1/ideogram-v3/generate",
        {"files": form(prompt="x", seed="abc")},
        400,
    ),
    (
        "legacy aspect ratio on v3",
        "/v1/ideogram-v3/generate",
        {"files": form(prompt="x", aspect_ratio="ASPECT_16_9")},
        400,
    ),
    (
        "legacy edit with V_3",
        "/edit",
        {"files": form(prompt="x", model="V_3", image_file=png(), mask=mask())},
        400,
    ),
    (
        "legacy edit with V_2A",
        "/edit",
        {"files": form(prompt="x", model="V_2A", image_file=png(), mask=mask())},
        400,
    ),
    (
        "style_type with V_1",
        "/generate",
        {"json": {"image_request": {"prompt": "x", "model": "V_1", "style_type": "ANIME"}}},
        400,
    ),
    (
        "aspect_ratio with resolution",
        "/v1/ideogram-v3/generate",
        {"files": form(prompt="x", aspect_ratio="1x1", resolution="1024x1024")},
        400,
    ),
    (
        "legacy aspect_ratio with resolution",
        "/generate",
        {
            "json": {
                "image_request": {
                    "prompt": "x",
                    "aspect_ratio": "ASPECT_1_1",
                    "resolution": "RESOLUTION_1024_1024",
                }
            }
        },
        400,
    ),
    (
        "mask of another size",
        "/v1/ideogram-v3/edit",
        {"files": form(prompt="x", image=png(), mask=mask((32, 32)))},
        400,
    ),
    (
        "mask in colour",
        "/v1/ideogram-v3/edit",
        {"files": form(prompt="x", image=png(), mask=png())},
        400,
    ),
    (
        "mask in grey",
        "/v1/ideogram-v3/edit",
        {"files": form(prompt="x", image=png(), mask=png(colour=(128, 128, 128)))},
        400,
    ),
    (
        "input not an image",
        "/v1/ideogram-v3/remix",
        {"files": form(prompt="x", image=b"GIF89a not really")},
        400,
    ),
    (
        "input over 10 MB",
        "/v1/ideogram-v3/remix",
        {"files": form(prompt="x", image=b"\x89PNG" + b"\0" * (10 * 1024 * 1024))},
        413,
    ),
    (
        "legacy generate as multipart",
        "/generate",
        {"files": form(image_request={"prompt": "x"})},
        400,
    ),
    (
        "remix as JSON outside crazyrouter",
        "/v1/ideogram-v3/remix",
        {"json": {"prompt": "x", "image": "data:image/png;base64,AAAA"}},
        400,
    ),
    (
        "image_request not JSON",
        "/remix",
        {"files": form(image_request="{prompt: x}", image_file=png())},
        400,
    ),
    ("required file missing", "/describe", {"files": form(describe_model_version="V_3")}, 400),
    (
        "body not JSON",
        "/generate",
        {"data": b"{nope", "headers": {"Api-Key": "k", "Content-Type": "application/json"}},
        400,
    ),
]


@pytest.mark.parametrize(("case", "path", "kw", "status"), BAD, ids=[b[0] for b in BAD])
def test_invalid_requests_are_refused_unbilled(
    client: Client, emu: Emulator, case: str, path: str, kw: dict[str, Any], status: int
) -> None:
    r = client.post(path, **kw)
    assert r.status_code == status, r.text
    assert r.json()["error"]
    ledger = emu.ledger()
    assert ledger["billed_total"] == 0
    assert ledger["entries"][0]["billed"] is False


def test_schema_violations_are_listed_in_details(client: Client) -> None:
    r = client.post("/v1/ideogram-v3/generate", files=form(prompt="x", colour="red", num_images="0"))
    assert r.status_code == 400
    details = " ".join(r.json()["details"])
    assert "colour" in details
    assert "num_images" in details


def test_repeated_parts_become_arrays(client: Client, emu: Emulator) -> None:
    refs = [png(colour=(i * 60, 0, 0)) for i in range(3)]
    client.ok("/v1/ideogram-v3/generate", files=form(prompt="x", style_reference_images=refs))
    client.ok("/v1/ideogram-v3/generate", files=form(prompt="x", style_reference_images=refs[:2]))
    shas = [e["request_sha256"] for e in emu.ledger()["entries"]]
    assert shas[0] != shas[1]


def test_mask_in_rgb_black_and_white_is_accepted(client: Client) -> None:
    client.ok("/v1/ideogram-v3/edit", files=form(prompt="x", image=png(), mask=mask(mode="RGB")))


# ---- safety, credit, revocation ------------------------------------------------------------


def test_reject_marker_is_422_unbilled(client: Client, emu: Emulator) -> None:
    r = client.post("/v1/ideogram-v3/generate", files=form(prompt="a [reject] thing"))
    assert r.status_code == 422
    assert "safety" in r.json()["error"]
    assert emu.ledger()["billed_total"] == 0
    assert emu.ledger()["rejected"] == {"safety": 1}


def test_unsafe_marker_is_billed_without_url(client: Client, emu: Emulator) -> None:
    body = client.generate(prompt="an [unsafe] thing", num_images="2")
    assert [(d["is_image_safe"], d["url"]) for d in body["data"]] == [(False, None)] * 2
    assert emu.ledger()["billed_total"] == 2


def test_credit_runs_out_with_402(client: Client, emu: Emulator) -> None:
    emu.set_credit(3)
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x", num_images="4")).status_code == 402
    client.generate(prompt="x", num_images="3")
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x")).status_code == 402
    emu.set_credit(None)
    client.generate(prompt="x")
    ledger = emu.ledger()
    assert ledger["billed_total"] == 4
    assert ledger["rejected"] == {"credit": 2}


def test_revoked_keys_answer_401_until_restored(client: Client, emu: Emulator) -> None:
    emu.revoke_keys()
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x")).status_code == 401
    emu.revoke_keys(False)
    client.generate(prompt="x")


# ---- determinism and Magic Prompt ----------------------------------------------------------


def test_same_request_and_seed_give_identical_bytes(client: Client) -> None:
    a = client.generate(prompt="a red fox", seed="42", magic_prompt="OFF")
    b = client.generate(prompt="a red fox", seed="42", magic_prompt="OFF")
    c = client.generate(prompt="a red fox", seed="43", magic_prompt="OFF")
    assert a["data"][0]["url"] != b["data"][0]["url"]
    png_a, png_b, png_c = (client.image(x["data"][0]["url"]) for x in (a, b, c))
    assert png_a == png_b
    assert png_a != png_c
    assert open_png(png_a).tobytes() != open_png(png_c).tobytes()
    assert open_png(png_a).info["prompt"] == "a red fox"


def test_seed_with_num_images_repeats_one_image(client: Client) -> None:
    body = client.generate(prompt="a cat", seed="7", num_images="3")
    assert [d["seed"] for d in body["data"]] == [7, 7, 7]
    assert len({client.image(d["url"]) for d in body["data"]}) == 1


def test_without_seed_each_image_gets_its_own(client: Client) -> None:
    body = client.generate(prompt="a cat", num_images="3", magic_prompt="OFF")
    seeds = [d["seed"] for d in body["data"]]
    assert len(set(seeds)) == 3
    assert all(0 <= s <= 2**31 - 1 for s in seeds)
    assert len({client.image(d["url"]) for d in body["data"]}) == 3
    again = client.generate(prompt="a cat", seed=str(seeds[1]), magic_prompt="OFF")
    assert client.image(again["data"][0]["url"]) == client.image(body["data"][1]["url"])


def test_rerun_of_effective_prompt_with_magic_off_is_identical(client: Client) -> None:
    first = client.generate(prompt="a lighthouse", magic_prompt="ON", aspect_ratio="1x1", num_images="2")[
        "data"
    ][1]
    assert first["prompt"].startswith("a lighthouse, ")
    rerun = client.generate(prompt=first["prompt"], magic_prompt="OFF", seed=str(first["seed"]))
    assert client.image(rerun["data"][0]["url"]) == client.image(first["url"])


def test_magic_prompt_on_varies_and_off_is_stable(client: Client) -> None:
    on = {client.generate(prompt="a tree", magic_prompt="ON")["data"][0]["prompt"] for _ in range(4)}
    auto = client.generate(prompt="a tree")["data"][0]["prompt"]
    off = {client.generate(prompt="a tree", magic_prompt="OFF")["data"][0]["prompt"] for _ in range(3)}
    assert len(on) > 1
    assert all(p.startswith("a tree, ") for p in on)
    assert auto != "a tree"
    assert off == {"a tree"}


def test_legacy_magic_prompt_option(client: Client) -> None:
    body = client.ok(
        "/generate",
        json={"image_request": {"prompt": "a boat", "magic_prompt_option": "OFF", "seed": 5}},
    )
    assert body["data"][0]["prompt"] == "a boat"
    assert body["data"][0]["seed"] == 5


def test_fixed_rng_seed_repeats_random_seeds() -> None:
    runs = []
    for _ in range(2):
        with Emulator(rng_seed=123) as emu, requests.Session() as s:
            body = Client(emu, s).generate(prompt="x", num_images="2")
            runs.append([(d["seed"], d["prompt"]) for d in body["data"]])
    assert runs[0] == runs[1]


# ---- sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kw", "resolution"),
    [
        ("/v1/ideogram-v3/generate", {"files": form(prompt="x")}, "1024x1024"),
        ("/v1/ideogram-v3/generate", {"files": form(prompt="x", aspect_ratio="16x9")}, "1312x736"),
        (
            "/v1/ideogram-v3/generate",
            {"files": form(prompt="x", resolution="832x1248")},
            "832x1248",
        ),
        (
            "/generate",
            {"json": {"image_request": {"prompt": "x", "aspect_ratio": "ASPECT_9_16"}}},
            "736x1312",
        ),
        (
            "/generate",
            {"json": {"image_request": {"prompt": "x", "resolution": "RESOLUTION_1280_720"}}},
            "1280x720",
        ),
        ("/v1/ideogram-v3/remix", {"files": form(prompt="x", image=png((300, 100)))}, "1536x512"),
        (
            "/v1/ideogram-v3/remix",
            {"files": form(prompt="x", image=png(), aspect_ratio="1x1")},
            "1024x1024",
        ),
        (
            "/v1/ideogram-v3/reframe",
            {"files": form(image=png(), resolution="1536x640")},
            "1536x640",
        ),
    ],
)
def test_output_sizes(client: Client, path: str, kw: dict[str, Any], resolution: str) -> None:
    item = client.ok(path, **kw)["data"][0]
    assert item["resolution"] == resolution
    w, h = map(int, resolution.split("x"))
    assert open_png(client.image(item["url"])).size == (round(w / 4), round(h / 4))


def test_upscale_doubles_the_input(client: Client) -> None:
    body = client.ok("/upscale", files=form(image_request={"seed": 1}, image_file=png((90, 30))))
    item = body["data"][0]
    assert (item["resolution"], item["upscaled_resolution"]) == ("90x30", "180x60")
    assert open_png(client.image(item["url"])).size == (180, 60)


def test_describe_reads_back_an_emulator_prompt(client: Client) -> None:
    item = client.generate(prompt="a blue whale", magic_prompt="OFF")["data"][0]
    made = client.image(item["url"])
    text = client.ok("/describe", files=form(image_file=made))["descriptions"][0]["text"]
    assert text == "An image of a blue whale"
    plain = [
        client.ok("/describe", files=form(image_file=png(colour=(0, 0, 200))))["descriptions"][0]["text"]
        for _ in range(2)
    ]
    assert plain[0] == plain[1]
    assert "64x48" in plain[0]
    assert "blue" in plain[0]


# ---- crazyrouter JSON images ---------------------------------------------------------------


@pytest.fixture
def crazy(http: requests.Session) -> Iterator[Client]:
    with Emulator(flavor="crazyrouter") as emu:
        yield Client(emu, http)


def test_crazyrouter_accepts_urls_and_base64(crazy: Client) -> None:
    made = crazy.ok("/generate", json={"image_request": {"prompt": "a fox"}})["data"][0]["url"]
    crazy.ok("/remix", json={"image_request": {"prompt": "anime"}, "image_file": made})
    crazy.ok("/upscale", json={"image_request": {}, "image_file": made})
    assert crazy.ok("/describe", json={"image_file": made})["descriptions"][0]["text"].startswith(
        "An image of a fox"
    )
    b64 = base64.b64encode(png()).decode()
    crazy.ok(
        "/v1/ideogram-v3/edit",
        json={
            "prompt": "x",
            "image": "data:image/png;base64," + b64,
            "mask": base64.b64encode(mask()).decode(),
        },
    )
    crazy.ok("/v1/ideogram-v3/generate", json={"prompt": "x", "style_reference_images": [b64]})


def test_crazyrouter_json_and_multipart_hash_alike(crazy: Client) -> None:
    image = png()
    crazy.ok("/remix", files=form(image_request={"prompt": "p", "seed": 1}, image_file=image))
    crazy.ok(
        "/remix",
        json={
            "image_request": {"prompt": "p", "seed": 1},
            "image_file": base64.b64encode(image).decode(),
        },
    )
    a, b = crazy.emu.ledger()["entries"]
    assert a["request_sha256"] == b["request_sha256"]


@pytest.mark.parametrize(
    "ref",
    [
        "https://example.com/photo.jpg",
        "http://10.0.0.1/x.png",
        "not base64 at all!",
        "data:image/png,rawdata",
    ],
)
def test_crazyrouter_refuses_unusable_image_refs(crazy: Client, ref: str) -> None:
    r = crazy.post("/describe", json={"image_file": ref})
    assert r.status_code == 400


def test_crazyrouter_refuses_expired_own_url(crazy: Client) -> None:
    made = crazy.ok("/generate", json={"image_request": {"prompt": "x"}})["data"][0]["url"]
    crazy.emu.configure(url_ttl=0.0)
    time.sleep(0.01)
    r = crazy.post("/describe", json={"image_file": made})
    assert r.status_code == 400
    assert "expired" in r.json()["error"]


# ---- concurrency ---------------------------------------------------------------------------


def test_in_flight_limit_answers_429_unbilled() -> None:
    with Emulator(max_in_flight=4, latency_ms=600) as emu:
        statuses: list[tuple[int, str, str | None]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(6)

        def one() -> None:
            with requests.Session() as s:
                barrier.wait(timeout=10)
                r = s.post(
                    emu.base_url + "/v1/ideogram-v3/generate",
                    headers={"Api-Key": "k"},
                    files=form(prompt="x", num_images="2"),
                    timeout=20,
                )
                with lock:
                    statuses.append((r.status_code, r.text, r.headers.get("Retry-After")))

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [s for s in statuses if s[0] == 200]
        limited = [s for s in statuses if s[0] == 429]
        assert len(ok) == 2
        assert len(limited) == 4
        assert all(json.loads(t) == {"error": "inflight_limit"} and ra for _, t, ra in limited)
        ledger = emu.ledger()
        assert ledger["billed_total"] == 4
        assert ledger["rejected"] == {"inflight_limit": 4}


def test_request_larger_than_the_limit_is_429(client: Client, emu: Emulator) -> None:
    emu.configure(max_in_flight=2)
    r = client.post("/v1/ideogram-v3/generate", files=form(prompt="x", num_images="3"))
    assert r.status_code == 429


def test_latency_is_added(client: Client, emu: Emulator) -> None:
    emu.configure(latency_ms=250)
    start = time.monotonic()
    client.generate(prompt="x")
    assert time.monotonic() - start >= 0.25


def test_connections_are_kept_alive(emu: Emulator) -> None:
    conn = HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        sockets = set()
        for _ in range(3):
            body = json.dumps({"image_request": {"prompt": "x"}})
            conn.request(
                "POST",
                "/generate",
                body=body,
                headers={"Api-Key": "k", "Content-Type": "application/json"},
            )
            r = conn.getresponse()
            assert r.status == 200
            assert r.getheader("Connection") != "close"
            json.loads(r.read())
            conn.request("GET", "/_ledger")
            r = conn.getresponse()
            r.read()
            sockets.add(id(conn.sock))
        assert len(sockets) == 1
        assert emu.ledger()["requests"] == 3
    finally:
        conn.close()


# ---- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("429", 429),
        ("500", 500),
        ("503", 503),
        ("401", 401),
        ("402", 402),
        ("422", 422),
    ],
)
def test_injected_status_faults_are_unbilled(client: Client, emu: Emulator, fault: str, status: int) -> None:
    emu.inject(fault)
    r = client.post("/v1/ideogram-v3/generate", files=form(prompt="x"))
    assert r.status_code == status
    if fault == "429":
        assert r.headers["Retry-After"]
    client.generate(prompt="x")  # the fault was used up
    ledger = emu.ledger()
    assert ledger["billed_total"] == 1
    assert ledger["rejected"] == {f"fault_{fault}": 1}


@pytest.mark.parametrize(("fault", "billed"), [("drop", 0), ("accept_drop", 1)])
def test_dropped_connections(client: Client, emu: Emulator, fault: str, billed: int) -> None:
    emu.inject(fault)
    with pytest.raises(requests.ConnectionError):
        client.post("/v1/ideogram-v3/generate", files=form(prompt="x"))
    client.generate(prompt="x")
    ledger = emu.ledger()
    assert ledger["billed_total"] == billed + 1
    assert ledger["entries"][0]["outcome"] == fault
    assert ledger["entries"][0]["billed"] is bool(billed)


def test_injected_faults_apply_in_order(client: Client, emu: Emulator) -> None:
    emu.inject("429", "500", "accept_drop")
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x")).status_code == 429
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x")).status_code == 500
    with pytest.raises(requests.ConnectionError):
        client.post("/v1/ideogram-v3/generate", files=form(prompt="x"))
    assert [e["outcome"] for e in emu.ledger()["entries"]] == [
        "fault_429",
        "fault_500",
        "accept_drop",
    ]


def test_truncated_download(client: Client, emu: Emulator) -> None:
    url = client.generate(prompt="x")["data"][0]["url"]
    emu.inject("truncate")
    with pytest.raises(requests.RequestException):
        client.s.get(url, timeout=10).raise_for_status()
    assert open_png(client.image(url)).format == "PNG"


def test_slow_download(client: Client, emu: Emulator) -> None:
    url = client.generate(prompt="x")["data"][0]["url"]
    fast = client.image(url)
    emu.inject("slow")
    start = time.monotonic()
    assert client.image(url) == fast
    assert time.monotonic() - start >= 0.8


def test_injected_expire(client: Client, emu: Emulator) -> None:
    url = client.generate(prompt="x")["data"][0]["url"]
    emu.inject("expire")
    assert client.s.get(url, timeout=10).status_code == 410
    client.image(url)


def test_urls_expire_after_ttl(client: Client, emu: Emulator) -> None:
    emu.configure(url_ttl=0.3)
    url = client.generate(prompt="x")["data"][0]["url"]
    client.image(url)
    time.sleep(0.4)
    assert client.s.get(url, timeout=10).status_code == 410
    assert client.s.get(emu.root_url + "/files/nope.png", timeout=10).status_code == 404


def test_fault_dice(http: requests.Session) -> None:
    with Emulator(fault_rate=1.0, faults=("503",), rng_seed=1) as emu:
        c = Client(emu, http)
        assert {
            c.post("/generate", json={"image_request": {"prompt": "x"}}).status_code for _ in range(3)
        } == {503}
        emu.configure(fault_rate=0.0)
        c.ok("/generate", json={"image_request": {"prompt": "x"}})


def test_unknown_fault_names_are_refused(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown faults"):
        emu.inject("boom")
    with pytest.raises(ValueError, match="unknown fault kinds"):
        EmulatorConfig(faults=("boom",))
    with pytest.raises(ValueError, match="flavor"):
        Emulator(flavor="openai")
    with pytest.raises(ValueError, match="cannot change"):
        emu.configure(flavor="aihubmix")


# ---- control endpoints and ledger ----------------------------------------------------------


def test_control_endpoint(client: Client, emu: Emulator) -> None:
    r = client.s.post(
        emu.root_url + "/_control",
        timeout=10,
        json={"inject": ["500"], "latency_ms": 0, "credit": 1, "url_ttl": 60},
    )
    assert r.status_code == 200
    assert r.json()["pending_faults"] == ["500"]
    assert emu.config.url_ttl == 60
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x")).status_code == 500
    client.generate(prompt="x")
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x")).status_code == 402
    client.s.post(emu.root_url + "/_control", json={"credit": None, "revoke": True}, timeout=10)
    assert client.post("/v1/ideogram-v3/generate", files=form(prompt="x")).status_code == 401
    bad = client.s.post(emu.root_url + "/_control", json={"flavor": "x"}, timeout=10)
    assert bad.status_code == 400
    assert client.s.get(emu.root_url + "/_ledger", timeout=10).json() == emu.ledger()


def test_ledger_counts_and_hashes(client: Client, emu: Emulator) -> None:
    image = png()
    for _ in range(2):
        client.ok("/remix", files=form(image_request={"prompt": "p", "num_images": 2}, image_file=image))
    client.ok(
        "/remix",
        files=form(image_request={"prompt": "p", "num_images": 2}, image_file=png(colour=(1, 2, 3))),
    )
    client.post("/v1/ideogram-v3/generate", files=form(prompt="x", bogus="1"))
    client.generate(prompt="x", num_images="3")
    ledger = emu.ledger()
    assert ledger["requests"] == 5
    assert ledger["billed_images"] == {"/remix": 6, "/v1/ideogram-v3/generate": 3}
    assert ledger["billed_total"] == 9
    assert ledger["rejected"] == {"invalid": 1}
    entries = ledger["entries"]
    assert [e["images"] for e in entries] == [2, 2, 2, 0, 3]
    assert entries[0]["request_sha256"] == entries[1]["request_sha256"]
    assert entries[0]["request_sha256"] != entries[2]["request_sha256"]
    assert {e["outcome"] for e in entries} == {"ok", "invalid"}


def test_stop_closes_the_socket() -> None:
    emu = Emulator().start()
    url = emu.root_url + "/_ledger"
    with requests.Session() as s:
        assert s.get(url, timeout=5).status_code == 200
        emu.stop()
        with pytest.raises(requests.ConnectionError):
            s.get(url, timeout=5)
