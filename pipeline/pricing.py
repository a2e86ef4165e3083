"""The versioned price table, and the price of one request."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class PriceTable:
    """US$ per image by key 'op:tier' (tier: rendering speed for v3, model for legacy)."""

    version: str
    prices: Mapping[str, float] = field(repr=False)

    def per_image(self, key: str) -> float | None:
        """The price of one image, or None when it is not known (never 0 by default)."""
        return self.prices.get(key)

    def with_overrides(self, overrides: Mapping[str, float], label: str) -> PriceTable:
        """A copy in which `overrides` win; the version says so."""
        if not overrides:
            return self
        return PriceTable(f"{self.version}+{label}", {**self.prices, **overrides})


@functools.lru_cache(maxsize=1)
def default_table() -> PriceTable:
    """The table shipped in the package (pipeline/data/prices.json)."""
    text = resources.files("pipeline").joinpath("data/prices.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return PriceTable(data["version"], dict(data["prices"]))


def check_prices(values: Any) -> str | None:
    """Why a mapping of price overrides is unusable, or None if it is fine."""
    what = "must map op:tier keys to prices in USD per image"
    if not isinstance(values, Mapping):
        return what
    for key, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            return f"{what}; {key}: {value!r} is not a number of 0 or more"
    return None


def price_key(op: str, family: str, model: str, rendering_speed: str | None) -> str:
    """The table key for a request: 'generate:TURBO', 'remix:V_2A', 'upscale'."""
    if op in ("upscale", "describe"):
        return op
    if family == "v3":
        return f"{op}:{rendering_speed or 'DEFAULT'}"
    return f"{op}:{model}"
