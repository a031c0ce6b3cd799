"""The portability matrix (provider x test) and the JSON report, merged from xdist workers' reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROPERTY = "llmport"
DISCARDED = "llmport-discarded"  # a recording not saved, and why (on the teardown report)


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
    kind: str = ""  # see pytest_llmport.outcome (absent in reports of earlier versions)
    exception: str = ""
    category: str = ""
    # Requests from threads that predate the test (SHARED.md: url, thread, hint); not the test's traffic.
    background: list[dict[str, Any]] = field(default_factory=list)

    def word(self) -> str:
        """One short word or score for the terminal matrix."""
        if self.outcome == "xfailed":
            # An expected failure still shows what failed: the finding matters more than the marker.
            failed = Cell(
                "failed", self.checks, exchanges=self.exchanges, kind=self.kind, exception=self.exception
            )
            return f"{failed.word()} (xfail)"
        if self.outcome == "skipped":
            return "skip"
        if self.kind in ("recording-problem", "no-baseline"):
            return self.kind
        if self.kind == "app-failure":
            return "app:" + self.exception.partition(":")[0]
        if self.outcome == "error":
            return "recording-problem" if self.problems else "error"
        from .observe import exchange_word

        scores = [c["score"] for c in self.checks if c.get("score") is not None]
        findings = any(c.get("finding") for c in self.checks) or exchange_word(self.exchanges) is not None
        if self.outcome == "passed":
            text = f"ok {min(scores):.2f}" if scores else "ok"
            return text + ("*" if findings else "")
        if self.problems:
            return "recording-problem"
        if self.kind == "provider-error" and self.category:
            return self.category
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
            str(data.get("kind") or ""),
            str(data.get("exception") or ""),
            str(data.get("category") or ""),
            list(data.get("background", [])),
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
        notes += [
            f"  {label} [{provider}]: {cell.kind}: {cell.exception}"
            for label, row in ordered
            for provider, cell in sorted(row.items())
            if cell.kind in ("app-failure", "provider-error", "no-baseline") and cell.exception
        ]
        lines.append(
            f"baseline: {self.baseline}; ok N = passed, lowest similarity N; a<b = similarity a below "
            "threshold b; app:E = the app raised E; * = finding below"
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
        """Write the JSON report atomically; raises ``CassetteWriteError`` naming the file."""
        from .cassettes import write_atomically

        text = json.dumps(self.as_dict(), ensure_ascii=False, indent=2) + "\n"
        write_atomically(Path(path), text.encode("utf-8"), what="report")
