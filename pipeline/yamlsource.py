"""Safe YAML loading that remembers the line and column of every value.

The document is composed into nodes by PyYAML's safe loader and built into plain
Python here, so that only standard tags are accepted, aliases cannot expand into a
bomb or refer to themselves, nesting stays shallow, duplicate keys are caught, and
each value's position is kept for messages.

Two YAML 1.1 surprises are undone: an unquoted `16:9` is the text "16:9", not the
base-60 number 969, and an integer too long to convert is an error, not a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, RecipeError

MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

Path_ = tuple[Any, ...]

_STANDARD = "tag:yaml.org,2002:"
_SCALARS = {f"{_STANDARD}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
_NUMBERS = {f"{_STANDARD}int", f"{_STANDARD}float"}


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping from the document that remembers the line it starts on (for row messages)."""

    line: int | None = None


@dataclass
class Located:
    """A parsed YAML document, with the position of each value by its path."""

    data: Any
    file: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict, repr=False)

    def position(self, path: Path_) -> tuple[int | None, int | None]:
        """(line, column) of the value at `path`, or of its nearest parent that has one."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (None, None))

    def problem(self, path: Path_, message: str, hint: str | None = None, warning: bool = False) -> Problem:
        """A Problem located at `path`."""
        line, column = self.position(path)
        return Problem(
            message,
            file=self.file,
            line=line,
            column=column,
            path=format_path(path),
            hint=hint,
            warning=warning,
        )


def format_path(path: Path_) -> str:
    """('steps', 1, 'image_weight') -> 'steps[1].image_weight'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load(path: Path, shown: str | None = None) -> Located:
    """Read and parse a YAML file; raises RecipeError with a located message."""
    shown = shown or str(path)
    try:
        if not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file"
            raise RecipeError(
                [
                    Problem(
                        f"cannot read: {what}" if path.exists() else "cannot read: no such file", file=shown
                    )
                ]
            )
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise RecipeError(
                [Problem(f"file is {size:,} bytes; recipes are limited to {MAX_BYTES:,}", file=shown)]
            )
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)  # the file may grow between stat() and read()
    except OSError as exc:
        raise RecipeError([Problem(f"cannot read: {exc.strerror}", file=shown)]) from exc
    if len(raw) > MAX_BYTES:
        raise RecipeError([Problem(f"file is larger than {MAX_BYTES:,} bytes", file=shown)])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError([Problem("not valid UTF-8", file=shown, line=line)]) from exc
    return loads(text, shown)


def loads(text: str, shown: str) -> Located:
    """Parse YAML text; raises RecipeError with a located message."""
    _check_depth(text, shown)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise RecipeError(
            [
                Problem(
                    f"invalid YAML: {exc.problem}",
                    file=shown,
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                )
            ]
        ) from exc
    except yaml.YAMLError as exc:
        raise RecipeError([Problem(f"invalid YAML: {exc}", file=shown)]) from exc
    except RecursionError as exc:
        raise RecipeError([Problem("invalid YAML: nested too deeply", file=shown)]) from exc
    finally:
        loader.dispose()
    doc = Located(None, shown)
    if node is None:
        return doc
    builder = _Builder(doc)
    doc.data = builder.build(node, ())
    return doc


def _check_depth(text: str, shown: str) -> None:
    """Refuse `[[[[...` before PyYAML's recursive composer hits the recursion limit.

    The events come from libyaml when it is installed (fast, not recursive); a syntax
    error is left for the real parse, which reports it with its position.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise RecipeError(
                        [
                            Problem(
                                f"nested more than {MAX_DEPTH} levels deep",
                                file=shown,
                                line=mark.line + 1 if mark else None,
                                column=mark.column + 1 if mark else None,
                            )
                        ]
                    )
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except (yaml.YAMLError, RecursionError):
        return


class _Builder:
    def __init__(self, doc: Located):
        self.doc = doc
        self.count = 0
        self.constructor = yaml.SafeLoader("")
        self.open: set[int] = set()  # ids of the nodes being built: an alias to one is a loop

    def fail(self, node: yaml.Node, message: str) -> RecipeError:
        return RecipeError(
            [
                Problem(
                    message,
                    file=self.doc.file,
                    line=node.start_mark.line + 1,
                    column=node.start_mark.column + 1,
                )
            ]
        )

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"document expands to more than {MAX_NODES:,} values (an alias bomb?)")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, f"nested more than {MAX_DEPTH} levels deep")
        self.doc.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if id(node) in self.open:
            raise self.fail(node, "an alias refers to the value that contains it")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != f"{_STANDARD}seq":
                    raise self.fail(node, f"tag {node.tag!r} is not allowed")
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if node.tag != f"{_STANDARD}map":
                raise self.fail(node, f"tag {node.tag!r} is not allowed")
            return self.mapping(node, path)  # type: ignore[arg-type]
        finally:
            self.open.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag not in _SCALARS:
            raise self.fail(node, f"tag {node.tag!r} is not allowed; only plain YAML values")
        if node.style is None and node.tag in _NUMBERS and ":" in node.value:
            return node.value  # YAML 1.1 base 60: 16:9 would be 969
        try:
            return self.constructor.construct_object(node, deep=True)
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            raise self.fail(node, f"unreadable value: {exc}") from exc

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        out = LineDict()
        out.line = node.start_mark.line + 1
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_STANDARD}merge":
                many = isinstance(value_node, yaml.SequenceNode)
                sources = value_node.value if many else [value_node]
                for source in sources:
                    value = self.build(source, path)
                    if not isinstance(value, dict):
                        raise self.fail(source, "'<<' merges only mappings")
                    for k, v in value.items():
                        merged.setdefault(k, v)
                continue
            key = self.build(key_node, path)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise self.fail(key_node, "mapping keys must be plain values")
            if key in out:
                raise self.fail(key_node, f"duplicate key {key!r}")
            out[key] = self.build(value_node, (*path, key))
        for k, v in merged.items():
            out.setdefault(k, v)
        return out
