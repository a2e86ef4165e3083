"""Jinja templates in recipes, rendered in a sandbox with strict undefined variables.

A CSV value is data: it is passed to a template as a variable and never rendered as
a template itself.

The stock sandbox stops attribute escapes (`__class__`, `|attr`) and caps `range`,
but a recipe can still ask for a billion characters or a billion loop turns. So the
sandbox here also:

- keeps every value a template builds (literals, operators, calls, filters, `~`)
  under MAX_OUTPUT characters, checking before the big allocation where it can;
- counts loop turns, calls and filters, and stops a render after MAX_STEPS of them
  or MAX_SECONDS, whichever comes first;
- is immutable (no `row.update(...)`), so one row's template cannot change the next
  row's data, and drops `lipsum`.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import nodes

from .limits import (
    BUDGET,
    MAX_INT_BITS,
    MAX_OUTPUT,
    MAX_POWER,
    MAX_SECONDS,
    MAX_STEPS,
    Budget,
    MissingValue,
    RenderError,
    SecurityLimit,
    check,
    present,
)
from .sandbox import Guard, Sandbox

__all__ = [
    "MAX_INT_BITS",
    "MAX_OUTPUT",
    "MAX_POWER",
    "MAX_SECONDS",
    "MAX_STEPS",
    "MissingValue",
    "RenderError",
    "SecurityLimit",
    "compile_template",
    "describe_error",
    "environment",
    "is_template",
    "references",
    "render",
]


def is_template(value: Any) -> bool:
    """True if a recipe string holds Jinja syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


@functools.lru_cache(maxsize=1)
def environment() -> Sandbox:
    """The one sandboxed environment every recipe template is compiled in."""
    return Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _parse(source: str) -> nodes.Template:
    try:
        return environment().parse(source)
    except (RecursionError, MemoryError) as exc:
        raise jinja2.TemplateSyntaxError("the template nests too deeply", 1) from exc


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> jinja2.Template:
    """Compile once; raises jinja2.TemplateSyntaxError."""
    env = environment()
    tree = Guard(env).visit(_parse(source))
    try:
        return env.from_string(tree)
    except (RecursionError, MemoryError) as exc:
        raise jinja2.TemplateSyntaxError("the template nests too deeply", 1) from exc


_SIMPLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OTHER = re.compile(r"\{[{%#]|\}\}|%\}|#\}")


@functools.lru_cache(maxsize=4096)
def plain_parts(source: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Split a template made only of `{{ name }}` substitutions; None if it has anything else.

    Such templates (row keys, file names, most prompts) need no sandbox: they only read
    variables. Rendering them directly gives Jinja's result (str() of each value, an
    UndefinedError for a missing name) without its per-call set-up.
    """
    pieces = _SIMPLE.split(source)
    texts, names = tuple(pieces[::2]), tuple(pieces[1::2])
    if any(_OTHER.search(t) for t in texts):
        return None
    return texts, names


def render_plain(texts: tuple[str, ...], names: tuple[str, ...], context: Mapping[str, Any]) -> str:
    """Render the parts `plain_parts` split, as Jinja would (None is refused, see MissingValue)."""
    out = [texts[0]]
    size = len(texts[0])
    for name, text in zip(names, texts[1:]):
        try:
            value = context[name]
        except KeyError:
            raise jinja2.UndefinedError(f"'{name}' is undefined") from None
        part = value if isinstance(value, str) else str(check(present(value, name), "an expression's value"))
        size += len(part) + len(text)
        if size > MAX_OUTPUT:
            raise SecurityLimit(f"rendered text is over {MAX_OUTPUT:,} characters")
        out += (part, text)
    return "".join(out)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template; raises jinja2 errors (RenderError for Python ones) or SecurityLimit."""
    plain = plain_parts(source)
    if plain is not None:
        return render_plain(*plain, context)
    template = compile_template(source)
    token = BUDGET.set(Budget(MAX_STEPS, time.monotonic() + MAX_SECONDS))
    try:
        text = template.render(context)
    except (jinja2.TemplateError, SecurityLimit):
        raise
    except MemoryError as exc:
        raise SecurityLimit("the template ran out of memory") from exc
    except RecursionError as exc:
        raise RenderError("the template recurses too deeply") from exc
    except Exception as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        BUDGET.reset(token)
    if len(text) > MAX_OUTPUT:
        raise SecurityLimit(f"rendered text is {len(text):,} characters (limit {MAX_OUTPUT:,})")
    return text


@functools.lru_cache(maxsize=4096)
def references(source: str) -> frozenset[str]:
    """Dotted names a template reads from `input` and `steps`, e.g. {'input.prompt', 'steps.look'}.

    The planner uses this to know which fields wait for a parent's or a describe
    step's result before they can be rendered.
    """
    tree = _parse(source)
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
            continue
        target = node.node
        if isinstance(target, nodes.Name) and target.name in ("input", "steps"):
            attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", "")
            found.add(f"{target.name}.{attr}")
    for name in tree.find_all(nodes.Name):
        if name.name in ("input", "steps") and name.ctx == "load":
            found.add(name.name)
    return frozenset(found)


def describe_error(exc: BaseException) -> str:
    """A one-line message for a template failure."""
    if isinstance(exc, MissingValue):
        return str(exc.message)
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"template refused by the sandbox: {exc}"
    if isinstance(exc, SecurityLimit):
        return f"template refused: {exc}"
    if isinstance(exc, RenderError):
        return f"template failed: {exc.message}"
    return f"template failed: {type(exc).__name__}: {exc}"
