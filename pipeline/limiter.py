"""An adaptive limit on images in flight (Ideogram counts its limit in images, not requests)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class AdaptiveLimit:
    """Additive increase, multiplicative decrease: halve on a 429, +1 after a run of successes.

    Not thread-safe by itself: the runner calls it under its own lock.
    """

    ceiling: int
    limit: int = 0
    in_flight: int = 0
    streak: int = 0
    cooldown_s: float = 1.0
    last_cut: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.limit = self.limit or self.ceiling

    def can_start(self, weight: int) -> bool:
        """True if a request for `weight` images fits now (a lone oversized one always fits)."""
        return self.in_flight + weight <= self.limit or self.in_flight == 0

    def start(self, weight: int) -> None:
        """Count a request's images as in flight."""
        self.in_flight += weight

    def finish(self, weight: int) -> None:
        """A request's images have left flight."""
        self.in_flight = max(0, self.in_flight - weight)

    def success(self) -> None:
        """One request succeeded; after `limit` in a row, allow one image more."""
        self.streak += 1
        if self.streak >= self.limit and self.limit < self.ceiling:
            self.limit += 1
            self.streak = 0

    def rate_limited(self) -> None:
        """A 429: halve, at most once per cooldown so a burst of 429s counts once."""
        now = time.monotonic()
        self.streak = 0
        if now - self.last_cut >= self.cooldown_s:
            self.limit = max(1, self.limit // 2)
            self.last_cut = now
