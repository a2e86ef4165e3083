"""Limits of the template sandbox: the size of every value, and the budget of one render."""

from __future__ import annotations

import contextvars
import operator
import re
import time
from collections import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.utils import Namespace

MAX_OUTPUT = 100_000  # characters one rendered template, or any value it builds, may hold
MAX_POWER = 10_000
MAX_INT_BITS = 100_000  # about 30,000 decimal digits
MAX_STEPS = 100_000  # loop turns + calls + filters in one render
MAX_SECONDS = 1.0  # wall-clock time for one render

_DIGITS_PER_BIT = 0.30103
_WIDE_SPEC = re.compile(r"\d{6,}")  # a width or precision of a million or more
_NESTED_FIELD = re.compile(r"\{[^{}]*\{")  # '{:{}}': a width taken from an argument


class SecurityLimit(Exception):
    """A template tried to build a value too large to be a prompt, or ran too long."""


class RenderError(jinja2.TemplateRuntimeError):
    """A template raised an ordinary Python error (e.g. KeyError) while rendering."""


class MissingValue(jinja2.UndefinedError):
    """A template printed a value that is None: ideopipe never sends the text 'None'."""

    def __init__(self, label: str | None) -> None:
        if label:
            super().__init__(
                f"{label} has no value (write {{{{ {label} | default('') }}}} for an empty text)"
            )
        else:
            super().__init__("a value joined with ~ has no value (it is None)")


def present(value: Any, label: str | None = None) -> Any:
    """`value`, or MissingValue if it is None."""
    if value is None:
        raise MissingValue(label)
    return value


# -- the per-render budget -------------------------------------------------------


@dataclass
class Budget:
    steps: int
    deadline: float


BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "ideopipe_template_budget", default=None
)


def tick() -> None:
    budget = BUDGET.get()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise SecurityLimit(
            f"the template takes more than {MAX_STEPS:,} steps (loop turns, calls and filters)"
        )
    if time.monotonic() > budget.deadline:
        raise SecurityLimit(f"the template ran for more than {MAX_SECONDS:g} s")


# -- sizes ---------------------------------------------------------------------------


def size(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About how many characters `value` becomes as text; counting stops past `limit`.

    Containers are walked, so a list that holds the same big list twice counts it
    twice: that is what str() of it would produce.
    """
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (str, bytes, bytearray)):
            total += len(v) + 2
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += int(v.bit_length() * _DIGITS_PER_BIT) + 2
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, Mapping):
            total += 2 + 2 * len(v)
            if total <= limit:
                stack.extend(v.keys())
                stack.extend(v.values())
        elif isinstance(v, Namespace):
            stack.append(v._Namespace__attrs)
        elif isinstance(v, range):
            total += 2 + len(v) * (len(str(max(abs(v.start), abs(v.stop)))) + 2)
        elif isinstance(v, (abc.Sequence, abc.Set, abc.MappingView)):
            total += 2 + len(v)
            if total <= limit:
                stack.extend(v)  # type: ignore[arg-type]
        else:
            total += 1
        if total > limit:
            return total
    return total


_SMALL = (bool, float, type(None))


def check(value: Any, what: str) -> Any:
    kind = type(value)
    if kind is str:  # the common case, kept fast
        if len(value) > MAX_OUTPUT:
            raise SecurityLimit(f"{what} would be longer than {MAX_OUTPUT:,} characters")
        return value
    if kind in _SMALL or (kind is int and value.bit_length() < 64):
        return value
    if size(value) > MAX_OUTPUT:
        raise SecurityLimit(f"{what} would be longer than {MAX_OUTPUT:,} characters")
    return value


def check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT:
        raise SecurityLimit(f"{what} {value:,} is larger than {MAX_OUTPUT:,}")


def bounded_mul(a: Any, b: Any) -> Any:
    if isinstance(a, (str, list, tuple)) or isinstance(b, (str, list, tuple)):
        seq, times = (a, b) if isinstance(a, (str, list, tuple)) else (b, a)
        unit = len(seq) if isinstance(seq, str) else size(seq)
        if isinstance(times, int) and times > 0 and unit * times > MAX_OUTPUT:
            raise SecurityLimit(f"repetition would produce {len(seq) * times:,} items")
    elif isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise SecurityLimit("the product is too large a number")
    return operator.mul(a, b)


def bounded_pow(a: Any, b: Any) -> Any:
    if isinstance(b, (int, float)) and abs(b) > MAX_POWER:
        raise SecurityLimit(f"exponent {b} is too large")
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() * b > MAX_INT_BITS:
        raise SecurityLimit(f"{a} ** {b} is too large a number")
    return operator.pow(a, b)


def bounded_add(a: Any, b: Any) -> Any:
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if not numbers and size(a) + size(b) > MAX_OUTPUT:
        raise SecurityLimit(f"the sum would be longer than {MAX_OUTPUT:,} characters")
    return operator.add(a, b)


def check_printf(fmt: Any, args: Any) -> None:
    """'%1000000000d' % 1 or '%*d' % (10**9, 1) would allocate a gigabyte."""
    if not isinstance(fmt, str):
        return
    if _WIDE_SPEC.search(fmt):
        raise SecurityLimit("a format width or precision of a million or more")
    values = args if isinstance(args, tuple) else (args,)
    if "*" in fmt:
        for v in values:
            check_int(v, "format width")


def check_str_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if _WIDE_SPEC.search(fmt):
        raise SecurityLimit("a format width or precision of a million or more")
    if _NESTED_FIELD.search(fmt):
        for v in (*args, *kwargs.values()):
            for w in v.values() if isinstance(v, Mapping) else (v,):  # format_map's mapping
                check_int(w, "format width")


def estimate_replace(s: Any, old: Any, new: Any, count: Any) -> int:
    n = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(s) + n * len(new)


def estimate_join(sep: Any, items: Any) -> int:
    n = len(items) if isinstance(items, abc.Sized) else 0
    return len(sep) * max(n - 1, 0) + size(items)


def materialize(items: Any) -> Any:
    """A bounded list from any iterable, so that its size can be known before a join."""
    if isinstance(items, abc.Sized):
        return items
    out = []
    for item in items:
        out.append(item)
        if len(out) > MAX_OUTPUT:
            raise SecurityLimit(f"more than {MAX_OUTPUT:,} items")
    return out


_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}
_REFUSED_METHODS = {"translate", "maketrans"}


def check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse str/bytes method calls whose result would be huge; returns the args to use."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return args
    name = getattr(obj, "__name__", "")
    if name in _REFUSED_METHODS:
        raise SecurityLimit(f"str.{name} is not available in recipe templates")
    if name in _WIDTH_METHODS:
        check_int(args[0] if args else kwargs.get("width", 0), f"{name} width")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        tab = "\t" if isinstance(owner, str) else b"\t"
        if isinstance(size, int) and len(owner) + owner.count(tab) * size > MAX_OUTPUT:  # type: ignore[arg-type]
            raise SecurityLimit("expandtabs would be too long")
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if estimate_replace(owner, args[0], args[1], count) > MAX_OUTPUT:
            raise SecurityLimit("replace would be too long")
    elif name == "join" and args:
        items = materialize(args[0])
        if estimate_join(owner, items) > MAX_OUTPUT:
            raise SecurityLimit("join would be too long")
        return (items, *args[1:])
    return args
