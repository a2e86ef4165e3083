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

import contextvars
import functools
import operator
import re
import time
from collections import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

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


# -- the per-render budget -------------------------------------------------------


@dataclass
class _Budget:
    steps: int
    deadline: float


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "ideopipe_template_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise SecurityLimit(f"the template takes more than {MAX_STEPS:,} steps "
                            "(loop turns, calls and filters)")
    if time.monotonic() > budget.deadline:
        raise SecurityLimit(f"the template ran for more than {MAX_SECONDS:g} s")


# -- sizes ---------------------------------------------------------------------------


def _size(value: Any, limit: int = MAX_OUTPUT) -> int:
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
            stack.append(v._Namespace__attrs)  # type: ignore[attr-defined]
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


def _check(value: Any, what: str) -> Any:
    kind = type(value)
    if kind is str:  # the common case, kept fast
        if len(value) > MAX_OUTPUT:
            raise SecurityLimit(f"{what} would be longer than {MAX_OUTPUT:,} characters")
        return value
    if kind in _SMALL or (kind is int and value.bit_length() < 64):
        return value
    if _size(value) > MAX_OUTPUT:
        raise SecurityLimit(f"{what} would be longer than {MAX_OUTPUT:,} characters")
    return value


def _check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT:
        raise SecurityLimit(f"{what} {value:,} is larger than {MAX_OUTPUT:,}")


def _bounded_mul(a: Any, b: Any) -> Any:
    if isinstance(a, (str, list, tuple)) or isinstance(b, (str, list, tuple)):
        seq, times = (a, b) if isinstance(a, (str, list, tuple)) else (b, a)
        unit = len(seq) if isinstance(seq, str) else _size(seq)
        if isinstance(times, int) and times > 0 and unit * times > MAX_OUTPUT:
            raise SecurityLimit(f"repetition would produce {len(seq) * times:,} items")
    elif isinstance(a, int) and isinstance(b, int) and \
            a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise SecurityLimit("the product is too large a number")
    return operator.mul(a, b)


def _bounded_pow(a: Any, b: Any) -> Any:
    if isinstance(b, (int, float)) and abs(b) > MAX_POWER:
        raise SecurityLimit(f"exponent {b} is too large")
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() * b > MAX_INT_BITS:
        raise SecurityLimit(f"{a} ** {b} is too large a number")
    return operator.pow(a, b)


def _bounded_add(a: Any, b: Any) -> Any:
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if not numbers and _size(a) + _size(b) > MAX_OUTPUT:
        raise SecurityLimit(f"the sum would be longer than {MAX_OUTPUT:,} characters")
    return operator.add(a, b)


def _check_printf(fmt: Any, args: Any) -> None:
    """'%1000000000d' % 1 or '%*d' % (10**9, 1) would allocate a gigabyte."""
    if not isinstance(fmt, str):
        return
    if _WIDE_SPEC.search(fmt):
        raise SecurityLimit("a format width or precision of a million or more")
    values = args if isinstance(args, tuple) else (args,)
    if "*" in fmt:
        for v in values:
            _check_int(v, "format width")


def _check_str_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if _WIDE_SPEC.search(fmt):
        raise SecurityLimit("a format width or precision of a million or more")
    if _NESTED_FIELD.search(fmt):
        for v in (*args, *kwargs.values()):
            for w in v.values() if isinstance(v, Mapping) else (v,):  # format_map's mapping
                _check_int(w, "format width")


def _estimate_replace(s: Any, old: Any, new: Any, count: Any) -> int:
    n = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(s) + n * len(new)


def _estimate_join(sep: Any, items: Any) -> int:
    n = len(items) if isinstance(items, abc.Sized) else 0
    return len(sep) * max(n - 1, 0) + _size(items)


def _materialize(items: Any) -> Any:
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


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse str/bytes method calls whose result would be huge; returns the args to use."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return args
    name = getattr(obj, "__name__", "")
    if name in _REFUSED_METHODS:
        raise SecurityLimit(f"str.{name} is not available in recipe templates")
    if name in _WIDTH_METHODS:
        _check_int(args[0] if args else kwargs.get("width", 0), f"{name} width")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        tab = "\t" if isinstance(owner, str) else b"\t"
        if isinstance(size, int) and len(owner) + owner.count(tab) * size > MAX_OUTPUT:  # type: ignore[arg-type]
            raise SecurityLimit("expandtabs would be too long")
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if _estimate_replace(owner, args[0], args[1], count) > MAX_OUTPUT:
            raise SecurityLimit("replace would be too long")
    elif name == "join" and args:
        items = _materialize(args[0])
        if _estimate_join(owner, items) > MAX_OUTPUT:
            raise SecurityLimit("join would be too long")
        return (items, *args[1:])
    return args


# -- filters -------------------------------------------------------------------------


def _split_args(args: tuple[Any, ...]) -> int:
    """How many leading arguments are the context / environment jinja passes to a filter."""
    lead = 0
    while lead < len(args) and isinstance(args[lead], (Context, jinja2.Environment,
                                                       nodes.EvalContext)):
        lead += 1
    return lead


def _param(params: list[Any], kwargs: Mapping[str, Any], index: int, name: str,
           default: Any) -> Any:
    if len(params) > index:
        return params[index]
    return kwargs.get(name, default)


def _precheck_filter(name: str, data: list[Any], kwargs: Mapping[str, Any]) -> None:
    if not data:
        return
    value, params = data[0], data[1:]
    if name == "center":
        _check_int(_param(params, kwargs, 0, "width", 80), "center width")
    elif name == "indent":
        width = _param(params, kwargs, 0, "width", 4)
        per_line = len(width) if isinstance(width, str) else width
        if isinstance(per_line, int):
            lines = str(value).count("\n") + 1
            if _size(value) + lines * per_line > MAX_OUTPUT:
                raise SecurityLimit("indent would be too long")
    elif name == "format":
        _check_printf(value, tuple(params) or dict(kwargs))
    elif name == "replace" and len(params) >= 2:
        count = _param(params, kwargs, 2, "count", None)
        if _estimate_replace(str(value), str(params[0]), str(params[1]), count) > MAX_OUTPUT:
            raise SecurityLimit("replace would be too long")
    elif name == "join":
        sep = _param(params, kwargs, 0, "d", "")
        if isinstance(sep, str) and _estimate_join(sep, value) > MAX_OUTPUT:
            raise SecurityLimit("join would be too long")
    elif name in ("batch", "slice"):
        _check_int(_param(params, kwargs, 0, "linecount" if name == "batch" else "slices", 0),
                   f"{name} size")


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_context / pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        lead = _split_args(args)
        data = list(args[lead:])
        if name == "join" and data and isinstance(data[0], abc.Iterator):
            data[0] = _materialize(data[0])
            args = (*args[:lead], *data)
        for v in (*data, *kwargs.values()):
            _check(v, f"the input of |{name}")
        _precheck_filter(name, data, kwargs)
        result = func(*args, **kwargs)
        if not isinstance(result, abc.Iterator):
            _check(result, f"the result of |{name}")
        return result

    return guarded


# -- the sandbox ---------------------------------------------------------------------


class _Guard(NodeTransformer):
    """Rewrites a parsed template so that loops, `~` and literals go through the budget."""

    def __init__(self, env: jinja2.Environment):
        self.env = env

    def _wrap(self, name: str, node: nodes.Node, args: list[Any]) -> nodes.Call:
        call = nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None)
        call.set_lineno(node.lineno)
        call.set_environment(self.env)
        return call

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._wrap("ideopipe_iter", node, [node.iter])
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap("ideopipe_concat", node, list(node.nodes))

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":
            return node
        return self._wrap("ideopipe_checked", node, [node])

    visit_List = visit_Tuple = visit_Dict = _literal


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, which here also stands in for an empty string (an empty CSV cell)."""
    if isinstance(value, jinja2.Undefined) or value == "" or (boolean and not value):
        return default_value
    return value


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every value kept small and every render kept short."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.globals.pop("lipsum", None)
        self.filters["default"] = self.filters["d"] = _default
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.finalize = self._finalize
        self.concat = self._concat  # type: ignore[method-assign]
        self.ideopipe_iter = self._iter
        self.ideopipe_concat = self._tilde
        self.ideopipe_checked = self._checked

    @staticmethod
    def _finalize(value: Any) -> Any:
        return _check(value, "an expression's value")

    @staticmethod
    def _concat(parts: Any) -> str:
        out = []
        length = 0
        for part in parts:
            length += len(part)
            if length > MAX_OUTPUT:
                raise SecurityLimit(f"the text would be longer than {MAX_OUTPUT:,} characters")
            out.append(part)
        return "".join(out)

    @staticmethod
    def _iter(iterable: Any) -> Any:
        for item in iterable:
            _tick()
            yield item

    def _tilde(self, *parts: Any) -> str:
        return self._concat(str(p) for p in parts)

    @staticmethod
    def _checked(value: Any) -> Any:
        return _check(value, "a literal")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        _tick()
        if operator_name == "*":
            return _bounded_mul(left, right)
        if operator_name == "**":
            return _bounded_pow(left, right)
        if operator_name == "+":
            return _bounded_add(left, right)
        if operator_name == "%":
            _check_printf(left, right)
            _check(right, "a format argument")
            return _check(super().call_binop(context, operator_name, left, right),
                          "the formatted text")
        return super().call_binop(context, operator_name, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        _tick()
        for v in (getattr(__obj, "__self__", None), *args, *kwargs.values()):
            _check(v, "a call's argument")
        args = _check_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if not isinstance(result, abc.Iterator):
            _check(result, "a call's result")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_str_format(str(fmt), args, kwargs)
            return _check(wrapper(*args, **kwargs), "the formatted text")

        return checked


def is_template(value: Any) -> bool:
    """True if a recipe string holds Jinja syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


@functools.lru_cache(maxsize=1)
def environment() -> _Sandbox:
    """The one sandboxed environment every recipe template is compiled in."""
    return _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _parse(source: str) -> nodes.Template:
    try:
        return environment().parse(source)
    except (RecursionError, MemoryError) as exc:
        raise jinja2.TemplateSyntaxError("the template nests too deeply", 1) from exc


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> jinja2.Template:
    """Compile once; raises jinja2.TemplateSyntaxError."""
    env = environment()
    tree = _Guard(env).visit(_parse(source))
    try:
        return env.from_string(tree)
    except (RecursionError, MemoryError) as exc:
        raise jinja2.TemplateSyntaxError("the template nests too deeply", 1) from exc


_SIMPLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OTHER = re.compile(r"\{[{%#]|\}\}|%\}|#\}")


@functools.lru_cache(maxsize=4096)
def _plain_parts(source: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
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


def _render_plain(texts: tuple[str, ...], names: tuple[str, ...],
                  context: Mapping[str, Any]) -> str:
    out = [texts[0]]
    size = len(texts[0])
    for name, text in zip(names, texts[1:]):
        try:
            value = context[name]
        except KeyError:
            raise jinja2.UndefinedError(f"'{name}' is undefined") from None
        part = value if isinstance(value, str) else str(_check(value, "an expression's value"))
        size += len(part) + len(text)
        if size > MAX_OUTPUT:
            raise SecurityLimit(f"rendered text is over {MAX_OUTPUT:,} characters")
        out += (part, text)
    return "".join(out)


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template; raises jinja2 errors (RenderError for Python ones) or SecurityLimit."""
    plain = _plain_parts(source)
    if plain is not None:
        return _render_plain(*plain, context)
    template = compile_template(source)
    token = _BUDGET.set(_Budget(MAX_STEPS, time.monotonic() + MAX_SECONDS))
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
        _BUDGET.reset(token)
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
