"""Shared fixtures: a real emulator on a loopback port, and recipe files in tmp dirs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.emulator import Emulator

TEST_KEY = "sk-test-SECRET-4f9a1c"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator (ideogram flavor) on a free loopback port."""
    with Emulator(rng_seed=7) as em:
        yield em


def write_recipe_file(folder: Path, text: str, files: dict[str, str | bytes] | None = None,
                      name: str = "recipe.yaml") -> Path:
    """Write a recipe (dedented) and its side files into `folder`; returns its path."""
    for rel, content in (files or {}).items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """write_recipe_file bound to the test's tmp_path."""
    return lambda text, name="recipe.yaml", files=None: write_recipe_file(tmp_path, text, files,
                                                                          name)
