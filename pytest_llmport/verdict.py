"""The per-provider verdict: what changes, how fast and at what cost, if the app moves off the baseline.

Computed from the report dictionary alone (what ``--llmport-report`` writes), so a merged report gives the
same verdict as a single run over all providers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .outcome import KINDS, kind_of_cell

# The outcome kinds of a cell, in the order the verdict lists them, are defined once, in outcome.py.
KIND_LABELS = {
    "equivalence": "equivalence findings",
    "app-failure": "the app's own failures",
    "provider-error": "provider errors and content filters",
    "recording-problem": "recording problems",
    "no-baseline": "missing baselines",
    "skipped": "skipped",
}
# Findings that do not fail a test but matter when switching.
NOTE_LABELS = {
    "wrapped-json": "wrapped JSON",
    "model-mismatch": "model mismatches",
    "finish-length": "answers cut at the length limit",
    "content-filter": "content filtered",
}


# A cell's kind is decided in outcome.py, live or (for a cell that has none) from its data.
cell_kind = kind_of_cell


def cell_notes(cell: Mapping[str, Any]) -> list[str]:
    """Findings of a cell that are not its kind: wrapped JSON, a different model, a cut answer."""
    notes = []
    for check in cell.get("checks") or ():
        if check.get("kind") == "schema" and str(check.get("finding") or "").startswith("not bare JSON"):
            notes.append("wrapped-json")
            break
    exchanges = cell.get("exchanges") or ()
    model = cell.get("model")
    if model.get("mismatch") if isinstance(model, Mapping) else any(_model_differs(e) for e in exchanges):
        notes.append("model-mismatch")
    finishes = {e.get("finish_reason") for e in exchanges}
    if "length" in finishes:
        notes.append("finish-length")
    if "content_filter" in finishes or any(e.get("content_filtered") for e in exchanges):
        notes.append("content-filter")
    return notes


def _model_differs(exchange: Mapping[str, Any]) -> bool:
    # A served model that does not start with the requested name (a dated snapshot does) is another model.
    sent, served = exchange.get("request_model"), exchange.get("response_model")
    if not sent or not served:
        return False
    return not str(served).lower().startswith(str(sent).lower())


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (p50, p95): a value that was really measured, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Verdict:
    provider: str
    baseline: str
    is_baseline: bool = False
    cells: int = 0
    compared: int = 0
    equivalent: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    changed: list[tuple[str, str]] = field(default_factory=list)  # (test, kind) of each changed cell
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    tokens: Counter[str] = field(default_factory=Counter)
    exchanges: int = 0
    cost_usd: float = 0.0
    cost_cny: float = 0.0
    cost_unknown: int = 0
    unknown_reasons: Counter[str] = field(default_factory=Counter)
    features: Counter[str] = field(default_factory=Counter)  # feature -> tests relying on it
    declared: list[str] = field(default_factory=list)
    cassettes: Counter[str] = field(default_factory=Counter)
    sampled: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # (test, its pass rate)

    @property
    def undeclared(self) -> list[str]:
        return sorted(f for f in self.features if self.declared and f not in self.declared)

    def as_dict(self) -> dict[str, Any]:
        latency = {
            name: {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "n": len(values)}
            for name, values in (("ttft_ms", self.ttft_ms), ("total_ms", self.total_ms))
        }
        return {
            "provider": self.provider,
            "baseline": self.baseline,
            "is_baseline": self.is_baseline,
            "cells": self.cells,
            "compared": self.compared,
            "equivalent": self.equivalent,
            "kinds": dict(self.kinds),
            "notes": dict(self.notes),
            "latency": latency,
            "tokens": dict(self.tokens),
            "exchanges": self.exchanges,
            "cost": {
                "usd": self.cost_usd,
                "cny": self.cost_cny,
                "unknown_exchanges": self.cost_unknown,
                "unknown_reasons": dict(self.unknown_reasons),
            },
            "features": dict(self.features),
            "declared": self.declared,
            "undeclared": self.undeclared,
            "cassettes": dict(self.cassettes),
            "samples": [{"test": test, **_without_cells(rate)} for test, rate in self.sampled],
        }


def verdicts(report: Mapping[str, Any]) -> list[Verdict]:
    """One verdict per provider of the report, the baseline first."""
    baseline = str(report.get("baseline") or "")
    providers = list(report.get("providers") or [])
    ordered = [p for p in providers if p == baseline] + [p for p in providers if p != baseline]
    declared = report.get("capabilities") or {}
    result = {p: Verdict(p, baseline, p == baseline, declared=sorted(declared.get(p, []))) for p in ordered}
    for test, row in sorted((report.get("tests") or {}).items()):
        for provider, cell in row.items():
            verdict = result.get(provider)
            if verdict is None:
                verdict = result[provider] = Verdict(
                    provider, baseline, declared=sorted(declared.get(provider, []))
                )
            _add(verdict, test, cell)
    return list(result.values())


def _add(verdict: Verdict, test: str, cell: Mapping[str, Any]) -> None:
    verdict.cells += 1
    if isinstance(cell.get("samples"), Mapping) and cell["samples"].get("ran"):
        verdict.sampled.append((test, cell["samples"]))
    kind = cell_kind(cell)
    verdict.kinds[kind] += 1
    for note in cell_notes(cell):
        verdict.notes[note] += 1
    if kind != "skipped":
        verdict.compared += 1
        if kind == "passed":
            verdict.equivalent += 1
        else:
            verdict.changed.append((test, kind))
    used: set[str] = set()
    for exchange in cell.get("exchanges") or []:
        verdict.exchanges += 1
        used.update(exchange.get("features") or [])
        if isinstance(exchange.get("first_byte_ms"), (int, float)):
            verdict.ttft_ms.append(float(exchange["first_byte_ms"]))
        if isinstance(exchange.get("total_ms"), (int, float)):
            verdict.total_ms.append(float(exchange["total_ms"]))
        for key, value in (exchange.get("usage") or {}).items():
            if isinstance(value, int):
                verdict.tokens[key] += value
        cost = exchange.get("cost")
        if not isinstance(cost, Mapping) or "unknown" in cost:
            verdict.cost_unknown += 1
            reason = cost.get("unknown") if isinstance(cost, Mapping) else "not priced"
            verdict.unknown_reasons[str(reason)] += 1
        else:
            verdict.cost_usd += float(cost.get("usd") or 0.0)
            verdict.cost_cny += float(cost.get("cny") or 0.0)
    for feature in used:
        verdict.features[feature] += 1
    source = (cell.get("cassette") or {}).get("source") if isinstance(cell.get("cassette"), Mapping) else None
    if source:
        verdict.cassettes[str(source)] += 1
    for flag in (
        (cell.get("cassette") or {}).get("stale", []) if isinstance(cell.get("cassette"), Mapping) else []
    ):
        verdict.cassettes[f"stale: {flag}"] += 1


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def money(verdict: Verdict) -> str:
    """``$0.0123 / ¥0.0873``, or ``unknown`` when no exchange had a price; partial sums say so."""
    if not verdict.exchanges:
        return "nothing sent"
    if verdict.cost_unknown == verdict.exchanges:
        return "unknown"
    text = f"${_amount(verdict.cost_usd)} / ¥{_amount(verdict.cost_cny)}"
    if verdict.cost_unknown:
        reasons = "; ".join(f"{reason}: {n}" for reason, n in verdict.unknown_reasons.most_common())
        text += f" + unknown for {verdict.cost_unknown} of {verdict.exchanges} exchanges ({reasons})"
    return text


def _amount(value: float) -> str:
    return f"{value:.6f}" if value < 0.01 else f"{value:,.4f}"


def _counts(counter: Mapping[str, int], labels: Mapping[str, str], order: Iterable[str]) -> str:
    keys = [k for k in order if counter.get(k)] + sorted(k for k in counter if k not in order and counter[k])
    return ", ".join(f"{labels.get(k, k)} {counter[k]}" for k in keys)


def render(report: Mapping[str, Any]) -> list[str]:
    """The terminal verdict: one short block per provider."""
    lines: list[str] = []
    rate = (report.get("prices") or {}).get("cny_per_usd")
    for verdict in verdicts(report):
        if verdict.is_baseline:
            head = f"{verdict.provider} (baseline): {verdict.equivalent}/{verdict.compared} passed"
        else:
            ratio = f"{verdict.equivalent}/{verdict.compared}"
            head = f"{verdict.provider} vs {verdict.baseline}: {ratio} equivalent"
        skipped = verdict.kinds.get("skipped", 0)
        lines.append(head + (f", {skipped} skipped" if skipped else ""))
        changes = _counts(
            {k: v for k, v in verdict.kinds.items() if k not in ("passed", "skipped")}, KIND_LABELS, KINDS
        )
        lines.append(f"  changes:  {changes or 'none'}")
        notes = _counts(verdict.notes, NOTE_LABELS, list(NOTE_LABELS))
        if notes:
            lines.append(f"  notes:    {notes}")
        p50, p95 = percentile(verdict.ttft_ms, 0.5), percentile(verdict.ttft_ms, 0.95)
        t50, t95 = percentile(verdict.total_ms, 0.5), percentile(verdict.total_ms, 0.95)
        lines.append(
            f"  latency:  first token p50 {_ms(p50)}, p95 {_ms(p95)}; total p50 {_ms(t50)}, p95 {_ms(t95)} "
            f"({len(verdict.total_ms)} exchanges)"
        )
        tokens = verdict.tokens
        lines.append(
            f"  tokens:   {tokens.get('prompt', 0):,} in ({tokens.get('cached', 0):,} cached), "
            f"{tokens.get('completion', 0):,} out"
        )
        lines.append(f"  cost:     {money(verdict)}")
        if verdict.features or verdict.declared:
            used = ", ".join(f"{name} ({count})" for name, count in sorted(verdict.features.items()))
            line = f"  features: {used or 'none'}"
            if verdict.undeclared:
                line += f"; NOT declared by {verdict.provider}: {', '.join(verdict.undeclared)}"
            lines.append(line)
            lines.append(f"  declares: {', '.join(verdict.declared) or 'nothing'}")
        if verdict.cassettes:
            lines.append(f"  cells:    {_counts(verdict.cassettes, {}, ('replayed', 'recorded'))}")
        if verdict.sampled:
            lines.append(f"  samples:  {sampled_line(verdict.sampled)}")
    if lines:
        lines.append(
            "latency from the recordings' timing; cost = recorded usage x list price"
            + (f", {rate} CNY per USD" if rate else "")
            + "; token counts differ between tokenizers, so compare costs, not token counts"
        )
    return lines


def _without_cells(rate: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rate.items() if k != "cells"}


def sampled_line(sampled: list[tuple[str, Mapping[str, Any]]]) -> str:
    """``2 sampled tests, 1 equivalent by its pass rate; lowest: test_x 3/5 [0.23-0.88] (needs all)``."""
    good = sum(1 for _, rate in sampled if rate.get("equivalent"))
    test, rate = min(sampled, key=lambda pair: (pair[1]["interval"][0], pair[0]))
    low, high = rate["interval"]
    required = float(rate.get("required", 1.0))
    need = "needs every sample" if required >= 1 else f"needs a lower bound >= {required:g}"
    ran, of = int(rate.get("ran", 0)), int(rate.get("of", rate.get("ran", 0)))
    missing = f"; only {ran} of {of} ran" if ran < of else ""
    return (
        f"{len(sampled)} sampled test{'s' if len(sampled) != 1 else ''}, {good} equivalent by pass rate "
        f"(95% Wilson interval); lowest: {test} {rate['passed']}/{rate['ran']} [{low:.2f}-{high:.2f}] "
        f"({need}{missing})"
    )
