"""The one HTTP client: typed errors, bounded retries, and no silent double billing.

Ideogram has no idempotency key, so a request is only resent when it certainly did not
run: a 429 (rejected before running, not billed) or a connection that failed before the
request left. A read timeout or a 5xx after sending leaves the outcome unknown; it is
resent only when the user allows it (retry_unknown), otherwise raised as OutcomeUnknown
so that the runner can mark the task in_doubt instead of paying twice.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from . import wire
from .errors import (
    ApiError,
    AuthError,
    BadRequest,
    ConnectFailed,
    OutcomeUnknown,
    PaymentError,
    RateLimited,
    SafetyRejected,
    ServerError,
)
from .ops import Endpoint
from .providers import Provider


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry what is safe to retry."""

    max_attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 20.0
    max_total: float = 300.0
    retry_unknown: bool = False

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Exponential backoff with full jitter, never shorter than Retry-After."""
        jitter = rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** attempt))
        return max(jitter, min(retry_after or 0.0, self.max_delay))


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect, between bytes read, and in all for one call with its retries."""

    connect: float = 10.0
    read: float = 180.0
    total: float = 600.0


@dataclass(frozen=True)
class Reply:
    """A 200 answer: the raw body text, its parsed fields, attempts made.

    `result` is None when the body could not be read (not JSON, or not the expected
    shape); `problem` then says why. The request ran and was billed all the same, so the
    runner records the answer and never sends the request again.
    """

    result: wire.Result | None
    body: Any
    attempts: int
    latency_s: float
    text: str = ""
    problem: str | None = None


def session(pool: int = 32) -> requests.Session:
    """A pooled session; the pool is sized for the concurrency limit."""
    s = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.trust_env = False  # no proxy variables or .netrc credentials slipping into requests
    return s


class Client:
    """Sends planned requests to one provider with one key."""

    def __init__(self, provider: Provider, key: str, *, retry: RetryPolicy | None = None,
                 timeouts: Timeouts | None = None, http: requests.Session | None = None,
                 on_rate_limited: Callable[[float | None], None] | None = None,
                 rng: random.Random | None = None):
        self.provider = provider
        self._key = key
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.http = http or session()
        self.on_rate_limited = on_rate_limited
        self.rng = rng or random.Random()
        self.stop = threading.Event()  # set to give up waiting between retries

    def __repr__(self) -> str:
        return f"Client(provider={self.provider.name!r}, key=***)"

    def redact(self, text: str) -> str:
        """Remove the key from any text that may be shown or stored.

        Keys shorter than 8 characters are not real keys (and replacing them would garble
        ordinary words), so only longer ones are searched for.
        """
        return text.replace(self._key, "***") if len(self._key) >= 8 else text

    def call(self, endpoint: Endpoint, build: Callable[[], wire.WireRequest],
             before_send: Callable[[int], None] | None = None) -> Reply:
        """Send one request, retrying what is safe; the body is rebuilt for every attempt.

        `before_send(attempt)` runs right before each attempt leaves (the runner journals
        the task as `sending` there).
        """
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            req = build()
            if before_send:
                before_send(attempt)
            sent_at = time.monotonic()
            try:
                resp = self._post(req, start)
            except ApiError as exc:
                if not self._again(exc, attempt, start):
                    raise
                self._wait(exc, attempt)
                continue
            try:
                self._raise_for(resp)
            except ApiError as exc:
                if not self._again(exc, attempt, start):
                    raise
                self._wait(exc, attempt)
                continue
            return self._answer(endpoint, resp, attempt, time.monotonic() - sent_at)

    def _answer(self, endpoint: Endpoint, resp: requests.Response, attempts: int,
                latency: float) -> Reply:
        """A 200: keep the raw text always; parse it without ever raising."""
        text = self.redact(_body_text(resp))
        try:
            body = json.loads(text)
        except ValueError as exc:
            return Reply(None, None, attempts, latency, text, f"the answer is not JSON ({exc})")
        try:
            result = wire.parse(endpoint, body)
        except Exception as exc:  # any odd shape: an unusable answer, not a crash
            why = self.redact(f"the answer has an unexpected shape ({type(exc).__name__}: {exc})")
            return Reply(None, body, attempts, latency, text, why[:500])
        return Reply(result, body, attempts, latency, text)

    def _post(self, req: wire.WireRequest, start: float) -> requests.Response:
        left = self.timeouts.total - (time.monotonic() - start)
        timeout = (min(self.timeouts.connect, max(left, 0.1)), min(self.timeouts.read, max(left, 0.1)))
        headers = {**self.provider.auth_headers(self._key), "Accept": "application/json",
                   "User-Agent": "ideopipe"}
        try:
            if req.json is not None:
                return self.http.post(req.url, json=req.json, headers=headers, timeout=timeout)
            # Text fields go as parts too, so the body is multipart even without a file.
            parts = [(name, (None, value)) for name, value in req.fields] + list(req.files)
            return self.http.post(req.url, files=parts, headers=headers, timeout=timeout)
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            raise ConnectFailed(self.redact(f"could not connect: {exc}")) from exc
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise ConnectFailed(self.redact(f"could not connect: {_reason(exc)}")) from exc
            raise OutcomeUnknown(self.redact(f"connection lost after sending: {_reason(exc)}")) \
                from exc
        except requests.Timeout as exc:
            raise OutcomeUnknown(self.redact(f"no answer within {timeout[1]:.0f} s")) from exc
        except requests.RequestException as exc:
            raise OutcomeUnknown(self.redact(f"request failed: {_reason(exc)}")) from exc

    def _raise_for(self, resp: requests.Response) -> None:
        code = resp.status_code
        if code == 200:
            return
        message = self.redact(_provider_message(resp))
        what = f"{self.provider.name} answered {code}: {message}"
        if code == 429:
            raise RateLimited(what, code, message, _retry_after(resp))
        if code in (401, 403):
            raise AuthError(f"{self.provider.name} refused the key ({code}): {message}", code, message)
        if code == 402:
            raise PaymentError(f"{self.provider.name}: out of credit (402): {message}", code, message)
        if code == 422:
            raise SafetyRejected(what, code, message)
        if code >= 500:
            raise ServerError(what, code, message)
        raise BadRequest(what, code, message)

    def _again(self, exc: ApiError, attempt: int, start: float) -> bool:
        if self.stop.is_set() or attempt >= self.retry.max_attempts:
            return False
        if time.monotonic() - start >= min(self.retry.max_total, self.timeouts.total):
            return False
        if isinstance(exc, (ServerError, OutcomeUnknown)):
            return self.retry.retry_unknown
        return exc.retryable

    def _wait(self, exc: ApiError, attempt: int) -> None:
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        if isinstance(exc, RateLimited) and self.on_rate_limited:
            self.on_rate_limited(retry_after)
        self.stop.wait(self.retry.delay(attempt, retry_after, self.rng))


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when urllib3 failed to open the connection, so no byte of the request left."""
    import urllib3.exceptions as u3

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, (u3.NewConnectionError, u3.NameResolutionError, u3.ConnectTimeoutError,
                             ConnectionRefusedError)):
            return True
        nxt = getattr(seen, "reason", None) or (seen.args[0] if seen.args and
                                                isinstance(seen.args[0], BaseException) else None)
        seen = nxt if nxt is not seen else None
    return False


def _body_text(resp: requests.Response) -> str:
    """The body as text, whatever its encoding claims (undecodable bytes replaced)."""
    try:
        return resp.content.decode(resp.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return resp.content.decode("utf-8", errors="replace")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"


def _provider_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300].strip() or resp.reason or ""
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
