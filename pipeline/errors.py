"""Every error ideopipe raises, and the exit code each one maps to.

    IdeopipeError                       exit 1: a runtime failure
    ├── InputError                      exit 2: bad input, nothing written, nothing spent
    │   ├── UsageError                  a command-line verb, flag or flag value is wrong
    │   ├── PathError                   a file or folder is missing, unreadable or the wrong kind
    │   ├── JournalCorrupt              the journal is unreadable: `ideopipe doctor OUT` repairs it
    │   ├── MissingEngine               an optional package (pyarrow for parquet) is not installed
    │   ├── RecipeError                 carries every Problem found, not just the first
    │   │   ├── SchemaError             the recipe's structure (JSON Schema)
    │   │   ├── TemplateError           a Jinja template failed to parse or render
    │   │   └── RowError                a CSV / JSON Lines / inline row is unusable
    │   ├── ImageInputError             an input image, mask or URL is unusable
    │   └── BudgetExceeded              the plan costs more than the cap
    ├── ApiError                        the provider answered with an error
    │   ├── AuthError                   401 / 403: the key is wrong or revoked
    │   ├── PaymentError                402: out of credit
    │   ├── BadRequest                  400 / 404 / 413
    │   ├── SafetyRejected              422: the prompt or image failed the safety check
    │   ├── RateLimited                 429: rejected before running, never billed
    │   ├── ServerError                 5xx
    │   ├── ConnectFailed               the request never left this machine
    │   └── OutcomeUnknown              sent, but no answer: it may have run and been billed
    ├── DownloadError                   a result image could not be fetched or decoded
    │   └── DownloadExpired             its URL answered 403 / 404 / 410
    ├── StorageError                    the disk refused a write (full, read-only): the run stops
    └── RunLocked                       another run holds the output directory

A run stopped by a signal is not an error: it ends with its manifest written and the exit
code of SIGNAL_EXIT_CODES (130 for Ctrl-C). `exit_code(exc)` is the one place that maps any
exception to an exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, with where it is and what to do about it."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None
    hint: str | None = None
    warning: bool = False

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.path}: " if self.path else ""
        hint = f" — {self.hint}" if self.hint else ""
        kind = "warning: " if self.warning else ""
        return f"{where}{kind}{field}{self.message}{hint}"


class IdeopipeError(Exception):
    """Base of every ideopipe error."""

    exit_code = 1


class InputError(IdeopipeError):
    """Bad input: the run is refused before anything is written or spent."""

    exit_code = 2


class UsageError(InputError):
    """A command-line verb, flag or flag value is wrong."""


class PathError(InputError):
    """A file or folder given is missing, unreadable, or not the kind expected."""


class JournalCorrupt(InputError):
    """An output folder's journal (.ideopipe/state.db) cannot be read."""


class MissingEngine(InputError):
    """An optional package a feature needs is not installed (e.g. pyarrow for parquet)."""


class RecipeError(InputError):
    """A recipe, its rows or its templates are invalid; carries every problem found."""

    def __init__(self, problems: Iterable[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SchemaError(RecipeError):
    """The recipe does not match schemas/recipe.schema.json."""


class TemplateError(RecipeError):
    """A template failed to parse or render."""


class RowError(RecipeError):
    """A row source (CSV, JSON Lines, inline list) is unusable."""


class ImageInputError(InputError):
    """An input image, mask or image URL given by the recipe is unusable."""


class BudgetExceeded(InputError):
    """The planned cost is above budget_usd or --max-cost."""


class ApiError(IdeopipeError):
    """The provider answered with an error status."""

    retryable = False

    def __init__(self, message: str, status: int | None = None, provider_message: str = ""):
        self.status = status
        self.provider_message = provider_message
        super().__init__(message)


class AuthError(ApiError):
    """401 / 403: the key is missing, wrong or revoked; the run stops."""


class PaymentError(ApiError):
    """402: the account is out of credit; the run stops."""


class BadRequest(ApiError):
    """400 / 404 / 413: the provider refused the request as sent."""


class SafetyRejected(ApiError):
    """422: the safety check refused the prompt or image; never retried."""


class RateLimited(ApiError):
    """429: rejected before it ran, so it was not billed and may be sent again."""

    retryable = True

    def __init__(
        self,
        message: str,
        status: int | None = 429,
        provider_message: str = "",
        retry_after: float | None = None,
        max_inflight: int | None = None,
    ):
        super().__init__(message, status, provider_message)
        self.retry_after = retry_after
        self.max_inflight = max_inflight  # the provider's own limit, when its answer states one


class ServerError(ApiError):
    """5xx: the provider failed; whether it ran and billed is unknown."""


class ConnectFailed(ApiError):
    """The connection failed before the request was sent; safe to send again."""

    retryable = True


class OutcomeUnknown(ApiError):
    """The request went out and no usable answer came back; it may have been billed."""


class DownloadError(IdeopipeError):
    """A result image could not be downloaded, or its bytes are not a valid image."""


class DownloadExpired(DownloadError):
    """The result URL has expired (403 / 404 / 410); the image is lost."""


class StorageError(IdeopipeError):
    """Writing an image or the journal failed (disk full, read-only); the run stops."""


class RunLocked(IdeopipeError):
    """Another ideopipe run is using the same output directory."""


EXIT_OK = 0
EXIT_INTERNAL = 1  # an unexpected exception: a bug to report
SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}  # 128 + the signal number


def exit_code(exc: BaseException) -> int:
    """The process exit code for an exception that ended a command."""
    if isinstance(exc, IdeopipeError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return SIGNAL_EXIT_CODES["SIGINT"]
    return EXIT_INTERNAL
