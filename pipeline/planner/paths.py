"""Output names: one safe relative path per image, refused at plan time when unsafe."""

from __future__ import annotations

import re

from ..errors import Problem
from ..files import TEMP_SUFFIX_LEN

_PLAIN_PATH = re.compile(r"^(?!\.ideopipe(?:/|$))(?:[\w\-][\w\-. ]{0,200}/)*[\w\-][\w\-. ]{0,200}$")
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_RESERVED_ANY = re.compile(r"(?:^|/)(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.[^/]*)?(?:/|$)", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")

MAX_NAME_BYTES = 255  # one path component, on every common file system
MAX_PATH_BYTES = 4095  # a whole absolute path (PATH_MAX 4096 counts the final NUL)
# While an image is written it is named `.<name>.<8 random characters>.part` beside its
# final name (pipeline/files.py, tempfile.mkstemp), so a name needs this much room to spare.
TEMP_EXTRA_BYTES = TEMP_SUFFIX_LEN  # the guarded writer's temporary name: ".<name>.<8 hex>.part"
# The run's own files at the output root: an image there would be overwritten by them (or
# overwrite them). Compared case-insensitively, for case-insensitive file systems.
RUN_FILES = frozenset({"manifest.csv", "manifest.parquet", "manifest.jsonl", "report.html", ".ideopipe"})


_ASCII_OTHER = re.compile(r"[^A-Za-z0-9_\-. /]")
_RESERVED_STEMS = frozenset(
    ["con", "prn", "aux", "nul", *(f"com{d}" for d in range(10)), *(f"lpt{d}" for d in range(10))]
)


def is_plain(text: str) -> bool:
    """True for the usual safe path (word characters, dashes, dots and spaces in between).

    An ASCII path (nearly every one) is checked part by part, a few times faster than
    the regular expressions, which decide for any other and define what plain means.
    """
    if not text.isascii():
        return _is_plain_by_pattern(text)
    if _ASCII_OTHER.search(text) or text.endswith((" ", ".")):
        return False
    for part in text.split("/"):
        if (
            not part
            or len(part) > 201
            or part[0] in ". "
            or part.partition(".")[0].lower() in _RESERVED_STEMS
        ):
            return False
    return text.partition("/")[0].casefold() not in RUN_FILES


def _is_plain_by_pattern(text: str) -> bool:
    return (
        _PLAIN_PATH.match(text) is not None
        and "/." not in text
        and not text.endswith((" ", "."))
        and not _RESERVED_ANY.search(text)
        and text.partition("/")[0].casefold() not in RUN_FILES
    )


def short_enough(dir_bytes: int) -> int:
    """How many characters a relative path may have and surely fit (4 bytes a character at most)."""
    by_name = (MAX_NAME_BYTES - TEMP_EXTRA_BYTES) // 4
    by_path = (MAX_PATH_BYTES - dir_bytes - 1 - TEMP_EXTRA_BYTES) // 4
    return max(0, min(by_name, by_path))


def sanitize(text: str) -> str | Problem:
    """A safe relative POSIX path inside the output dir, or the reason it is refused."""
    if is_plain(text):
        return text
    if "\x00" in text:
        return Problem("contains a NUL character")
    text = text.strip().replace("\\", "/")
    if not text:
        return Problem("renders to an empty path")
    if text.startswith("/") or _DRIVE.match(text):
        return Problem("is an absolute path; output.file must stay inside output.dir")
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return Problem("contains '..'; output.file must stay inside output.dir")
        if _RESERVED.match(part):
            return Problem(f"{part!r} is a reserved file name on Windows")
        if any(c in part for c in '<>:"|?*') or any(ord(c) < 32 for c in part):
            return Problem(f"{part!r} is not a portable file name")
        parts.append(part)
    if not parts:
        return Problem("renders to an empty path")
    if parts[0].casefold() == ".ideopipe":
        return Problem("'.ideopipe' is reserved for ideopipe's own state")
    if parts[0].casefold() in RUN_FILES:
        return Problem(
            f"{parts[0]!r} at the top of output.dir is the run's own manifest or report; "
            "choose another name or put the images in a folder"
        )
    return "/".join(parts)


def length_problem(rel: str, out_dir_bytes: int) -> str | None:
    """Why `rel` is too long for a file system (counting the temporary name), else None."""
    size = len(rel.encode("utf-8", "surrogatepass"))
    if size + TEMP_EXTRA_BYTES > MAX_NAME_BYTES:  # some component may be too long
        for part in rel.split("/"):
            n = len(part.encode("utf-8", "surrogatepass"))
            if n + TEMP_EXTRA_BYTES > MAX_NAME_BYTES:
                shown = part if len(part) <= 40 else part[:37] + "..."
                return (
                    f"the name {shown!r} is {n:,} bytes; a file name may have at most "
                    f"{MAX_NAME_BYTES - TEMP_EXTRA_BYTES} (255 less {TEMP_EXTRA_BYTES} for "
                    "the temporary name used while writing)"
                )
    total = out_dir_bytes + 1 + size + TEMP_EXTRA_BYTES
    if total > MAX_PATH_BYTES:
        return (
            f"the full path would be {total:,} bytes with its temporary name; a path may "
            f"have at most {MAX_PATH_BYTES:,}"
        )
    return None
