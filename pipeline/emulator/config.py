"""Settings of the emulator, and the fault kinds it knows how to inject."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

FLAVORS = ("ideogram", "aihubmix", "crazyrouter", "ideogram-v2")

# Outcomes that replace an API request's answer (the first four happen before it runs).
# "fail" (v2 only, injected only) makes the next async generation end `failed`, unbilled.
API_FAULTS = ("429", "500", "503", "drop", "accept_drop", "401", "402", "422", "fail")
# Outcomes that spoil the next /files download instead.
DOWNLOAD_FAULTS = ("truncate", "slow", "expire")
ALL_FAULTS = API_FAULTS + DOWNLOAD_FAULTS

# The knobs configure() and POST /_control may change while the server runs.
RUNTIME_KNOBS = (
    "latency_ms",
    "max_in_flight",
    "fault_rate",
    "faults",
    "url_ttl",
    "limit_schedule",
    "async_delay_s",
    "daily_limit",
)
# A schedule step: after this many API requests ("requests") or seconds since the first
# one ("seconds"), the in-flight limit becomes the given number of images.
Step = tuple[str, float, int]


@dataclass(frozen=True)
class EmulatorConfig:
    """How an Emulator listens and behaves; runtime knobs change through configure()."""

    host: str = "127.0.0.1"
    port: int = 0
    flavor: str = "ideogram"
    latency_ms: float = 0.0
    max_in_flight: int = 10
    fault_rate: float = 0.0
    faults: tuple[str, ...] = ("429", "500", "503", "drop", "accept_drop", "truncate", "slow")
    url_ttl: float = 3600.0
    image_scale: float = 0.25
    require_key: bool = True
    rng_seed: int | None = None
    realistic: bool = False  # photographic-size PNGs (about 1.5 MB at 1024x1024)
    limit_schedule: tuple[Step, ...] = ()
    async_delay_s: float | None = None  # v2: async generations finish after this; None: latency
    daily_limit: int | None = None  # v2: images billable per UTC day before 402 daily_limit

    def __post_init__(self) -> None:
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor {self.flavor!r}: expected one of {', '.join(FLAVORS)}")
        object.__setattr__(self, "faults", tuple(self.faults))
        unknown = [f for f in self.faults if f not in ALL_FAULTS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}: expected some of {list(ALL_FAULTS)}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate {self.fault_rate}: expected a probability in [0, 1]")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight {self.max_in_flight}: expected at least 1")
        if self.latency_ms < 0 or self.url_ttl < 0 or self.image_scale <= 0:
            raise ValueError("latency_ms and url_ttl must be >= 0, image_scale > 0")
        object.__setattr__(self, "limit_schedule", parse_schedule(self.limit_schedule))
        if self.async_delay_s is not None and self.async_delay_s < 0:
            raise ValueError(f"async_delay_s {self.async_delay_s}: expected >= 0")
        if self.daily_limit is not None and self.daily_limit < 0:
            raise ValueError(f"daily_limit {self.daily_limit}: expected >= 0")

    def with_knobs(self, **knobs: Any) -> EmulatorConfig:
        """A copy with runtime knobs changed; unknown or start-only settings raise ValueError."""
        bad = [k for k in knobs if k not in RUNTIME_KNOBS]
        if bad:
            raise ValueError(f"cannot change {bad} at runtime: knobs are {list(RUNTIME_KNOBS)}")
        return replace(self, **knobs)

    def knobs(self) -> dict[str, Any]:
        """Every setting as a JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["faults"] = list(self.faults)
        out["limit_schedule"] = [list(step) for step in self.limit_schedule]
        return out


def parse_schedule(steps: Any) -> tuple[Step, ...]:
    """Schedule steps from tuples, [unit, at, limit] lists, {"after_requests"|"after_s": n,
    "max_in_flight": m} dicts or the CLI's "requests:200=5,seconds:30=8"; ValueError if bad."""
    if isinstance(steps, str):
        steps = [_step_text(s) for s in steps.split(",") if s.strip()]
    out = []
    for step in steps or ():
        if isinstance(step, dict):
            unit = "requests" if "after_requests" in step else "seconds"
            at = step.get("after_requests", step.get("after_s"))
            step = (unit, at, step.get("max_in_flight"))
        unit, at, limit = step
        if (
            unit not in ("requests", "seconds")
            or isinstance(limit, bool)
            or not isinstance(limit, int)
            or limit < 1
            or not isinstance(at, (int, float))
            or at < 0
        ):
            raise ValueError(
                f"limit_schedule step {step!r}: expected (requests|seconds, at >= 0, max_in_flight >= 1)"
            )
        out.append((str(unit), float(at), int(limit)))
    return tuple(out)


def _step_text(text: str) -> Step:
    try:
        unit, rest = text.strip().split(":", 1)
        at, limit = rest.split("=", 1)
        return unit, float(at), int(limit)
    except ValueError as exc:
        raise ValueError(f"limit_schedule step {text!r}: expected UNIT:AT=LIMIT") from exc
