"""Checks before anything is written or sent: each path is the kind the verb needs.

Each check raises an InputError subclass whose message is one sentence that names the
path, says what it is instead, and what to give. Nothing here imports pandas or sqlite
results beyond a single read-only query.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .errors import JournalCorrupt, MissingEngine, PathError, StorageError
from .journal_schema import recovery

MANIFEST_SUFFIXES = (".csv", ".parquet", ".jsonl")
RECIPE_SUFFIXES = (".yaml", ".yml")
JOURNAL = Path(".ideopipe") / "state.db"


def is_output_folder(path: Path) -> bool:
    """Whether a run has written here (a journal exists)."""
    return (path / JOURNAL).is_file()


def recipe_file(path: str | Path) -> None:
    """Refuse, before parsing, what is clearly not a recipe: an output folder, a manifest, an empty file."""
    p = Path(path)
    if p.is_dir() and is_output_folder(p):
        raise PathError(
            f"{p}: an output folder, not a recipe — give the recipe YAML file "
            "that wrote it (`report`, `runs` and `rerun` take output folders)"
        )
    if p.is_file():
        if p.suffix in MANIFEST_SUFFIXES:
            kind = "a manifest" if p.stem.startswith("manifest") else f"a {p.suffix[1:]} file"
            raise PathError(
                f"{p}: {kind}, not a recipe — give the recipe YAML file (`ideopipe rerun` takes manifests)"
            )
        if p.stat().st_size == 0:
            raise PathError(
                f"{p}: the file is empty — a recipe is a YAML mapping with "
                "version, name and steps (see recipes/quickstart.yaml)"
            )


def output_folder(path: str | Path) -> Path:
    """An existing folder a run wrote; a manifest file inside one stands for its folder."""
    p = Path(path)
    if p.is_file() and p.suffix in MANIFEST_SUFFIXES and is_output_folder(p.parent):
        return p.parent
    if not p.exists():
        raise PathError(
            f"{p}: no such folder — give the folder a run wrote "
            "(the recipe's output.dir, e.g. out/quickstart)"
        )
    if p.is_file():
        kind = "a recipe" if p.suffix in RECIPE_SUFFIXES else "a file"
        raise PathError(
            f"{p}: {kind}, not an output folder — give the folder a run wrote "
            "(the recipe's output.dir, e.g. out/quickstart)"
        )
    if not is_output_folder(p):
        raise PathError(
            f"{p}: not an ideopipe output folder (no {JOURNAL}) — give the "
            "folder a run wrote (the recipe's output.dir, e.g. out/quickstart)"
        )
    return p


def manifest_file(path: str | Path) -> Path:
    """The manifest file a path names: the file itself, or the one inside an output folder."""
    p = Path(path)
    if p.is_dir():
        found = [p / f"manifest{s}" for s in MANIFEST_SUFFIXES if (p / f"manifest{s}").is_file()]
        if not found:
            hint = (
                (f"the run may have stopped before writing it: `ideopipe doctor {p} --repair` rebuilds it")
                if is_output_folder(p)
                else "give a manifest file or the output folder a run wrote"
            )
            raise PathError(f"{p}: no manifest.csv, .parquet or .jsonl here — {hint}")
        return found[0]
    if not p.exists():
        raise PathError(
            f"{p}: no such manifest — give a manifest file or the output folder "
            "a run wrote (e.g. out/quickstart/manifest.csv)"
        )
    if p.suffix in RECIPE_SUFFIXES:
        raise PathError(
            f"{p}: a recipe, not a manifest — give the manifest its run wrote "
            "(e.g. out/quickstart/manifest.csv)"
        )
    if p.suffix not in MANIFEST_SUFFIXES:
        raise PathError(f"{p}: not a manifest (expected a .csv, .parquet or .jsonl file that a run wrote)")
    if not is_output_folder(p.parent):
        raise PathError(
            f"{p}: this manifest is not inside the output folder its run wrote (no "
            f"{JOURNAL} beside it) — give the manifest in that folder"
        )
    if p.suffix == ".parquet":
        engine("pyarrow", "reading a parquet manifest")
    return p


def provider_usable(
    name: str, base_url: str | None, environ: Mapping[str, str] | None, allow_http: bool = False
) -> None:
    """Refuse an unknown provider, a missing or malformed key, or a base URL that would carry
    the key badly, before the output folder is created (a refused run writes nothing)."""
    from . import providers

    provider = providers.get(name, base_url)
    provider.key(dict(environ) if environ is not None else None)
    provider.check_transport(allow_http)


def writable_folder(path: Path) -> None:
    """Create the output folder if needed and prove a file can be written in it."""
    p = Path(path)
    blocker = next((a for a in (p, *p.parents) if a.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise PathError(
            f"{p}: cannot create the output folder: {blocker} is a file — choose another output.dir or --out"
        )
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p, prefix=".ideopipe-probe-"):
            pass
    except OSError as exc:
        raise PathError(
            f"{p}: the output folder cannot be created or written "
            f"({exc.strerror or exc}) — choose another output.dir or --out"
        ) from exc


def engine(module: str, purpose: str, extra: str = "parquet") -> None:
    """Refuse early, in one sentence, when an optional package is not importable."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingEngine(
            f"{purpose} needs {module}, which is not installed: "
            f"pip install 'ideopipe[{extra}]' (or use the csv format)"
        ) from exc


def corrupt(out_dir: Path, exc: sqlite3.DatabaseError) -> JournalCorrupt | StorageError:
    """The error for a journal that sqlite refused: damaged, or merely unusable right now."""
    db = Path(out_dir) / JOURNAL
    if isinstance(exc, sqlite3.OperationalError):
        return StorageError(f"{db}: the journal cannot be opened ({exc})")
    return JournalCorrupt(f"{db}: the journal is damaged ({exc}); {recovery(db)}")


@contextlib.contextmanager
def journal_errors(out_dir: Path) -> Iterator[None]:
    """Turn sqlite's errors about an output folder's journal into one clear sentence."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise corrupt(out_dir, exc) from exc


def journal_readable(out_dir: Path) -> None:
    """Refuse a journal that exists but that sqlite cannot read, before a run starts."""
    db = Path(out_dir) / JOURNAL
    if not db.exists():
        return
    with journal_errors(out_dir):
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    if not os.access(db, os.R_OK | os.W_OK):
        raise PathError(f"{db}: the journal cannot be written — check the folder's permissions")
