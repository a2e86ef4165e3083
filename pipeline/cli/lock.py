"""`ideopipe lock`: write RECIPE.lock.json (seeds and API prompts) from the recipe's last run."""

from __future__ import annotations

import argparse

HELP = "write RECIPE.lock.json from the recipe's last run"
EXAMPLE = "ideopipe lock recipes/spring-launch.yaml --provider emulator"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """lock's arguments."""
    p.add_argument("recipe", metavar="RECIPE", help="a recipe YAML file")
    p.add_argument("--out", metavar="DIR", help="override output.dir")
    p.add_argument("--provider", help="the provider the run used, if not the recipe's")


def handle(args: argparse.Namespace) -> int:
    """Write the lock file and say how many tasks it holds."""
    from .. import api

    path, count = api.write_lock(args.recipe, out=args.out, provider=args.provider)
    print(f"{path}: {count} task(s) locked")
    return 0
