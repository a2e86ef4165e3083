"""`ideopipe validate`: check recipes and everything they reference, without sending anything."""

from __future__ import annotations

import argparse

from ..errors import InputError
from .common import load_and_plan, print_error, selection_flags, usd

HELP = "check recipes and everything they reference (nothing is sent)"
EXAMPLE = "ideopipe validate recipes/*.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """validate's arguments."""
    p.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe YAML files")
    selection_flags(p)


def handle(args: argparse.Namespace) -> int:
    """Plan each recipe; print one line per good recipe and every problem of the others."""
    code = 0
    for path in args.recipes:
        try:
            plan = load_and_plan(args, path)
        except InputError as exc:  # say what is wrong with each recipe, not just the first
            print_error(exc)
            code = max(code, exc.exit_code)
            continue
        s = plan.summary()
        print(
            f"{path}: ok ({s['requests']} requests, {s['images']} images, "
            f"{usd(s['cost_usd'], s['unknown_cost_requests'])})"
        )
    return code
