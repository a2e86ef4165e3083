"""Channel size presets: the shipped table (pipeline/data/presets.yaml) plus a user's file."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import yamlsource
from ..errors import Problem
from .errors import ExportError

BUILTIN = Path(__file__).resolve().parent.parent / "data" / "presets.yaml"
MAX_SIDE = 10_000
MAX_PIXELS = 50_000_000
_SIZE = re.compile(r"^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEYS = {"size", "note", "source"}
#: the `--sizes` word for "the source image's own size"
ORIGINAL = "original"


@dataclass(frozen=True)
class Preset:
    """A named exact size, with where the recommendation comes from."""

    name: str
    width: int
    height: int
    note: str = ""
    source: str = ""


@dataclass(frozen=True)
class Target:
    """One size to export: a preset, an explicit WxH (preset ''), or the original size (0x0)."""

    preset: str
    width: int
    height: int

    @property
    def original(self) -> bool:
        """True for `original`: keep each source image's own size."""
        return self.width == 0


def parse_size(text: str) -> tuple[int, int] | str:
    """'1200x628' -> (1200, 628), or the reason it is refused."""
    m = _SIZE.match(text)
    if not m:
        return f"{text!r} is not a size: expected WIDTHxHEIGHT, e.g. 1200x628"
    width, height = int(m[1]), int(m[2])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        return f"{text!r}: each side must be 1 to {MAX_SIDE} pixels"
    if width * height > MAX_PIXELS:
        return f"{text!r}: {width * height:,} pixels is over the limit of {MAX_PIXELS:,}"
    return width, height


def load_presets(user_file: str | Path | None = None) -> dict[str, Preset]:
    """The built-in presets, overridden and extended by `user_file`; ExportError lists every problem."""
    table = _load(BUILTIN, "pipeline/data/presets.yaml")
    if user_file is not None:
        table.update(_load(Path(user_file), str(user_file)))
    return table


def _load(path: Path, shown: str) -> dict[str, Preset]:
    doc = yamlsource.load(path, shown)
    data, problems, out = doc.data, [], {}
    if not isinstance(data, dict) or not isinstance(data.get("presets"), dict):
        raise ExportError(
            [
                doc.problem(
                    (),
                    "expected a mapping with a `presets:` mapping of "
                    "NAME: {size: WIDTHxHEIGHT, note, source}",
                )
            ]
        )
    for key in data:
        if key not in ("schema_version", "presets"):
            problems.append(doc.problem((key,), "unknown key; expected schema_version, presets"))
    if data.get("schema_version", 1) != 1:
        problems.append(doc.problem(("schema_version",), "unsupported version; expected 1"))
    for name, entry in data["presets"].items():
        where = ("presets", name)
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(
                doc.problem(
                    where, f"{name!r} is not a preset name: use lower-case letters, digits, '-' and '_'"
                )
            )
            continue
        preset = _entry(doc, where, name, entry, problems)
        if preset is not None:
            out[name] = preset
    if problems:
        raise ExportError(problems)
    return out


def _entry(
    doc: yamlsource.Located, where: tuple[Any, ...], name: str, entry: Any, problems: list[Problem]
) -> Preset | None:
    if not isinstance(entry, dict):
        problems.append(doc.problem(where, "expected a mapping {size: WIDTHxHEIGHT, note, source}"))
        return None
    for key in entry:
        if key not in _KEYS:
            problems.append(doc.problem((*where, key), "unknown key; expected size, note, source"))
    for key in ("note", "source"):
        if not isinstance(entry.get(key, ""), str):
            problems.append(doc.problem((*where, key), "expected text"))
    if "size" not in entry:
        problems.append(doc.problem(where, "missing `size: WIDTHxHEIGHT`"))
        return None
    size = parse_size(str(entry["size"]))
    if isinstance(size, str):
        problems.append(doc.problem((*where, "size"), size))
        return None
    return Preset(name, size[0], size[1], str(entry.get("note", "")), str(entry.get("source", "")))


def parse_targets(spec: str | Sequence[str], presets: dict[str, Preset]) -> list[Target]:
    """`--sizes 1200x628,instagram-story,original` as targets; ExportError lists every bad word."""
    words = spec.split(",") if isinstance(spec, str) else [w for s in spec for w in s.split(",")]
    targets: list[Target] = []
    problems = []
    for word in (w.strip() for w in words):
        if not word:
            continue
        if word == ORIGINAL:
            targets.append(Target(ORIGINAL, 0, 0))
        elif word in presets:
            p = presets[word]
            targets.append(Target(p.name, p.width, p.height))
        elif _SIZE.match(word):
            size = parse_size(word)
            if isinstance(size, str):
                problems.append(Problem(size, path="--sizes"))
            else:
                targets.append(Target("", *size))
        else:
            close = difflib.get_close_matches(word, [*presets, ORIGINAL], n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known presets: {', '.join(sorted(presets))}"
            problems.append(Problem(f"unknown preset {word!r}", path="--sizes", hint=hint))
    if not targets and not problems:
        problems.append(Problem("no sizes given: pass e.g. --sizes 1200x628,instagram-story", path="--sizes"))
    if problems:
        raise ExportError(problems)
    return list(dict.fromkeys(targets))
