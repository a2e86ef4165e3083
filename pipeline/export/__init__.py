"""Channel-ready delivery: `export()` resizes a run's good images to exact sizes, locally, at no API cost.

presets.py    the size presets (pipeline/data/presets.yaml + a user file)
selection.py  which manifest rows: good images, --only approved|all|stars>=N, --step
jobs.py       one job per (image, size): names rendered, sanitised, clash-checked
names.py      the --name template, name safety rules and case-insensitive clashes
imaging.py    Pillow: sRGB, cover/contain to the exact size, encode with a provenance note
render.py     one source image to all its sizes, only where something changed
target.py     the target folder: symlink checks, temp file + rename, index, zip
core.py       export(): plan everything, report every problem, then write
cli.py        `python -m pipeline.export.cli`: the verb on its own (the verb: pipeline/cli/export.py)
defaults.py   the defaults the CLI shows without loading the rest
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "Delivered": "jobs",
    "ExportError": "errors",
    "ExportResult": "core",
    "Preset": "presets",
    "export": "core",
    "load_presets": "presets",
}


def __getattr__(name: str) -> Any:
    """Load a public name on first use, so the CLI's help never loads Pillow or pandas."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = ["Delivered", "ExportError", "ExportResult", "Preset", "export", "load_presets"]
