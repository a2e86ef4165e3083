"""rerun --where: a checked row filter over manifest columns that never reaches Python."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.where import select

FRAME = pd.DataFrame(
    {
        "step_id": ["hero", "print", "hero"],
        "row_key": ["1", "2", "1"],
        "seed": [1, 2, 3],
        "cost_usd": [0.1, float("nan"), 0.2],
    }
)


@pytest.mark.parametrize(
    ("expression", "rows"),
    [
        ("step_id == 'hero'", [0, 2]),
        ("row_key == '1' and seed > 1", [2]),
        ("step_id in ['print'] or seed >= 3", [1, 2]),
        ("seed not in (1, 2)", [2]),
        ("not (seed < 2)", [1, 2]),
        ("~(seed < 2) & (step_id != 'x')", [1, 2]),
        ("1 < seed <= 2", [1]),
        ("cost_usd > 0.15", [2]),
        ("seed == -1", []),
        ("1 == 1", [0, 1, 2]),
    ],
)
def test_allowed_expressions_select_rows(expression, rows):
    assert list(select(FRAME, expression).index) == rows


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("@os.system('touch x')", "'@' names"),
        ("@os.environ['IDEOGRAM_API_KEY']", "'@' names"),
        ("os.system('x')", "Call is not allowed"),
        ("seed.__class__ == 1", "Attribute is not allowed"),
        ("step_id[0] == 'h'", "Subscript is not allowed"),
        ("(lambda: 1)() == 1", "Call is not allowed"),
        ("f'{seed}' == '1'", "JoinedStr is not allowed"),
        ("seed @ seed", "BinOp is not allowed"),
        ("nope == 1", "unknown column 'nope'"),
        ("seed", "does not say which rows"),
        ("step_id < 3", "cannot compare"),
        ("'hero' in step_id", "'in' takes a column"),
        ("nope ==", "not a valid expression"),
        pytest.param("not " * 900 + "seed == 1", "nested", id="deep-not"),
        pytest.param("seed == 1 or " * 400 + "seed == 2", "longer than", id="too-long"),
    ],
)
def test_anything_else_is_refused_with_exit_2(expression, why):
    with pytest.raises(InputError, match="--where") as info:
        select(FRAME, expression)
    assert why in str(info.value) and info.value.exit_code == 2
