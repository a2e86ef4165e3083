"""The emulator's ideogram-v2 flavor over real HTTP: every v2 operation, quotes, async, assets, refusals."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from PIL import Image, ImageDraw

from pipeline import spec
from pipeline.emulator import Emulator, v2spec

KEY = {"Api-Key": "k"}


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).rectangle((4, 4, size[0] // 2, size[1] // 2), fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def mask(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("L", size, 255)
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 2, size[1]), fill=0)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def form(**fields: Any) -> list[tuple[str, Any]]:
    """requests `files=`: bytes become file parts, lists repeat, dicts/lists of dicts are JSON parts."""
    parts: list[tuple[str, Any]] = []
    for name, value in fields.items():
        if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
            parts.append((name, (None, json.dumps(value), "application/json")))
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, bytes):
                parts.append((name, (f"{name}.png", v, "image/png")))
            else:
                parts.append((name, (None, str(v).lower() if isinstance(v, bool) else str(v))))
    return parts


# One valid request per v2 operation of the document.
VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "/v2/image/generate/ideogram-4-5": lambda: {"json": {"prompt": "a tin robot", "num_images": 2}},
    "/v2/image/precise-edit/ideogram-4-5": lambda: {
        "files": form(prompt="make it blue", image=png(), mask=mask(), context_window="auto")
    },
    "/v2/image/generate/ideogram-4": lambda: {
        "json": {"prompt": "a harbour", "resolution": "1280x720", "rendering_speed": "turbo"}
    },
    "/v2/image/generate/ideogram-4-transparent": lambda: {
        "json": {"prompt": "a sticker", "aspect_ratio": "1x1"}
    },
    "/v2/image/generate/ideogram-4-custom-model": lambda: {
        "json": {"prompt": "a logo", "custom_model_uri": "model/abc/version/1"}
    },
    "/v2/image/remix/ideogram-4": lambda: {"files": form(prompt="as a riso print", image=png())},
    "/v2/image/describe/ideogram-4": lambda: {"files": form(image=png(), include_tags=True)},
    "/v2/image/generate/ideogram-3": lambda: {
        "files": form(prompt="a fox", aspect_ratio="16x9", style_reference_images=[png(), png()])
    },
    "/v2/image/generate/ideogram-3-character": lambda: {
        "files": form(prompt="the hero on a bike", character_reference_images=[png()])
    },
    "/v2/image/generate/ideogram-3-custom-model": lambda: {
        "json": {"prompt": "a mug", "custom_model_uri": "model/m/version/2"}
    },
    "/v2/image/generate/ideogram-3-transparent": lambda: {
        "json": {"prompt": "a die-cut sticker", "rendering_speed": "turbo"}
    },
    "/v2/image/remix/ideogram-3": lambda: {"files": form(prompt="watercolour", image=png(), image_weight=60)},
    "/v2/image/remix/ideogram-3-character": lambda: {
        "files": form(prompt="in a forest", image=png(), character_reference_images=[png()])
    },
    "/v2/image/remix/ideogram-3-custom-model": lambda: {
        "files": form(prompt="brand look", image=png(), custom_model_uri="model/m/version/2")
    },
    "/v2/image/inpaint/ideogram-3": lambda: {"files": form(prompt="add a moon", image=png(), mask=mask())},
    "/v2/image/inpaint/ideogram-3-character": lambda: {
        "files": form(prompt="add her", image=png(), mask=mask(), character_reference_images=[png()])
    },
    "/v2/image/inpaint/ideogram-3-custom-model": lambda: {
        "files": form(prompt="a logo", image=png(), mask=mask(), custom_model_uri="model/m/version/2")
    },
    "/v2/image/reframe/ideogram-3": lambda: {"files": form(image=png(), resolution="1312x736")},
    "/v2/image/replace-background/ideogram-3": lambda: {"files": form(prompt="a beach", image=png())},
    "/v2/image/describe/ideogram-3": lambda: {"files": form(image=png())},
    "/v2/design/layerize/ideogram-3": lambda: {"files": form(image=png(), prompt="SALE")},
    "/v2/image/generate/ideogram-2": lambda: {"json": {"prompt": "a city", "style_type": "anime"}},
    "/v2/image/generate/ideogram-2a": lambda: {"json": {"prompt": "a city", "aspect_ratio": "3x2"}},
    "/v2/image/generate/p-image-ideogram": lambda: {
        "json": {"prompt": "a shoe", "custom_width": 1024, "custom_height": 768}
    },
    "/v2/image/remove-background/ideogram-1": lambda: {"files": form(image=png())},
    "/v2/image/upscale/auto": lambda: {"files": form(image=png(), upscale_factor="x4")},
}


def test_the_table_covers_every_operation_of_the_document() -> None:
    assert sorted(VALID) == v2spec.post_paths()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(flavor="ideogram-v2", async_delay_s=0.3, rng_seed=3) as e:
        yield e


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers.update(KEY)
        yield s


def post(http: requests.Session, emu: Emulator, path: str, **kw: Any) -> requests.Response:
    return http.post(emu.base_url + path, timeout=20, **kw)


def poll(http: requests.Session, emu: Emulator, generation_id: str) -> requests.Response:
    return http.get(f"{emu.base_url}/v2/generations/{generation_id}", timeout=20)


def valid_for(schema_name: str, body: Any) -> list[str]:
    return spec.validate(body, v2spec.component_schema(schema_name))


def wait_done(http: requests.Session, emu: Emulator, generation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = poll(http, emu, generation_id).json()
        if body["status"] != "pending":
            return dict(body)
        time.sleep(0.05)
    raise AssertionError("generation never finished")


# ---- every operation ------------------------------------------------------------------


@pytest.mark.parametrize("path", list(VALID))
def test_every_operation_answers_spec_shaped(path: str, emu: Emulator, http: requests.Session) -> None:
    r = post(http, emu, path, **VALID[path]())
    assert r.status_code == 200, r.text
    body = r.json()
    assert spec.validate(body, v2spec.response_schema(path)) == []
    for item in body.get("data", []):
        assert item["is_image_safe"] is True
        image = http.get(item["url"], timeout=20)
        assert image.status_code == 200
        img = Image.open(io.BytesIO(image.content))
        if "resolution" in item:
            w, h = map(int, item["resolution"].split("x"))
            assert img.size == (round(w * 0.25), round(h * 0.25))
    ledger = emu.ledger()
    assert ledger["requests"] == 1
    assert ledger["billed_total"] == (len(body["data"]) if "data" in body else 1)


def test_sizes_follow_the_request(emu: Emulator, http: requests.Session) -> None:
    cases = [
        ("/v2/image/generate/ideogram-4-5", {"json": {"prompt": "x", "size": "1024x1024"}}, "1024x1024"),
        ("/v2/image/generate/ideogram-4-5", {"json": {"prompt": "x"}}, "2048x2048"),
        ("/v2/image/generate/ideogram-4", {"json": {"prompt": "x", "resolution": "1440x2560"}}, "1440x2560"),
        ("/v2/image/upscale/auto", {"files": form(image=png(), upscale_factor="x4")}, "256x192"),
        ("/v2/image/precise-edit/ideogram-4-5", {"files": form(prompt="x", image=png((96, 64)))}, "96x64"),
    ]
    for path, kw, resolution in cases:
        r = post(http, emu, path, **kw)
        assert r.status_code == 200, r.text
        assert r.json()["data"][0]["resolution"] == resolution


# ---- dry_run quotes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kw", "micros", "identifier", "qualifier"),
    [
        (
            "/v2/image/generate/ideogram-4-5",
            {"json": {"prompt": "x", "quality": "medium"}},
            60000,
            "ideogram_4_5_generate",
            "exact",
        ),
        (
            "/v2/image/generate/ideogram-4-5",
            {"json": {"prompt": "x", "num_images": 3}},
            300000,
            "ideogram_4_5_generate",
            "exact",
        ),
        (
            "/v2/image/generate/ideogram-4-5",
            {"files": form(prompt="x", images=[png()])},
            60000,
            "ideogram_4_5_generate",
            "exact",
        ),
        (
            "/v2/image/precise-edit/ideogram-4-5",
            {"files": form(prompt="x", image=png(), quality="very_low")},
            8000,
            "ideogram_4_5_precise_edit",
            "exact",
        ),
        (
            "/v2/image/generate/ideogram-3",
            {"json": {"prompt": "x", "rendering_speed": "quality"}},
            90000,
            "ideogram_v3_generation",
            "exact",
        ),
        (
            "/v2/image/generate/ideogram-3-transparent",
            {"json": {"prompt": "x"}},
            70000,
            "ideogram_v3_transparent_generation",
            "exact",
        ),
        (
            "/v2/image/remove-background/ideogram-1",
            {"files": form(image=png())},
            10000,
            "ideogram_remove_background",
            "exact",
        ),
        ("/v2/image/upscale/auto", {"files": form(image=png())}, 251659, "upscale_auto", "exact"),
        (
            "/v2/image/generate/ideogram-3-custom-model",
            {"json": {"prompt": "x", "custom_model_uri": "model/a/version/b"}},
            60000,
            "ideogram_v3_custom_model_generation",
            "estimate",
        ),
    ],
)
def test_dry_run_quotes_from_the_price_table_and_bills_nothing(
    path: str,
    kw: dict[str, Any],
    micros: int,
    identifier: str,
    qualifier: str,
    emu: Emulator,
    http: requests.Session,
) -> None:
    r = post(http, emu, path + "?dry_run=true", **kw)
    assert r.status_code == 200, r.text
    quote = r.json()
    assert valid_for("PriceQuote", quote) == []
    assert (quote["usd_micros"], quote["billing_identifier"], quote["qualifier"]) == (
        micros,
        identifier,
        qualifier,
    )
    assert quote["credit_millis"] == round(micros / 10)
    assert ("upper_bound_usd_micros" in quote) == (qualifier == "estimate")
    ledger = emu.ledger()
    assert (ledger["billed_total"], ledger["quotes"], ledger["rejected"]) == (0, 1, {})


def test_dry_run_is_refused_where_the_document_does_not_declare_it(
    emu: Emulator, http: requests.Session
) -> None:
    r = post(http, emu, "/v2/image/describe/ideogram-3?dry_run=true", files=form(image=png()))
    assert r.status_code == 400
    assert "dry_run" in r.json()["error"]
    assert emu.ledger()["billed_total"] == 0


def test_billed_money_equals_the_quotes(emu: Emulator, http: requests.Session) -> None:
    bodies = [{"prompt": "a", "quality": "low", "num_images": 2}, {"prompt": "b", "quality": "high"}]
    quoted = sum(
        post(http, emu, "/v2/image/generate/ideogram-4-5?dry_run=true", json=b).json()["usd_micros"]
        for b in bodies
    )
    for b in bodies:
        assert post(http, emu, "/v2/image/generate/ideogram-4-5", json=b).status_code == 200
    ledger = emu.ledger()
    assert ledger["billed_usd_micros"] == quoted == 160000
    assert ledger["billed_total"] == 3


# ---- async generations and polling --------------------------------------------------


def test_async_generation_is_pending_then_completed(emu: Emulator, http: requests.Session) -> None:
    r = post(http, emu, "/v2/image/generate/ideogram-4-5", json={"prompt": "x", "async": True})
    assert r.status_code == 200
    body = r.json()
    assert "data" not in body
    assert spec.validate(body, v2spec.response_schema("/v2/image/generate/ideogram-4-5")) == []
    first = poll(http, emu, body["generation_id"]).json()
    assert first["status"] == "pending"
    assert set(first) == {"generation_id", "created", "status"}
    done = wait_done(http, emu, body["generation_id"])
    assert done["status"] == "completed"
    assert valid_for("GenerationResponse", {**done, "data": []}) == []
    item = done["data"][0]
    assert spec.validate(item, v2spec.polled_item_schema()) == []
    assert item["asset_id"] and item["seed"] == body["seed"]
    assert done["usage_cost_usd_micros"] == 100000
    assert http.get(item["url"], timeout=20).status_code == 200


def test_replace_background_is_always_async(emu: Emulator, http: requests.Session) -> None:
    r = post(http, emu, "/v2/image/replace-background/ideogram-3", files=form(prompt="sea", image=png()))
    assert set(r.json()) == {"generation_id"}
    assert wait_done(http, emu, r.json()["generation_id"])["status"] == "completed"


def test_sync_generations_can_be_polled_for_their_asset_ids(emu: Emulator, http: requests.Session) -> None:
    body = post(http, emu, "/v2/image/generate/ideogram-3", json={"prompt": "x", "num_images": 2}).json()
    polled = poll(http, emu, body["generation_id"]).json()
    assert polled["status"] == "completed"
    assert [i["url"] for i in polled["data"]] == [i["url"] for i in body["data"]]
    assert all(i["asset_id"] for i in polled["data"])


def test_an_injected_failure_ends_failed_and_unbilled(emu: Emulator, http: requests.Session) -> None:
    emu.inject("fail")
    r = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x", "async": True})
    done = wait_done(http, emu, r.json()["generation_id"])
    assert done["status"] == "failed"
    assert done["failure_reason"] == "content_policy_violation"
    ledger = emu.ledger()
    assert (ledger["billed_total"], ledger["failed_generations"]) == (0, 1)


@pytest.mark.parametrize(("gid", "status"), [("AAAAAAAAAAAAAAAAAAAAAA", 404), ("bad id!", 400)])
def test_polling_unknown_or_malformed_ids(
    gid: str, status: int, emu: Emulator, http: requests.Session
) -> None:
    assert poll(http, emu, gid).status_code == status


def test_polling_needs_the_key(emu: Emulator) -> None:
    assert requests.get(f"{emu.base_url}/v2/generations/AAAA", timeout=5).status_code == 401


# ---- asset references ---------------------------------------------------------------


def test_assets_from_a_generation_can_be_referenced(emu: Emulator, http: requests.Session) -> None:
    first = post(http, emu, "/v2/image/generate/ideogram-4-5", json={"prompt": "a red cube"}).json()
    asset = poll(http, emu, first["generation_id"]).json()["data"][0]["asset_id"]
    ref = {"asset_id": asset, "asset_type": "RESPONSE"}
    remix = post(
        http, emu, "/v2/image/remix/ideogram-4", json={"prompt": "blue", "image_asset_identifier": ref}
    )
    assert remix.status_code == 200, remix.text
    cut = post(http, emu, "/v2/image/remove-background/ideogram-1", files=form(image_asset_identifier=ref))
    assert cut.status_code == 200, cut.text
    edit = post(
        http,
        emu,
        "/v2/image/generate/ideogram-4-5",
        files=form(prompt="add a hat", image_asset_identifiers=[ref]),
    )
    assert edit.status_code == 200, edit.text
    assert edit.json()["data"][0]["resolution"] == "2048x2048"


@pytest.mark.parametrize("ref", [{"asset_id": "nope", "asset_type": "RESPONSE"}, "wrong-type"])
def test_unknown_asset_references_answer_404(ref: Any, emu: Emulator, http: requests.Session) -> None:
    if ref == "wrong-type":
        gen = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x"}).json()
        ref = {
            "asset_id": poll(http, emu, gen["generation_id"]).json()["data"][0]["asset_id"],
            "asset_type": "UPLOAD",
        }
    before = emu.ledger()["billed_total"]
    r = post(http, emu, "/v2/image/upscale/auto", json={"image_asset_identifier": ref})
    assert r.status_code == 404
    assert "referenced resource not found" in r.json()["error"]
    dry = post(http, emu, "/v2/image/upscale/auto?dry_run=true", json={"image_asset_identifier": ref})
    assert dry.status_code == 404
    assert emu.ledger()["billed_total"] == before


# ---- 402 and 429 ----------------------------------------------------------------------


def test_credit_runs_out_with_insufficient_funds(emu: Emulator, http: requests.Session) -> None:
    emu.set_credit(1)
    r = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x", "num_images": 2})
    assert r.status_code == 402
    assert valid_for("GenerationErrorResponse", r.json()) == []
    assert r.json()["reject_reason"] == "insufficient_funds"
    assert post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x"}).status_code == 200
    assert emu.ledger()["billed_total"] == 1


def test_daily_limit_answers_402_daily_limit(emu: Emulator, http: requests.Session) -> None:
    emu.configure(daily_limit=2)
    assert (
        post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x", "num_images": 2}).status_code
        == 200
    )
    r = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x"})
    assert r.status_code == 402
    assert r.json()["reject_reason"] == "daily_limit"
    assert valid_for("GenerationErrorResponse", r.json()) == []


def test_injected_402_and_429_carry_the_spec_shapes(emu: Emulator, http: requests.Session) -> None:
    emu.configure(max_in_flight=6)
    emu.inject("402", "429")
    first = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x"})
    second = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x"})
    assert (first.status_code, first.json()["reject_reason"]) == (402, "insufficient_funds")
    assert (second.status_code, second.json()["reject_reason"]) == (429, "inflight_limit")
    assert second.json()["max_inflight_requests"] == 6
    assert second.headers["Retry-After"] == "1"
    assert valid_for("GenerationErrorResponse", second.json()) == []


def test_accepted_unfinished_async_generations_count_in_flight(emu: Emulator, http: requests.Session) -> None:
    emu.configure(max_in_flight=3, async_delay_s=0.5)
    accepted = post(
        http, emu, "/v2/image/generate/ideogram-4-5", json={"prompt": "x", "num_images": 2, "async": True}
    )
    assert accepted.status_code == 200
    refused = post(http, emu, "/v2/image/generate/ideogram-4-5", json={"prompt": "y", "num_images": 2})
    assert refused.status_code == 429
    body = refused.json()
    assert (body["reject_reason"], body["max_inflight_requests"]) == ("inflight_limit", 3)
    assert valid_for("GenerationErrorResponse", body) == []
    wait_done(http, emu, accepted.json()["generation_id"])
    again = post(http, emu, "/v2/image/generate/ideogram-4-5", json={"prompt": "y", "num_images": 2})
    assert again.status_code == 200


def test_the_limit_schedule_changes_the_limit_after_n_requests(emu: Emulator, http: requests.Session) -> None:
    emu.configure(max_in_flight=4, async_delay_s=5.0, limit_schedule=[["requests", 2, 1]])
    ok = [
        post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x", "async": True})
        for _ in range(2)
    ]
    assert [r.status_code for r in ok] == [200, 200]
    r = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x", "async": True})
    assert (r.status_code, r.json()["max_inflight_requests"]) == (429, 1)


# ---- strict validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kw", "needle"),
    [
        ("/v2/image/generate/ideogram-4-5", {"json": {"prompt": "x", "style_type": "general"}}, "style_type"),
        ("/v2/image/generate/ideogram-4-5", {"files": form(prompt="x", colour="red")}, "colour"),
        ("/v2/image/generate/ideogram-4-5", {"files": form(prompt="x", num_images="two")}, "num_images"),
        ("/v2/image/generate/ideogram-4-5", {"json": {"prompt": "x", "num_images": 9}}, "num_images"),
        ("/v2/image/generate/ideogram-4", {"json": {"prompt": "x", "rendering_speed": "TURBO"}}, "TURBO"),
        ("/v2/image/remix/ideogram-4", {"files": form(prompt="x", image=png(), seed=4)}, "seed"),
        ("/v2/image/generate/ideogram-4", {"files": form(prompt="x")}, "content type"),
        ("/v2/image/remix/ideogram-3", {"json": {"prompt": "x", "image": "aGVsbG8="}}, "multipart"),
        ("/v2/image/generate/ideogram-4-5?verbose=1", {"json": {"prompt": "x"}}, "verbose"),
        ("/v2/image/generate/ideogram-4-5", {"json": {"prompt": "x", "quality": "very_low"}}, "very_low"),
        ("/v2/image/generate/ideogram-4-5", {"json": {"prompt": "x", "size": "1000x1000"}}, "size"),
        (
            "/v2/image/inpaint/ideogram-3",
            {"files": form(prompt="x", image=png(), mask=mask((32, 32)))},
            "mask",
        ),
        ("/v2/image/inpaint/ideogram-3", {"files": form(prompt="x", image=png())}, "mask"),
        ("/v2/image/remix/ideogram-4", {"json": {"prompt": "x"}}, "source image"),
        (
            "/v2/image/precise-edit/ideogram-4-5",
            {"files": form(prompt="x", image=png(), context_window="auto")},
            "context_window",
        ),
        (
            "/v2/image/reframe/ideogram-3",
            {"files": form(image=png(), resolution="1312x736", prompt="x")},
            "prompt",
        ),
    ],
)
def test_requests_outside_the_document_are_refused(
    path: str, kw: dict[str, Any], needle: str, emu: Emulator, http: requests.Session
) -> None:
    r = post(http, emu, path, **kw)
    assert r.status_code == 400, r.text
    assert needle in json.dumps(r.json())
    assert emu.ledger()["billed_total"] == 0


def test_multipart_fields_are_typed_by_the_schema(emu: Emulator, http: requests.Session) -> None:
    r = post(
        http,
        emu,
        "/v2/image/generate/ideogram-4-5",
        files=form(prompt="x", num_images="2", async_="true", seed="12", images=[png(), png()]),
    )
    assert r.status_code == 400  # async_ is not a field: the refusal names it
    assert "async_" in r.text
    r = post(
        http,
        emu,
        "/v2/image/generate/ideogram-4-5",
        files=[*form(prompt="x", num_images="2", seed="12", images=[png()]), ("async", (None, "true"))],
    )
    assert r.status_code == 200, r.text
    done = wait_done(http, emu, r.json()["generation_id"])
    assert [i["seed"] for i in done["data"]] == [12, 12]


# ---- account endpoints, ledger, URLs, real size -----------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/v2/account/api-keys", "/v2/account/invoices", "/v2/account/usage?start_time=2026-11-01T00:00:00Z"],
)
def test_account_endpoints_answer_spec_shaped(path: str, emu: Emulator, http: requests.Session) -> None:
    post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x"})
    r = http.get(emu.base_url + path, timeout=10)
    assert r.status_code == 200
    route = path.split("?")[0]
    assert spec.validate(r.json(), v2spec.response_schema(route, method="get")) == []


def test_usage_needs_a_start_time(emu: Emulator, http: requests.Session) -> None:
    assert http.get(emu.base_url + "/v2/account/usage", timeout=10).status_code == 400


def test_the_ledger_counts_v2_generations(emu: Emulator, http: requests.Session) -> None:
    post(http, emu, "/v2/image/generate/ideogram-4?dry_run=true", json={"prompt": "x"})
    post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x", "num_images": 2})
    post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x", "bogus": 1})
    ledger = requests.get(emu.root_url + "/_ledger", timeout=5).json()
    assert ledger["billed_images"] == {"/v2/image/generate/ideogram-4": 2}
    assert (ledger["requests"], ledger["quotes"], ledger["rejected"]) == (3, 1, {"invalid": 1})
    assert ledger["billed_usd_micros"] == 120000
    assert [e["outcome"] for e in ledger["entries"]] == ["dry_run", "ok", "invalid"]


def test_result_urls_expire(http: requests.Session) -> None:
    with Emulator(flavor="ideogram-v2", url_ttl=0.2) as emu:
        url = post(http, emu, "/v2/image/generate/ideogram-4", json={"prompt": "x"}).json()["data"][0]["url"]
        assert http.get(url, timeout=5).status_code == 200
        time.sleep(0.3)  # the TTL itself is what is tested
        assert http.get(url, timeout=5).status_code == 410


def test_real_size_images_are_photographic_size_and_deterministic(http: requests.Session) -> None:
    with Emulator(flavor="ideogram-v2", image_scale=1.0, realistic=True) as emu:
        body = {"prompt": "a red bicycle", "size": "1024x1024", "seed": 42, "magic_prompt": "off"}
        urls = [
            post(http, emu, "/v2/image/generate/ideogram-4-5", json=body).json()["data"][0]["url"]
            for _ in range(2)
        ]
        first, second = (http.get(u, timeout=20).content for u in urls)
        other = http.get(
            post(http, emu, "/v2/image/generate/ideogram-4-5", json={**body, "seed": 43}).json()["data"][0][
                "url"
            ],
            timeout=20,
        ).content
    assert first == second
    assert first != other
    assert 1_000_000 <= len(first) <= 2_000_000
    img = Image.open(io.BytesIO(first))
    img.load()
    assert img.size == (1024, 1024)
    assert img.info["prompt"].startswith("a red bicycle")
