"""Jinja templates in recipes, rendered in a sandbox with strict undefined variables.

A CSV value is data: it is passed to a template as a variable and never rendered as
a template itself.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT = 100_000  # characters one rendered template may produce
MAX_POWER = 10_000


class SecurityLimit(Exception):
    """A template tried to build a value too large to be a prompt."""


def _bounded_mul(a: Any, b: Any) -> Any:
    if isinstance(a, (str, list, tuple)) or isinstance(b, (str, list, tuple)):
        seq, times = (a, b) if isinstance(a, (str, list, tuple)) else (b, a)
        if isinstance(times, int) and len(seq) * times > MAX_OUTPUT:
            raise SecurityLimit(f"repetition would produce {len(seq) * times:,} items")
    return operator.mul(a, b)


def _bounded_pow(a: Any, b: Any) -> Any:
    if isinstance(b, (int, float)) and abs(b) > MAX_POWER:
        raise SecurityLimit(f"exponent {b} is too large")
    return operator.pow(a, b)


class _Sandbox(SandboxedEnvironment):
    """The stock sandbox, with `*` and `**` bounded so that 'a' * 10**9 cannot eat memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            return _bounded_mul(left, right)
        if operator_name == "**":
            return _bounded_pow(left, right)
        return super().call_binop(context, operator_name, left, right)


def is_template(value: Any) -> bool:
    """True if a recipe string holds Jinja syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


@functools.lru_cache(maxsize=1)
def environment() -> _Sandbox:
    """The one sandboxed environment every recipe template is compiled in."""
    env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    return env


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> jinja2.Template:
    """Compile once; raises jinja2.TemplateSyntaxError."""
    return environment().from_string(source)


_SIMPLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OTHER = re.compile(r"\{[{%#]")


@functools.lru_cache(maxsize=4096)
def _fast_parts(source: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Split a template made only of plain `{{ name }}` substitutions; None if it has more.

    Such templates (row keys, file names, most prompts) are rendered without Jinja's
    per-call context set-up, with the same result: str() of each value, and an
    UndefinedError for a missing name.
    """
    names = _SIMPLE.findall(source)
    texts = tuple(_SIMPLE.split(source)[::2])
    if any(_OTHER.search(t) or "}}" in t for t in texts):
        return None
    return texts, tuple(names)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template; raises jinja2 errors or SecurityLimit."""
    fast = _fast_parts(source)
    if fast is not None:
        texts, names = fast
        out = [texts[0]]
        for name, text in zip(names, texts[1:]):
            try:
                value = context[name]
            except KeyError:
                raise jinja2.UndefinedError(f"'{name}' is undefined") from None
            out.append(value if isinstance(value, str) else str(value))
            out.append(text)
        return "".join(out)
    text = compile_template(source).render(context)
    if len(text) > MAX_OUTPUT:
        raise SecurityLimit(f"rendered text is {len(text):,} characters (limit {MAX_OUTPUT:,})")
    return text


@functools.lru_cache(maxsize=4096)
def references(source: str) -> frozenset[str]:
    """Dotted names a template reads from `input` and `steps`, e.g. {'input.prompt', 'steps.look'}.

    The planner uses this to know which fields wait for a parent's or a describe
    step's result before they can be rendered.
    """
    tree = environment().parse(source)
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
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
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"template refused by the sandbox: {exc}"
    if isinstance(exc, SecurityLimit):
        return f"template refused: {exc}"
    return f"template failed: {type(exc).__name__}: {exc}"
