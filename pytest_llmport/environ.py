"""Environment variables: set for a while, put back exactly as they were, and read fast."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["current", "environment_reader", "environment_snapshot", "restore_variables", "set_variables"]


def _raw_access() -> tuple[dict[Any, Any], Callable[[str], Any], Callable[[Any], str]] | None:
    """The mapping under ``os.environ`` and its key/value codecs, when this Python has them.

    ``os.environ.get`` of an unset variable raises and catches a KeyError inside, about 4 us each (7 on a
    loaded machine); a plugin that looks up a dozen variables per test pays more for that than for the
    test's replay. The mapping ``os.environ`` keeps current in its ``__setitem__`` and ``__delitem__``
    answers the same question in a tenth of that.
    """
    environ = os.environ
    data = getattr(environ, "_data", None)
    encode, decode = getattr(environ, "encodekey", None), getattr(environ, "decodevalue", None)
    if not isinstance(data, dict) or not callable(encode) or not callable(decode):
        return None
    return data, encode, decode


_ENVIRON = os.environ
_RAW = _raw_access()
_KEYS: dict[str, Any] = {}  # variable name -> its key in the mapping under os.environ


def current(name: str) -> str | None:
    """``os.environ.get(name)``, without the exception an unset variable costs."""
    if _RAW is None or os.environ is not _ENVIRON:  # os.environ itself replaced: ask it
        return os.environ.get(name)
    data, encode, decode = _RAW
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = encode(name)
    value = data.get(key)
    return None if value is None else decode(value)


def environment_reader(names: list[str]) -> Callable[[], dict[str, str]]:
    """A function giving the variables among ``names`` set (non-empty) in ``os.environ`` now."""
    if _RAW is None:
        return lambda: {name: value for name in names if (value := os.environ.get(name, ""))}
    data, encode, decode = _RAW
    keys = [(name, encode(name)) for name in names]

    def read() -> dict[str, str]:
        if os.environ is not _ENVIRON:
            return {name: value for name in names if (value := os.environ.get(name, ""))}
        return {name: decode(raw) for name, key in keys if (raw := data.get(key))}

    return read


def environment_snapshot(names: list[str]) -> Callable[[], tuple[Any, ...]]:
    """A function giving the values of ``names`` in ``os.environ`` now, as stored (None where unset).

    Hashable, and cheaper than :func:`environment_reader`: equal snapshots mean the variables did not
    change, so what was worked out from them still holds.
    """
    if _RAW is None:
        return lambda: tuple(map(os.environ.get, names))
    data, encode, _ = _RAW
    keys = [encode(name) for name in names]

    def snapshot() -> tuple[Any, ...]:
        if os.environ is not _ENVIRON:
            return tuple(map(os.environ.get, names))
        return tuple(map(data.get, keys))

    return snapshot


def set_variables(values: Mapping[str, str], saved: dict[str, str | None]) -> None:
    """Set ``values`` in ``os.environ``, noting in ``saved`` what each variable held before the first set."""
    environ = os.environ
    for name, value in values.items():
        now = current(name)
        if name not in saved:
            saved[name] = now
        if now != value:  # a write costs a scan of the process environment: only when it changes it
            environ[name] = value


def restore_variables(saved: dict[str, str | None]) -> None:
    """Put back what ``saved`` noted (a variable that was not set is removed), then forget it."""
    environ = os.environ
    for name, old in saved.items():
        now = current(name)
        if old is None:
            if now is not None:
                del environ[name]
        elif now != old:
            environ[name] = old
    saved.clear()
