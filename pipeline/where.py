"""`rerun --where`: a row filter over the manifest that can name columns and nothing else.

The expression is parsed with `ast` and only a small tree is allowed: comparisons
(`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`), `and`/`or`/`not` (and pandas'
`&`/`|`/`~`), manifest column names, and literals (text, numbers, booleans, None, lists of
them). It is evaluated here over the frame, never by `eval` or `DataFrame.query`, so no
`@name`, attribute, call or subscript can reach Python, and no error echoes a value from
the environment.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

MAX_LENGTH = 4000
MAX_DEPTH = 60
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_SYMBOL = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_HELP = "use comparisons of manifest columns with literals, joined by and/or/not, e.g. \"step_id == 'hero'\""


class WhereError(InputError):
    """A --where expression that is not a safe row filter over the manifest's columns."""


def select(frame: pd.DataFrame, expression: str) -> pd.DataFrame:
    """The frame's rows for which `expression` holds (see the module docstring for the grammar)."""
    try:
        return frame[_mask(frame, expression)]
    except WhereError as exc:
        shown = expression if len(expression) <= 200 else expression[:197] + "..."
        raise WhereError(f"--where {shown!r}: {exc}") from exc


def _mask(frame: pd.DataFrame, expression: str) -> pd.Series:
    import pandas as pd

    if len(expression) > MAX_LENGTH:
        raise WhereError(f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        why = "'@' names and `quoted` names are not allowed" if "@" in expression or "`" in expression else ""
        raise WhereError(f"{why or 'not a valid expression'}; {_HELP}") from exc
    try:
        value = _Evaluator(frame).eval(tree.body, 0)
    except RecursionError as exc:
        raise WhereError(f"nested too deeply; {_HELP}") from exc
    if isinstance(value, bool):
        return pd.Series(value, index=frame.index, dtype=bool)
    if not isinstance(value, pd.Series) or value.dtype != bool:
        raise WhereError(f"does not say which rows to keep; {_HELP}")
    return value


class _Evaluator:
    """Evaluates an allowed expression tree over one frame's columns."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def eval(self, node: ast.AST, depth: int) -> Any:
        """The value of `node`: a column (Series), a literal, or a boolean Series."""
        if depth > MAX_DEPTH:
            raise WhereError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Compare):
            return self._compare(node, depth)
        if isinstance(node, ast.BoolOp):
            parts = [self._truth(v, depth) for v in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            out = parts[0]
            for part in parts[1:]:
                out = combine(out, part)
            return out
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            combine = operator.and_ if isinstance(node.op, ast.BitAnd) else operator.or_
            return combine(self._truth(node.left, depth), self._truth(node.right, depth))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            value = self._truth(node.operand, depth)
            return (not value) if isinstance(value, bool) else ~value
        if isinstance(node, ast.Name):
            if node.id not in self.frame.columns:
                raise WhereError(
                    f"unknown column {node.id!r}; the manifest's columns: {', '.join(self.frame.columns)}"
                )
            return self.frame[node.id]
        return _literal(node)

    def _truth(self, node: ast.AST, depth: int) -> Any:
        import pandas as pd

        value = self.eval(node, depth + 1)
        if isinstance(value, bool) or (isinstance(value, pd.Series) and value.dtype == bool):
            return value
        raise WhereError(f"and/or/not join comparisons, not plain values; {_HELP}")

    def _compare(self, node: ast.Compare, depth: int) -> Any:
        left = self.eval(node.left, depth + 1)
        result: Any = True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node, depth + 1)
            result = result & self._one(op, left, right)
            left = right
        return result

    def _one(self, op: ast.cmpop, left: Any, right: Any) -> Any:
        import pandas as pd

        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(left, pd.Series) or isinstance(right, pd.Series):
                raise WhereError("'in' takes a column on its left and a list of values on its right")
            values = right if isinstance(right, list) else [right]
            found = left.isin(values)
            return ~found if isinstance(op, ast.NotIn) else found
        fn = _COMPARE.get(type(op))
        if fn is None:
            raise WhereError(f"the comparison {type(op).__name__} is not allowed; {_HELP}")
        try:
            out = fn(left, right)
        except (TypeError, ValueError) as exc:
            raise WhereError(
                f"cannot compare with {_SYMBOL[type(op)]} here (a text column against a number?)"
            ) from exc
        if isinstance(out, pd.Series):
            return out.fillna(False).astype(bool)
        return bool(out)


def _literal(node: ast.AST) -> Any:
    """A literal value: text, a number, a boolean, None, or a list/tuple of those."""
    if isinstance(node, ast.Constant) and (
        node.value is None or isinstance(node.value, (str, int, float, bool))
    ):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_literal(e) for e in node.elts]
        if all(not isinstance(i, list) for i in items):
            return items
    raise WhereError(
        f"{type(node).__name__} is not allowed (no calls, attributes, subscripts or names "
        f"other than columns); {_HELP}"
    )
