"""What one cell of the matrix is (SHARED ``kind``), and whether its recording is whole (no pytest import).

The cell kinds: ``passed``; ``equivalence`` (an ``llm_equiv`` finding); ``app-failure`` (the app's own
exception on this provider); ``provider-error`` (an HTTP error status or a content filter explains the
failure); ``recording-problem`` (a request that could not be recorded or replayed, a damaged or missing
cassette, a cut-short response the test did not expect); ``no-baseline``; ``skipped``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

KINDS = (
    "passed",
    "equivalence",
    "app-failure",
    "provider-error",
    "recording-problem",
    "no-baseline",
    "skipped",
)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    # hypothesis may wrap several failures in an ExceptionGroup.
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        for item in inner:
            yield from _leaves(item)
    else:
        yield exc


def describe(exc: BaseException) -> str:
    """``"TypeName: first line"`` of an exception (the first of a group)."""
    first = next(_leaves(exc))
    text = str(first).strip().splitlines()
    return f"{type(first).__name__}: {text[0]}" if text else type(first).__name__


def is_finding(exc: BaseException) -> bool:
    """True when every failure in ``exc`` is a non-equivalent answer (``EquivalenceError``)."""
    from .equivalence import EquivalenceError

    return all(isinstance(e, EquivalenceError) for e in _leaves(exc))


def provider_error(exchanges: Sequence[Mapping[str, Any]]) -> str | None:
    """The error category (or ``content_filter``) of the first exchange the provider refused."""
    for exchange in exchanges:
        error = exchange.get("error")
        if isinstance(error, Mapping):
            return str(error.get("category") or "unknown")
        if exchange.get("content_filtered") or exchange.get("finish_reason") == "content_filter":
            return "content_filter"
    return None


def decide_kind(
    outcome: str, *, problems: bool, no_baseline: bool, finding: bool, exchanges: Sequence[Mapping[str, Any]]
) -> tuple[str, str | None]:
    """The one order in which a cell's facts decide its kind: ``(kind, provider error category)``.

    ``outcome`` is ``passed``, ``failed`` or ``skipped``; the facts come from the live exception
    (:func:`cell_kind`) or, for a report cell that carries no kind, from its data (:func:`kind_of_cell`).
    """
    if outcome == "skipped":
        return "skipped", None
    if problems:
        # Even a test that passed: its recording cannot be kept, so CI would not see this pass.
        return "recording-problem", None
    if outcome == "passed":
        return "passed", None
    if no_baseline:
        return "no-baseline", None
    if finding:
        return "equivalence", None
    category = provider_error(exchanges)
    if category is not None:
        return "provider-error", category
    return "app-failure", None


def cell_kind(outcome: str, exc: BaseException | None, data: Mapping[str, Any]) -> dict[str, str]:
    """``{"kind": ...}`` plus ``exception`` / ``category`` where they apply.

    ``outcome`` is pytest's (``passed``, ``failed``, ``skipped``) or ``xfailed``; ``exc`` the exception of
    a failure (or of an expected failure), ``data`` the test's report data (``problems``, ``exchanges``).
    """
    if exc is None and outcome != "skipped":
        outcome = "passed"
    kind, category = decide_kind(
        "failed" if outcome == "xfailed" else outcome,
        problems=bool(data.get("problems")),
        no_baseline=exc is not None and _no_baseline(exc),
        finding=exc is not None and is_finding(exc),
        exchanges=data.get("exchanges") or (),
    )
    result = {"kind": kind}
    if category is not None:
        result["category"] = category
    if exc is not None and kind not in ("skipped", "passed"):
        result["exception"] = describe(exc)
    return result


def _no_baseline(exc: BaseException) -> bool:
    from .equivalence import MissingBaselineError

    return any(isinstance(e, MissingBaselineError) for e in _leaves(exc))


def kind_of_cell(cell: Mapping[str, Any]) -> str:
    """A report cell's ``kind`` when the run recorded one, else decided from what the cell holds.

    A setup or teardown ``error`` counts as a failure (the plugin's own setup problems are in ``problems``).
    """
    kind = cell.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    outcome = str(cell.get("outcome") or "")
    return decide_kind(
        "failed" if outcome not in ("passed", "skipped") else outcome,
        problems=bool(cell.get("problems")),
        no_baseline="MissingBaselineError" in str(cell.get("longrepr") or ""),
        finding=any(not check.get("passed", True) for check in cell.get("checks") or []),
        exchanges=list(cell.get("exchanges") or []),
    )[0]


def broken_exchanges(cassette: Any, pending: Mapping[int, Any] | None = None) -> list[str]:
    """One line per exchange of this test that was cut short, got no answer or was not recorded."""
    loaded = cassette.loaded_count
    lines = [
        f"{request.method} {request.uri}: no response was recorded (the transfer failed before it was "
        "recorded, or the response was never read to its end)"
        for request in (pending or {}).values()
    ]
    for index, (request, response) in enumerate(cassette.data):
        if index < loaded:
            continue
        where = f"exchange #{index + 1} {request.method} {request.uri}"
        incomplete = (response.get("llmport") or {}).get("incomplete")
        code = response.get("status", {}).get("code")
        if incomplete:
            what = "got no answer" if code == 0 else f"was cut short (HTTP {code})"
            lines.append(f"{where} {what}: {incomplete.get('error')}: {incomplete.get('message')}")
        elif "string" not in response.get("body", {}) and _announced_length(response) > 0:
            # vcrpy's aiohttp stub stores a body it failed to read as no body at all.
            lines.append(f"{where} was cut short (HTTP {code}): its body was announced but not recorded")
    return lines


def _announced_length(response: Mapping[str, Any]) -> int:
    for name, values in (response.get("headers") or {}).items():
        if name.lower() == "content-length":
            value = values[0] if isinstance(values, list) and values else values
            try:
                return int(value)
            except (TypeError, ValueError):
                return 0
    return 0
