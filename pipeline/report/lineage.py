"""Rows, matrix groups and lineage trees: how the sheet arranges its cards.

Each input row gets a section; inside it, the chains of each matrix value sit together;
each chain is a tree (source photo → generate → remix → upscale) from `image_id` /
`parent_image_id`. A missing parent, a cycle or a chain deeper than MAX_DEPTH starts a
new root, so every entry is drawn exactly once.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import Linker
from .cards import Card, Size, entry_card, matrix, source_card
from .entries import Entry, label, status_order
from .fmt import plain
from .sources import Inputs, chain_start

MAX_DEPTH = 24  # deeper lineage is drawn as a new root, to keep the page (and Jinja) shallow


@dataclass(frozen=True)
class Group:
    """The chains of one matrix value within a row."""

    matrix: list[tuple[str, str]]
    roots: list[Card]


@dataclass(frozen=True)
class RowSection:
    """One input row: its values and its chains, grouped by matrix value."""

    key: str
    index: int | None
    values: list[tuple[str, str]]
    counts: list[tuple[str, str, int]]  # (status, label, n)
    groups: list[Group]
    search: str

    @property
    def grouped(self) -> bool:
        """Whether the row has several matrix values, so each group gets a heading."""
        return len(self.groups) > 1


@dataclass(frozen=True)
class Pictures:
    """What the sheet draws with: thumbnails of entries and of source files, and the linker."""

    out_dir: Path
    entries: Mapping[int, tuple[Path, Size]]  # entry position -> thumbnail
    sources: Mapping[str, tuple[Path, Size] | None]  # source file -> thumbnail
    inputs: Inputs
    links: Linker


def sections(
    found: Sequence[Entry], steps: Sequence[str], rows: Mapping[str, Mapping[str, Any]], pictures: Pictures
) -> list[RowSection]:
    """One section per row, in row order, with every entry placed once."""
    by_row: dict[str, list[Entry]] = defaultdict(list)
    for e in found:
        by_row[e.text("row_key")].append(e)
    rank = {s: i for i, s in enumerate(steps)}

    def order(e: Entry) -> tuple[int, float, int]:
        index = e.get("image_index")
        number = float(index) if isinstance(index, (int, float)) else math.inf
        return rank.get(e.text("step_id"), len(rank)), number, e.position

    def row_order(key: str) -> tuple[float, int]:
        indexes = [e.get("row_index") for e in by_row[key]]
        numbers = [float(i) for i in indexes if isinstance(i, (int, float))]
        return min(numbers, default=math.inf), by_row[key][0].position

    result = []
    for key in sorted(by_row, key=row_order):
        group = sorted(by_row[key], key=order)
        values = [(str(k), plain(v)) for k, v in (rows.get(key) or {}).items()]
        counts = Counter(e.status for e in group)
        index = group[0].get("row_index")
        result.append(
            RowSection(
                key=key,
                index=int(index) if isinstance(index, (int, float)) else None,
                values=values,
                counts=[(s, label(s)[0], counts[s]) for s in status_order(counts)],
                groups=[_group(members, pictures) for members in _by_matrix(group)],
                search=" ".join([key, *(v for _, v in values)]).lower(),
            )
        )
    return result


def _by_matrix(group: Sequence[Entry]) -> list[list[Entry]]:
    """The row's entries split by matrix value, in order of first appearance in the manifest."""
    split: dict[str, list[Entry]] = defaultdict(list)
    for e in group:
        split[e.text("matrix")].append(e)
    return sorted(split.values(), key=lambda members: min(e.position for e in members))


def _group(members: Sequence[Entry], pictures: Pictures) -> Group:
    cards = {
        e.position: entry_card(pictures.out_dir, e, pictures.entries.get(e.position), pictures.links)
        for e in members
    }
    roots = forest(members, cards, lambda e: chain_start(pictures.inputs, e.text("task_id")), pictures)
    return Group(matrix=matrix(members[0].get("matrix")), roots=roots)


def forest(
    group: Sequence[Entry],
    cards: Mapping[int, Card],
    start: Callable[[Entry], tuple[str, str | None] | None],
    pictures: Pictures,
) -> list[Card]:
    """Nest each card under its parent's, and a chain's first card under its source photo."""
    first: dict[str, int] = {}
    for e in group:
        first.setdefault(e.text("image_id"), e.position)
    kids: dict[int, list[int]] = defaultdict(list)
    has_parent: set[int] = set()
    for e in group:
        parent = first.get(e.text("parent_image_id"))
        if parent is not None and parent != e.position:
            kids[parent].append(e.position)
            has_parent.add(e.position)
        elif e.text("parent_image_id"):
            cards[e.position].origin = e.text("parent_image_id")
    placed: set[int] = set()

    def attach(position: int, depth: int) -> Card:
        placed.add(position)
        card = cards[position]
        if depth < MAX_DEPTH:
            card.children.extend(attach(child, depth + 1) for child in kids[position] if child not in placed)
        return card

    roots: list[Card] = []
    origins: dict[tuple[str, str | None], Card] = {}
    for e in group:
        if e.position in has_parent:
            continue
        origin = start(e)
        card = attach(e.position, 0 if origin is None else 1)
        if origin is None:
            roots.append(card)
            continue
        if origin not in origins:
            origins[origin] = _source(origin, pictures)
            roots.append(origins[origin])
        origins[origin].children.append(card)
    for e in group:  # whatever a cycle or the depth cap left out
        if e.position not in placed:
            cards[e.position].origin = e.text("parent_image_id")
            roots.append(attach(e.position, 0))
    return roots


def _source(origin: tuple[str, str | None], pictures: Pictures) -> Card:
    image, mask = origin
    key = "src-" + hashlib.sha256(f"{image}\0{mask or ''}".encode()).hexdigest()[:12]
    return source_card(key, image, mask, pictures.sources, pictures.links)
