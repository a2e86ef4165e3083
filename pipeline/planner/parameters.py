"""Request parameters: what a step sends, merged with defaults and checked against the endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import checks, ops, spec, templating
from .. import rows as rowsource
from ..ops import Op
from ..pricing import price_key
from ..yamlsource import format_path
from .keys import canonical
from .runtime import is_runtime
from .session import Session, close_match, refs

INVALID = object()
INTEGERS = frozenset({"num_images", "seed", "image_weight", "resemblance", "detail"})
IMAGE_FIELDS = frozenset(ops.IMAGE_FIELDS)
_FREE_TEXT = frozenset({"prompt", "negative_prompt", "custom_model_uri"})
_UPPER = frozenset(
    {"style_type", "rendering_speed", "style_preset", "magic_prompt_version", "describe_model_version"}
)
_RECIPE_NAME = {"image_file": "image", "magic_prompt_option": "magic_prompt"}


IMAGE, RUNTIME, RUNTIME_WITHOUT_SEED, VALUE = range(4)  # how a varying parameter is found


@dataclass(frozen=True, slots=True)
class Varying:
    """A parameter decided per request: an image, a run-time template, or a value to render."""

    name: str
    raw: Any
    path: tuple[Any, ...]
    kind: int  # IMAGE | RUNTIME | RUNTIME_WITHOUT_SEED (run time if the parent's seed is unknown) | VALUE
    plain: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # a VALUE made only of {{ name }}
    free_text: bool = False  # a prompt: any text is valid and kept as it is


@dataclass(frozen=True, slots=True)
class StepShape:
    """What a step is with one model, the same for every row: worked out once."""

    endpoint: ops.Endpoint
    sources: dict[str, Any]  # parameter -> recipe value (template or literal), defaults merged
    fixed: dict[str, Any]  # the checked values of parameters that are not templates
    same_json: str  # canonical JSON of what every request of the step shares
    refs_needed: frozenset[str]  # steps whose results its templates read
    varying: tuple[Varying, ...]  # the parameters that are not fixed, in recipe order
    base: dict[str, Any]  # the fixed parameters a request sends (seed and num_images apart)
    fixed_seed: int | None
    fixed_num: int | None
    price_key: str | None  # None when a rendering_speed template decides it per request
    reads_input: bool  # a template reads `input`


class Checker:
    """Checks parameter values against an endpoint; remembers answers for this plan only."""

    def __init__(self) -> None:
        self._seen: dict[tuple[Any, ...], str | tuple[Any]] = {}

    def check(self, name: str, value: Any, endpoint: ops.Endpoint) -> str | tuple[Any]:
        """`(normalized value,)`, or why this endpoint does not accept the value."""
        if isinstance(value, str) and name in _FREE_TEXT:
            return (value,)  # any string is a valid prompt; not kept, prompts are unique
        if isinstance(value, (dict, list)):
            return _check(name, value, endpoint)
        key = (endpoint.path, name, type(value), value)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = _check(name, value, endpoint)
        return found


def _check(name: str, value: Any, endpoint: ops.Endpoint) -> str | tuple[Any]:
    if name in ("aspect_ratio", "resolution"):
        norm = (ops.normalize_aspect_ratio if name == "aspect_ratio" else ops.normalize_resolution)(value)
        allowed = ops.recipe_values(name, endpoint) or []
        if norm is not None and norm in allowed:
            return (norm,)
        if name == "aspect_ratio":
            return f"aspect ratio {value!r} is not accepted here; expected one of {', '.join(allowed)}"
        return (
            f"resolution {value!r} is not one the API offers for {endpoint.family} "
            f"(e.g. {', '.join(allowed[:4])} ...)"
        )
    if name == "magic_prompt":
        value = ops.normalize_magic_prompt(value)
    if isinstance(value, bool) and name in INTEGERS:
        return f"{value!r} is not an integer"
    if name in _UPPER and isinstance(value, str):
        value = value.strip().upper()
    prop = endpoint.properties.get(endpoint.wire_name(name))
    if prop is None:
        return f"{name!r} is not accepted by {endpoint.path}"
    errors = spec.validate(value, prop)
    if errors:
        allowed = prop.get("enum")
        if allowed:
            close = close_match(str(value), allowed)
            return f"{value!r} is not accepted; expected one of {', '.join(allowed)}" + (
                f" ({close})" if close else ""
            )
        return errors[0].replace("(body): ", "")
    return (value,)


def step_shape(
    s: Session, checker: Checker, step: dict[str, Any], i: int, op: Op, model: str
) -> StepShape | None:
    """The endpoint, parameters and fixed values of a step with a model, or None (reported)."""
    endpoint = ops.endpoint_for(op, model)
    if endpoint is None:
        s.problem(("steps", i, "op"), f"{op.value} is only available with model V_3, not {model}")
        return None
    if op is Op.EDIT and endpoint.family == "legacy" and model not in ops.LEGACY_EDIT_MODELS:
        s.problem(
            ("steps", i, "model"),
            f"legacy edit accepts only V_2 or V_2_TURBO, not {model}",
            "use model V_3 for the v3 edit endpoint",
        )
        return None
    sources = _sources(s, step, endpoint, i)
    if sources is None:
        return None
    if "input" in step:
        parent_step = step["input"]
        if s.steps[s.step_index[parent_step]]["op"] == Op.DESCRIBE.value:
            s.problem(
                ("steps", i, "input"), f"step {parent_step!r} is a describe step: it yields text, not images"
            )
            return None
    elif endpoint.needs_image and "image" not in step:
        s.problem(
            ("steps", i),
            f"{op.value} needs an image: set `input:` to an earlier step "
            "or `image:` to a path, URL or CSV column",
        )
        return None
    if endpoint.needs_mask and "mask" not in step:
        s.problem(("steps", i), f"{op.value} needs a `mask:`")
        return None
    broken = spec.prose_problems(endpoint.family, model, sources)
    for name, why, hint in broken:
        s.problem(("steps", i, name) if name in step else ("defaults", name), why, hint)
    if broken:
        return None
    needed = frozenset(r.split(".", 1)[1] for v in step.values() for r in refs(v) if r.startswith("steps."))
    fixed = _fixed_values(checker, endpoint, sources)
    same = canonical(
        {"op": op.value, "endpoint": endpoint.path, "provider": s.provider, "model": model, "fixed": fixed}
    )
    varying = tuple(_varying(name, raw, step, i) for name, raw in sources.items() if name not in fixed)
    base = {k: v for k, v in fixed.items() if k not in ("seed", "num_images")}
    speed = (
        None
        if "rendering_speed" in sources and "rendering_speed" not in fixed
        else fixed.get("rendering_speed")
    )
    price = (
        None
        if speed is None and "rendering_speed" in sources
        else price_key(op.value, endpoint.family, model, speed)
    )
    reads_input = any(r == "input" or r.startswith("input.") for v in sources.values() for r in refs(v))
    return StepShape(
        endpoint,
        sources,
        fixed,
        same,
        needed,
        varying,
        base,
        fixed.get("seed"),
        fixed.get("num_images"),
        price,
        reads_input,
    )


def _varying(name: str, raw: Any, step: dict[str, Any], i: int) -> Varying:
    path = ("steps", i, name) if name in step else ("defaults", name)
    kind = _kind(name, raw)
    plain = templating.plain_parts(raw) if kind == VALUE and templating.is_template(raw) else None
    free = plain is not None and name in ("prompt", "negative_prompt")
    return Varying(name, raw, path, kind, plain, free)


def _kind(name: str, raw: Any) -> int:
    """How a parameter that is not fixed is found for each request."""
    if name in IMAGE_FIELDS:
        return IMAGE
    if isinstance(raw, str) and templating.is_template(raw):
        if is_runtime(raw, True):
            return RUNTIME
        if is_runtime(raw, False):
            return RUNTIME_WITHOUT_SEED
    return VALUE


def _sources(s: Session, step: dict[str, Any], endpoint: ops.Endpoint, i: int) -> dict[str, Any] | None:
    """The step's parameters with the defaults it accepts, checked against the endpoint."""
    merged: dict[str, Any] = {k: v for k, v in s.defaults.items() if k in endpoint.accepts or k == "model"}
    ok = True
    for name, value in step.items():
        if name in ("id", "op", "input"):
            continue
        if name != "model" and name not in endpoint.accepts:
            where = "v3" if endpoint.family == "v3" else "legacy"
            s.problem(
                ("steps", i, name),
                f"{step['op']} ({where}, {endpoint.path}) does not take {name!r}",
                "the API would silently ignore it; remove it or change the model",
            )
            ok = False
            continue
        merged[name] = value
    merged.pop("model", None)
    return merged if ok else None


def _fixed_values(checker: Checker, endpoint: ops.Endpoint, sources: dict[str, Any]) -> dict[str, Any]:
    """The step's parameters that are not templates, checked once for every row."""
    found: dict[str, Any] = {}
    for name, value in sources.items():
        if name in IMAGE_FIELDS or templating.is_template(value):
            continue
        checked = checker.check(name, value, endpoint)
        if isinstance(checked, tuple):
            found[name] = checked[0]
    return found


def value(
    s: Session,
    checker: Checker,
    name: str,
    raw: Any,
    ctx: Mapping[str, Any],
    path: tuple[Any, ...],
    row: rowsource.Row,
    endpoint: ops.Endpoint,
) -> Any:
    """A rendered and checked parameter value, or INVALID (reported)."""
    source = raw
    if templating.is_template(raw):
        raw = s.render(raw, ctx, path, row)
        if raw is None:
            return INVALID
        raw = raw.strip() if name not in ("prompt", "negative_prompt") else raw
        if name in INTEGERS:
            try:
                raw = int(raw)
            except ValueError:
                return _refused(s, path, f"renders to {raw!r}, not an integer", source, raw, row)
    checked = checker.check(name, raw, endpoint)
    if isinstance(checked, str):
        return _refused(s, path, checked, source, raw, row)
    return checked[0]


def _refused(
    s: Session, path: tuple[Any, ...], why: str, source: Any, rendered: Any, row: rowsource.Row
) -> Any:
    """Report a refused value where it comes from: a matrix entry, or the field (with its row)."""
    entry = checks.matrix_entry(s.matrix, source, rendered)
    if entry is not None:  # the same for every row: one problem, at the value itself
        s.problem(entry, f"{why} (used by {format_path(path)})")
    else:
        s.problem(path, why, f"row {row.where()}" if s.has_template(path) else None)
    return INVALID


def cross_checks(
    s: Session,
    params: dict[str, Any],
    deferred: Mapping[str, str],
    endpoint: ops.Endpoint,
    model: str,
    step: dict[str, Any],
    i: int,
) -> bool:
    """Rules between parameters (exclusions, required fields); False if one is broken."""
    ok = True
    if "aspect_ratio" in params and "resolution" in params:
        s.problem(("steps", i), "aspect_ratio and resolution exclude each other", "set only one")
        ok = False
    if "style_type" in params and model in ("V_1", "V_1_TURBO") and endpoint.family == "legacy":
        s.problem(("steps", i, "style_type"), f"style_type is not allowed with {model}")
        ok = False
    for name in endpoint.required:
        recipe_name = _RECIPE_NAME.get(name, name)
        if recipe_name in IMAGE_FIELDS or recipe_name == "model":
            continue
        if recipe_name not in params and recipe_name not in deferred:
            s.problem(("steps", i), f"{step['op']} needs `{recipe_name}:`")
            ok = False
    return ok
