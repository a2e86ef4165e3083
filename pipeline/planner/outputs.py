"""Output paths of one plan: rendered, sanitised, kept inside output.dir, free of clashes."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import rows as rowsource
from .. import templating
from ..errors import Problem
from ..templating import MAX_OUTPUT
from .paths import is_plain, length_problem, sanitize, short_enough
from .session import Session

if TYPE_CHECKING:
    from .tasks import RowScope

_WHERE = ("output", "file")
_PER_IMAGE = {"step": "{0}", "index": "{1}", "seed": "{2}", "image_id": "{3}", "ext": "{4}"}


class Outputs:
    """Decides each image's path; `finish` then reports clashes between all of them at once."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.owner: dict[str, tuple[rowsource.Row, str]] = {}
        self.allow_case = bool(s.data.get("output", {}).get("allow_case_collisions"))
        self._dir_bytes = len(str(s.out_dir).encode("utf-8", "surrogatepass"))
        self._short = short_enough(self._dir_bytes)  # paths of at most this many characters fit
        self._folders_ok: set[str] = set()
        self._listing: dict[str, dict[str, bool] | None] = {}  # folder -> name -> is a link
        self._plain = (
            templating.plain_parts(s.file_template) if templating.is_template(s.file_template) else None
        )
        self._literals = tuple(_literal(text) for text in self._plain[0]) if self._plain else ()

    def row_pieces(self, ctx: Mapping[str, Any]) -> str | None:
        """output.file rendered for one row as a format string of the per-image names; None if not simple.

        A template made only of `{{ name }}` substitutions whose row values are texts or
        numbers is rendered here once per row, leaving `{0}`..`{4}` for step, index, seed,
        image_id and ext, which `path` fills in. Anything else is rendered in full per image.
        """
        if self._plain is None:
            return None
        names = self._plain[1]
        pieces = [self._literals[0]]
        for name, text in zip(names, self._literals[1:]):
            hole = _PER_IMAGE.get(name)
            if hole is None:
                value = ctx.get(name)
                if type(value) is int:
                    value = str(value)
                elif type(value) is not str:
                    return None  # missing, None or another type: the full render reports it
                pieces.append(_literal(value) if "{" in value or "}" in value else value)
            else:
                pieces.append(hole)
            pieces.append(text)
        fmt = "".join(pieces)
        return fmt if len(fmt) < MAX_OUTPUT // 2 else None

    def path(self, scope: RowScope, sid: str, index: int, seed: int | None, image_id: str) -> str | None:
        """The relative path of one image, or None after reporting why it cannot be used."""
        s, row = self.s, scope.row
        shown_seed = str(seed) if seed is not None else image_id
        if scope.file_pieces is not None:
            text = scope.file_pieces.format(sid, index, shown_seed, image_id, "png")
        else:
            file_ctx = {**scope.ctx, "step": sid, "index": index, "image_id": image_id, "ext": "png"}
            file_ctx["seed"] = seed if seed is not None else image_id
            rendered = s.render(s.file_template, file_ctx, _WHERE, row)
            if rendered is None:
                return None
            text = rendered
        rel = text if is_plain(text) else sanitize(text)
        if isinstance(rel, Problem):
            s.problem(_WHERE, f"{text!r}: {rel.message}", f"row {row.where()}")
            return None
        too_long = length_problem(rel, self._dir_bytes) if len(rel) > self._short else None
        if too_long:
            s.problem(_WHERE, too_long, f"row {row.where()}")
            return None
        if rel in self.owner:
            first_row, first_step = self.owner[rel]
            s.problem(
                _WHERE,
                f"two images would be written to {rel!r} "
                f"(row {first_row.where()}, step {first_step} and row {row.where()}, "
                f"step {sid})",
                "add {{ step }}, {{ index }} or {{ seed }} to output.file",
            )
            return None
        self.owner[rel] = scope.tag(sid)
        parent = rel.rpartition("/")[0]
        if parent not in self._folders_ok and not self.inside(parent):
            s.problem(_WHERE, f"{rel!r} escapes output.dir through a symlink")
            return None
        return rel

    def inside(self, parent: str) -> bool:
        """False if an existing folder on the way to `parent` is a link leading outside.

        Each existing folder is listed once (one scandir), instead of one lstat per image.
        """
        if not parent or parent in self._folders_ok:
            return True
        prefix = ""
        for part in parent.split("/"):
            above = prefix
            prefix = f"{prefix}/{part}" if prefix else part
            if prefix in self._folders_ok:
                continue
            listing = self._list(above)
            if listing is None or part not in listing:
                break  # nothing exists from here down: nothing can lead out
            if listing[part]:
                full = Path(self.s.out_dir, prefix).resolve()
                if not full.is_relative_to(self.s.out_dir):
                    return False
            self._folders_ok.add(prefix)
        self._folders_ok.add(parent)
        return True

    def _list(self, folder: str) -> dict[str, bool] | None:
        if folder not in self._listing:
            try:
                with os.scandir(os.path.join(self.s.out_dir, folder)) as it:
                    self._listing[folder] = {e.name: e.is_symlink() for e in it}
            except OSError:
                self._listing[folder] = None
        return self._listing[folder]

    def finish(self) -> None:
        """Report every file-versus-folder clash and case or Unicode collision between paths.

        Only paths whose folded form differs from themselves are folded into a second table,
        so the usual all-lowercase batch costs no second copy of every path.
        """
        s, owner = self.s, self.owner
        fold = _exact if self.allow_case else _folded
        folded: dict[str, str] = {}  # folded form -> the first path that folds to it (not itself)
        position: dict[str, int] | None = None
        for rel in owner:
            f = fold(rel)
            if f == rel:
                continue
            other = f if f in owner else folded.setdefault(f, rel)
            if other != rel:
                if position is None:  # only when there is a problem to report
                    position = {path: n for n, path in enumerate(owner)}
                first, second = sorted((other, rel), key=position.__getitem__)
                s.problem(
                    _WHERE,
                    f"{first!r} and {second!r} are the same file on case-insensitive "
                    "or Unicode-normalising file systems (macOS, Windows)",
                    f"row {owner[second][0].where()}; make the names differ by more than case, "
                    "or set output.allow_case_collisions: true",
                )
        folders: set[str] = set()
        for rel in owner:
            parent = rel.rpartition("/")[0]
            while parent and parent not in folders:
                folders.add(parent)
                f = fold(parent)
                clash = f if f in owner else folded.get(f)
                if clash is not None:
                    s.problem(
                        _WHERE,
                        f"{clash!r} would be a file and also the folder of {rel!r}",
                        f"row {owner[rel][0].where()}",
                    )
                    break
                parent = parent.rpartition("/")[0]


def _literal(text: str) -> str:
    """Text as it reads inside a format string."""
    return text.replace("{", "{{").replace("}", "}}")


def _exact(path: str) -> str:
    return path


def _folded(path: str) -> str:
    """What a case-insensitive, normalising file system sees: NFC of the case-folded NFC."""
    if path.isascii():
        return path.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())
