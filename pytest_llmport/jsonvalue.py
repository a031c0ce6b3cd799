"""Python values as plain JSON data: the one converter for observations, comparisons and strategies.

Observations are stored as JSON and compared with live values that went through the same conversion, so
every conversion here is deterministic and the same on both sides: dataclasses and pydantic models become
objects, tuples lists, sets sorted lists, enums their value, dates and times ISO text, UUID / Decimal / paths
their text, bytes base64, non-string keys their JSON text (as ``json.dumps`` writes an int key). What has no
faithful JSON form (NaN, infinities, arbitrary objects, cycles) is refused with the ``$.path`` of the part.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any, Final

PathElement = str | int

ACCEPTED: Final = (
    "None, bool, int, float, str, list, tuple, set, dict, dataclass instances, pydantic models, enums, "
    "dates and times, UUID, Decimal, paths, bytes"
)


class NotSerializableError(TypeError):
    """A value cannot be stored as JSON; ``path`` is the ``$.path`` of the offending part."""

    # Defaults keep the exception picklable (pickle re-creates it from ``args`` alone), which matters
    # when pytest-xdist ships failures between processes.
    def __init__(self, message: str, path: str = "$", where: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.where = where


# Unicode identifiers (CJK included) read well in dot notation; anything else is bracket-quoted.
_DOT_KEY = re.compile(r"[^\W\d]\w*")


def format_path(elements: Iterable[PathElement]) -> str:
    """Render path elements as a JSONPath-like string: ``["items", 2, "price"]`` -> ``$.items[2].price``."""
    parts = ["$"]
    for element in elements:
        if isinstance(element, int) and not isinstance(element, bool):
            parts.append(f"[{element}]")
        elif isinstance(element, str) and _DOT_KEY.fullmatch(element):
            parts.append(f".{element}")
        else:
            text = str(element).replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{text}']")
    return "".join(parts)


def type_label(value_type: type) -> str:
    if value_type.__module__ == "builtins":
        return value_type.__qualname__
    return f"{value_type.__module__}.{value_type.__qualname__}"


def to_json(value: Any, *, where: str = "") -> Any:
    """``value`` as plain JSON data; :class:`NotSerializableError` names the bad path, after ``where``."""
    return _convert(value, [], where, set())


def _refuse(where: str, path: list[PathElement], problem: str) -> NotSerializableError:
    rendered = format_path(path)
    prefix = f"{where} at {rendered}" if where else f"value at {rendered}"
    return NotSerializableError(f"{prefix}: {problem}", path=rendered, where=where)


def _key(key: Any, path: list[PathElement], where: str, active: set[int]) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    converted = _convert(key, [*path, str(key)], where, active)
    return converted if isinstance(converted, str) else json.dumps(converted)


def _convert(value: Any, path: list[PathElement], where: str, active: set[int]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return _convert(value.value, path, where, active)
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refuse(where, path, f"{value!r} is not valid JSON")
        return float(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if id(value) in active:
        raise _refuse(where, path, "circular reference")
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for key, item in value.items():
                name = _key(key, path, where, active)
                if name in result:
                    raise _refuse(where, [*path, name], f"two keys become {name!r} (one of them {key!r})")
                result[name] = _convert(item, [*path, key], where, active)
            return result
        if isinstance(value, (list, tuple)):
            return [_convert(item, [*path, index], where, active) for index, item in enumerate(value)]
        if isinstance(value, (set, frozenset)):
            items = [_convert(item, [*path, index], where, active) for index, item in enumerate(value)]
            # Sets have no order; sorting by canonical JSON makes stored observations reproducible.
            return sorted(items, key=lambda item: json.dumps(item, sort_keys=True, ensure_ascii=False))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                field.name: _convert(getattr(value, field.name), [*path, field.name], where, active)
                for field in dataclasses.fields(value)
            }
        dump = getattr(value, "model_dump", None)
        if callable(dump) and not isinstance(value, type):  # a pydantic model instance
            return _convert(dump(mode="json"), path, where, active)
    finally:
        active.discard(id(value))
    raise _refuse(where, path, f"{type_label(type(value))} is not JSON-serialisable (accepted: {ACCEPTED})")
