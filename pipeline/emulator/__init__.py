"""An embedded Ideogram-compatible HTTP server: strict requests, spec-shaped answers, faults.

    with Emulator(latency_ms=300) as emu:
        requests.post(emu.base_url + "/v1/ideogram-v3/generate", ...)
        emu.ledger()

Modules: config (settings), routes (flavors, endpoints, auth), bodies (parsing and
schema validation), rules (checks beyond the schema), render and drawing (results and
pictures), sizes, capacity (in-flight limit, credit), faults, store (/files), ledger,
service (the account, HTTP-free) and server (HTTP and the Emulator class).
v2 (flavor ideogram-v2): v2spec, v2routes, v2bodies, v2rules, v2render, quotes, generations
and service_v2; texture makes real-size PNGs; cli holds the `ideopipe emulator` options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import EmulatorConfig

if TYPE_CHECKING:
    from .server import Emulator

__all__ = ["Emulator", "EmulatorConfig"]


def __getattr__(name: str) -> Any:
    """Import the server (requests, Pillow, numpy) only when Emulator is first used."""
    if name == "Emulator":
        from .server import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
