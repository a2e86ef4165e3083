"""Which fault, if any, hits the next request: injected ones first, else the dice."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable

from .config import ALL_FAULTS, API_FAULTS, DOWNLOAD_FAULTS


class Faults:
    """Queues of forced outcomes (API and download) and a seeded die for random ones."""

    def __init__(self, rng: random.Random) -> None:
        self._lock = threading.Lock()
        self._rng = rng
        self._api: deque[str] = deque()
        self._download: deque[str] = deque()

    def inject(self, kinds: Iterable[str]) -> None:
        """Queue forced outcomes, in order; download kinds go to the download queue."""
        kinds = [str(k) for k in kinds]
        unknown = [k for k in kinds if k not in ALL_FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}: expected some of {list(ALL_FAULTS)}")
        with self._lock:
            for kind in kinds:
                (self._download if kind in DOWNLOAD_FAULTS else self._api).append(kind)

    def next_api(self, rate: float, kinds: Iterable[str]) -> str | None:
        """The fault for the next API request, or None."""
        return self._next(self._api, rate, [k for k in kinds if k in API_FAULTS])

    def next_download(self, rate: float, kinds: Iterable[str]) -> str | None:
        """The fault for the next /files download, or None ("expire" only when injected)."""
        return self._next(self._download, rate, [k for k in kinds if k in ("truncate", "slow")])

    def _next(self, queue: deque[str], rate: float, kinds: list[str]) -> str | None:
        with self._lock:
            if queue:
                return queue.popleft()
            if kinds and rate > 0 and self._rng.random() < rate:
                return self._rng.choice(kinds)
        return None

    def pending(self) -> list[str]:
        """Forced outcomes not used yet (API queue, then download queue)."""
        with self._lock:
            return [*self._api, *self._download]
