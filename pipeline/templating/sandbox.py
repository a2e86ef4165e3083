"""The sandboxed Jinja environment: immutable, every value kept small, every render short."""

from __future__ import annotations

from collections import abc
from collections.abc import Callable
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from .filters import default, guard_filter
from .limits import (
    MAX_OUTPUT,
    SecurityLimit,
    bounded_add,
    bounded_mul,
    bounded_pow,
    check,
    check_method,
    check_printf,
    check_str_format,
    present,
    tick,
)


class Guard(NodeTransformer):
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

    def _present(self, node: nodes.Expr) -> nodes.Call:
        return self._wrap("ideopipe_present", node, [node, nodes.Const(label(node))])

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        """Every printed expression goes through `present`: None is refused, not printed."""
        self.generic_visit(node)
        node.nodes = [
            n
            if isinstance(n, nodes.TemplateData)
            else self._wrap("ideopipe_present", n, [n, nodes.Const(label(n))])
            for n in node.nodes
        ]
        return node


def label(node: nodes.Node) -> str | None:
    """The dotted name an expression reads (`input.prompt`, `steps.look.text`), if it is one."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = label(node.node)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = label(node.node)
        return f"{base}[{node.arg.value!r}]" if base else None
    return None


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every value kept small and every render kept short."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.globals.pop("lipsum", None)
        self.filters["default"] = self.filters["d"] = default
        self.filters = {name: guard_filter(name, f) for name, f in self.filters.items()}
        self.finalize = self._finalize
        self.concat = self._concat  # type: ignore[method-assign]
        self.ideopipe_iter = self._iter
        self.ideopipe_concat = self._tilde
        self.ideopipe_checked = self._checked
        self.ideopipe_present = present

    @staticmethod
    def _finalize(value: Any) -> Any:
        return check(value, "an expression's value")

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
            tick()
            yield item

    def _tilde(self, *parts: Any) -> str:
        return self._concat(str(p) for p in parts)

    @staticmethod
    def _checked(value: Any) -> Any:
        return check(value, "a literal")

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        tick()
        if operator_name == "*":
            return bounded_mul(left, right)
        if operator_name == "**":
            return bounded_pow(left, right)
        if operator_name == "+":
            return bounded_add(left, right)
        if operator_name == "%":
            check_printf(left, right)
            check(right, "a format argument")
            return check(super().call_binop(context, operator_name, left, right), "the formatted text")
        return super().call_binop(context, operator_name, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        for v in (getattr(__obj, "__self__", None), *args, *kwargs.values()):
            check(v, "a call's argument")
        args = check_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if not isinstance(result, abc.Iterator):
            check(result, "a call's result")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            check_str_format(str(fmt), args, kwargs)
            text: str = check(wrapper(*args, **kwargs), "the formatted text")
            return text

        return checked
