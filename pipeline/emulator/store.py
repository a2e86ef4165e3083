"""The emulator's result files: PNG bytes behind expiring /files/<token>.png URLs."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass


@dataclass
class _File:
    data: bytes | None
    created: float


class Gone(Exception):
    """The file existed but its URL has expired."""


class FileStore:
    """Thread-safe token -> PNG map; expired files answer Gone and their bytes are freed."""

    PURGE_EVERY = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self._adds = 0

    def add(self, data: bytes, ttl: float) -> str:
        """Store `data` and return its new token."""
        token = secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            self._files[token] = _File(data, now)
            self._adds += 1
            if self._adds % self.PURGE_EVERY == 0:
                for f in self._files.values():
                    if now - f.created > ttl:
                        f.data = None
        return token

    def get(self, token: str, ttl: float) -> bytes | None:
        """The file's bytes; None if unknown; raises Gone once older than `ttl` seconds."""
        with self._lock:
            f = self._files.get(token)
        if f is None:
            return None
        if f.data is None or time.monotonic() - f.created > ttl:
            raise Gone(token)
        return f.data
