"""Admission: the account's in-flight image limit and its remaining credit."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .config import Step
from .reject import Reject


def scheduled_limit(base: int, schedule: Iterable[Step], requests: int, seconds: float) -> int:
    """The in-flight limit now: the last schedule step already reached, else `base`."""
    limit = base
    for unit, at, value in schedule:
        if (requests if unit == "requests" else seconds) >= at:
            limit = value
    return limit


class Capacity:
    """Counts images in flight and credit left; admits a request or rejects it unbilled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._credit: int | None = None

    def set_credit(self, images: int | None) -> None:
        """Images the account may still be billed for; None means unlimited."""
        with self._lock:
            self._credit = None if images is None else int(images)

    @property
    def credit(self) -> int | None:
        """Images left on the account (None: unlimited)."""
        with self._lock:
            return self._credit

    @property
    def in_flight(self) -> int:
        """Images being processed right now."""
        with self._lock:
            return self._in_flight

    def admit(self, images: int, limit: int) -> None:
        """Take `images` places and reserve their credit, or raise a 402 / 429 Reject."""
        with self._lock:
            if self._credit is not None and images > self._credit:
                raise Reject(
                    402,
                    f"insufficient credit: {images} images asked, {self._credit} left",
                    reason="credit",
                )
            if self._in_flight + images > limit:
                raise Reject(429, "inflight_limit", reason="inflight_limit", headers={"Retry-After": "1"})
            self._in_flight += images
            if self._credit is not None:
                self._credit -= images

    def release(self, images: int, billed: bool) -> None:
        """Free the places; give the reserved credit back when nothing was billed."""
        with self._lock:
            self._in_flight -= images
            if not billed and self._credit is not None:
                self._credit += images
