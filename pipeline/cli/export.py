"""`ideopipe export`: channel-ready copies of a run's good images, locally, at no API cost."""

from __future__ import annotations

import argparse
import sys

from ..export.defaults import DEFAULT_TEMPLATE

HELP = "write channel-sized copies of a run's good images (local, no API cost)"
EXAMPLE = "ideopipe export recipes/out/quickstart --to deliver --sizes instagram-square,x-post --zip"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """export's arguments."""
    p.add_argument("out_dir", metavar="OUT", help="the run's output folder (holds manifest.csv)")
    p.add_argument("--to", required=True, metavar="DIR", help="the delivery folder")
    p.add_argument(
        "--sizes",
        required=True,
        metavar="LIST",
        help="WIDTHxHEIGHT and preset names, comma-separated, e.g. "
        "1200x628,instagram-story; 'original' keeps each image's size",
    )
    p.add_argument(
        "--only",
        default="all",
        metavar="WHICH",
        help="all (default), approved, or stars>=N: which good images",
    )
    p.add_argument("--step", action="append", default=[], metavar="STEP", help="only this step (repeatable)")
    p.add_argument(
        "--fit",
        choices=["cover", "contain"],
        default="cover",
        help="cover: crop around the centre (default); contain: letterbox",
    )
    p.add_argument(
        "--background",
        default="#ffffff",
        metavar="COLOUR",
        help="letterbox and jpeg flattening colour (default #ffffff)",
    )
    p.add_argument("--format", dest="fmt", choices=["png", "jpeg", "webp"], default="png")
    p.add_argument("--quality", type=int, default=90, metavar="N", help="jpeg/webp quality 1-100, default 90")
    p.add_argument(
        "--name",
        default=DEFAULT_TEMPLATE,
        metavar="TEMPLATE",
        help="Jinja file name over the manifest row + width, height, ext, preset "
        f"(default {DEFAULT_TEMPLATE!r})",
    )
    p.add_argument("--presets", metavar="FILE", help="a YAML file of extra or overriding presets")
    p.add_argument("--zip", action="store_true", help="also write delivery.zip of the files")


def handle(args: argparse.Namespace) -> int:
    """Run the export the arguments describe; print a summary or every problem."""
    from .. import preflight
    from ..export.core import export
    from ..export.errors import ExportError

    out_dir = preflight.output_folder(args.out_dir)  # a recipe or a missing folder: one sentence
    try:
        result = export(
            out_dir,
            args.to,
            only=args.only,
            sizes=args.sizes,
            fit=args.fit,
            fmt=args.fmt,
            quality=args.quality,
            name=args.name,
            zip=args.zip,
            presets_file=args.presets,
            background=args.background,
            steps=args.step,
        )
    except ExportError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"ideopipe export: {len(exc.problems)} problem(s); nothing was written", file=sys.stderr)
        return exc.exit_code
    print(
        f"exported {len(result.files)} file(s) to {result.to}: {result.written} written, "
        f"{result.unchanged} unchanged",
        file=sys.stderr,
    )
    print(f"delivery: {result.delivery_csv}" + (f" and {result.zip}" if result.zip else ""), file=sys.stderr)
    if result.stale:
        print(
            f"note: {len(result.stale)} file(s) from an earlier export are no longer in "
            "delivery.csv and were left in place",
            file=sys.stderr,
        )
    return 0
