"""`ideopipe gc`: remove stored images that no task references, after showing them."""

from __future__ import annotations

import argparse
import sys

HELP = "remove stored images no task references (shows what it would free first)"
EXAMPLE = "ideopipe gc out/spring-launch --yes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """gc's arguments."""
    p.add_argument("out_dir", metavar="OUT_DIR", help="an output folder a run wrote")
    p.add_argument("--yes", action="store_true", help="delete without asking")


def handle(args: argparse.Namespace) -> int:
    """Show the unreferenced objects; delete them when confirmed (a dry run off a terminal)."""
    from .. import preflight
    from ..upkeep import collect_garbage

    out_dir = preflight.output_folder(args.out_dir)
    found = collect_garbage(out_dir, remove=False)
    print(found.describe())
    if not found.objects:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("dry run: pass --yes to delete them")
            return 0
        if input("Delete them? [y/N] ").strip().lower() not in ("y", "yes"):
            return 0
    print(collect_garbage(out_dir, remove=True).describe())
    return 0
