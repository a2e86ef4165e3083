"""v2 prices: the shipped table (pipeline/data/prices_v2.json) and PriceQuote answers.

A tier with a published list price quotes `exact` at that price; one known only from the
third-party dry runs of 2026-10-10 quotes `exact` at that figure (it is what the real API
answered); anything else quotes an `estimate` at the nearest known tier of the base
model, with the family's dearest tier as the upper bound. 100 credits make one US$.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

CREDIT_MILLIS_PER_USD_MICRO = 0.1  # $0.06 = 60,000 usd_micros = 6,000 credit_millis


@functools.cache
def table() -> dict[str, Any]:
    """The v2 price table shipped in the package."""
    text = resources.files("pipeline").joinpath("data/prices_v2.json").read_text("utf-8")
    return dict(json.loads(text))


@dataclass(frozen=True)
class Quote:
    """What one request costs: billing product, quantity, micro-dollars and qualifier."""

    billing_identifier: str
    quantity: int
    usd_micros: int
    qualifier: str = "exact"
    upper_bound_usd_micros: int | None = None

    def body(self) -> dict[str, Any]:
        """The PriceQuote JSON object."""
        out: dict[str, Any] = {
            "object": "price_quote",
            "billing_identifier": self.billing_identifier,
            "quantity": self.quantity,
            "usd_micros": self.usd_micros,
            "credit_millis": round(self.usd_micros * CREDIT_MILLIS_PER_USD_MICRO),
            "qualifier": self.qualifier,
        }
        if self.qualifier == "estimate" and self.upper_bound_usd_micros is not None:
            out["upper_bound_usd_micros"] = self.upper_bound_usd_micros
        return out


def tier(product: str, params: Mapping[str, Any], has_sources: bool) -> str:
    """The price tier a request falls in ('-' for flat products)."""
    info = table()["products"][product]
    field = info.get("tier_field")
    if not field:
        return "-"
    value = params.get(field)
    if isinstance(value, str):
        return value
    if has_sources and "default_tier_with_sources" in info:
        return str(info["default_tier_with_sources"])
    return str(info["default_tier"])


def _base(product: str) -> str:
    for suffix in ("-custom-model", "-transparent"):
        product = product.replace(suffix, "")
    return product


def unit_price(product: str, level: str) -> tuple[float, str, float | None]:
    """(US$ per unit, qualifier, upper bound or None) for one product tier."""
    data = table()
    key = f"{product}:{level}"
    if key in data["prices"]:
        return float(data["prices"][key]), "exact", None
    observed = data["dry_run_quotes_2026_10_10"]
    if key in observed:
        return float(observed[key]), "exact", None
    family = {k: float(v) for k, v in data["prices"].items() if k.startswith(_base(product) + ":")}
    if not family:
        family = {
            k: float(v)
            for k, v in observed.items()
            if isinstance(v, (int, float)) and k.startswith(product + ":")
        }
    if not family:
        return 0.10, "estimate", 0.25
    near = family.get(f"{_base(product)}:{level}", min(family.values()))
    return near, "estimate", max(family.values())


def quote(product: str, params: Mapping[str, Any], has_sources: bool) -> Quote:
    """The quote for one request to `product` (a v2 path without '/v2/')."""
    info = table()["products"][product]
    per_input = product in table()["per_input"]
    quantity = 1 if per_input else int(params.get("num_images", 1))
    price, qualifier, upper = unit_price(product, tier(product, params, has_sources))
    micros = round(price * 1_000_000) * quantity
    bound = None if upper is None else round(upper * 1_000_000) * quantity
    return Quote(str(info["billing_identifier"]), quantity, micros, qualifier, bound)
