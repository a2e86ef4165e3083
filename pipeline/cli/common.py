"""What the verbs share: common flags, checked flag types, and printing results and errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import IdeopipeError, RecipeError


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of at least 1")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0 picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 0 to 65535")
    return value


def non_negative(text: str) -> float:
    """An argparse type: a finite number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of at least 0")
    return value


def selection_flags(p: argparse.ArgumentParser) -> None:
    """The flags that choose what a recipe plans: --set, --limit, --rows, --provider, ..."""
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a recipe var")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N selected rows")
    p.add_argument("--rows", metavar="N-M", help="only data rows N to M (1-based, inclusive)")
    p.add_argument("--provider", help="override the recipe's provider")
    p.add_argument("--prices", metavar="FILE", help="a JSON/YAML file of price overrides")
    p.add_argument("--out", metavar="DIR", help="override output.dir")


def run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of every verb that sends requests (run, rerun)."""
    p.add_argument("--base-url", help="override the provider's base URL")
    p.add_argument("--concurrency", type=positive_int, metavar="N", help="images in flight (default 8)")
    p.add_argument("--max-cost", type=non_negative, metavar="USD", help="refuse or stop past this cost")
    p.add_argument("--yes", action="store_true", help="do not ask before spending")
    p.add_argument("--force", action="store_true", help="redo tasks even if done (pays again)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    p.add_argument("--retry-failed", action="store_true", help="retry tasks that failed before")
    p.add_argument(
        "--retry-in-doubt", action="store_true", help="resend in_doubt tasks (they may be billed twice)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress or summary")
    p.add_argument("--manifest-format", choices=["csv", "parquet", "jsonl"])
    p.add_argument("--open", action="store_true", help="open the report when done")
    p.add_argument(
        "--allow-http", action="store_true", help="allow plain http to a base URL that is not loopback"
    )
    p.add_argument(
        "--verify", action="store_true", help="re-hash every finished file instead of trusting size and mtime"
    )


def run_options(args: argparse.Namespace, **extra: Any) -> Any:
    """The RunOptions that the run flags of `args` ask for."""
    from ..runner import RunOptions

    return RunOptions(
        base_url=args.base_url,
        concurrency=args.concurrency,
        max_cost=args.max_cost,
        yes=args.yes,
        force=args.force,
        fail_fast=args.fail_fast,
        retry_failed=args.retry_failed,
        retry_in_doubt=args.retry_in_doubt,
        quiet=args.quiet,
        manifest_format=args.manifest_format,
        allow_http=args.allow_http,
        verify=args.verify,
        **extra,
    )


def load_and_plan(args: argparse.Namespace, recipe_path: str) -> Any:
    """Load a recipe and plan it with the selection flags of `args`; print its warnings."""
    from .. import api

    plan = api.plan_file(
        recipe_path,
        sets=args.set,
        limit=args.limit,
        rows=args.rows,
        provider=args.provider,
        prices_file=args.prices,
        out=args.out,
    )
    for warning in plan.warnings:
        print(warning, file=sys.stderr)
    return plan


def open_report(path: Path | None) -> None:
    """Open a report in the user's browser (an absolute URI, whatever the working folder)."""
    import webbrowser

    if path is not None:
        webbrowser.open(Path(path).resolve().as_uri())


def usd(value: float, unknown: int = 0) -> str:
    """A cost with four decimals, plus how many requests have no known price."""
    text = f"${value:,.4f}"
    return text + (f" + {unknown} request(s) of unknown price" if unknown else "")


def print_error(exc: IdeopipeError) -> None:
    """Print an error: every problem of a recipe, else its one sentence."""
    if isinstance(exc, RecipeError):
        errors = [p for p in exc.problems if not p.warning]
        for problem in exc.problems:
            print(f"{problem}", file=sys.stderr)
        print(f"ideopipe: {len(errors)} error(s); nothing was sent", file=sys.stderr)
    else:
        print(f"ideopipe: {exc}", file=sys.stderr)
