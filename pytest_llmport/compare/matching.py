"""Equality of JSON values within a numeric tolerance, and the one greedy unordered matching of lists.

deepdiff pairs unordered list items by hash before any custom operator runs, so 10.0 and 10.05 in an
``ignore_order`` list would be reported as one removal plus one addition. :func:`snap` replaces the parts
of the actual value that equal their expected counterpart within tolerance by that counterpart first,
which leaves deepdiff only the genuine differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .messages import is_number

__all__ = ["Closeness", "closeness", "equivalent", "greedy_partners", "snap", "tolerance_note"]

Closeness = Callable[[float, float], bool]


def closeness(tolerance: float | None, abs_tolerance: float | None) -> Closeness | None:
    """``math.isclose`` with these tolerances (validated), or None when neither is set."""
    for name, bound in (("tolerance", tolerance), ("abs_tolerance", abs_tolerance)):
        if bound is not None and (not is_number(bound) or not bound >= 0 or math.isinf(bound)):
            raise ValueError(f"{name} must be a finite number >= 0, got {bound!r}")
    if tolerance is None and abs_tolerance is None:
        return None
    relative = float(tolerance or 0.0)
    absolute = float(abs_tolerance or 0.0)

    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=relative, abs_tol=absolute)

    return close


def tolerance_note(tolerance: float | None, abs_tolerance: float | None) -> str:
    """``tolerance 0.01 / abs tolerance 0.5``, for diff lines of numbers beyond it."""
    notes = []
    if tolerance is not None:
        notes.append(f"tolerance {tolerance}")
    if abs_tolerance is not None:
        notes.append(f"abs tolerance {abs_tolerance}")
    return " / ".join(notes)


def equivalent(expected: Any, actual: Any, close: Closeness, ignore_order: bool) -> bool:
    """Whether two JSON values are equal, numbers within ``close`` (a bool never equals a number)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if is_number(expected) and is_number(actual):
        return close(expected, actual)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            equivalent(expected[key], actual[key], close, ignore_order) for key in expected
        )
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return False
        if not ignore_order:
            return all(equivalent(e, a, close, ignore_order) for e, a in zip(expected, actual, strict=True))
        return None not in greedy_partners(expected, actual, close)
    return type(expected) is type(actual) and expected == actual


def greedy_partners(expected: list[Any], actual: list[Any], close: Closeness) -> list[int | None]:
    """For each actual item, the index of the first unused equivalent expected item, or None."""
    used = [False] * len(expected)
    partners: list[int | None] = []
    for item in actual:
        partner = None
        for index, candidate in enumerate(expected):
            if not used[index] and equivalent(candidate, item, close, True):
                used[index] = True
                partner = index
                break
        partners.append(partner)
    return partners


def snap(expected: Any, actual: Any, close: Closeness, ignore_order: bool) -> Any:
    """``actual`` with each part that equals its ``expected`` counterpart within tolerance replaced by it.

    The custom deepdiff operator still covers the pairs deepdiff forms itself.
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {
            key: snap(expected[key], item, close, ignore_order) if key in expected else item
            for key, item in actual.items()
        }
    if isinstance(expected, list) and isinstance(actual, list):
        if not ignore_order:
            return [
                snap(expected[index], item, close, ignore_order) if index < len(expected) else item
                for index, item in enumerate(actual)
            ]
        partners = greedy_partners(expected, actual, close)
        return [
            item if partner is None else expected[partner]
            for item, partner in zip(actual, partners, strict=True)
        ]
    if is_number(expected) and is_number(actual) and close(expected, actual):
        return expected
    return actual
