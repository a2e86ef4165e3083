"""`ideopipe doctor`: check an output folder's journal and files, and repair what it can."""

from __future__ import annotations

import argparse

HELP = "check an output folder's journal and files; --repair rebuilds what it can"
EXAMPLE = "ideopipe doctor out/spring-launch --repair"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """doctor's arguments."""
    p.add_argument("out_dir", metavar="OUT_DIR", help="an output folder a run wrote")
    p.add_argument(
        "--repair", action="store_true", help="rebuild what it can from the files, the store and the manifest"
    )


def handle(args: argparse.Namespace) -> int:
    """Print each problem and repair; 0 when healthy (or repaired), 1 otherwise."""
    from .. import preflight
    from ..upkeep import doctor

    out_dir = preflight.output_folder(args.out_dir)
    found = doctor(out_dir, repair=args.repair)
    for line in found.problems:
        print(f"problem: {line}")
    for line in found.repaired:
        print(f"repaired: {line}")
    verdict = (
        "healthy"
        if not found.problems
        else "repaired"
        if found.healthy
        else (f"run `ideopipe doctor {args.out_dir} --repair` to fix")
    )
    print(f"{found.images} image(s) checked; {verdict}")
    return 0 if found.healthy else 1
