"""An adaptive limit on images in flight (Ideogram counts its limit in images, not requests).

A 429 tells how many images the provider was holding when it refused: the images in
flight, minus the refused request's own and minus those refused just before it that are
still waiting out their Retry-After. That number is the provider's limit, so the limiter
drops to it at once (not to half) and remembers it. It then probes one image above it
after a run of successes; a probe that is refused doubles the wait before the next one,
so a steady limit costs few 429s while a raised one is still found. A provider that
states its limit (v2's `max_inflight_requests`) is believed: that number becomes the ceiling.

Contract with the runner, which calls it under its own lock:
- start(w) before sending a request of w images, finish(w) once it is answered;
- rate_limited(w, max_inflight=..., retry_after=...) when one is refused with a 429,
  while its images are still counted;
- a runner that gives the slot back while waiting out Retry-After calls
  wait_out(w) right after rate_limited, and start(w) again (when can_start(w)) to retry.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

PROBE_MIN = 50  # successes at the remembered level before the first probe above it
PROBE_MAX = 200  # the wait between probes never grows beyond this many successes


@dataclass
class AdaptiveLimit:
    """Images allowed in flight: the provider's observed limit, probed upwards slowly.

    Not thread-safe by itself: the runner calls it under its own lock.
    """

    ceiling: int
    limit: int = 0
    in_flight: int = 0
    streak: int = 0
    cooldown_s: float = 1.0  # how long a refused request waits when no Retry-After is given
    known: int | None = None  # the provider's limit as last observed, None before any 429
    probe_every: int = PROBE_MIN
    last_cut: float = field(default=0.0, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    _user_ceiling: int = field(default=0, repr=False)
    _waiting: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        self._user_ceiling = self.ceiling
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
        """One request succeeded: recover towards the known level, or probe above it slowly."""
        self.streak += 1
        if self.limit >= self.ceiling:
            return
        if self.known is None or self.limit < self.known:
            if self.streak >= self.limit:  # below the provider's known limit: climb back quickly
                self.limit, self.streak = self.limit + 1, 0
            return
        if self.streak >= self.probe_every:
            if self.limit > self.known:  # the last probe held for a whole period: a new level
                self.known, self.probe_every = self.limit, PROBE_MIN
            self.limit, self.streak = self.limit + 1, 0

    def rate_limited(
        self, weight: int = 1, max_inflight: int | None = None, retry_after: float | None = None
    ) -> None:
        """A request of `weight` images (still counted in flight) was refused with a 429."""
        now = self.clock()
        while self._waiting and self._waiting[0][0] <= now:
            self._waiting.popleft()
        held_back = sum(w for _, w in self._waiting)
        if max_inflight is not None and max_inflight >= 1:
            self.ceiling = min(self._user_ceiling, max_inflight)
            level = self.ceiling
        else:
            level = min(self.limit, self.in_flight - weight - held_back)
            if self.known is not None and level >= self.known and self.limit > self.known:
                self.probe_every = min(PROBE_MAX, self.probe_every * 2)  # a failed probe
        self.limit = max(1, min(level, self.ceiling))
        self.known = self.limit
        self.streak = 0
        self.last_cut = now
        wait = retry_after if retry_after is not None else self.cooldown_s
        self._waiting.append((now + wait, weight))

    def wait_out(self, weight: int) -> None:
        """A refused request gives its slot back while it waits out Retry-After."""
        self.finish(weight)
        for i, (_expires, w) in enumerate(self._waiting):
            if w == weight:
                del self._waiting[i]
                break
