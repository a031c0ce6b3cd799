"""The portability matrix (provider x test) and the JSON report, merged from xdist workers' reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROPERTY = "llmport"


def test_label(nodeid: str, provider: str) -> str:
    """``test_a.py::test_x[zhipu]`` -> ``test_a.py::test_x``; other parameters are kept."""
    for old, new in (
        (f"[{provider}]", ""),
        (f"[{provider}-", "["),
        (f"-{provider}]", "]"),
        (f"-{provider}-", "-"),
    ):
        if old in nodeid:
            return nodeid.replace(old, new, 1)
    return nodeid


@dataclass
class Cell:
    outcome: str  # passed | failed | skipped | error
    checks: list[dict[str, Any]] = field(default_factory=list)
    observations: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    longrepr: str = ""
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    falsifying: str = ""
    model: dict[str, Any] = field(default_factory=dict)  # identity.model_report: expected, sent, served
    # Requests from threads that predate the test (SHARED.md: url, thread, hint); not the test's traffic.
    background: list[dict[str, Any]] = field(default_factory=list)

    def word(self) -> str:
        """One short word or score for the terminal matrix; a wrong request model is marked on any cell."""
        word = self._word()
        return f"{word} wrong-model" if self.model.get("mismatch") and self.outcome != "skipped" else word

    def _word(self) -> str:
        if self.outcome == "xfailed":
            # An expected failure still shows what failed: the finding matters more than the marker.
            return f"{Cell(outcome='failed', checks=self.checks, exchanges=self.exchanges).word()} (xfail)"
        if self.outcome == "skipped":
            return "skip"
        # identity.ProviderIdentity.refusal: a request to another host than the provider's.
        problem = "wrong-host" if any(": refused " in p for p in self.problems) else "unrecorded"
        if self.outcome == "error":
            return problem if self.problems else "error"
        from .observe import exchange_word

        scores = [c["score"] for c in self.checks if c.get("score") is not None]
        findings = any(c.get("finding") for c in self.checks) or exchange_word(self.exchanges) is not None
        if self.outcome == "passed":
            text = f"ok {min(scores):.2f}" if scores else "ok"
            return text + ("*" if findings else "")
        if self.problems:
            return problem
        word = exchange_word(self.exchanges)
        if word is not None:
            return word
        for check in self.checks:
            if not check.get("passed", True):
                if check["kind"] == "similar" and check.get("facts"):
                    return str(check["facts"][0]).split(":")[0]  # "numbers differ", "negation differs"
                if check["kind"] == "similar":
                    return f"{check['score']:.2f}<{check['threshold']:.2f}"
                words = {"schema": "schema", "same": "differs", "relation": "broken"}
                return words.get(str(check["kind"]), str(check["kind"]))
        return "fail"


class Matrix:
    """Collects one cell per (test, provider) from test reports, on the controller under xdist."""

    def __init__(self, providers: Iterable[str], baseline: str) -> None:
        self.providers = list(providers)
        self.baseline = baseline
        self.cells: dict[str, dict[str, Cell]] = {}

    def add(self, nodeid: str, when: str, outcome: str, data: Mapping[str, Any], longrepr: str) -> None:
        provider = str(data["provider"])
        label = test_label(nodeid, provider)
        row = self.cells.setdefault(label, {})
        if provider not in self.providers:
            self.providers.append(provider)
        if when == "teardown" and provider in row and outcome == "passed":
            return
        kind = "error" if outcome == "failed" and when != "call" else outcome
        if provider in row and row[provider].outcome in ("failed", "error") and when == "teardown":
            return
        row[provider] = Cell(
            kind,
            list(data.get("checks", [])),
            dict(data.get("observations", {})),
            list(data.get("problems", [])),
            longrepr,
            list(data.get("exchanges", [])),
            str(data.get("falsifying") or ""),
            model=dict(data.get("model") or {}),
            background=list(data.get("background", [])),
        )

    def render(self) -> list[str]:
        if not self.cells:
            return []
        headers = ["test", *self.providers]
        # Sorted, so the table reads the same with or without xdist (workers finish in any order).
        ordered = sorted(self.cells.items())
        rows = [
            [label, *(row[p].word() if p in row else "-" for p in self.providers)] for label, row in ordered
        ]
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
        from .observe import exchange_word

        notes = [
            f"  {label} [{provider}]: {check['finding']}"
            for label, row in ordered
            for provider, cell in sorted(row.items())
            for check in cell.checks
            if check.get("finding")
        ]
        notes += [
            f"  {label} [{provider}]: smallest failing input: {cell.falsifying.splitlines()[0]} "
            + " ".join(line.strip() for line in cell.falsifying.splitlines()[1:])
            for label, row in ordered
            for provider, cell in sorted(row.items())
            if cell.falsifying
        ]
        notes += [
            f"  {label} [{provider}]: {word}"
            for label, row in ordered
            for provider, cell in sorted(row.items())
            if cell.outcome == "passed" and (word := exchange_word(cell.exchanges))
        ]
        from .identity import model_findings

        notes += [
            f"  {label} [{provider}]: {finding}"
            for label, row in ordered
            for provider, cell in sorted(row.items())
            for finding in model_findings(cell.model, provider)
        ]
        lines.append(
            f"baseline: {self.baseline}; ok N = passed, lowest similarity N; a<b = similarity a below "
            "threshold b; * = finding below; wrong-model = a request named another model than "
            "llm_provider.model"
        )
        if notes:
            lines.append("findings:")
            lines.extend(notes)
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "providers": self.providers,
            "baseline": self.baseline,
            "tests": {
                label: {provider: cell.__dict__ for provider, cell in row.items()}
                for label, row in self.cells.items()
            },
        }

    def write(self, path: str | Path) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
