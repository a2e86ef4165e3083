"""The emulator's account book: every API request, what it cost and how it ended."""

from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One API request as the ledger records it."""

    endpoint: str
    request_sha256: str
    images: int
    billed: bool
    outcome: str
    usd_micros: int | None = None  # v2: what the request was billed (or quoted, for a dry run)


class Ledger:
    """Thread-safe counts of requests, billed images and rejections, plus every entry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._billed: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._entries: list[Entry] = []
        self._quotes = 0
        self._failed = 0
        self._usd_micros = 0

    def record(self, entry: Entry) -> None:
        """Add one request: billed ones count images and money, dry runs count as quotes, others by reason."""
        with self._lock:
            self._requests += 1
            self._entries.append(entry)
            if entry.outcome == "dry_run":
                self._quotes += 1
            elif entry.billed:
                self._billed[entry.endpoint] = self._billed.get(entry.endpoint, 0) + entry.images
                self._usd_micros += entry.usd_micros or 0
            elif entry.outcome == "generation_failed":
                self._failed += 1
            elif entry.outcome != "ok":
                self._rejected[entry.outcome] = self._rejected.get(entry.outcome, 0) + 1

    def request_count(self) -> int:
        """API requests recorded so far."""
        with self._lock:
            return self._requests

    def snapshot(self) -> dict[str, Any]:
        """The ledger as JSON-ready data (the body of GET /_ledger)."""
        with self._lock:
            return {
                "requests": self._requests,
                "billed_images": copy.copy(self._billed),
                "billed_total": sum(self._billed.values()),
                "rejected": copy.copy(self._rejected),
                "quotes": self._quotes,
                "failed_generations": self._failed,
                "billed_usd_micros": self._usd_micros,
                "entries": [{k: v for k, v in asdict(e).items() if v is not None} for e in self._entries],
            }
