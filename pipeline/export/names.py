"""Delivery file names: rendered from a sandboxed Jinja template, made safe, checked for clashes."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2

from .. import templating
from ..errors import Problem

#: names the export itself writes in the target folder
RESERVED_FILES = ("delivery.csv", "delivery.zip", ".ideopipe-export.json")
_WINDOWS = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)
_BAD_CHARS = set('<>:"|?*')


def check_template(source: str) -> Problem | None:
    """A syntax problem in the --name template, or None."""
    try:
        templating.compile_template(source)
    except jinja2.TemplateSyntaxError as exc:
        return Problem(templating.describe_error(exc), path="--name")
    return None


class NameRefused(ValueError):
    """A name template that failed, or a name that is unsafe; the message says why."""


def render(source: str, context: Mapping[str, Any]) -> str:
    """The rendered name; NameRefused if the template fails."""
    try:
        return templating.render(source, context)
    except (jinja2.TemplateError, templating.SecurityLimit, templating.RenderError) as exc:
        raise NameRefused(templating.describe_error(exc)) from exc


def sanitize(text: str) -> str:
    """A safe relative POSIX path inside the target folder; NameRefused says why not."""
    if "\x00" in text:
        raise NameRefused("contains a NUL character")
    text = unicodedata.normalize("NFC", text.strip().replace("\\", "/"))
    if not text:
        raise NameRefused("renders to an empty name")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise NameRefused("is an absolute path; names must stay inside the target folder")
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise NameRefused("contains '..'; names must stay inside the target folder")
        if _WINDOWS.match(part):
            raise NameRefused(f"{part!r} is a reserved file name on Windows")
        if len(part.encode()) > 255:
            raise NameRefused(f"{part[:40]!r}… is over 255 bytes")
        if any(c in _BAD_CHARS or ord(c) < 32 for c in part) or part.endswith((" ", ".")):
            raise NameRefused(f"{part!r} is not a portable file name")
        parts.append(part)
    if not parts:
        raise NameRefused("renders to an empty name")
    name = "/".join(parts)
    if name[0] in "=+-@":  # delivery.csv lists names verbatim: no formula, no option look-alike
        raise NameRefused(f"{name[:40]!r} starts with {name[0]!r}; spreadsheets and shells misread it")
    if _fold(parts[0]) in {_fold(r) for r in RESERVED_FILES} or parts[0].startswith(".ideopipe"):
        raise NameRefused(f"{parts[0]!r} is reserved for the export's own files")
    return name


def _fold(text: str) -> str:
    """The key two names clash on: case-insensitive and Unicode-normalised (macOS, Windows)."""
    return unicodedata.normalize("NFC", text).casefold()


def clashes(named: Iterable[tuple[str, str]]) -> list[Problem]:
    """Problems for names used twice (ignoring case) or used both as a file and a folder.

    `named` holds (name, what) pairs, `what` describing the export that wants the name.
    """
    by_key: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, what in named:
        by_key[_fold(name)].append((name, what))
    problems = []
    for group in by_key.values():
        if len(group) > 1:
            whats = "; ".join(w for _, w in group[:4]) + ("; …" if len(group) > 4 else "")
            problems.append(
                Problem(
                    f"{len(group)} exports are named {group[0][0]!r} (ignoring case): {whats}",
                    path="--name",
                    hint="add {{ image_id }} (unique per image) or {{ preset }} to the template",
                )
            )
    folders = {
        _fold("/".join(name.split("/")[:i])): name
        for name, _ in (g[0] for g in by_key.values())
        for i in range(1, name.count("/") + 1)
    }
    for key, group in by_key.items():
        if key in folders:
            problems.append(
                Problem(f"{group[0][0]!r} is both a file and the folder of {folders[key]!r}", path="--name")
            )
    return problems
