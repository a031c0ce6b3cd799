"""What a failed check says: the two exceptions of the comparison core and how values appear in them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ..jsonvalue import PathElement

__all__ = [
    "MAX_SCHEMA_ERRORS",
    "InvalidSchemaError",
    "SchemaError",
    "is_number",
    "json_type",
    "path_sort_key",
    "render_errors",
    "short",
]

MAX_SCHEMA_ERRORS: Final = 10
_REPR_LIMIT: Final = 80


class SchemaError(AssertionError):
    """The output is not (extractable) JSON or does not match the schema; ``errors`` lists each problem.

    An ``AssertionError`` so that pytest reports it as a test failure rather than an error.
    """

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[str, ...] = tuple(errors)


class InvalidSchemaError(TypeError):
    """The schema itself is unusable: an unsupported kind, an invalid JSON Schema or unresolvable hints."""


def short(value: Any, limit: int = _REPR_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters so one huge value cannot flood a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_number(value: Any) -> bool:
    """A JSON number: an int or a float, never a bool (``True == 1`` in Python, not in JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    """The JSON type name of a plain JSON value (``null``, ``boolean``, ``number`` ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def path_sort_key(elements: Sequence[PathElement]) -> tuple[tuple[int, int, str], ...]:
    """Sort key for paths: indices sort numerically and before keys, so ``$.a[10]`` follows ``$.a[2]``."""
    return tuple((0, e, "") if isinstance(e, int) else (1, 0, str(e)) for e in elements)


def render_errors(header: str, errors: Sequence[str]) -> str:
    """``header (N errors):`` and the first :data:`MAX_SCHEMA_ERRORS` errors, one per line."""
    count = len(errors)
    lines = [f"{header} ({count} error{'s' if count != 1 else ''}):"]
    lines.extend(f"  {error}" for error in errors[:MAX_SCHEMA_ERRORS])
    if count > MAX_SCHEMA_ERRORS:
        lines.append(f"  ... and {count - MAX_SCHEMA_ERRORS} more")
    return "\n".join(lines)
