"""The `ideopipe` command: one module per verb, each a thin skin over one library function.

A verb is a module `pipeline/cli/<verb>.py` with HELP (one line), EXAMPLE (one command line),
`add_arguments(parser)` and `handle(args) -> int`; it is listed once in VERBS below. Exit
codes come from `pipeline.errors.exit_code`: each exception class carries its own.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from ..errors import EXIT_OK, IdeopipeError, UsageError, exit_code
from .common import print_error

VERBS = ("validate", "plan", "schema", "run", "rerun", "lock", "report", "runs", "gc", "doctor", "emulator")

DESCRIPTION = "Declarative batch pipelines for the Ideogram image API."
EPILOG = """\
exit codes: 0 ok, 1 a runtime failure or an unfinished task, 2 invalid input or usage
(nothing sent; also when no command is given), 130 interrupted (Ctrl-C), 143 terminated.

start here:
  ideopipe run recipes/quickstart.yaml        a free run on the embedded emulator
  ideopipe COMMAND --help                     a command's flags and an example"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes raise UsageError, so main() decides the exit code."""

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix("ideopipe").strip()
        raise UsageError(f"{verb + ': ' if verb else ''}{message} (see `{self.prog} --help`)")


def parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    raw = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="ideopipe", description=DESCRIPTION, epilog=EPILOG, formatter_class=raw)
    p.add_argument("--version", action="version", version=f"ideopipe {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=_Parser)
    for name in VERBS:
        verb = importlib.import_module(f"{__name__}.{name}")
        sp = sub.add_parser(
            name,
            help=verb.HELP,
            description=verb.HELP[0].upper() + verb.HELP[1:],
            epilog=f"example:\n  {verb.EXAMPLE}",
            formatter_class=raw,
        )
        verb.add_arguments(sp)
        sp.set_defaults(handle=verb.handle)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of `python -m pipeline`; returns the exit code."""
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        _check_verb(argv)
        p = parser()
        args = p.parse_args(argv)
        if args.command is None:
            p.print_help(sys.stderr)
            return UsageError.exit_code
        return int(args.handle(args))
    except IdeopipeError as exc:
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print("ideopipe: interrupted", file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:  # `ideopipe plan --json … | head`: the reader left, not an error
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:  # the last resort: a bug, said in one sentence
        if os.environ.get("IDEOPIPE_DEBUG") == "1":
            raise
        print(
            f"ideopipe: internal error: {type(exc).__name__}: {exc} — please report it "
            "(IDEOPIPE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return exit_code(exc)


def _check_verb(argv: list[str]) -> None:
    """Refuse an unknown verb with the closest known one."""
    if argv and not argv[0].startswith("-") and argv[0] not in VERBS:
        close = difflib.get_close_matches(argv[0], VERBS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"unknown command '{argv[0]}' — {hint}(commands: {', '.join(VERBS)})")


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
