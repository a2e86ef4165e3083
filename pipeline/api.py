"""The library functions the CLI and users call: plan a file, run it, read what it made."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import preflight
from .errors import InputError, PathError, Problem, RecipeError, StorageError
from .files import write_atomic
from .journal import Journal

if TYPE_CHECKING:  # planner, runner and pandas load only when a plan, a run or a frame needs them
    import pandas as pd

    from .planner import Plan
    from .runner import RunOptions, RunResult

MANIFEST_COLUMNS = ("run_id", "task_id", "image_id", "step_id", "op", "status")


def plan_file(
    path: str | Path,
    *,
    sets: Sequence[str] | None = None,
    limit: int | None = None,
    rows: str | None = None,
    provider: str | None = None,
    prices_file: str | None = None,
    out: str | None = None,
) -> Plan:
    """Load and plan a recipe file with the CLI's selection options."""
    preflight.recipe_file(path)
    from . import yamlsource
    from .planner import plan
    from .pricing import check_prices
    from .recipe import load_recipe, parse_sets
    from .rows import parse_range

    recipe = load_recipe(path, parse_sets(list(sets or [])))
    prices = None
    if prices_file:
        loaded = yamlsource.load(Path(prices_file)).data
        why = check_prices(loaded)
        if why:
            raise RecipeError([Problem(why, file=prices_file)])
        prices = loaded
    if limit is not None and limit < 1:
        raise RecipeError([Problem(f"--limit {limit}: expected a positive number")])
    out_dir = Path(out).resolve() if out else None
    return plan(
        recipe,
        provider=provider,
        limit=limit,
        row_range=parse_range(rows) if rows else None,
        prices=prices,
        out_dir=out_dir,
    )


def done_tasks(p: Plan) -> set[str]:
    """Ids of the plan's tasks already complete in its output directory's journal."""
    db = Journal.path_for(p.out_dir)
    if not db.exists():
        return set()
    with preflight.journal_errors(p.out_dir), Journal.open_readonly(p.out_dir) as journal:
        return journal.completed_ids({t.id for t in p.tasks}, p.out_dir)


def run_plan(p: Plan, options: RunOptions | None = None) -> RunResult:
    """Run a plan (see runner.run), once its output folder and manifest engine are usable."""
    from . import runner

    options = options or runner.RunOptions()
    fmt = options.manifest_format or p.recipe.data.get("output", {}).get("manifest_format")
    if fmt == "parquet":
        preflight.engine("pyarrow", "a parquet manifest")
    preflight.provider_usable(
        p.provider, options.base_url or p.recipe.provider_base_url, options.environ, options.allow_http
    )
    preflight.writable_folder(p.out_dir)
    preflight.journal_readable(p.out_dir)
    with preflight.journal_errors(p.out_dir):
        return runner.run(p, options)


def run_file(path: str | Path, options: RunOptions | None = None, **selection: Any) -> RunResult:
    """Plan and run a recipe file; selection takes plan_file's keywords."""
    from .runner import RunOptions

    p = plan_file(path, **selection)
    options = options or RunOptions()
    if not options.reproduce:
        options.reproduce = lock_entries(p)
    return run_plan(p, options)


# -- lock files ---------------------------------------------------------------

LOCK_VERSION = 1


def lock_path(recipe_path: str | Path) -> Path:
    """`recipes/launch.yaml` -> `recipes/launch.yaml.lock.json`."""
    path = Path(recipe_path)
    return path.with_name(path.name + ".lock.json")


def lock_entries(p: Plan) -> dict[str, list[dict[str, Any]]]:
    """The recorded seeds and API prompts of the plan's tasks, from the recipe's lock file."""
    from .lockfile import read_entries

    path = lock_path(p.recipe.path)
    if not path.exists():
        return {}
    return read_entries(path, p.tasks)  # every entry checked: at most num_images valid records


def write_lock(
    recipe_path: str | Path, out: str | None = None, provider: str | None = None
) -> tuple[Path, int]:
    """Write `<recipe>.lock.json`: each finished task's seeds and API prompts."""
    p = plan_file(recipe_path, out=out, provider=provider)
    tasks: dict[str, list[dict[str, Any]]] = {}
    if not Journal.path_for(p.out_dir).exists():
        raise PathError(
            f"{p.out_dir}: no run recorded here, nothing to lock — run the recipe "
            "first (or give its output folder with --out)"
        )
    with preflight.journal_errors(p.out_dir), Journal.open_readonly(p.out_dir) as journal:
        states = journal.states({t.id for t in p.tasks})
        providers = {r["provider"] for r in journal.runs()}
    for t in p.tasks:
        st = states.get(t.id)
        if st is None or st.status != "done" or t.op == "describe":
            continue
        images = sorted((i for i in st.images if i["status"] == "ok"), key=lambda i: i["idx"])
        if images:
            tasks[t.id] = [{"seed": i["seed"], "api_prompt": i["api_prompt"]} for i in images]
    if not tasks:
        raise InputError(_why_nothing_to_lock(p, recipe_path, providers))
    path = lock_path(recipe_path)
    body = {
        "schema_version": LOCK_VERSION,
        "recipe": p.recipe.name,
        "recipe_sha256": p.recipe.sha256,
        "provider": p.provider,
        "tasks": tasks,
    }
    write_atomic(path, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
    return path, len(tasks)


def _why_nothing_to_lock(p: Plan, recipe_path: str | Path, providers: set[str]) -> str:
    others = sorted(providers - {p.provider})
    if others:
        return (
            f"{p.out_dir}: no finished task of provider '{p.provider}' to lock; the runs "
            f"here used {', '.join(repr(o) for o in others)} — a lock pins the seeds of "
            f"one provider: `ideopipe lock {recipe_path} --provider {others[0]}` locks that "
            "rehearsal, or lock again after a real run"
        )
    return f"{p.out_dir}: none of the recipe's tasks has finished yet, nothing to lock — run the recipe first"


# -- reruns by seed -----------------------------------------------------------


def rerun(
    manifest_path: str | Path,
    *,
    where: str | None = None,
    step: str | None = None,
    out: str | None = None,
    provider: str | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Re-create selected manifest images with their recorded seeds and API prompts."""
    from .manifest_check import RERUN_COLUMNS, ManifestError, rerun_problems
    from .planner import Plan
    from .planner.rerun import rerun_tasks
    from .pricing import default_table
    from .recipe import load_recipe

    manifest_path = preflight.manifest_file(manifest_path)
    source_dir = preflight.output_folder(manifest_path.parent)
    frame = _read_frame(manifest_path, source_dir)
    missing = [c for c in RERUN_COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(rerun_problems(frame, (), str(manifest_path)))
    frame = frame[frame["status"].isin(["ok", "cached"]) & frame["op"].ne("describe")]
    if step:
        frame = frame[frame["step_id"] == step]
    if where:
        from .where import select

        frame = select(frame, where)  # a checked tree over the columns, never pandas' query
    if frame.empty:
        raise InputError("no manifest rows selected: nothing to rerun")
    with preflight.journal_errors(source_dir), Journal.open_readonly(source_dir) as journal:
        specs = {tid: journal.spec(tid) for tid in set(frame["task_id"])}
        run_info = journal.run()
    recipe = load_recipe((run_info or {}).get("recipe") or frame["recipe"].iloc[0])
    steps = {s["id"] for s in recipe.steps}
    problems = rerun_problems(frame, steps, str(manifest_path))
    if problems:
        raise ManifestError(problems)
    out_dir = Path(out).resolve() if out else source_dir.with_name(source_dir.name + "-rerun")
    files = frame.set_index("image_id")["file"].to_dict()
    tasks, reproduce = rerun_tasks(
        frame.itertuples(index=False),
        specs,
        source_dir,
        lambda iid: files.get(iid) or _parent_file(source_dir, iid),
        steps=steps,
    )
    p = Plan(recipe, tasks, [], default_table(), provider or str(frame["provider"].iloc[0]), out_dir)
    from .runner import RunOptions

    options = options or RunOptions()
    options.reproduce = reproduce
    return run_plan(p, options)


def _parent_file(source_dir: Path, image_id: str) -> str:
    from .manifest_check import ManifestError, file_problem

    with Journal.open_readonly(source_dir) as journal:
        row = journal.conn.execute("SELECT file FROM images WHERE image_id=?", (image_id,)).fetchone()
    if not row or not row[0]:
        raise InputError(f"the input image {image_id} of a selected row is not on disk")
    why = file_problem(str(row[0]), source_dir.resolve())  # never send a file from outside
    if why:
        raise ManifestError([Problem(why, file=str(Journal.path_for(source_dir)))])
    return str(row[0])


# -- what a run left ----------------------------------------------------------


def _read_frame(path: Path, out_dir: Path) -> pd.DataFrame:
    """A manifest as a frame, checked as untrusted input, or a clear error saying why not."""
    from .manifest import read_manifest
    from .manifest_check import record_lines, require_trusted

    try:
        frame = read_manifest(path)
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        raise PathError(f"{path}: cannot be read as a manifest ({str(exc).strip()})") from exc
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise PathError(f"{path}: not an ideopipe manifest (no column {', '.join(missing)})")
    require_trusted(frame, out_dir, str(path), record_lines(path))
    return frame


def regenerate_report(out_dir: str | Path, bundle: bool = False) -> Path:
    """Write report.html again from an output directory's journal and manifest.

    `bundle=True` makes it one self-contained file, thumbnails embedded, to send alone.
    """
    out_dir = preflight.output_folder(out_dir)
    frame = _read_frame(preflight.manifest_file(out_dir), out_dir)
    from .report import write_report

    with preflight.journal_errors(out_dir), Journal.open_readonly(out_dir) as journal:
        run_info = journal.run(str(frame["run_id"].iloc[0]) if len(frame) else None) or {}
    info = json.loads(run_info.get("info") or "{}")
    try:
        return write_report(
            out_dir,
            frame,
            {**run_info, "planned_cost_usd": run_info.get("planned_usd"), "steps": info.get("steps")},
            rows=info.get("rows"),
            bundle=bundle,
        )
    except OSError as exc:
        raise StorageError(f"{out_dir}: the report cannot be written ({exc.strerror or exc})") from exc


def list_runs(out_dir: str | Path) -> list[dict[str, Any]]:
    """The runs recorded in an output directory, with the images each produced."""
    out_dir = preflight.output_folder(out_dir)
    with preflight.journal_errors(out_dir), Journal.open_readonly(out_dir) as journal:
        runs = journal.runs()
        counts = dict(
            journal.conn.execute(
                "SELECT a.run_id, COUNT(DISTINCT i.image_id) FROM attempts a JOIN images i"
                " ON i.task_id = a.task_id WHERE i.status='ok' GROUP BY a.run_id"
            ).fetchall()
        )
    return [{**r, "images": counts.get(r["run_id"], 0)} for r in runs]
