"""`ideopipe run`: plan a recipe, then send, download, journal, and write manifest and report."""

from __future__ import annotations

import argparse
import sys

from .common import load_and_plan, open_report, run_flags, run_options, selection_flags

HELP = "run a recipe: send, download, journal, manifest, report"
EXAMPLE = "ideopipe run recipes/quickstart.yaml --provider emulator --yes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """run's arguments."""
    p.add_argument("recipe", metavar="RECIPE", help="a recipe YAML file")
    p.add_argument(
        "--relock", action="store_true", help="ignore RECIPE.lock.json and write it afresh after the run"
    )
    run_flags(p)
    selection_flags(p)


def handle(args: argparse.Namespace) -> int:
    """Run the plan (honouring the lock file unless --relock); the run's exit code."""
    from .. import api
    from ..console import run_in_terminal

    plan = load_and_plan(args, args.recipe)
    locked = {} if args.relock else api.lock_entries(plan)
    result = run_in_terminal(lambda o: api.run_plan(plan, o), run_options(args, reproduce=locked))
    if args.relock:
        path, count = api.write_lock(args.recipe, out=args.out, provider=args.provider)
        print(f"{path}: {count} task(s) locked", file=sys.stderr)
    if args.open:
        open_report(result.report)
    return int(result.exit_code)
