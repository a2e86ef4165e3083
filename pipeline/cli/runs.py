"""`ideopipe runs`: the runs recorded in an output folder."""

from __future__ import annotations

import argparse

from .tables import format_runs

HELP = "list the runs recorded in an output folder"
EXAMPLE = "ideopipe runs recipes/out/quickstart"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """runs's arguments."""
    p.add_argument("out_dir", metavar="OUT_DIR", help="an output folder a run wrote")


def handle(args: argparse.Namespace) -> int:
    """Print one line per run."""
    from .. import api

    print(format_runs(api.list_runs(args.out_dir)))
    return 0
