"""The runner's throughput paths: slots given back during Retry-After, results kept as their true type."""

from __future__ import annotations

import io

import pytest
from badserver import BadServer, Reply
from conftest import TEST_KEY
from PIL import Image

from pipeline import api, providers
from pipeline.emulator import Emulator
from pipeline.errors import RateLimited
from pipeline.manifest import read_manifest
from pipeline.report import thumb_path
from pipeline.runner import Run, RunOptions

TWO = """
version: 1
name: slots
provider: ideogram
rows:
  - {sku: A1, product: kettle}
  - {sku: B2, product: teapot}
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "A {{ product }} on a table"
output:
  dir: out
"""


def test_a_refused_request_gives_its_slot_back_while_it_waits(write_recipe):
    """Limit 1, two requests sent at once: the refused one frees its slot during Retry-After."""
    with Emulator(rng_seed=7, max_in_flight=1, latency_ms=600) as em:
        plan = api.plan_file(write_recipe(TWO))
        provider = providers.get(plan.provider, em.base_url)
        key = provider.key({"IDEOGRAM_API_KEY": TEST_KEY})
        options = RunOptions(base_url=em.base_url, yes=True, quiet=True, concurrency=2)
        run = Run(plan, options, provider, key)
        ctx = run.ctx
        seen: list[tuple[int, int, int, float | None]] = []
        gave_back = ctx.client.on_rate_limited
        assert gave_back is not None

        def spy(exc: RateLimited) -> None:
            before = ctx.limit.in_flight
            gave_back(exc)
            seen.append((before, ctx.limit.in_flight, ctx.limit.limit, exc.retry_after))

        ctx.client.on_rate_limited = spy
        result = run.execute()
        ledger = em.ledger()
    # both were in flight when one was refused; while it waited only the other counted,
    # and the limit dropped to what the provider held (1), not to half
    assert seen == [(2, 1, 1, 1.0)]
    assert ctx.limit.in_flight == 0 and not ctx.waiting_out and ctx.reacquiring == 0
    assert result.exit_code == 0
    assert set(read_manifest(result.manifest)["status"]) == {"ok"}
    assert ledger["billed_total"] == 2
    assert sum(ledger["rejected"].values()) == 1


# -- chained images carry their real type --------------------------------------------

JPEG_CHAIN = """
version: 1
name: typed
provider: ideogram
rows:
  - {sku: A1, product: kettle}
seed: derive
defaults: {model: V_3, rendering_speed: TURBO, magic_prompt: "OFF"}
steps:
  - id: hero
    op: generate
    prompt: "A {{ product }}"
  - id: remixed
    op: remix
    input: hero
    prompt: "{{ product }} as a linocut"
    image_weight: 50
output:
  dir: out
"""


def _picture(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 120, 40)).save(out, fmt)
    return out.getvalue()


def _answer(url: str) -> dict[str, object]:
    return {
        "created": "2026-01-01T00:00:00Z",
        "data": [{"url": url, "seed": 5, "prompt": "p", "is_image_safe": True}],
    }


@pytest.mark.parametrize(
    ("fmt", "ext", "content_type"), [("JPEG", ".jpg", "image/jpeg"), ("WEBP", ".webp", "image/webp")]
)
def test_a_result_keeps_its_true_type_in_its_name_and_when_chained(write_recipe, fmt, ext, content_type):
    """A JPEG or WebP answer is stored as .jpg / .webp and sent on as what it is."""
    with BadServer() as bad:
        bad.script("/v1/ideogram-v3/generate", Reply(body=_answer(bad.url("/r/hero"))))
        bad.script("/r/hero", Reply(body=_picture(fmt), headers={"Content-Type": content_type}))
        bad.script("/v1/ideogram-v3/remix", Reply(body=_answer(bad.url("/r/remix"))))
        bad.script("/r/remix", Reply(body=_picture("PNG"), headers={"Content-Type": "image/png"}))
        options = RunOptions(
            base_url=bad.base_url, environ={"IDEOGRAM_API_KEY": TEST_KEY}, yes=True, quiet=True
        )
        path = write_recipe(JPEG_CHAIN)
        result = api.run_file(path, options)
        remix = [s for s in bad.seen if s.path == "/v1/ideogram-v3/remix"]
        posts = sum(s.method == "POST" for s in bad.seen)
        again = api.run_file(path, options)  # the renamed file is found: nothing is sent again
        assert again.exit_code == 0 and sum(s.method == "POST" for s in bad.seen) == posts == 2
    assert result.exit_code == 0, result.failures
    frame = read_manifest(result.manifest).set_index("step_id")
    hero, remixed = frame.loc["hero"], frame.loc["remixed"]
    assert hero["status"] == "ok" and hero["file"].endswith(ext)
    assert (result.out_dir / hero["file"]).read_bytes() == _picture(fmt)
    assert not (result.out_dir / hero["file"]).with_suffix(".png").exists()
    assert remixed["file"].endswith(".png")  # a PNG answer keeps the planned name
    part = remix[0].body.split(b'name="image"', 1)[1][:300]
    assert f'filename="{hero["file"].rsplit("/", 1)[-1]}"'.encode() in part
    assert f"Content-Type: {content_type}".encode() in part
    assert thumb_path(result.out_dir, hero["image_id"], hero["file"]).is_file()  # made while downloading


def test_the_providers_stated_limit_becomes_the_ceiling(write_recipe):
    """A 429 body's max_inflight_requests (v2) sets the limit at once, whatever --concurrency says."""
    refused = {"error": "busy", "reject_reason": "inflight_limit", "max_inflight_requests": 3}
    with BadServer() as bad:
        bad.script(
            "/v1/ideogram-v3/generate",
            Reply(429, refused, headers={"Retry-After": "0"}),
            Reply(body=_answer(bad.url("/r/hero"))),
        )
        bad.script("/r/hero", Reply(body=_picture("PNG"), headers={"Content-Type": "image/png"}))
        plan = api.plan_file(write_recipe(TWO))
        provider = providers.get(plan.provider, bad.base_url)
        key = provider.key({"IDEOGRAM_API_KEY": TEST_KEY})
        run = Run(plan, RunOptions(base_url=bad.base_url, yes=True, quiet=True, concurrency=8), provider, key)
        result = run.execute()
    assert result.exit_code == 0, result.failures
    assert run.ctx.rate_limited_count == 1
    assert run.ctx.limit.ceiling == 3 and run.ctx.limit.limit <= 3
