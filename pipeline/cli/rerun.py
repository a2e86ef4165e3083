"""`ideopipe rerun`: re-create manifest images with their recorded seeds and API prompts."""

from __future__ import annotations

import argparse

from .common import open_report, run_flags, run_options

HELP = "re-create images of a manifest by their recorded seeds"
EXAMPLE = "ideopipe rerun out/spring-launch/manifest.csv --where \"step_id == 'print'\" --yes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """rerun's arguments."""
    p.add_argument("manifest", metavar="MANIFEST", help="a manifest file or its output folder")
    p.add_argument("--where", metavar="QUERY", help="a pandas query selecting manifest rows")
    p.add_argument("--step", help="only rows of this step")
    p.add_argument("--out", metavar="DIR", help="output directory (default: <run>-rerun)")
    run_flags(p)
    p.add_argument("--provider", help="override the provider")


def handle(args: argparse.Namespace) -> int:
    """Rerun the selected rows into a new output folder; the run's exit code."""
    from .. import api
    from ..console import run_in_terminal

    result = run_in_terminal(
        lambda o: api.rerun(
            args.manifest, where=args.where, step=args.step, out=args.out, provider=args.provider, options=o
        ),
        run_options(args),
    )
    if args.open:
        open_report(result.report)
    return int(result.exit_code)
