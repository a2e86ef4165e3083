"""How values read on the page: missing values, numbers, money, durations, timestamps."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd


def clean(value: Any) -> Any:
    """None for every flavour of missing (None, NaN, NA, NaT); plain Python scalars."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


def plain(value: Any) -> str:
    """A value as display text; '' for missing."""
    value = clean(value)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def number(value: Any) -> str:
    """A number without a useless '.0'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_float(value: Any) -> float | None:
    """A float, or None when missing or not a number."""
    value = clean(value)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def first(run: Mapping[str, Any], *keys: str) -> Any:
    """The first of `keys` that `run` has a value for."""
    return next((run[k] for k in keys if clean(run.get(k)) is not None), None)


def elapsed(start: Any, end: Any) -> float | None:
    """Seconds between two ISO timestamps, when both parse."""
    try:
        begun, ended = (datetime.fromisoformat(plain(t).replace("Z", "+00:00")) for t in (start, end))
        return (ended - begun).total_seconds()
    except (TypeError, ValueError):
        return None


def usd(value: float | None) -> str:
    """$0.08, $0.025, $1,234.50 for prices; a dash when unknown."""
    if value is None:
        return "—"
    text = f"{value:,.3f}"
    if text.endswith("0"):
        text = text[:-1]
    return "$" + text


def duration(seconds: float | None) -> str:
    """12.5 s, 3 min 12 s, 1 h 4 min."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def when(value: Any) -> str:
    """An ISO timestamp shown as '2025-11-21 15:41:03 UTC'; other text as given."""
    text = plain(value)
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    offset = moment.utcoffset()
    zone = "UTC" if not offset else moment.strftime("UTC%z")
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + zone
