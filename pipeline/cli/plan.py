"""`ideopipe plan`: what a recipe will send, make and cost, step by step."""

from __future__ import annotations

import argparse
import json
import sys

from .common import load_and_plan, selection_flags
from .tables import format_plan

HELP = "show requests, images and cost per step (nothing is sent)"
EXAMPLE = "ideopipe plan recipes/spring-launch.yaml --rows 1-2 --json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """plan's arguments."""
    p.add_argument("recipe", metavar="RECIPE", help="a recipe YAML file")
    p.add_argument("--json", action="store_true", help="print the plan as JSON, with every task")
    selection_flags(p)


def handle(args: argparse.Namespace) -> int:
    """Print the plan as a table, or as JSON with every task."""
    from .. import api

    plan = load_and_plan(args, args.recipe)
    done = api.done_tasks(plan)
    if args.json:
        json.dump(plan.to_json(done), sys.stdout, indent=2, sort_keys=False)
        print()
    else:
        print(format_plan(plan.summary(done)))
    return 0
