"""The emulator's HTTP side: a threaded keep-alive server and the Emulator that runs it."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .config import EmulatorConfig
from .routes import FLAVORS
from .service import Answer, Service
from .service_v2 import V2Service

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
SLOW_SECONDS = 1.0
SLOW_STEPS = 10


class _Handler(BaseHTTPRequestHandler):
    """One connection: keep-alive HTTP/1.1, every answer with a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "ideopipe-emulator/1"
    disable_nagle_algorithm = True
    timeout = 120  # seconds an idle keep-alive connection stays open
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the ledger is the record."""

    def handle(self) -> None:
        """Serve the connection; a client that goes away is not an error."""
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        service = self.server.service
        if path == "/_ledger":
            self._json(Answer(200, service.ledger.snapshot()))
        elif path == "/_control":
            self._json(Answer(200, service.state()))
        elif path.startswith("/files/"):
            self._download(path)
        else:
            self._json(service.get(self.path, self.headers))

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        service = self.server.service
        if self.path.split("?", 1)[0] == "/_control":
            answer = service.control(body)
        else:
            answer = service.api(self.path, self.headers, body)
        if answer.drop:
            self._drop()
        else:
            self._json(answer)

    def _read_body(self) -> bytes | None:
        """The whole request body (so the connection stays usable), or None if refused."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._refuse(400, "bad Content-Length")
            return None
        if length > MAX_BODY_BYTES:
            self._refuse(413, f"body over {MAX_BODY_BYTES} bytes")
            return None
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            self.close_connection = True
        return body

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)
            except ValueError:
                self._refuse(400, "bad chunked encoding")
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self._refuse(413, f"body over {MAX_BODY_BYTES} bytes")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _refuse(self, status: int, error: str) -> None:
        self._json(Answer(status, {"error": error}, {"Connection": "close"}))
        self.close_connection = True

    def _json(self, answer: Answer) -> None:
        data = json.dumps(answer.body).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the connection without a word, as a crashed proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _download(self, path: str) -> None:
        result = self.server.service.download(path)
        if result.status != 200:
            self._json(Answer(result.status, {"error": result.error}))
            return
        data = result.data
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if result.fault == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self._drop()
        elif result.fault == "slow":
            step = -(-len(data) // SLOW_STEPS)
            for start in range(0, len(data), step):
                time.sleep(SLOW_SECONDS / SLOW_STEPS)
                self.wfile.write(data[start : start + step])
        else:
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    """Thread per connection; tracks connections so stop() can close and join them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], service: Service):
        self.service = service
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve,
            args=(request, client_address),
            name="emulator-connection",
            daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._lock:
                self._connections.pop(request, None)
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections that break mid-answer are expected under fault injection."""
        log.debug("connection from %s failed", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        """Shut every open connection and wait for its thread."""
        with self._lock:
            open_now = list(self._connections.items())
        for sock, _ in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in open_now:
            thread.join(timeout)


class Emulator:
    """An Ideogram-compatible HTTP server on loopback, for tests, demos and benchmarks."""

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any):
        config = config or EmulatorConfig()
        if overrides:
            config = replace(config, **overrides)
        self._service = (V2Service if config.flavor == "ideogram-v2" else Service)(config)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> EmulatorConfig:
        """The settings in force now."""
        return self._service.config

    def _bind(self) -> _Server:
        with self._lock:
            if self._server is not None:
                raise RuntimeError("emulator already started")
            cfg = self.config
            self._server = _Server((cfg.host, cfg.port), self._service)
            self._service.root_url = self.root_url
            return self._server

    def start(self) -> Emulator:
        """Listen and serve in a background thread; returns self."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Listen and serve in this thread until stop() or Ctrl-C."""
        server = self._bind()
        self._thread = threading.current_thread()
        try:
            server.serve_forever(poll_interval=0.25)
        finally:
            self._close(server)

    def stop(self) -> None:
        """Stop serving, close every connection and the socket, join the threads."""
        with self._lock:
            server, thread = self._server, self._thread
        if server is None:
            return
        if thread is not None:
            server.shutdown()
            if thread is not threading.current_thread():
                thread.join()
        self._close(server)

    def _close(self, server: _Server) -> None:
        with self._lock:
            if self._server is not server:
                return
            self._server, self._thread = None, None
        server.close_connections(timeout=5.0)
        server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._server is None:
            raise RuntimeError("emulator not started: call start() first")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """http://HOST:PORT, where the control endpoints and /files live."""
        host = self.config.host
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Where the API lives: root_url plus the flavor's prefix ("/ideogram" for proxies)."""
        return self.root_url + FLAVORS[self.config.flavor].prefix

    def ledger(self) -> dict[str, Any]:
        """Requests, billed images and rejections so far (same as GET /_ledger)."""
        return self._service.ledger.snapshot()

    def configure(self, **knobs: Any) -> None:
        """Change latency_ms, fault_rate, faults, url_ttl or max_in_flight while running."""
        self._service.configure(**knobs)

    def inject(self, *faults: str) -> None:
        """Force the outcomes of the next API requests (or /files downloads), in order."""
        self._service.faults.inject(faults)

    def revoke_keys(self, revoked: bool = True) -> None:
        """While revoked, every API request answers 401."""
        self._service.revoked = revoked

    def set_credit(self, images: int | None) -> None:
        """Images the account can still be billed for; None means unlimited."""
        self._service.capacity.set_credit(images)
