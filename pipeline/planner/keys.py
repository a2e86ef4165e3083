"""Identities: the content key of a request (sha256 of canonical JSON) and image ids."""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring_ascii as _encode_string
from typing import Any

# Built once: json.dumps() with options builds a new encoder on every call.
COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)
_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)


def encode_string(text: str) -> str:
    """A string as canonical JSON encodes it (ASCII, escaped, quoted)."""
    return _encode_string(text)


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace."""
    return _CANONICAL.encode(value)


def content_key(value: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def image_id(task_id: str, n: int) -> str:
    """The id of the n-th image a task produces."""
    return hashlib.sha256(f"{task_id}:{n}".encode()).hexdigest()[:16]
