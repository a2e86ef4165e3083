"""The emulated account behind Ideogram's v2 API (flavor "ideogram-v2"), independent of HTTP.

A POST goes through: route (404), key (401), query and body against the v2 document
(400 / 413), asset references (404), prose rules (400); a dry run stops there and answers
a PriceQuote, billing nothing. Otherwise: forced or random fault, safety (422), daily
limit and credit (402), in-flight images (429), both with GenerationErrorResponse bodies;
then the generation runs. A synchronous one answers its images; an async one answers its
generation_id at once and holds its in-flight images until it finishes, so accepted,
unfinished generations count against the limit. GET /v2/generations/{id} polls.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from typing import Any

from . import quotes, rules, v2bodies, v2render, v2routes, v2rules
from .bodies import raw_sha256
from .config import EmulatorConfig
from .generations import Generation, Generations, new_id
from .ledger import Entry
from .reject import Reject
from .render import REJECT_MARK, now_iso
from .routes import Headers
from .service import _FORCED, Answer, Service
from .v2account import account

log = logging.getLogger(__name__)

FAILURE_REASON = "content_policy_violation"


def check_auth(headers: Headers) -> None:
    """A 401 Reject unless the request carries an Api-Key (or a Bearer token)."""
    scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
    if (headers.get("Api-Key") or "").strip() or (scheme.lower() == "bearer" and token.strip()):
        return
    raise Reject(401, "unauthorized: send an 'Api-Key: <key>' header", reason="auth")


def generation_error(status: int, reason: str, message: str, **extra: Any) -> Reject:
    """A 402 / 429 Reject whose body is a GenerationErrorResponse."""
    headers = {"Retry-After": "1"} if status == 429 else {}
    return Reject(
        status,
        message,
        reason=reason,
        headers=headers,
        payload={"error": message, "reject_reason": reason, **extra},
    )


class V2Service(Service):
    """One emulated Ideogram account speaking v2: quotes, sync and async generations, assets."""

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(config)
        self.generations = Generations()
        self._day_lock = threading.Lock()
        self._billed_on: dict[str, int] = {}

    def state(self) -> dict[str, Any]:
        """Settings and account state, with unfinished async generations."""
        return {**super().state(), "unfinished_generations": self.generations.unfinished()}

    # ---- GET ------------------------------------------------------------------------

    def get(self, path: str, headers: Headers) -> Answer:
        """GET /v2/generations/{id} and the account endpoints."""
        route, _, query = path.partition("?")
        try:
            if self.revoked:
                raise Reject(401, "unauthorized: the API key has been revoked", reason="auth")
            if self.config.require_key:
                check_auth(headers)
            if route.startswith("/v2/generations/"):
                return Answer(200, self.generations.poll(route.removeprefix("/v2/generations/")))
            if route.startswith("/v2/account/"):
                return account(route, query, self.ledger.snapshot()["billed_usd_micros"])
        except Reject as r:
            return Answer(r.status, r.body(), r.headers)
        return super().get(path, headers)

    # ---- POST -----------------------------------------------------------------------

    def api(self, path: str, headers: Headers, body: bytes) -> Answer:
        """Answer one v2 POST and record it in the ledger."""
        self.note_request()
        self.generations.sweep()
        cfg = self.config
        route, _, query = path.partition("?")
        name, sha, images, micros = route, raw_sha256(route, body), 0, None
        fault: str | None = None
        try:
            endpoint = v2routes.match(route)
            if self.revoked:
                raise Reject(401, "unauthorized: the API key has been revoked", reason="auth")
            if cfg.require_key:
                check_auth(headers)
            req = v2bodies.parse(endpoint, headers.get("Content-Type") or "", body, query)
            sha, images = req.sha256(), req.num_images
            files = v2rules.resolve(req, self.generations.asset)
            decoded = rules.decode_files(files)
            v2rules.check(req, decoded)
            quote = quotes.quote(endpoint.product, req.params, v2rules.has_sources(req))
            if req.dry_run:
                self.ledger.record(Entry(name, sha, images, False, "dry_run", quote.usd_micros))
                return Answer(200, quote.body())
            fault = self.faults.next_api(cfg.fault_rate, cfg.faults)
            self._forced(fault)
            if fault == "drop":
                self.ledger.record(Entry(name, sha, images, False, "drop"))
                return Answer(drop=True)
            if REJECT_MARK in str(req.params.get("prompt", "")):
                raise Reject(422, "prompt rejected by the safety check", reason="safety")
            failed = fault == "fail" and req.is_async
            answer = self._generate(req, decoded, files, quote.usd_micros, failed)
            micros = None if failed else quote.usd_micros
        except Reject as r:
            self.ledger.record(Entry(name, sha, images, False, r.reason))
            return Answer(r.status, r.body(), r.headers)
        except Exception:
            log.exception("emulator failed on %s", path)
            self.ledger.record(Entry(name, sha, images, False, "emulator_error"))
            return Answer(500, {"error": "emulator_error"})
        outcome = (
            "generation_failed" if micros is None else ("accept_drop" if fault == "accept_drop" else "ok")
        )
        self.ledger.record(Entry(name, sha, images, micros is not None, outcome, micros))
        return Answer(drop=True) if fault == "accept_drop" else answer

    def _forced(self, fault: str | None) -> None:
        if fault == "429":
            raise generation_error(
                429,
                "inflight_limit",
                "too many generations in flight",
                max_inflight_requests=self.limit_now(),
                task_completion_speed="fast",
            )
        if fault == "402":
            raise generation_error(402, "insufficient_funds", "insufficient funds")
        if fault in _FORCED:
            status, error, extra = _FORCED[fault]
            raise Reject(status, error, reason=f"fault_{fault}", headers=extra)

    def _admit(self, images: int) -> None:
        """Take the in-flight places and credit, or raise a 402 / 429 GenerationErrorResponse."""
        limit, cap = self.limit_now(), self.config.daily_limit
        day = dt.datetime.now(dt.UTC).date().isoformat()
        with self._day_lock:
            if cap is not None and self._billed_on.get(day, 0) + images > cap:
                raise generation_error(402, "daily_limit", f"daily limit of {cap} images reached")
            try:
                self.capacity.admit(images, limit)
            except Reject as r:
                if r.reason == "credit":
                    raise generation_error(402, "insufficient_funds", r.error) from r
                raise generation_error(
                    429,
                    "inflight_limit",
                    f"at most {limit} images may be in flight",
                    max_inflight_requests=limit,
                    task_completion_speed="fast",
                ) from r
            self._billed_on[day] = self._billed_on.get(day, 0) + images

    def _unbill_day(self, images: int) -> None:
        day = dt.datetime.now(dt.UTC).date().isoformat()
        with self._day_lock:
            self._billed_on[day] = max(0, self._billed_on.get(day, 0) - images)

    def _generate(
        self,
        req: v2bodies.V2Request,
        decoded: rules.Images,
        files: dict[str, list[bytes]],
        micros: int,
        failed: bool,
    ) -> Answer:
        cfg, images = self.config, req.num_images
        self._admit(images)
        if not req.is_async:
            return self._run_sync(req, decoded, files, micros, images)
        try:
            gen_id, made, urls, polled = self._produce(req, decoded, files)
        except BaseException:
            self.capacity.release(images, False)
            self._unbill_day(images)
            raise
        delay = cfg.async_delay_s if cfg.async_delay_s is not None else cfg.latency_ms / 1000

        def settle(g: Generation) -> None:
            self.capacity.release(g.images, not failed)
            if failed:
                self._unbill_day(g.images)

        self.generations.add(
            Generation(
                gen_id,
                now_iso(),
                time.monotonic() + delay,
                images,
                polled,
                micros,
                FAILURE_REASON if failed else None,
                on_settle=settle,
            )
        )
        return Answer(200, v2render.body(req, gen_id, made, urls, with_data=False))

    def _run_sync(
        self,
        req: v2bodies.V2Request,
        decoded: rules.Images,
        files: dict[str, list[bytes]],
        micros: int,
        images: int,
    ) -> Answer:
        billed = False
        try:
            if self.config.latency_ms > 0:
                time.sleep(self.config.latency_ms / 1000.0)
            if req.endpoint.action == "describe":
                body = v2render.describe(req, decoded, new_id(), now_iso())
            else:
                gen_id, made, urls, polled = self._produce(req, decoded, files)
                self.generations.add(Generation(gen_id, now_iso(), 0.0, images, polled, micros, settled=True))
                body = v2render.body(req, gen_id, made, urls, with_data=True)
            billed = True
        finally:
            self.capacity.release(images, billed)
            if not billed:
                self._unbill_day(images)
        return Answer(200, body)

    def _produce(
        self, req: v2bodies.V2Request, decoded: rules.Images, files: dict[str, list[bytes]]
    ) -> tuple[str, list[v2render.Made], list[str | None], list[dict[str, Any]]]:
        """Render the images, store them behind URLs, register safe ones as assets."""
        cfg = self.config
        with self._rng_lock:
            rng = random.Random(self._rng.getrandbits(64))
        made = v2render.run(req, decoded, files, rng, cfg.image_scale, cfg.realistic)
        urls: list[str | None] = []
        polled = []
        for m in made:
            url = self.file_url(self.store.add(m.png, cfg.url_ttl)) if m.png else None
            asset = self.generations.add_asset(m.png) if m.png else None
            urls.append(url)
            polled.append(v2render.polled_item(req, m, url, asset))
        return new_id(), made, urls, polled
