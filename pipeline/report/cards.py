"""Cards: one manifest entry (or one source photo) as drawn on the sheet."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..status import Status
from .bundle import Linker
from .entries import MISSING_FILE, PRICED, UNREADABLE_FILE, Entry, label
from .fmt import number, plain, usd

PROMPT_FOLD = 140  # prompts longer than this many characters are folded into <details>
SOURCE_STATUS = "source"

Size = tuple[int, int]


@dataclass
class Card:
    """One entry as drawn on the sheet, with the entries derived from it as children."""

    image_id: str
    step_id: str
    op: str
    status: str
    label: str
    kind: Literal["image", "text", "placeholder"]
    role: Literal["entry", "source"] = "entry"
    title: str = ""
    icon: str = ""
    note: str = ""  # the error, or what the placeholder means
    href: str | None = None  # the full file, relative to the report
    thumb: str | None = None
    thumb_size: Size | None = None
    mask_thumb: str | None = None  # a source's mask, drawn beside it
    mask_size: Size | None = None
    description: str = ""
    prompt: str = ""
    prompt_label: str = "Prompt"
    facts: list[str] = field(default_factory=list)
    matrix: list[tuple[str, str]] = field(default_factory=list)
    origin: str = ""  # a parent that is not drawn above this card
    search: str = ""
    children: list[Card] = field(default_factory=list)

    @property
    def prompt_folded(self) -> bool:
        """Whether the prompt is long enough to sit in a <details>."""
        return len(self.prompt) > PROMPT_FOLD

    @property
    def prompt_head(self) -> str:
        """The start of a folded prompt, shown as its summary."""
        return self.prompt[:PROMPT_FOLD].rsplit(" ", 1)[0] + "…"


def entry_card(out_dir: Path, e: Entry, thumb: tuple[Path, Size] | None, links: Linker) -> Card:
    """The card of one manifest entry: its picture, or a placeholder saying why there is none."""
    status = e.status
    name, icon, meaning = label(status)
    file = e.text("file")
    href = links.file(out_dir / file) if file else None
    on_disk = bool(file) and (out_dir / file).is_file()
    card = Card(
        image_id=e.text("image_id"),
        step_id=e.text("step_id"),
        op=e.text("op"),
        status=status,
        label=name,
        kind="placeholder",
        title=e.text("step_id"),
        icon=icon,
        href=href,
        note=e.text("error") or meaning,
    )
    if status == Status.OK:
        if e.is_text:
            card.kind = "text"
            card.description = e.text("description")
        elif thumb is not None and (url := links.picture(thumb[0])):
            card.kind = "image"
            card.thumb, card.thumb_size = url, thumb[1]
        else:
            card.label, card.icon, card.note = UNREADABLE_FILE if on_disk else MISSING_FILE
            if file:
                card.note += f" ({file})"
    elif e.is_text and e.text("description"):
        card.description = e.text("description")

    api_prompt, prompt = e.text("api_prompt"), e.text("prompt")
    card.prompt = api_prompt or prompt
    if api_prompt and prompt and api_prompt != prompt:
        card.prompt_label = "Prompt sent (magic prompt)"
    card.facts = facts(e)
    card.matrix = matrix(e.get("matrix"))
    card.search = " ".join(t for t in (prompt, api_prompt, e.text("description"), card.image_id) if t).lower()
    return card


def source_card(
    key: str, image: str, mask: str | None, thumbs: Mapping[str, tuple[Path, Size] | None], links: Linker
) -> Card:
    """The card that starts a chain: a local photo (and the mask drawn over it), before any step."""
    path = Path(image)
    card = Card(
        image_id=key,
        step_id="source",
        op="",
        status=SOURCE_STATUS,
        label="Source + mask" if mask else "Source",
        kind="placeholder",
        role="source",
        title=path.name,
        icon="?",
        href=links.file(path),
        note=f"The source photo is not readable here ({path.name}).",
        search=" ".join(Path(p).name for p in (image, mask) if p).lower(),
    )
    picture = thumbs.get(image)
    if picture is not None and (url := links.picture(picture[0])):
        card.kind = "image"
        card.thumb, card.thumb_size = url, picture[1]
        card.note = ""
    shade = thumbs.get(mask) if mask else None
    if shade is not None and (url := links.picture(shade[0])):
        card.mask_thumb, card.mask_size = url, shade[1]
    card.facts = [f"mask {Path(mask).name}"] if mask else []
    return card


def facts(e: Entry) -> list[str]:
    """The short facts under a picture: index, seed, model, size, price, attempts, reuse."""
    found = []
    index = e.get("image_index")
    if index is not None:
        found.append(f"#{number(index)}")
    seed = e.get("seed")
    if seed is not None:
        found.append(f"seed {number(seed)}")
    model = " ".join(t for t in (e.text("model"), e.text("rendering_speed").capitalize()) if t)
    if model:
        found.append(model)
    width, height = e.get("width"), e.get("height")
    if width is not None and height is not None:
        found.append(f"{number(width)}×{number(height)}")
    elif e.text("resolution") or e.text("aspect_ratio"):
        found.append(e.text("resolution") or e.text("aspect_ratio"))
    cost = e.get("cost_usd")
    if cost is not None:
        found.append(usd(cost))
    elif e.status in PRICED:
        found.append("price unknown")
    attempts = e.get("attempts")
    if isinstance(attempts, (int, float)) and attempts > 1:
        found.append(f"{number(attempts)} attempts")
    if e.reused:
        maker = e.text("produced_by_run")
        found.append(f"reused from run {maker}" if maker else "reused from an earlier run")
    return found


def matrix(raw: Any) -> list[tuple[str, str]]:
    """A manifest `matrix` cell (JSON text or a mapping) as (name, value) pairs."""
    if raw is None or raw == "":
        return []
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return [("matrix", raw)]
    if isinstance(value, Mapping):
        return [(str(k), plain(v)) for k, v in value.items()]
    return [] if not value else [("matrix", plain(value))]
