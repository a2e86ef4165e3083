"""Deadline-bound HTTP connections: a whole exchange ends by its deadline, however slow the peer.

A read timeout only bounds the wait for the next byte, so a server that trickles one byte
at a time can hold a request forever. Here every connection opened or used inside a
`bounded(deadline)` block is watched by one reaper thread, which shuts the socket down
when the deadline passes; the blocked read then fails at once, whatever phase it is in
(connect, TLS, headers or body). The API client and the guarded fetch both use this.
"""

from __future__ import annotations

import heapq
import itertools
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import InputError

MAX_SECONDS = 86_400.0  # no timeout may be longer than a day


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect, between bytes read, and in all for one exchange with its retries."""

    connect: float = 10.0
    read: float = 180.0
    total: float = 600.0

    def __post_init__(self) -> None:
        problems = check_timeouts({"connect": self.connect, "read": self.read, "total": self.total})
        if problems:
            raise InputError("; ".join(problems))


def check_timeouts(values: Any, where: str = "timeouts") -> list[str]:
    """Why timeout values are unusable (non-numbers, non-finite, not positive, over a day)."""
    if not isinstance(values, dict):
        return [f"{where}: must be a mapping of connect/read/total seconds"]
    problems = []
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where}.{name}: {value!r} is not a number of seconds")
        elif not math.isfinite(value) or value <= 0 or value > MAX_SECONDS:
            problems.append(
                f"{where}.{name}: {value!r} must be above 0 and at most {MAX_SECONDS:.0f} seconds (a day)"
            )
    return problems


class Deadline:
    """The moment by which a whole exchange (all attempts, headers and bodies) must end."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g}s, {self.left():.3f}s left)"

    def left(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.end

    def cap(self, seconds: float) -> float:
        """`seconds`, shortened to what is left (at least a millisecond, for socket APIs)."""
        return max(0.001, min(seconds, self.left()))


class TimeUp(TimeoutError):
    """The deadline passed before the exchange ended."""


class BodyTooLarge(ValueError):
    """A body grew past its limit (counted after decoding gzip/deflate)."""


class BodyBroken(OSError):
    """The connection broke while the body was being read."""


@dataclass(eq=False)
class _Scope:
    deadline: Deadline
    sockets: list[socket.socket] = field(default_factory=list)
    done: bool = False
    fired: bool = False


class _Reaper:
    """One daemon thread that shuts down the sockets of scopes whose deadline has passed."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, _Scope]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, scope: _Scope, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._cv:
            if scope.fired:
                _shutdown(sock)
                return
            first = not scope.sockets
            scope.sockets.append(sock)
            if first:
                heapq.heappush(self._heap, (scope.deadline.end, next(self._seq), scope))
                self._cv.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ideopipe-deadlines", daemon=True)
                self._thread.start()

    def forget(self, scope: _Scope) -> None:
        with self._cv:
            scope.done = True
            scope.sockets.clear()

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cv.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                _, _, scope = heapq.heappop(self._heap)
                scope.fired = True
                for sock in scope.sockets:
                    _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


_REAPER = _Reaper()
_current = threading.local()


@contextmanager
def bounded(deadline: Deadline) -> Iterator[_Scope]:
    """Every connection this thread opens or reuses inside the block dies at `deadline`.

    The scope's `fired` is true once a socket was cut: what was read may be incomplete.
    """
    scope = _Scope(deadline)
    outer = getattr(_current, "scope", None)
    _current.scope = scope
    try:
        yield scope
    finally:
        _current.scope = outer
        _REAPER.forget(scope)


def _watch(sock: socket.socket | None) -> None:
    scope = getattr(_current, "scope", None)
    if scope is not None:
        _REAPER.watch(scope, sock)


class _Watched:
    """A connection whose socket the current deadline can cut (mixed into urllib3's classes)."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        """Watch the (possibly reused) socket, then send."""
        _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    """An HTTP connection whose socket the current deadline can cut."""


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    """An HTTPS connection whose socket (and TLS handshake) the current deadline can cut."""


class WatchedHTTPPool(HTTPConnectionPool):
    """A pool of deadline-watched HTTP connections."""

    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    """A pool of deadline-watched HTTPS connections."""

    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


def read_body(resp: urllib3.BaseHTTPResponse, deadline: Deadline, limit: int) -> bytes:
    """The whole body, gzip/deflate decoded, refused past `limit` decoded bytes or the deadline."""
    buf = bytearray()
    try:
        for chunk in resp.stream(64 * 1024, decode_content=True):
            buf += chunk
            if len(buf) > limit:
                raise BodyTooLarge(f"the body is over {limit:,} bytes")
            if deadline.expired():
                raise TimeUp(f"the body took longer than {deadline.seconds:g} s")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if isinstance(exc, TimeUp):
            raise
        if deadline.expired():
            raise TimeUp(f"the exchange took longer than {deadline.seconds:g} s") from exc
        raise BodyBroken(f"the body broke off ({type(exc).__name__})") from exc
    return bytes(buf)
