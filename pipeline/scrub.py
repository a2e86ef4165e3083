"""Making what a server sent safe to keep: no key in it (however escaped), and storable.

Two rules hold for every string an answer brings in:
- the key is redacted in the text as written, in every JSON string once decoded (a key
  sent as `\\u0073\\u006b…` escapes is still the key), and at any depth of the decoded
  body; the walk is iterative, so no nesting depth can make it fail;
- text bound into SQLite is valid UTF-8: a lone UTF-16 surrogate (`\\ud800`, which JSON
  allows and SQLite refuses) becomes U+FFFD.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Redact = Callable[[str], str]

_SURROGATE = re.compile("[\ud800-\udfff]")
#: an escape that decodes to a printable ASCII character (what a key is made of)
_MAY_HIDE = re.compile(r'\\(?:u00[2-7][0-9a-fA-F]|[/\\"])')
#: a JSON string literal, or an unterminated one up to the end: one linear pass over any text
_LITERAL = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\Z)', re.DOTALL)


def storable(text: str) -> str:
    """`text` as SQLite (UTF-8) can hold it: every lone surrogate becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def storable_value(value: Any) -> Any:
    """A value about to be bound into SQLite, with its text made storable."""
    return storable(value) if isinstance(value, str) else value


def redact_text(text: str, redact: Redact) -> str:
    """`text` with the key removed as written and as each JSON string in it decodes."""
    text = redact(text)
    if not _MAY_HIDE.search(text):  # no escape can stand for a character of a key
        return text

    def one(match: re.Match[str]) -> str:
        literal = match.group(0)
        if not _MAY_HIDE.search(literal):
            return literal
        try:
            value = json.loads(literal)
        except ValueError:  # an unterminated or broken literal: hide any escaped key anyway
            value = _unescape(literal)
        if not isinstance(value, str):
            return literal
        hidden = redact(value)
        return literal if hidden == value else json.dumps(hidden)

    return _LITERAL.sub(one, text)


def redact_tree(value: Any, redact: Redact) -> Any:
    """A copy of decoded JSON with the key redacted in every string and every name.

    Iterative, not recursive: an answer nested thousands of levels deep is redacted all
    the same instead of raising RecursionError.
    """
    if not isinstance(value, (list, dict)):
        return redact(value) if isinstance(value, str) else value
    root: list[Any] | dict[str, Any] = [] if isinstance(value, list) else {}
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        src, dst = stack.pop()
        items = enumerate(src) if isinstance(src, list) else src.items()
        for name, item in items:
            if isinstance(item, (list, dict)):
                child: Any = [] if isinstance(item, list) else {}
                stack.append((item, child))
            else:
                child = redact(item) if isinstance(item, str) else item
            if isinstance(dst, list):
                dst.append(child)
            else:
                dst[redact(name) if isinstance(name, str) else name] = child
    return root


def _unescape(literal: str) -> str | None:
    """A broken literal's text with its \\uXXXX escapes decoded (None when that fails)."""
    body = literal[1:-1] if len(literal) > 1 and literal.endswith('"') else literal[1:]
    try:
        return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), body)
    except ValueError:
        return None
