"""Channel-ready delivery: `export()` resizes a run's good images to exact sizes, locally, at no API cost.

presets.py    the size presets (pipeline/data/presets.yaml + a user file)
selection.py  which manifest rows: good images, --only approved|all|stars>=N, --step
jobs.py       one job per (image, size): names rendered, sanitised, clash-checked
names.py      the --name template, name safety rules and case-insensitive clashes
imaging.py    Pillow: sRGB, cover/contain to the exact size, encode with a provenance note
render.py     one source image to all its sizes, only where something changed
target.py     the target folder: symlink checks, temp file + rename, index, zip
core.py       export(): plan everything, report every problem, then write
cli.py        the `ideopipe export` verb
"""

from __future__ import annotations

from .core import ExportResult, export
from .errors import ExportError
from .jobs import Delivered
from .presets import Preset, load_presets

__all__ = ["Delivered", "ExportError", "ExportResult", "Preset", "export", "load_presets"]
