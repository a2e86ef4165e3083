"""`ideopipe report`: write report.html of an output folder again."""

from __future__ import annotations

import argparse

from .common import open_report

HELP = "regenerate report.html of an output folder"
EXAMPLE = "ideopipe report recipes/out/quickstart --open"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """report's arguments."""
    p.add_argument("out_dir", metavar="OUT_DIR", help="an output folder a run wrote")
    p.add_argument("--open", action="store_true", help="open it in a browser")
    p.add_argument(
        "--bundle", action="store_true", help="one file with the thumbnails embedded, to send alone"
    )


def handle(args: argparse.Namespace) -> int:
    """Write the report, print where, and open it if asked."""
    from .. import api

    path = api.regenerate_report(args.out_dir, bundle=args.bundle)
    print(f"report: {path}")
    if args.open:
        open_report(path)
    return 0
