"""Jinja filters wrapped so that their inputs and results stay under the size limits."""

from __future__ import annotations

import functools
from collections import abc
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context

from .limits import (
    MAX_OUTPUT,
    SecurityLimit,
    check,
    check_int,
    check_printf,
    estimate_join,
    estimate_replace,
    materialize,
    size,
    tick,
)


def _split_args(args: tuple[Any, ...]) -> int:
    """How many leading arguments are the context / environment jinja passes to a filter."""
    lead = 0
    while lead < len(args) and isinstance(args[lead], (Context, jinja2.Environment, nodes.EvalContext)):
        lead += 1
    return lead


def _param(params: list[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    if len(params) > index:
        return params[index]
    return kwargs.get(name, default)


def _precheck_filter(name: str, data: list[Any], kwargs: Mapping[str, Any]) -> None:
    if not data:
        return
    value, params = data[0], data[1:]
    if name == "center":
        check_int(_param(params, kwargs, 0, "width", 80), "center width")
    elif name == "indent":
        width = _param(params, kwargs, 0, "width", 4)
        per_line = len(width) if isinstance(width, str) else width
        if isinstance(per_line, int):
            lines = str(value).count("\n") + 1
            if size(value) + lines * per_line > MAX_OUTPUT:
                raise SecurityLimit("indent would be too long")
    elif name == "format":
        check_printf(value, tuple(params) or dict(kwargs))
    elif name == "replace" and len(params) >= 2:
        count = _param(params, kwargs, 2, "count", None)
        if estimate_replace(str(value), str(params[0]), str(params[1]), count) > MAX_OUTPUT:
            raise SecurityLimit("replace would be too long")
    elif name == "join":
        sep = _param(params, kwargs, 0, "d", "")
        if isinstance(sep, str) and estimate_join(sep, value) > MAX_OUTPUT:
            raise SecurityLimit("join would be too long")
    elif name in ("batch", "slice"):
        check_int(_param(params, kwargs, 0, "linecount" if name == "batch" else "slices", 0), f"{name} size")


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_context / pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        lead = _split_args(args)
        data = list(args[lead:])
        if name == "join" and data and isinstance(data[0], abc.Iterator):
            data[0] = materialize(data[0])
            args = (*args[:lead], *data)
        for v in (*data, *kwargs.values()):
            check(v, f"the input of |{name}")
        _precheck_filter(name, data, kwargs)
        result = func(*args, **kwargs)
        if not isinstance(result, abc.Iterator):
            check(result, f"the result of |{name}")
        return result

    return guarded


def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, which here also stands in for an empty string (an empty CSV cell) and None."""
    if value is None or isinstance(value, jinja2.Undefined) or value == "" or (boolean and not value):
        return default_value
    return value
