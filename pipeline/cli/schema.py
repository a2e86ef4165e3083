"""`ideopipe schema`: print the recipe JSON Schema."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "print the recipe JSON Schema (for editors and other tools)"
EXAMPLE = "ideopipe schema > recipe.schema.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """schema takes no arguments."""


def handle(args: argparse.Namespace) -> int:
    """Print the schema as indented JSON."""
    from ..recipe import recipe_schema

    json.dump(recipe_schema(), sys.stdout, indent=2)
    print()
    return 0
