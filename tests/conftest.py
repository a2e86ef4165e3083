"""Shared fixtures: a network guard, a real emulator on a loopback port, recipe files in tmp dirs."""

from __future__ import annotations

import ipaddress
import socket
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.emulator import Emulator

TEST_KEY = "sk-test-SECRET-4f9a1c"


class NetworkBlocked(AssertionError):
    """A test tried to leave 127.0.0.0/8 or to resolve a name other than localhost."""


class NetworkGuard:
    """Records (and refuses) every attempt to reach past loopback; the test fails on any."""

    error = NetworkBlocked

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self._lock = threading.Lock()

    def refuse(self, what: str) -> NetworkBlocked:
        """Record an attempt and the error to raise for it."""
        with self._lock:
            self.blocked.append(what)
        return NetworkBlocked(f"the test tried to {what}")

    def take(self) -> list[str]:
        """The attempts so far, acknowledged (a test that expects a refusal checks them)."""
        with self._lock:
            seen, self.blocked = self.blocked, []
        return seen


def _loopback_or_local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and the like never leave the machine
    try:
        return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
    except ValueError:
        return False


def _literal_or_localhost(host: Any) -> bool:
    if host is None or host in ("", "localhost", b"localhost"):
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(text.split("%")[0])
        return True  # a literal is not a lookup; connect() decides whether it may be reached
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Fail any test that connects outside 127.0.0.0/8 (or ::1) or resolves a real name."""
    guard = NetworkGuard()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _literal_or_localhost(host):
            raise guard.refuse(f"resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> Any:
        if not _loopback_or_local(address):
            sock.close()  # the caller may not expect this error, so it would leak the socket
            raise guard.refuse(f"connect to {address!r}")
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> Any:
        if not _loopback_or_local(address):
            sock.close()  # the caller may not expect this error, so it would leak the socket
            raise guard.refuse(f"connect to {address!r}")
        return real_connect_ex(sock, address)

    def by_name(real: Callable[..., Any]) -> Callable[..., Any]:
        def lookup(host: Any, *args: Any) -> Any:
            if not _literal_or_localhost(host):
                raise guard.refuse(f"resolve {host!r}")
            return real(host, *args)

        return lookup

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", by_name(socket.gethostbyname))
    monkeypatch.setattr(socket, "gethostbyname_ex", by_name(socket.gethostbyname_ex))
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    if guard.blocked:  # even when the code under test swallowed the error
        pytest.fail("network guard: " + "; ".join(guard.blocked), pytrace=False)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator (ideogram flavor) on a free loopback port."""
    with Emulator(rng_seed=7) as em:
        yield em


def write_recipe_file(
    folder: Path, text: str, files: dict[str, str | bytes] | None = None, name: str = "recipe.yaml"
) -> Path:
    """Write a recipe (dedented) and its side files into `folder`; returns its path."""
    for rel, content in (files or {}).items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """write_recipe_file bound to the test's tmp_path."""
    return lambda text, name="recipe.yaml", files=None: write_recipe_file(tmp_path, text, files, name)
