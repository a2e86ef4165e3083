"""The emulated account: answers API, download and control requests, independent of HTTP.

An API request goes through the same gates as on the real service, in this order:
route (404), key (401), injected or random fault, body and schema (400 / 413), rules
beyond the schema (400), safety (422), credit (402), in-flight images (429), then it
runs, is billed and answers 200. Nothing rejected before it runs is billed; a request
hit by "accept_drop" runs and is billed, then its connection is dropped unanswered.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from . import bodies, render, routes, rules
from .capacity import Capacity, scheduled_limit
from .config import RUNTIME_KNOBS, EmulatorConfig
from .faults import Faults
from .ledger import Entry, Ledger
from .reject import Reject
from .store import FileStore, Gone

log = logging.getLogger(__name__)

FILE_PATH = re.compile(r"^/files/([A-Za-z0-9_-]+)\.png$")
FETCH_TIMEOUT = 10.0

_FORCED = {
    "429": (429, "rate_limited", {"Retry-After": "1"}),
    "500": (500, "internal_server_error", {}),
    "503": (503, "service_unavailable", {"Retry-After": "1"}),
    "401": (401, "unauthorized: invalid API key", {}),
    "402": (402, "payment_required: insufficient credit", {}),
    "422": (422, "prompt rejected by the safety check", {}),
}


@dataclass(frozen=True)
class Answer:
    """What to send back: a JSON answer, or nothing at all (drop the connection)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass(frozen=True)
class Download:
    """What to send for a /files request: PNG bytes (maybe spoiled by a fault) or an error."""

    status: int
    data: bytes = b""
    error: str = ""
    fault: str | None = None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Service:
    """State and behaviour of one emulated Ideogram account, shared by all HTTP threads."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.root_url = ""
        self.ledger = Ledger()
        self.store = FileStore()
        self.capacity = Capacity()
        seed = config.rng_seed
        self._rng = random.Random(None if seed is None else f"{seed}:seeds")
        self._rng_lock = threading.Lock()
        self.faults = Faults(random.Random(None if seed is None else f"{seed}:faults"))
        self.revoked = False
        self._first_request: float | None = None

    # ---- settings -------------------------------------------------------------------

    def configure(self, **knobs: Any) -> None:
        """Change runtime knobs (latency_ms, fault_rate, faults, url_ttl, max_in_flight)."""
        self.config = self.config.with_knobs(**knobs)

    def state(self) -> dict[str, Any]:
        """Settings and account state, as GET /_control shows them."""
        return {
            "config": self.config.knobs(),
            "revoked": self.revoked,
            "credit": self.capacity.credit,
            "in_flight": self.capacity.in_flight,
            "max_in_flight_now": self.limit_now(),
            "pending_faults": self.faults.pending(),
        }

    def control(self, body: bytes) -> Answer:
        """Apply a POST /_control body: knobs, plus optional inject, revoke and credit."""
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            unknown = set(data) - set(RUNTIME_KNOBS) - {"inject", "revoke", "credit"}
            if unknown:
                raise ValueError(f"unknown controls {sorted(unknown)}")
            knobs = {k: data[k] for k in RUNTIME_KNOBS if k in data}
            new_config = self.config.with_knobs(**knobs)
            inject = data.get("inject", [])
            if not isinstance(inject, list):
                raise ValueError("inject must be a list of fault names")
            credit = data.get("credit")
            if credit is not None and (isinstance(credit, bool) or not isinstance(credit, int)):
                raise ValueError("credit must be an integer or null")
            self.faults.inject(inject)
        except (ValueError, TypeError) as exc:
            return Answer(400, {"error": f"bad control request: {exc}"})
        self.config = new_config
        if "revoke" in data:
            self.revoked = bool(data["revoke"])
        if "credit" in data:
            self.capacity.set_credit(credit)
        return Answer(200, {"ok": True, **self.state()})

    def limit_now(self) -> int:
        """The in-flight image limit in force: max_in_flight, or the schedule's current step."""
        cfg = self.config
        if not cfg.limit_schedule:
            return cfg.max_in_flight
        started = self._first_request
        seconds = 0.0 if started is None else time.monotonic() - started
        return scheduled_limit(cfg.max_in_flight, cfg.limit_schedule, self.ledger.request_count(), seconds)

    def note_request(self) -> None:
        """Start the schedule's clock at the first API request."""
        if self._first_request is None:
            self._first_request = time.monotonic()

    def get(self, path: str, headers: routes.Headers) -> Answer:
        """Answer a GET outside /_ledger, /_control and /files: the v1 flavors serve none."""
        return Answer(404, {"error": f"no such resource: GET {path.split('?', 1)[0]}"})

    # ---- API requests ---------------------------------------------------------------

    def api(self, path: str, headers: routes.Headers, body: bytes) -> Answer:
        """Answer one API request and record it in the ledger."""
        cfg = self.config
        self.note_request()
        flavor = routes.FLAVORS[cfg.flavor]
        name, sha, images = path.split("?", 1)[0], bodies.raw_sha256(path, body), 0
        fault: str | None = None
        try:
            endpoint = routes.match(flavor, path)
            name = endpoint.path
            if self.revoked:
                raise Reject(401, "unauthorized: the API key has been revoked", reason="auth")
            if cfg.require_key:
                routes.check_auth(flavor, headers)
            fault = self.faults.next_api(cfg.fault_rate, cfg.faults)
            if fault in _FORCED:
                status, error, extra = _FORCED[fault]
                raise Reject(status, error, reason=f"fault_{fault}", headers=extra)
            if fault == "drop":
                self.ledger.record(Entry(name, sha, images, False, "drop"))
                return Answer(drop=True)
            req = bodies.parse(endpoint, flavor, headers.get("Content-Type") or "", body, self._fetch)
            sha, images = req.sha256(), req.num_images
            decoded = rules.decode_images(req)
            rules.check(req, decoded)
            if render.is_rejected(req):
                raise Reject(422, "prompt rejected by the safety check", reason="safety")
            answer = self._run(req, decoded, cfg)
        except Reject as r:
            self.ledger.record(Entry(name, sha, images, False, r.reason))
            return Answer(r.status, r.body(), r.headers)
        except Exception:
            log.exception("emulator failed on %s", path)
            self.ledger.record(Entry(name, sha, images, False, "emulator_error"))
            return Answer(500, {"error": "emulator_error"})
        dropped = fault == "accept_drop"
        self.ledger.record(Entry(name, sha, images, True, "accept_drop" if dropped else "ok"))
        return Answer(drop=True) if dropped else answer

    def _run(self, req: bodies.ApiRequest, decoded: rules.Images, cfg: EmulatorConfig) -> Answer:
        images, billed = req.num_images, False
        self.capacity.admit(images, self.limit_now())
        try:
            if cfg.latency_ms > 0:
                time.sleep(cfg.latency_ms / 1000.0)
            if req.endpoint.op == "describe":
                body = render.describe_body(decoded)
            else:
                with self._rng_lock:
                    rng = random.Random(self._rng.getrandbits(64))
                results = render.run(req, decoded, rng, cfg.image_scale, cfg.realistic)
                urls = [self.file_url(self.store.add(r.png, cfg.url_ttl)) if r.png else None for r in results]
                body = render.response_body(req, results, urls)
            billed = True
        finally:
            self.capacity.release(images, billed)
        return Answer(200, body)

    def file_url(self, token: str) -> str:
        """The download URL of a stored file."""
        return f"{self.root_url}/files/{token}.png"

    def _fetch(self, url: str) -> bytes:
        """Bytes behind an image URL: our own files from memory, other loopback URLs by GET."""
        parts = urlsplit(url)
        if not _is_loopback(parts.hostname):
            raise Reject(400, f"refusing to fetch {url}: only loopback URLs are fetched", reason="invalid")
        own = urlsplit(self.root_url)
        found = FILE_PATH.match(parts.path)
        if found and parts.port == own.port:
            try:
                data = self.store.get(found.group(1), self.config.url_ttl)
            except Gone as exc:
                raise Reject(400, f"image URL has expired: {url}", reason="invalid") from exc
            if data is None:
                raise Reject(400, f"no such image: {url}", reason="invalid")
            return data
        try:
            response = requests.get(url, timeout=FETCH_TIMEOUT)
        except requests.RequestException as exc:
            raise Reject(400, f"could not fetch {url}: {exc}", reason="invalid") from exc
        with response:
            if response.status_code != 200:
                raise Reject(400, f"could not fetch {url}: HTTP {response.status_code}", reason="invalid")
            return response.content

    # ---- downloads ------------------------------------------------------------------

    def download(self, path: str) -> Download:
        """The answer to GET /files/<token>.png, with any download fault to apply."""
        found = FILE_PATH.match(path.split("?", 1)[0])
        if not found:
            return Download(404, error="no such file")
        cfg = self.config
        fault = self.faults.next_download(cfg.fault_rate, cfg.faults)
        if fault == "expire":
            return Download(410, error="url expired")
        try:
            data = self.store.get(found.group(1), cfg.url_ttl)
        except Gone:
            return Download(410, error="url expired")
        if data is None:
            return Download(404, error="no such file")
        return Download(200, data, fault=fault)
