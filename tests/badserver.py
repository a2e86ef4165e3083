"""A scriptable misbehaving HTTP server on 127.0.0.1: each test decides how it goes wrong.

    with BadServer() as bad:
        bad.script("/v1/ideogram-v3/generate", Reply(307, headers={"Location": "http://x/"}))
        ... point the client at bad.base_url ...
        assert bad.seen[0].headers.get("Api-Key") is None

A path's replies are used in order; the last one repeats. A reply can lie about its
length, compress its body, trickle it a byte at a time, or drop the connection.
"""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes | str | Any = b""  # bytes as is, str as UTF-8, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None  # "gzip", "deflate" (zlib) or "deflate-raw"
    length: int | None = None  # a Content-Length to claim instead of the true one
    trickle: float = 0.0  # seconds between body bytes
    trickle_headers: float = 0.0  # seconds between bytes of the status line and headers
    drop: bool = False  # read the request, then close without answering
    hook: Callable[[], None] | None = None  # runs after the request is read, before answering

    def payload(self) -> bytes:
        """The body as sent on the wire (encoded when asked)."""
        if isinstance(self.body, bytes):
            raw = self.body
        elif isinstance(self.body, str):
            raw = self.body.encode()
        else:
            raw = json.dumps(self.body).encode()
        if self.encoding == "gzip":
            return gzip.compress(raw)
        if self.encoding == "deflate":
            return zlib.compress(raw)
        if self.encoding == "deflate-raw":
            c = zlib.compressobj(wbits=-15)
            return c.compress(raw) + c.flush()
        return raw


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class BadServer:
    """A threading HTTP server on 127.0.0.1 that answers from a per-path script."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        if tls is not None:  # HTTPS: the handshake happens in the handler thread
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """A URL of this server, optionally under another host name or address."""
        return f"http://{host}:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> BadServer:
        """Answer `path` with these replies in turn (the last one repeats)."""
        with self._lock:
            self._scripts[path] = list(replies)
        return self

    def next_reply(self, path: str) -> Reply:
        """The reply due for `path` (404 when unscripted)."""
        with self._lock:
            replies = self._scripts.get(path.split("?")[0])
            if not replies:
                return Reply(404, {"error": "not scripted"})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def __enter__(self) -> BadServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(bad: BadServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            bad.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            reply = bad.next_reply(self.path)
            if reply.hook:
                reply.hook()
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            payload = reply.payload()
            lines = [f"HTTP/1.1 {reply.status} X"]
            headers = {
                "Content-Length": str(len(payload) if reply.length is None else reply.length),
                **reply.headers,
            }
            if reply.encoding:
                headers["Content-Encoding"] = (
                    "deflate" if reply.encoding.startswith("deflate") else reply.encoding
                )
            lines += [f"{k}: {v}" for k, v in headers.items()]
            head = ("\r\n".join(lines) + "\r\n\r\n").encode()
            try:
                self._send(head, reply.trickle_headers)
                self._send(payload, reply.trickle)
                self.wfile.flush()
            except OSError:
                self.close_connection = True
            if reply.length is not None and reply.length != len(payload):
                self.close_connection = True

        def _send(self, data: bytes, trickle: float) -> None:
            if not trickle:
                self.wfile.write(data)
                return
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(trickle)

        def log_message(self, *args: object) -> None:
            pass

    return Handler
