"""Output sizes: Ideogram's aspect ratios and resolutions, in both families' spellings."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from pipeline import spec

Size = tuple[int, int]
DEFAULT: Size = (1024, 1024)


@functools.lru_cache(maxsize=1)
def resolutions() -> tuple[Size, ...]:
    """Every v3 resolution the spec lists, as (width, height)."""
    return tuple(_pair(r, "x") for r in spec.enum("ResolutionV3"))


def _pair(text: str, sep: str) -> Size:
    w, h = text.split(sep)
    return int(w), int(h)


def nearest(aspect: float) -> Size:
    """The real Ideogram resolution closest to `aspect` (width / height), about 1 megapixel."""
    return min(
        resolutions(),
        key=lambda s: (
            round(abs(math.log(s[0] / s[1] / aspect)), 3),
            abs(s[0] * s[1] - 1024 * 1024),
        ),
    )


def requested(params: Mapping[str, Any]) -> Size | None:
    """The size named by a resolution or aspect_ratio field, in either spelling, if any."""
    res = params.get("resolution")
    if isinstance(res, str):
        return _spelled(res, "RESOLUTION_")
    ratio = params.get("aspect_ratio")
    if isinstance(ratio, str):
        w, h = _spelled(ratio, "ASPECT_")
        return nearest(w / h)
    return None


def _spelled(value: str, legacy_prefix: str) -> Size:
    """'16x9' (v3) or 'ASPECT_16_9' / 'RESOLUTION_1024_768' (legacy) as a pair."""
    if value.startswith(legacy_prefix):
        return _pair(value[len(legacy_prefix) :], "_")
    return _pair(value, "x")


def scaled(size: Size, scale: float) -> Size:
    """The pixel size the emulator renders for an API size."""
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def text(size: Size) -> str:
    """'WIDTHxHEIGHT'."""
    return f"{size[0]}x{size[1]}"
