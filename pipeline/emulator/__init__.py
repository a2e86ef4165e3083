"""An embedded Ideogram-compatible HTTP server: strict requests, spec-shaped answers, faults.

    with Emulator(latency_ms=300) as emu:
        requests.post(emu.base_url + "/v1/ideogram-v3/generate", ...)
        emu.ledger()

Modules: config (settings), routes (flavors, endpoints, auth), bodies (parsing and
schema validation), rules (checks beyond the schema), render and drawing (results and
pictures), sizes, capacity (in-flight limit, credit), faults, store (/files), ledger,
service (the account, HTTP-free) and server (HTTP and the Emulator class).
"""

from .config import EmulatorConfig
from .server import Emulator

__all__ = ["Emulator", "EmulatorConfig"]
