"""What a hostile case is, and the helpers that write its files (shared by the case lists)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "hostile"
MB = 1024 * 1024
ERRORS_LINE = r"^ideopipe: \d+ error\(s\); nothing was sent$"


@dataclass(frozen=True)
class Case:
    """One hostile input: corpus files to copy, files to generate, what stderr must say."""

    id: str
    recipe: str | None  # a corpus recipe, copied as recipe.yaml
    expect: list[str]  # regexes; {R} is the recipe path as given on the command line
    data: dict[str, str] = field(default_factory=dict)  # name in tmp -> corpus file
    make: Callable[[Path], Path | None] | None = None  # writes files; may return the recipe
    argv: tuple[str, ...] = ("validate", "{R}")  # the command; {R} the recipe, {T} the folder
    summary: str = ERRORS_LINE  # the last line a refusal prints
    needs_run: bool = False  # starts from a copy of a real emulator run's output in out/

    def setup(self, tmp: Path) -> Path:
        recipe = tmp / "recipe.yaml"
        if self.recipe:
            shutil.copy(CORPUS / self.recipe, recipe)
        for name, source in self.data.items():
            shutil.copy(CORPUS / source, tmp / name)
        if self.make:
            recipe = self.make(tmp) or recipe
        return recipe


def gen_recipe(text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "recipe.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return make


def gen_file(name: str, content: bytes) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / name).write_bytes(content)

    return make


def gen_all(*makers: Callable[[Path], Path | None]) -> Callable[[Path], Path | None]:
    """Several makers in turn; the recipe is the last one any of them returned."""

    def make(tmp: Path) -> Path | None:
        found = None
        for m in makers:
            found = m(tmp) or found
        return found

    return make


def write_big(path: Path, head: bytes, filler: bytes, size: int, tail: bytes = b"") -> None:
    """A file of `size` bytes: head, filler repeated, tail; written in 1 MiB pieces."""
    with open(path, "wb") as f:
        f.write(head)
        left = size - len(head) - len(tail)
        piece = filler * (MB // len(filler))
        while left > 0:
            f.write(piece[:left])
            left -= len(piece)
        f.write(tail)
