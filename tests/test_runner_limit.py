"""The runner at the provider's limit: a refused request gives its slots back while it waits."""

from __future__ import annotations

from conftest import TEST_KEY

from pipeline import api, providers
from pipeline.emulator import Emulator
from pipeline.errors import RateLimited
from pipeline.manifest import read_manifest
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
