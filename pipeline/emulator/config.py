"""Settings of the emulator, and the fault kinds it knows how to inject."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

FLAVORS = ("ideogram", "aihubmix", "crazyrouter")

# Outcomes that replace an API request's answer (the first four happen before it runs).
API_FAULTS = ("429", "500", "503", "drop", "accept_drop", "401", "402", "422")
# Outcomes that spoil the next /files download instead.
DOWNLOAD_FAULTS = ("truncate", "slow", "expire")
ALL_FAULTS = API_FAULTS + DOWNLOAD_FAULTS

# The knobs configure() and POST /_control may change while the server runs.
RUNTIME_KNOBS = ("latency_ms", "max_in_flight", "fault_rate", "faults", "url_ttl")


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
        return out
