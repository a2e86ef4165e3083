"""The manifest: one pandas row per output image (or description), built from the journal."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import journal as jr
from .files import write_under
from .planner import Plan
from .status import BILLED as status_billed
from .status import Status

SCHEMA_VERSION = 1

COLUMNS: dict[str, str] = {
    "schema_version": "Int64",
    "run_id": "string",
    "recipe": "string",
    "recipe_sha256": "string",
    "row_index": "Int64",
    "row_key": "string",
    "matrix": "string",
    "step_id": "string",
    "op": "string",
    "provider": "string",
    "endpoint": "string",
    "model": "string",
    "image_id": "string",
    "parent_image_id": "string",
    "image_index": "Int64",
    "prompt": "string",
    "api_prompt": "string",
    "negative_prompt": "string",
    "seed": "Int64",
    "seed_source": "string",
    "aspect_ratio": "string",
    "resolution": "string",
    "rendering_speed": "string",
    "style_type": "string",
    "magic_prompt": "string",
    "is_image_safe": "boolean",
    "description": "string",
    "status": "string",
    "error": "string",
    "cost_usd": "Float64",
    "file": "string",
    "sha256": "string",
    "width": "Int64",
    "height": "Int64",
    "bytes": "Int64",
    "url": "string",
    "attempts": "Int64",
    "latency_s": "Float64",
    "started_at": "string",
    "finished_at": "string",
    "task_id": "string",
    "reused": "boolean",
    "produced_by_run": "string",
}
#: image statuses whose request was billed (in_doubt: may have been)
BILLED = frozenset({*status_billed, Status.IN_DOUBT})
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def build(plan: Plan, journal: jr.Journal, run_id: str) -> pd.DataFrame:
    """The manifest of a plan as the journal records it now, seen from the run `run_id`."""
    states = journal.states({t.id for t in plan.tasks})
    attempts = journal.attempts({t.id for t in plan.tasks})
    sent = journal.sent_params(t.id for t in plan.tasks if t.deferred)
    records: list[dict[str, Any]] = []
    for task in plan.tasks:
        st = states.get(task.id)
        images = {img["image_id"]: img for img in (st.images if st else ())}
        ids = list(task.image_ids)
        if task.op == "describe":
            ids += sorted(i for i in images if i.startswith(task.image_ids[0] + "-"))
        att = attempts.get(task.id, {})
        per_image = None if task.cost_usd is None else task.cost_usd / max(task.num_images, 1)
        params = {**task.params, **sent.get(task.id, {})}
        for n, image_id in enumerate(ids):
            img = images.get(image_id)
            status = image_status(st, img)
            rel = (img or {}).get("file") or (task.outputs[n] if n < len(task.outputs) else None)
            ok = status == Status.OK
            # an image the API returned is billed even if its download then failed
            billed = status in BILLED or (img is not None and status == Status.FAILED)
            produced_by = att.get("run_id") if status not in NOT_STARTED else None
            records.append(
                {
                    "schema_version": SCHEMA_VERSION,
                    "run_id": run_id,
                    "recipe": str(plan.recipe.shown),
                    "recipe_sha256": plan.recipe.sha256,
                    "row_index": task.row_index,
                    "row_key": task.row_key,
                    "matrix": json.dumps(dict(task.matrix), sort_keys=True, default=str),
                    "step_id": task.step_id,
                    "op": task.op,
                    "provider": plan.provider,
                    "endpoint": task.endpoint,
                    "model": task.model,
                    "image_id": image_id,
                    "parent_image_id": task.parent_image_id,
                    "image_index": task.image_indexes[min(n, len(task.image_indexes) - 1)],
                    "prompt": params.get("prompt"),
                    "api_prompt": (img or {}).get("api_prompt"),
                    "negative_prompt": params.get("negative_prompt"),
                    "seed": (img or {}).get("seed") if (img or {}).get("seed") is not None else task.seed,
                    "seed_source": task.seed_source,
                    "aspect_ratio": params.get("aspect_ratio"),
                    "resolution": (img or {}).get("resolution") or params.get("resolution"),
                    "rendering_speed": params.get("rendering_speed"),
                    "style_type": (img or {}).get("style_type") or params.get("style_type"),
                    "magic_prompt": params.get("magic_prompt"),
                    "is_image_safe": None
                    if not img or img.get("is_image_safe") is None
                    else bool(img["is_image_safe"]),
                    "description": (img or {}).get("description"),
                    "status": status,
                    "error": (img or {}).get("error") or (st.error if st and not ok else None),
                    "cost_usd": (per_image if billed else 0.0) if per_image is not None else None,
                    "file": rel if ok else None,
                    "sha256": (img or {}).get("sha256") if ok else None,
                    "width": (img or {}).get("width"),
                    "height": (img or {}).get("height"),
                    "bytes": (img or {}).get("bytes"),
                    "url": (img or {}).get("url"),
                    "attempts": att.get("attempts", 0),
                    "latency_s": att.get("latency_s"),
                    "started_at": _iso(att.get("started_at")),
                    "finished_at": _iso(att.get("finished_at")),
                    "task_id": task.id,
                    "reused": ok and produced_by != run_id,
                    "produced_by_run": produced_by,
                }
            )
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame.astype(COLUMNS)


NOT_STARTED = frozenset({Status.PENDING, Status.SKIPPED_BUDGET, Status.SKIPPED_PARENT})


def unchanged(plan: Plan, out_dir: Path, fmt: str, since: float, run_id: str) -> pd.DataFrame | None:
    """The manifest on disk, when nothing changed since it was written (a no-op resume).

    The file stays as it is; the frame returned is seen from `run_id` (nothing reused
    was produced by it).
    """
    path = out_dir / f"manifest.{fmt}"
    try:
        if path.is_symlink() or path.stat().st_mtime <= since:
            return None
        frame = read_manifest(path)
    except (OSError, ValueError):
        return None
    if "produced_by_run" not in frame or len(frame) == 0:
        return None
    ids = set(frame["task_id"].to_numpy(dtype=object, na_value=None))
    if ids != {t.id for t in plan.tasks} or not frame["recipe_sha256"].eq(plan.recipe.sha256).all():
        return None
    frame["run_id"] = run_id
    frame["reused"] = frame["status"].eq(Status.OK) & frame["produced_by_run"].ne(run_id)
    return frame


def image_status(st: jr.TaskState | None, img: Mapping[str, Any] | None) -> Status:
    """The manifest status of one planned image: `ok` whichever run produced it."""
    if st is None:
        return Status.PENDING
    task = Status(st.status)
    if task in (Status.DONE, Status.RESPONDED):
        if img is None:
            return Status.FAILED  # the answer had fewer images than asked for
        s = Status(img["status"])
        return Status.NOT_SAVED if s == Status.PENDING else s
    return Status.IN_DOUBT if task == Status.SENDING else task


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def encode(frame: pd.DataFrame, fmt: str = "csv") -> bytes:
    """The manifest file's bytes in a format: csv (formula-safe), jsonl or parquet."""
    if fmt == "csv":
        safe = frame.copy()
        for col in safe.columns:
            if safe[col].dtype == "string":
                risky = safe[col].str.startswith(_FORMULA).fillna(False).astype(bool)
                if risky.any():
                    safe.loc[risky, col] = "'" + safe.loc[risky, col]
        text: str = safe.to_csv(index=False)
        return text.encode("utf-8")
    if fmt == "jsonl":
        lines: str = frame.to_json(orient="records", lines=True, force_ascii=False)
        return lines.encode("utf-8")
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    raise ValueError(f"unknown manifest format {fmt!r}")


def write(frame: pd.DataFrame, out_dir: Path, fmt: str = "csv") -> Path:
    """Write the manifest atomically as manifest.csv / .parquet / .jsonl (kept if unchanged)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"manifest.{fmt}"
    data = encode(frame, fmt)
    with contextlib.suppress(OSError):
        if dest.stat().st_size == len(data) and not dest.is_symlink() and dest.read_bytes() == data:
            return dest  # unchanged: a resumed 10,000-image run does not rewrite it
    write_under(out_dir, dest.name, data)
    return dest


def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest file (csv, parquet or jsonl) as a DataFrame with proper dtypes."""
    path = Path(path)
    if path.is_dir():
        found = [path / f"manifest.{ext}" for ext in ("csv", "parquet", "jsonl")]
        path = next((p for p in found if p.exists()), found[0])
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix == ".jsonl":
        frame = pd.read_json(path, lines=True, dtype=False)
    else:
        frame = pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""])
        for col in frame.columns:
            if COLUMNS.get(col) == "string":
                frame[col] = _restore(frame[col])
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Each known column in its dtype; a number cell that is not one becomes NA and is listed
    in `frame.attrs["unreadable"]` ({(row position, column): the text}) for manifest_check."""
    unreadable: dict[tuple[int, str], str] = {}
    for col, dtype in COLUMNS.items():
        if col not in frame.columns:
            continue
        values = frame[col]
        if dtype == "boolean":
            if values.dtype != bool:
                values = values.astype("string").str.lower().map({"true": True, "false": False})
        elif dtype in ("Int64", "Float64") and not pd.api.types.is_integer_dtype(values.dtype):
            fast = _clean_numbers(values, dtype == "Int64")
            if fast is not None:
                frame[col] = fast.astype(dtype)
                continue
            parse = _integer if dtype == "Int64" else _finite
            cells = []
            for pos, cell in enumerate(values.tolist()):
                number = parse(cell)
                if number is _BAD:
                    unreadable[(pos, col)] = str(cell)[:40]
                    number = None
                cells.append(number)
            values = pd.Series(cells, index=values.index, dtype=object)
        frame[col] = values.astype(dtype)
    frame.attrs["unreadable"] = unreadable
    return frame


def _clean_numbers(values: pd.Series, integer: bool) -> pd.Series | None:
    """The column as numbers when every cell is a clean one (the usual case, fast), else None."""
    import numpy as np

    try:
        numbers = pd.to_numeric(values)
    except (ValueError, TypeError, OverflowError):
        return None
    if numbers.dtype.kind == "i":
        return numbers
    if numbers.dtype.kind != "f":
        return None
    arr = numbers.to_numpy(dtype=float, na_value=np.nan)
    missing = values.isna().to_numpy()
    ok = np.isfinite(arr)
    if integer:
        ok &= np.abs(arr) < 2**53
        ok[ok] &= arr[ok] == np.floor(arr[ok])
    return numbers if bool((ok | missing).all()) else None


_BAD = object()
_INT64 = 2**63


def _missing(cell: Any) -> bool:
    return cell is None or cell is pd.NA or (isinstance(cell, float) and cell != cell) or cell == ""


def _integer(cell: Any) -> Any:
    """An int64 from a manifest cell, None when empty, _BAD when it is not one (1e400, 30 digits)."""
    if isinstance(cell, str) and cell.strip() == "":
        return None
    if _missing(cell):
        return None
    number = _finite(cell)
    if number is _BAD or number is None or isinstance(number, bool):
        return _BAD
    if isinstance(number, float):
        if not number.is_integer():
            return _BAD
        number = int(number)
    return number if -_INT64 <= number < _INT64 else _BAD


def _finite(cell: Any) -> Any:
    """A finite number from a manifest cell, None when empty, _BAD when not one ('nan', 'inf')."""
    if isinstance(cell, bool):
        return _BAD
    if isinstance(cell, str):
        text = cell.strip()
        if text == "":
            return None
        if "_" in text:
            return _BAD
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return _BAD
        return number if number == number and abs(number) != float("inf") else _BAD
    if _missing(cell):
        return None
    if isinstance(cell, int):
        return cell
    try:
        number = float(cell)
    except (TypeError, ValueError, OverflowError):
        return _BAD
    return number if number == number and abs(number) != float("inf") else _BAD


def _restore(column: pd.Series) -> pd.Series:
    """Undo the quote `encode` put before cells a spreadsheet would run as formulas."""
    text = column.astype("string")
    quoted = (text.str.startswith("'") & text.str[1:2].isin(_FORMULA)).fillna(False).astype(bool)
    if not quoted.any():
        return column
    column = column.copy()
    column[quoted] = text[quoted].str[1:]
    return column
