"""`python -m pipeline.export.cli OUT --to DIR ...`: the export verb alone (pipeline/cli/export.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..cli import main as ideopipe


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ideopipe export` with these arguments; returns the exit code."""
    return ideopipe(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
