"""v2 generations and assets: what GET /v2/generations/{id} reports, and referencable outputs.

Every accepted v2 generation (sync or async) is kept by its id. An async one answers
`pending` until its ready time, then `completed` with its items (or `failed`), and only
then gives its in-flight images back to the account: accepted, unfinished generations
count against the in-flight limit, as on the real service. Safe outputs become assets
(`asset_type: RESPONSE`) that later requests may name instead of uploading the bytes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .reject import Reject

ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_id() -> str:
    """A 22-character URL-safe base64 id, as the API writes generation and asset ids."""
    return secrets.token_urlsafe(16)


@dataclass
class Generation:
    """One accepted generation: its items once done, or why it failed."""

    generation_id: str
    created: str
    ready_at: float
    images: int
    items: list[dict[str, Any]]
    usd_micros: int
    failure: str | None = None
    settled: bool = False
    on_settle: Callable[[Generation], None] | None = field(default=None, repr=False)

    def body(self, now: float) -> dict[str, Any]:
        """The GenerationResponse for this generation at time `now`."""
        out: dict[str, Any] = {"generation_id": self.generation_id, "created": self.created}
        if now < self.ready_at:
            out["status"] = "pending"
        elif self.failure:
            out.update(status="failed", failure_reason=self.failure)
        else:
            out.update(
                status="completed",
                response_type="url",
                data=self.items,
                usage_cost_usd_micros=self.usd_micros,
            )
        return out


class Generations:
    """Thread-safe store of generations and of the assets their safe outputs became."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._generations: dict[str, Generation] = {}
        self._assets: dict[str, tuple[str, bytes]] = {}

    def add(self, generation: Generation) -> None:
        """Keep a generation; settle it at once if it is already done."""
        with self._lock:
            self._generations[generation.generation_id] = generation
        self.sweep()

    def add_asset(self, data: bytes, asset_type: str = "RESPONSE") -> str:
        """Register image bytes as an asset; returns its id."""
        asset_id = new_id()
        with self._lock:
            self._assets[asset_id] = (asset_type, data)
        return asset_id

    def asset(self, asset_id: str, asset_type: str) -> bytes:
        """The bytes of an asset, or a 404 Reject ("referenced resource not found")."""
        with self._lock:
            found = self._assets.get(asset_id)
        if found is None or found[0] != asset_type:
            raise Reject(
                404, f"referenced resource not found: {asset_type} asset {asset_id}", reason="not_found"
            )
        return found[1]

    def sweep(self) -> None:
        """Settle every generation whose ready time has passed (give back its capacity)."""
        now = self._clock()
        with self._lock:
            due = [g for g in self._generations.values() if not g.settled and now >= g.ready_at]
            for g in due:
                g.settled = True
        for g in due:
            if g.on_settle is not None:
                g.on_settle(g)

    def poll(self, generation_id: str) -> dict[str, Any]:
        """The GenerationResponse body; 400 for a malformed id, 404 for an unknown one."""
        if not generation_id or not set(generation_id) <= ID_CHARS:
            raise Reject(400, f"malformed generation id {generation_id!r}", reason="invalid")
        self.sweep()
        with self._lock:
            generation = self._generations.get(generation_id)
        if generation is None:
            raise Reject(404, f"no such generation: {generation_id}", reason="not_found")
        return generation.body(self._clock())

    def unfinished(self) -> int:
        """Generations accepted and not yet settled."""
        self.sweep()
        with self._lock:
            return sum(1 for g in self._generations.values() if not g.settled)
