"""The export's input error: every problem found, reported at once (exit 2)."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InputError, Problem


class ExportError(InputError):
    """The export was refused before anything was written; carries every problem found."""

    def __init__(self, problems: Iterable[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
