"""The `ideopipe` command: a thin skin over the library. Exit codes: 0 ok, 1 failure, 2 bad input."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import IdeopipeError, RecipeError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for a sub-command."""
    def wrap(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn
    return wrap


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a recipe var")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N selected rows")
    p.add_argument("--rows", metavar="N-M", help="only data rows N to M (1-based, inclusive)")
    p.add_argument("--provider", help="override the recipe's provider")
    p.add_argument("--prices", metavar="FILE", help="a JSON/YAML file of price overrides")
    p.add_argument("--out", metavar="DIR", help="override output.dir")


def parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    p = argparse.ArgumentParser(
        prog="ideopipe",
        description="Declarative batch pipelines for the Ideogram image API. Exit codes: "
                    "0 ok, 1 a runtime failure or an unfinished task, 2 invalid input "
                    "(nothing sent), 130 interrupted.")
    p.add_argument("--version", action="version", version=f"ideopipe {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check recipes and everything they reference")
    v.add_argument("recipes", nargs="+", metavar="RECIPE")
    _selection(v)

    pl = sub.add_parser("plan", help="show requests, images and cost per step")
    pl.add_argument("recipe", metavar="RECIPE")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON, with every task")
    _selection(pl)

    sub.add_parser("schema", help="print the recipe JSON Schema")

    from . import cli_run  # the run-time commands live beside, to keep this file short

    cli_run.add_parsers(sub, _selection)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of `python -m pipeline`."""
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except IdeopipeError as exc:
        _print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ideopipe: interrupted", file=sys.stderr)
        return 130


def _print_error(exc: IdeopipeError) -> None:
    if isinstance(exc, RecipeError):
        errors = [p for p in exc.problems if not p.warning]
        for problem in exc.problems:
            print(f"{problem}", file=sys.stderr)
        print(f"ideopipe: {len(errors)} error(s); nothing was sent", file=sys.stderr)
    else:
        print(f"ideopipe: {exc}", file=sys.stderr)


def load_and_plan(args: argparse.Namespace, recipe_path: str) -> Any:
    """Load a recipe and plan it with the selection options of `args`."""
    from . import api

    return api.plan_file(recipe_path, sets=args.set, limit=args.limit, rows=args.rows,
                         provider=args.provider, prices_file=args.prices, out=args.out)


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.recipes:
        try:
            plan = load_and_plan(args, path)
        except RecipeError as exc:
            _print_error(exc)
            failed += 1
            continue
        for warning in plan.warnings:
            print(warning, file=sys.stderr)
        s = plan.summary()
        print(f"{path}: ok ({s['requests']} requests, {s['images']} images, "
              f"{_usd(s['cost_usd'], s['unknown_cost_requests'])})")
    return 2 if failed else 0


@command("plan")
def _plan(args: argparse.Namespace) -> int:
    from . import api

    plan = load_and_plan(args, args.recipe)
    done = api.done_tasks(plan)
    for warning in plan.warnings:
        print(warning, file=sys.stderr)
    if args.json:
        json.dump(plan.to_json(done), sys.stdout, indent=2, sort_keys=False)
        print()
        return 0
    print(format_plan(plan.summary(done)))
    return 0


@command("schema")
def _schema(args: argparse.Namespace) -> int:
    from .recipe import recipe_schema

    json.dump(recipe_schema(), sys.stdout, indent=2)
    print()
    return 0


def _usd(value: float, unknown: int = 0) -> str:
    text = f"${value:,.4f}"
    return text + (f" + {unknown} request(s) of unknown price" if unknown else "")


def format_plan(s: dict[str, Any]) -> str:
    """The plan as a text table."""
    lines = [f"{s['recipe']} · provider {s['provider']} · {s['rows']} rows · "
             f"price table {s['price_table']}",
             f"{'step':<16} {'op':<19} {'requests':>9} {'images':>7} {'done':>6} {'USD':>10}"]
    for sid, st in s["steps"].items():
        usd = f"{st['cost_usd']:.4f}" + ("+?" if st["unknown_cost_requests"] else "")
        lines.append(f"{sid:<16} {st['op']:<19} {st['requests']:>9} {st['images']:>7} "
                     f"{st['done']:>6} {usd:>10}")
    lines.append(f"{'total':<36} {s['requests']:>9} {s['images']:>7} {s['done_requests']:>6} "
                 f"{s['cost_usd']:>10.4f}")
    if s["unknown_cost_requests"]:
        lines.append(f"{s['unknown_cost_requests']} request(s) have no known price: add them "
                     "under `prices:` (e.g. describe: 0.01) for an exact estimate")
    if s["budget_usd"] is not None:
        verdict = "fits" if s["fits_budget"] else "DOES NOT FIT"
        lines.append(f"budget ${s['budget_usd']:.2f}: {verdict} (left to spend: "
                     f"${s['cost_usd']:.4f})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
