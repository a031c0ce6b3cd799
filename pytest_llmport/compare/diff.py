"""Structural comparison: whether a provider's JSON output equals the baseline's, and a ``$.path`` diff.

Options: order-insensitive lists, numeric tolerance (see :mod:`.matching`), path exclusions in ``$.a[0]``
syntax and string normalisation (see :mod:`.normalization`). deepdiff finds the differences; it is imported
only when a comparison runs.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from ..jsonvalue import PathElement, format_path, to_json, type_label
from .matching import Closeness, closeness, snap, tolerance_note
from .messages import is_number, json_type, path_sort_key, short
from .normalization import StringNormalization, normalize_tree

__all__ = [
    "MAX_DIFF_LINES",
    "Comparison",
    "check_options",
    "compare_structures",
    "ensure_jsonable",
    "format_comparison",
]

MAX_DIFF_LINES: Final = 20
# Reports are stored next to every observation, so a pathological diff must not bloat them.
_MAX_RAW_DIFFERENCES: Final = 200


def ensure_jsonable(value: Any, *, where: str) -> Any:
    """Return ``value`` as plain JSON data (see :func:`pytest_llmport.jsonvalue.to_json`).

    Raises :class:`NotSerializableError` naming the bad path, prefixed by ``where``.
    """
    return to_json(value, where=where)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Outcome of :func:`compare_structures`; ``raw`` is a JSON-serialisable record for reports."""

    equal: bool
    diff_lines: tuple[str, ...]
    raw: dict[str, Any]


class _JsonBool(enum.Enum):
    """Stand-in for bools while diffing.

    deepdiff short-circuits on Python equality, and ``[True] == [1]``, so without this a boolean that
    became a number would go unreported.
    """

    FALSE = False
    TRUE = True


def _mark_bools(value: Any) -> Any:
    if isinstance(value, bool):
        return _JsonBool.TRUE if value else _JsonBool.FALSE
    if isinstance(value, list):
        return [_mark_bools(item) for item in value]
    if isinstance(value, dict):
        return {key: _mark_bools(item) for key, item in value.items()}
    return value


def _unmark_bools(value: Any) -> Any:
    if isinstance(value, _JsonBool):
        return value.value
    if isinstance(value, list):
        return [_unmark_bools(item) for item in value]
    if isinstance(value, dict):
        return {key: _unmark_bools(item) for key, item in value.items()}
    return value


class _NumericTolerance:
    """deepdiff custom operator treating numbers within tolerance as equal."""

    def __init__(self, close: Closeness) -> None:
        self._close = close

    def match(self, level: Any) -> bool:
        return is_number(level.t1) and is_number(level.t2)

    def give_up_diffing(self, level: Any, diff_instance: Any) -> bool:
        return self._close(level.t1, level.t2)

    def normalize_value_for_hashing(self, parent: Any, obj: Any) -> Any:
        return obj


_PATH_NAME: Final = re.compile(r"\*\*|\*|[^\W\d]\w*")
_PATH_BRACKET: Final = re.compile(
    r"""\[\s*(?:'(?P<single>(?:[^'\\]|\\.)*)'|"(?P<double>(?:[^"\\]|\\.)*)"|(?P<index>-?\d+)|(?P<star>\*\*?))\s*\]"""
)


def _deepdiff_key(key: str) -> str:
    return f'["{key}"]' if "'" in key else f"['{key}']"


def _to_deepdiff_path(path: str) -> str:
    """Translate ``$.a[0]['b c'][*]..d`` into deepdiff's ``root['a'][0]['b c'][*][**]['d']``."""
    if not isinstance(path, str):
        raise TypeError(f"paths must be str, got {type_label(type(path))}")
    if path.startswith("root"):
        return path
    if not path.startswith("$"):
        raise ValueError(
            f"invalid path {path!r}: expected a '$.a[0]'-style path (or deepdiff's root['a'][0])"
        )
    parts = ["root"]
    index = 1
    while index < len(path):
        if path.startswith("..", index):
            parts.append("[**]")
            index += 2
            name = _PATH_NAME.match(path, index)
        elif path[index] == ".":
            index += 1
            name = _PATH_NAME.match(path, index)
        elif (bracket := _PATH_BRACKET.match(path, index)) is not None:
            index = bracket.end()
            if bracket.group("index") is not None:
                parts.append(f"[{int(bracket.group('index'))}]")
            elif bracket.group("star") is not None:
                parts.append(f"[{bracket.group('star')}]")
            else:
                quoted = (
                    bracket.group("single")
                    if bracket.group("single") is not None
                    else bracket.group("double")
                )
                parts.append(_deepdiff_key(re.sub(r"\\(.)", r"\1", quoted)))
            continue
        else:
            name = None
        if name is None:
            raise ValueError(f"invalid path {path!r} at position {index}")
        token = name.group()
        parts.append(f"[{token}]" if token.startswith("*") else _deepdiff_key(token))
        index = name.end()
    return "".join(parts)


@dataclasses.dataclass(frozen=True)
class _Difference:
    path: tuple[PathElement, ...]
    kind: str
    expected: Any = None
    actual: Any = None
    expected_count: int = 0
    actual_count: int = 0

    def line(self, note: str) -> str:
        where = format_path(self.path)
        expected, actual = short(self.expected), short(self.actual)
        if self.kind == "changed":
            suffix = ""
            if note and is_number(self.expected) and is_number(self.actual):
                suffix = f" (beyond {note})"
            return f"{where}: {expected} != {actual}{suffix}"
        if self.kind == "type_changed":
            return f"{where}: {expected} != {actual} ({json_type(self.expected)} vs {json_type(self.actual)})"
        if self.kind == "missing":
            return f"{where}: missing in actual (expected {expected})"
        if self.kind == "unexpected":
            what = "key" if self.path and isinstance(self.path[-1], str) else "item"
            return f"{where}: unexpected {what} in actual (got {actual})"
        if self.kind == "repetition":
            return (
                f"{where}: {expected} occurs {self.expected_count} time(s) in expected "
                f"but {self.actual_count} in actual"
            )
        return f"{where}: {self.kind}"

    def record(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": format_path(self.path), "kind": self.kind}
        if self.kind in ("changed", "type_changed", "missing", "repetition"):
            entry["expected"] = self.expected
        if self.kind in ("changed", "type_changed", "unexpected"):
            entry["actual"] = self.actual
        if self.kind == "repetition":
            entry["expected_count"] = self.expected_count
            entry["actual_count"] = self.actual_count
        return entry


_DEEPDIFF_KINDS: Final = {
    "values_changed": "changed",
    "type_changes": "type_changed",
    "dictionary_item_removed": "missing",
    "iterable_item_removed": "missing",
    "dictionary_item_added": "unexpected",
    "iterable_item_added": "unexpected",
    "repetition_change": "repetition",
}


def _deep_differences(
    expected: Any,
    actual: Any,
    *,
    ignore_order: bool,
    close: Closeness | None,
    exclude_paths: list[str],
    exclude_regexes: list[re.Pattern[str]],
) -> list[_Difference]:
    from deepdiff import DeepDiff
    from deepdiff.path import parse_path as _parse_path

    parse_path: Callable[[str], list[PathElement]] = _parse_path  # untyped upstream

    options: dict[str, Any] = {
        "ignore_order": ignore_order,
        # With ignore_order deepdiff defaults to set semantics; a duplicated list item is a difference.
        "report_repetition": ignore_order,
        # JSON has one number type: 10 and 10.0 are the same value.
        "ignore_type_in_groups": [(int, float)],
        # Otherwise dicts sharing few keys are reported as one whole-value change, hiding which keys.
        "threshold_to_diff_deeper": 0,
        "view": "tree",
    }
    if exclude_paths:
        options["exclude_paths"] = exclude_paths
    if exclude_regexes:
        rendered: dict[str, str] = {}

        def excluded(obj: Any, deepdiff_path: str) -> bool:
            if deepdiff_path not in rendered:
                rendered[deepdiff_path] = format_path(parse_path(deepdiff_path))
            return any(regex.search(rendered[deepdiff_path]) for regex in exclude_regexes)

        options["exclude_obj_callback"] = excluded
    if close is not None:
        options["custom_operators"] = [_NumericTolerance(close)]

    tree = DeepDiff(_mark_bools(expected), _mark_bools(actual), **options).tree
    differences: list[_Difference] = []
    for report_type, levels in tree.items():
        kind = _DEEPDIFF_KINDS.get(report_type, report_type)
        for level in levels:
            path = tuple(level.path(output_format="list"))
            t1 = _unmark_bools(level.t1)
            t2 = _unmark_bools(level.t2)
            if kind == "repetition":
                repetition = level.additional.get("repetition", {})
                differences.append(
                    _Difference(
                        path,
                        kind,
                        expected=t1,
                        expected_count=int(repetition.get("old_repeat", 0)),
                        actual_count=int(repetition.get("new_repeat", 0)),
                    )
                )
            else:
                differences.append(
                    _Difference(
                        path,
                        kind,
                        expected=None if kind == "unexpected" else t1,
                        actual=None if kind == "missing" else t2,
                    )
                )
    differences.sort(key=lambda difference: path_sort_key(difference.path))
    return differences


def check_options(
    tolerance: float | None,
    abs_tolerance: float | None,
    exclude_paths: Sequence[str],
    exclude_regex_paths: Sequence[str],
) -> tuple[Closeness | None, list[Any], list[re.Pattern[str]]]:
    """Validate :func:`compare_structures` options (also on the baseline, which compares nothing)."""
    close = closeness(tolerance, abs_tolerance)
    for name, paths in (("exclude_paths", exclude_paths), ("exclude_regex_paths", exclude_regex_paths)):
        if isinstance(paths, str):
            raise TypeError(f"{name} must be a sequence of str, not a single str")
    deepdiff_paths = [_to_deepdiff_path(path) for path in exclude_paths]
    regexes: list[re.Pattern[str]] = []
    for pattern in exclude_regex_paths:
        try:
            regexes.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"invalid regex in exclude_regex_paths {pattern!r}: {exc}") from None
    return close, deepdiff_paths, regexes


def compare_structures(
    expected: Any,
    actual: Any,
    *,
    ignore_order: bool = False,
    tolerance: float | None = None,
    abs_tolerance: float | None = None,
    exclude_paths: Sequence[str] = (),
    exclude_regex_paths: Sequence[str] = (),
    normalize: StringNormalization | None = None,
) -> Comparison:
    """Compare two JSON-like values structurally (``expected`` is the baseline provider's).

    * ``ignore_order``: lists are compared as multisets (a duplicated item is still a difference).
    * ``tolerance`` / ``abs_tolerance``: numbers are equal when ``math.isclose`` says so with that
      relative / absolute tolerance; booleans never equal numbers, and ``10 == 10.0``.
    * ``exclude_paths``: ``$.a[0].b``-style paths (``[*]`` matches one segment, ``..`` or ``[**]`` any
      number); deepdiff's own ``root['a']`` syntax is accepted too.
    * ``exclude_regex_paths``: regexes searched in the ``$.a[0].b`` rendering of each path.
    * ``normalize``: strings on both sides are normalised before diffing (the diff shows the normalised
      strings).

    Both values go through :func:`ensure_jsonable` first, so unsupported values raise
    :class:`NotSerializableError` naming ``expected`` or ``actual`` and the path.
    """
    close, deepdiff_paths, regexes = check_options(
        tolerance, abs_tolerance, exclude_paths, exclude_regex_paths
    )
    expected = ensure_jsonable(expected, where="expected")
    actual = ensure_jsonable(actual, where="actual")
    if normalize is not None:
        expected = normalize_tree(expected, normalize, [])
        actual = normalize_tree(actual, normalize, [])
    if close is not None:
        actual = snap(expected, actual, close, ignore_order)

    differences = _deep_differences(
        expected,
        actual,
        ignore_order=ignore_order,
        close=close,
        exclude_paths=deepdiff_paths,
        exclude_regexes=regexes,
    )
    note = tolerance_note(tolerance, abs_tolerance)
    lines = [difference.line(note) for difference in differences[:MAX_DIFF_LINES]]
    if len(differences) > MAX_DIFF_LINES:
        lines.append(f"... and {len(differences) - MAX_DIFF_LINES} more")
    raw: dict[str, Any] = {
        "equal": not differences,
        "total": len(differences),
        "differences": [difference.record() for difference in differences[:_MAX_RAW_DIFFERENCES]],
        "options": {
            "ignore_order": ignore_order,
            "tolerance": tolerance,
            "abs_tolerance": abs_tolerance,
            "exclude_paths": list(exclude_paths),
            "exclude_regex_paths": list(exclude_regex_paths),
            "normalize": normalize.describe() if normalize is not None else None,
        },
    }
    return Comparison(equal=not differences, diff_lines=tuple(lines), raw=raw)


def format_comparison(key: str, comparison: Comparison, baseline_provider: str, provider: str) -> str:
    """The assertion message for one observed ``key`` of ``provider`` against the baseline provider."""
    if comparison.equal:
        return f"{key!r} on {provider} matches baseline {baseline_provider}"
    body = "\n".join(f"  {line}" for line in comparison.diff_lines)
    return f"{key!r} on {provider} differs from baseline {baseline_provider}:\n{body}"
