"""The one HTTP client: typed errors, bounded retries, and no silent double billing.

Ideogram has no idempotency key, so a request is only resent when it certainly did not
run: a 429 (rejected before running, not billed) or a connection that failed before the
request left. A read timeout or a 5xx after sending leaves the outcome unknown; it is
resent only when the user allows it (retry_unknown), otherwise raised as OutcomeUnknown
so that the runner can mark the task in_doubt instead of paying twice.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

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
from .providers import ApiKey, Provider, origin
from .scrub import redact_text, redact_tree
from .transport import POOL_CLASSES, BodyBroken, BodyTooLarge, Deadline, Timeouts, TimeUp, bounded
from .transport import read_body as _read_body

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # an API answer is JSON text; far below this
MAX_INT_DIGITS = 4000  # longer integers stay text (Python refuses to convert past 4300)


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
        jitter = rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
        return max(jitter, retry_after or 0.0)


@dataclass(frozen=True)
class Answer:
    """What the server sent back: status, headers, and the body as text with the key redacted."""

    status: int
    headers: Mapping[str, str]
    text: str
    body: Any = None  # the parsed JSON (key redacted in every string)
    problem: str | None = None  # why the text is not JSON, when it is not


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
    """A pooled session whose connections the current deadline can cut; never redirects."""
    s = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.trust_env = False  # no proxy variables or .netrc credentials slipping into requests
    return s


class Client:
    """Sends planned requests to one provider with one key."""

    def __init__(
        self,
        provider: Provider,
        key: ApiKey | str,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        http: requests.Session | None = None,
        on_rate_limited: Callable[[RateLimited], None] | None = None,
        rng: random.Random | None = None,
        allow_http: bool = False,
    ):
        provider.check_transport(allow_http)
        self.provider = provider
        self._key = key if isinstance(key, ApiKey) else ApiKey(key, f"the {provider.name} key")
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.http = http or session()
        self.on_rate_limited = on_rate_limited
        self.rng = rng or random.Random()
        self.stop = threading.Event()  # set to give up waiting between retries

    def __repr__(self) -> str:
        return f"Client(provider={self.provider.name!r}, key=***)"

    def redact(self, text: str) -> str:
        """Remove the key (and any run of 8+ of its characters) from text shown or stored."""
        return self._key.redact(text)

    def call(
        self,
        endpoint: Endpoint,
        build: Callable[[], wire.WireRequest],
        before_send: Callable[[int], None] | None = None,
        deadline: Deadline | None = None,
    ) -> Reply:
        """Send one request, retrying what is safe; the body is rebuilt for every attempt.

        `before_send(attempt)` runs right before each attempt leaves (the runner journals
        the task as `sending` there). `timeouts.total` bounds every attempt, body and wait;
        a caller's `deadline` (the task's, shared with its downloads) replaces it.
        """
        deadline = deadline or Deadline(self.timeouts.total)
        attempt = 0
        while True:
            attempt += 1
            req = build()
            if before_send:
                before_send(attempt)
            sent_at = time.monotonic()
            try:
                resp = self._post(req, deadline)
            except ApiError as exc:
                self._backoff(exc, attempt, deadline)
                continue
            try:
                self._raise_for(resp)
            except ApiError as exc:
                self._backoff(exc, attempt, deadline)
                continue
            latency = time.monotonic() - sent_at
            try:
                return self._answer(endpoint, resp, attempt, latency)
            except Exception as exc:  # a 200 ran and was billed: never a resend, whatever broke
                why = f"the answer could not be read ({type(exc).__name__})"
                return Reply(None, None, attempt, latency, resp.text, why)

    def _answer(self, endpoint: Endpoint, resp: Answer, attempts: int, latency: float) -> Reply:
        """A 200: keep the raw text (key redacted) always; parse it without ever raising."""
        if resp.problem:
            return Reply(None, None, attempts, latency, resp.text, resp.problem)
        try:
            result = wire.parse(endpoint, resp.body)
        except Exception as exc:  # any odd shape: an unusable answer, not a crash
            why = self.redact(f"the answer has an unexpected shape ({type(exc).__name__}: {exc})")
            return Reply(None, resp.body, attempts, latency, resp.text, why[:500])
        return Reply(result, resp.body, attempts, latency, resp.text)

    def _post(self, req: wire.WireRequest, deadline: Deadline) -> Answer:
        if origin(req.url) != self.provider.origin():
            host = urlsplit(req.url).hostname
            raise BadRequest(
                self.redact(
                    f"refused to send the key to {host}: requests go only to {self.provider.origin()[1]}"
                )
            )
        timeout = (deadline.cap(self.timeouts.connect), deadline.cap(self.timeouts.read))
        headers = {
            **self.provider.auth_headers(self._key),
            "Accept": "application/json",
            "User-Agent": "ideopipe",
        }
        if req.json is not None:
            kwargs: dict[str, Any] = {"json": req.json}
        else:  # text fields go as parts too, so the body is multipart even without a file
            kwargs = {"files": [(name, (None, value)) for name, value in req.fields] + list(req.files)}
        try:
            with bounded(deadline) as scope:
                resp = self.http.post(
                    req.url, headers=headers, timeout=timeout, stream=True, allow_redirects=False, **kwargs
                )
                data = _whole_body(resp, deadline)
            if scope.fired:  # a socket was cut at the deadline: the answer may be partial
                raise TimeUp("cut at the deadline")
        except BodyTooLarge as exc:
            raise OutcomeUnknown(f"the answer is over {MAX_ANSWER_BYTES:,} bytes") from exc
        except (TimeUp, BodyBroken) as exc:
            raise OutcomeUnknown(self._lost(exc, deadline)) from exc
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            raise ConnectFailed(self.redact(f"could not connect: {_reason(exc)}")) from exc
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise ConnectFailed(self.redact(f"could not connect: {_reason(exc)}")) from exc
            raise OutcomeUnknown(self._lost(exc, deadline)) from exc
        except requests.Timeout as exc:
            raise OutcomeUnknown(self.redact(f"no answer within {timeout[1]:.0f} s")) from exc
        except (requests.RequestException, ValueError) as exc:
            raise OutcomeUnknown(self.redact(f"request failed: {_reason(exc)}")) from exc
        return self._read(resp.status_code, resp.headers, data, resp.encoding)

    def _lost(self, exc: BaseException, deadline: Deadline) -> str:
        if deadline.expired():
            return f"no whole answer within {deadline.seconds:g} s (timeouts.total)"
        return self.redact(f"connection lost after sending: {_reason(exc)}")

    def _read(self, code: int, headers: Mapping[str, str], data: bytes, encoding: str | None) -> Answer:
        """The answer as kept: text and parsed body with the key redacted; never raises.

        The text is redacted as written and inside every JSON string once decoded, so a
        key the server sent as \\u escapes is not kept either.
        """
        text = ""
        try:
            text = _body_text(data, encoding)
            body, problem = self._parse(text)
            return Answer(code, headers, redact_text(text, self.redact), body, problem)
        except Exception as exc:  # whatever the body holds, the status still counts
            why = f"the answer could not be read ({type(exc).__name__})"
            try:
                kept = self.redact(text)
            except Exception:
                kept = ""
            return Answer(code, headers, kept, None, why)

    def _parse(self, text: str) -> tuple[Any, str | None]:
        """(the JSON body with the key redacted in every string, None), or (None, why not)."""
        try:
            body = json.loads(text, parse_int=_int_or_text)
        except (ValueError, RecursionError) as exc:
            return None, self.redact(f"the answer is not JSON ({type(exc).__name__}: {exc})")[:300]
        return redact_tree(body, self.redact), None

    def _raise_for(self, resp: Answer) -> None:
        exc = error_for(self.provider.name, resp, self.redact)
        if exc is not None:
            raise exc

    def _backoff(self, exc: ApiError, attempt: int, deadline: Deadline) -> None:
        """Wait before the next attempt, or re-raise `exc` when it must not or cannot be retried.

        The wait honours Retry-After; when that is longer than what is left of
        timeouts.total, the call gives up now rather than sleep into the deadline.
        """
        if self.stop.is_set() or attempt >= self.retry.max_attempts:
            raise exc
        if deadline.seconds - deadline.left() >= self.retry.max_total or deadline.expired():
            raise exc
        if isinstance(exc, (ServerError, OutcomeUnknown)) and not self.retry.retry_unknown:
            raise exc
        if not isinstance(exc, (ServerError, OutcomeUnknown)) and not exc.retryable:
            raise exc
        wait_for = exc.retry_after if isinstance(exc, RateLimited) else None
        if isinstance(exc, RateLimited) and self.on_rate_limited:
            self.on_rate_limited(exc)  # the runner gives the request's slots back while it waits
        delay = self.retry.delay(attempt, wait_for, self.rng)
        if delay >= deadline.left():
            raise exc
        self.stop.wait(delay)


def error_for(provider: str, resp: Answer, redact: Callable[[str], str]) -> ApiError | None:
    """The typed error an answer stands for (None for a 200); redirects are never followed."""
    code = resp.status
    if code == 200:
        return None
    if 300 <= code < 400:
        where = urlsplit(resp.headers.get("Location", "")).hostname or "no Location given"
        return BadRequest(
            redact(
                f"{provider} answered {code}, a redirect to {where}; API requests never follow "
                "redirects (check the base URL)"
            ),
            code,
        )
    message = _provider_message(resp)
    what = f"{provider} answered {code}: {message}"
    if code == 429:
        after = retry_after(resp.headers.get("Retry-After"))
        return RateLimited(what, code, message, after, _max_inflight(resp.body))
    if code in (401, 403):
        return AuthError(f"{provider} refused the key ({code}): {message}", code, message)
    if code == 402:
        return PaymentError(f"{provider}: out of credit (402): {message}", code, message)
    if code == 422:
        return SafetyRejected(what, code, message)
    if code >= 500:
        return ServerError(what, code, message)
    return BadRequest(what, code, message)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds == float("inf"):
        return None
    return max(0.0, seconds)


def _whole_body(resp: requests.Response, deadline: Deadline) -> bytes:
    """Read the body within the deadline; keep the connection only when it was read whole."""
    whole = False
    try:
        data = _read_body(resp.raw, deadline, MAX_ANSWER_BYTES)
        whole = True
        return data
    finally:
        if whole:
            resp.raw.release_conn()
        else:
            resp.close()


def _max_inflight(body: Any) -> int | None:
    """The limit a 429 body states (v2's `max_inflight_requests`), when it is a sane integer."""
    value = body.get("max_inflight_requests") if isinstance(body, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _int_or_text(digits: str) -> int | str:
    return int(digits) if len(digits.lstrip("-")) <= MAX_INT_DIGITS else digits


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when urllib3 failed to open the connection, so no byte of the request left."""
    import urllib3.exceptions as u3

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(
            seen,
            (u3.NewConnectionError, u3.NameResolutionError, u3.ConnectTimeoutError, ConnectionRefusedError),
        ):
            return True
        nxt = getattr(seen, "reason", None) or (
            seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        )
        seen = nxt if nxt is not seen else None
    return False


def _body_text(data: bytes, encoding: str | None) -> str:
    """The body as text, whatever its encoding claims (undecodable bytes replaced)."""
    try:
        return data.decode(encoding or "utf-8", errors="replace")
    except (LookupError, ValueError):  # a charset Python does not know, or an odd codec
        return data.decode("utf-8", errors="replace")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"


def _provider_message(resp: Answer) -> str:
    """The provider's own words (already redacted), cut to 300 characters."""
    body = resp.body
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if body.get(key):
                return str(body[key])[:300]
    if body is not None:
        return str(body)[:300]
    return resp.text[:300].strip()
