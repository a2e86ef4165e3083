"""The v2 account endpoints the emulator answers: API keys, invoices and usage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .reject import Reject
from .service import Answer

EMULATOR_KEY_ID = "emulator-key"


def account(route: str, query: str, billed_usd_micros: int) -> Answer:
    """GET /v2/account/api-keys, /invoices or /usage (404 for anything else)."""
    if route == "/v2/account/api-keys":
        key = {
            "api_key_id": EMULATOR_KEY_ID,
            "creation_time": "2026-01-01T00:00:00+00:00",
            "redacted_api_key": "emu…key",
            "status": "active",
            "label": "emulator",
        }
        return Answer(200, {"api_keys": [key]})
    if route == "/v2/account/invoices":
        return Answer(200, {"invoices": []})
    if route == "/v2/account/usage":
        return Answer(200, usage(query, billed_usd_micros))
    raise Reject(404, f"no such account endpoint: {route}", reason="not_found")


def usage(query: str, billed_usd_micros: int) -> dict[str, Any]:
    """Today's usage as one bucket with one line item (the emulator's ledger)."""
    if "start_time=" not in query:
        raise Reject(400, "start_time: required (RFC 3339)", reason="invalid")
    now = dt.datetime.now(dt.UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    cost = billed_usd_micros / 1_000_000
    items = [
        {
            "product": "emulator",
            "endpoint": "/v2/image/*",
            "description": "emulated usage",
            "cost_total": f"{cost:.6f}",
            "currency_code": "USD",
            "source": "api",
        }
    ]
    bucket: dict[str, Any] = {"start_time": start.isoformat(), "end_time": now.isoformat()}
    bucket["line_items"] = items if cost else []
    return {"buckets": [bucket]}
