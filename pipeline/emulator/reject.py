"""The exception that turns into an error answer: status, JSON body and ledger reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Reject(Exception):
    """Stop handling a request and answer `status` with {"error": ..., "details": [...]} or a payload."""

    def __init__(
        self,
        status: int,
        error: str,
        details: Sequence[str] = (),
        reason: str | None = None,
        headers: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
    ):
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.details = list(details)
        self.reason = reason or str(status)
        self.headers = dict(headers or {})
        self.payload = payload

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer: the payload if one was given, else error and details."""
        if self.payload is not None:
            return dict(self.payload)
        out: dict[str, Any] = {"error": self.error}
        if self.details:
            out["details"] = self.details
        return out
