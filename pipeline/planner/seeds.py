"""Seeds: derived from the recipe, row, step and lineage; fixed; or left to the API."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from .. import rows as rowsource
from .. import templating
from .keys import COMPACT
from .session import Session

MAX_SEED = 2**31 - 1

# (seed, seed_source, images in the request, first image index)
SeedPlan = tuple[int | None, str, int, int]


def derived(
    name: str,
    key: str,
    step: str,
    matrix: Mapping[str, Any],
    lineage: Sequence[int],
    first_index: int,
    count: int,
) -> list[int]:
    """The documented derive formula, for `count` images from `first_index` on.

    seed = sha256(json([name, key, step, sorted matrix items, lineage, index]))[:8] & MAX_SEED,
    with the part shared by every image of the row and step serialised once.
    """
    head = COMPACT.encode([name, key, step, sorted(matrix.items())])[:-1]
    prefix = head + (",[" + ",".join(map(str, lineage)) + "]," if lineage else ",[],")
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    # the first 8 hex digits of the digest are its first 4 bytes, big-endian
    return [
        from_bytes(sha256(f"{prefix}{first_index + n}]".encode()).digest()[:4]) & MAX_SEED
        for n in range(count)
    ]


def derived_from(head: str, lineage: Sequence[int], first_index: int, count: int) -> list[int]:
    """`derived` with the row and step part already encoded: `head` is its JSON up to the lineage."""
    prefix = head + (",[" + ",".join(map(str, lineage)) + "]," if lineage else ",[],")
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    # the first 8 hex digits of the digest are its first 4 bytes, big-endian
    return [
        from_bytes(sha256(f"{prefix}{first_index + n}]".encode()).digest()[:4]) & MAX_SEED
        for n in range(count)
    ]


def plan_seeds(
    s: Session,
    fixed: Any,
    num: int,
    sid: str,
    key: str,
    matrix: Mapping[str, Any],
    lineage: Sequence[int],
    first_index: int,
    ctx: Mapping[str, Any],
    i: int,
    row: rowsource.Row,
) -> list[SeedPlan] | None:
    """How a step's `num` images are requested: one request per derived seed, else one."""
    policy = s.seed_policy
    if fixed is None and isinstance(policy, str) and templating.is_template(policy):
        text = s.render(policy, ctx, ("seed",), row)
        if text is None:
            return None
        try:
            fixed = int(text)
        except ValueError:
            s.problem(("seed",), f"renders to {text!r}, not an integer")
            return None
        if not 0 <= fixed <= MAX_SEED:
            s.problem(("seed",), f"{fixed} is outside 0..{MAX_SEED}")
            return None
    elif fixed is None and isinstance(policy, int) and not isinstance(policy, bool):
        fixed = policy
    if fixed is not None:
        if num > 1:
            s.problems.warn(
                s.r.problem(
                    ("steps", i),
                    f"step {sid!r} has a fixed seed and num_images {num}: the "
                    "provider then repeats one image",
                    "use seed: derive for distinct images",
                    warning=True,
                )
            )
        return [(fixed, "fixed", num, first_index)]
    if policy == "random":
        return [(None, "api", num, first_index)]
    seeds = derived(s.r.name, key, sid, matrix, lineage, first_index, num)
    return [(seed, "derived", 1, first_index + n) for n, seed in enumerate(seeds)]
