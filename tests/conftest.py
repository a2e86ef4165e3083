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


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """Write a recipe (and optional side files) into tmp_path; returns its path."""

    def write(text: str, name: str = "recipe.yaml", files: dict[str, str | bytes] | None = None) -> Path:
        for rel, content in (files or {}).items():
            p = tmp_path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
