"""The portability matrix (provider x test) and the JSON report, merged from xdist workers' reports."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .prices import PriceTable

PROPERTY = "llmport"
DISCARDED = "llmport-discarded"  # a recording not saved, and why (on the teardown report)
# The JSON report's format name and version (pytest_llmport/data/report.schema.json describes it). Bump the
# version when a field changes meaning or goes away; adding a field keeps it.
REPORT_FORMAT = "pytest-llmport-report"
REPORT_VERSION = 2
MATRIX_ROWS = 50  # rows the terminal matrix shows in full; beyond that, only rows with a difference
# Report-data keys a Cell keeps as they are (other helpers' fields: SHARED conventions, section 3).
PASSTHROUGH = ("cassette",)


# Strings up to this length are interned when a cell is kept from a worker's report (see compact()).
SHORT = 64


def compact(value: Any) -> Any:
    """``value`` (report data: dicts, lists, strings, numbers) with its keys and short strings interned.

    What an xdist worker sent arrives as fresh objects: every cell of a 50,000-item run would carry its
    own copy of each key ("endpoint", "request_model" ...) and of each repeated value (a model's name, a
    finish reason). The same values, one copy each: about 40 % of what the controller kept per cell
    (bench/scale.py). Containers are new ones, never shared between cells.
    """
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= SHORT and type(value) is str else value
    if isinstance(value, dict):
        return {sys.intern(k) if type(k) is str else k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


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
    model: dict[str, Any] = field(default_factory=dict)  # identity.model_report: expected, sent, served
    # Requests from threads that predate the test (SHARED.md: url, thread, hint); not the test's traffic.
    background: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # A samples=N test's pass rate and interval (pytest_llmport.samples.aggregate); empty otherwise.
    samples: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "extra"}
        return cls(**known, extra={k: data[k] for k in PASSTHROUGH if k in data})

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "extra" and (k != "samples" or v)}
        data.update(self.extra)
        if not data["kind"]:
            from .verdict import cell_kind

            data["kind"] = cell_kind(data)
        return data

    def differs(self) -> bool:
        """A row with a difference: anything but a clean pass (a finding on a pass counts)."""
        return self.outcome != "passed" or self.word().endswith("*")

    def word(self) -> str:
        """One short word or score for the terminal matrix; a wrong request model is marked on any cell."""
        word = self._word()
        if self.samples:
            from .samples import sampled_word

            word = sampled_word(self, word)
        return f"{word} wrong-model" if self.model.get("mismatch") and self.outcome != "skipped" else word

    def _word(self) -> str:
        if self.outcome == "xfailed":
            # An expected failure still shows what failed: the finding matters more than the marker.
            failed = Cell(
                "failed", self.checks, exchanges=self.exchanges, kind=self.kind, exception=self.exception
            )
            return f"{failed.word()} (xfail)"
        if self.outcome == "skipped":
            return "skip"
        # identity.ProviderIdentity.refusal: a request to another host than the provider's.
        problem = "wrong-host" if any(": refused " in p for p in self.problems) else "recording-problem"
        if self.kind == "recording-problem":
            return problem
        if self.kind == "no-baseline":
            return self.kind
        if self.kind == "app-failure":
            return "app:" + self.exception.partition(":")[0]
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

    def __init__(self, providers: Iterable[str], baseline: str, compact: bool = False) -> None:
        self.providers = list(providers)
        self.baseline = baseline
        # Cells from other processes' reports (an xdist controller): kept compact (see compact()).
        self.compact = compact
        self.cells: dict[str, dict[str, Cell]] = {}
        self.sampled: dict[tuple[str, str], dict[Any, Cell]] = {}  # (test, provider) -> sample -> cell

    def add(self, nodeid: str, when: str, outcome: str, data: Mapping[str, Any], longrepr: str) -> None:
        if self.compact:
            data = compact(dict(data))
        provider = str(data["provider"])
        sample = data.get("sample")
        if isinstance(sample, Mapping):
            # Sample k of a samples=N test (test[qwen-s2]): one cell per provider gathers the N items.
            label = test_label(nodeid, f"{provider}-s{sample['index']}")
            slot: dict[Any, Cell] = self.sampled.setdefault((label, provider), {})
            key: Any = int(sample["index"])
        else:
            label = test_label(nodeid, provider)
            slot = self.cells.setdefault(label, {})
            key = provider
        row = self.cells.setdefault(label, {})
        if provider not in self.providers:
            self.providers.append(provider)
        if when == "teardown" and key in slot and outcome == "passed":
            return
        kind = "error" if outcome == "failed" and when != "call" else outcome
        if key in slot and slot[key].outcome in ("failed", "error") and when == "teardown":
            return
        slot[key] = Cell(
            kind,
            list(data.get("checks", [])),
            dict(data.get("observations", {})),
            list(data.get("problems", [])),
            longrepr,
            list(data.get("exchanges", [])),
            str(data.get("falsifying") or ""),
            kind=str(data.get("kind") or ""),
            exception=str(data.get("exception") or ""),
            category=str(data.get("category") or ""),
            model=dict(data.get("model") or {}),
            background=list(data.get("background", [])),
            extra={k: data[k] for k in PASSTHROUGH if k in data},
        )
        if isinstance(sample, Mapping):
            from .samples import aggregate

            row[provider] = aggregate(slot, int(sample["of"]), float(sample.get("pass_rate", 1.0)))

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> Matrix:
        matrix = cls(report.get("providers") or [], str(report.get("baseline") or ""))
        for label, row in (report.get("tests") or {}).items():
            matrix.cells[label] = {provider: Cell.from_dict(cell) for provider, cell in row.items()}
        return matrix

    def render(self, limit: int | None = MATRIX_ROWS) -> list[str]:
        """The matrix: every row up to ``limit`` rows (None: no limit), else only rows with a difference."""
        if not self.cells:
            return []
        headers = ["test", *self.providers]
        # Sorted, so the table reads the same with or without xdist (workers finish in any order).
        ordered = sorted(self.cells.items())
        hidden = 0
        if limit is not None and len(ordered) > limit:
            shown = [(label, row) for label, row in ordered if any(c.differs() for c in row.values())]
            hidden = len(ordered) - len(shown)
            ordered = shown
        rows = [
            [label, *(row[p].word() if p in row else "-" for p in self.providers)] for label, row in ordered
        ]
        if not rows:
            rows = [["(no row with a difference)", *("" for _ in self.providers)]]
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
        if hidden:
            lines.append(
                f"... and {hidden} more rows where every provider passed with no finding "
                f"(--llmport-matrix=all shows them)"
            )
        from .identity import model_findings

        notes += [
            f"  {label} [{provider}]: {finding}"
            for label, row in ordered
            for provider, cell in sorted(row.items())
            for finding in model_findings(cell.model, provider)
        ]
        sampled = any(cell.samples for _, row in ordered for cell in row.values())
        lines.append(
            f"baseline: {self.baseline}; ok N = passed, lowest similarity N; a<b = similarity a below "
            "threshold b; app:E = the app raised E; * = finding below; wrong-model = a request named "
            "another model than llm_provider.model"
            + ("; k/n [a-b] = samples passed of those that ran, 95% Wilson interval" if sampled else "")
        )
        if notes:
            lines.append("findings:")
            lines.extend(notes)
        return lines

    def as_dict(
        self,
        prices: PriceTable | None = None,
        capabilities: Mapping[str, Iterable[str]] | None = None,
    ) -> dict[str, Any]:
        """The versioned JSON report; with ``prices``, each exchange gets its ``cost``."""
        from . import __version__

        tests: dict[str, dict[str, Any]] = {}
        for label, row in sorted(self.cells.items()):
            tests[label] = {}
            for provider, cell in row.items():
                data = cell.to_dict()
                if prices is not None:
                    data["exchanges"] = [{**e, "cost": prices.cost(provider, e)} for e in cell.exchanges]
                tests[label][provider] = data
        report: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "plugin": __version__,
            "providers": self.providers,
            "baseline": self.baseline,
        }
        if capabilities is not None:
            report["capabilities"] = {p: sorted(capabilities.get(p, [])) for p in self.providers}
        if prices is not None:
            report["prices"] = prices.describe()
        report["tests"] = tests
        return report


def write_atomic(path: str | Path, text: str, what: str) -> None:
    """Write a whole file or nothing (:func:`pytest_llmport.cassettes.write_atomically`); a failure is a
    usage error naming the file."""
    from .cassettes import write_atomically
    from .errors import CassetteWriteError

    try:
        write_atomically(Path(path), text.encode("utf-8"), what=what)
    except CassetteWriteError as exc:
        raise ConfigError(f"{exc}; choose a writable path") from None


def dump(report: Mapping[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def check_writable(path: str | Path, what: str, option: str) -> None:
    """Fail at start-up, not after an hour of tests, when a report cannot be written where asked."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{option}={path}: {target} is a folder; give a file path for the {what}")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}={path}: cannot write the {what} there ({parent} is not writable)")


# Kinds of broken recording (pytest_llmport.run.LlmportRun.broken says which), for grouping.
_DISCARD_KINDS = (
    ("was cut short", "a response was cut short and the test failed"),
    ("no response was recorded", "a request got no recorded response"),
    ("setup failed", "the test did not run: its setup failed"),
    ("interrupted", "the run was interrupted during the test"),
)


def group_discarded(entries: Iterable[Any]) -> list[str]:
    """Cassettes not saved, grouped by kind of reason with counts; every reason and hint in full (-q too)."""
    groups: dict[str, list[str]] = {}
    for entry in entries:
        if isinstance(entry, Mapping):
            reason = str(entry.get("reason", ""))
            lines = [f"{entry.get('nodeid', '')}: {entry.get('path', '')}: {reason}"]
            if entry.get("hint"):
                lines.append(f"  {entry['hint']}")
        else:
            reason, lines = "", [str(entry)]
        title = next((name for cue, name in _DISCARD_KINDS if cue in reason), reason or "not saved")
        groups.setdefault(title, []).extend(lines)
    out = []
    for title, items in sorted(groups.items(), key=lambda pair: pair[0]):
        count = sum(1 for item in items if not item.startswith("  "))
        out.append(f"{count} x {title} (--llmport-record-on-failure keeps a broken recording):")
        out.extend(f"  {item}" for item in items)
    return out


class RunReport:
    """The run's report outputs: prices, the versioned JSON report, the HTML page, the verdict."""

    def __init__(
        self,
        settings: Any,
        registry: Mapping[str, Any],
        prices: Mapping[str, Any] | None,
        junit_xml: bool = False,
    ) -> None:
        self.settings = settings
        # --junitxml given (an xdist worker has the controller's options): only then does each marked test
        # carry its JUnit properties. pytest keeps every item and report to the end of the session.
        self.junit_xml = junit_xml
        self._price_overrides = prices
        # [tool.llmport.prices] is checked at start-up; the built-in table alone is read for a report (a
        # run without marked tests imports neither prices.py nor tomllib and importlib.resources).
        self._prices: PriceTable | None = None
        if prices:
            from .prices import load

            self._prices = load(prices)
        self.capabilities = {name: sorted(spec.capabilities) for name, spec in registry.items()}
        for path, what, option in (
            (settings.report_path, "JSON report", "--llmport-report"),
            (settings.html_path, "HTML report", "--llmport-html"),
        ):
            if path:
                check_writable(path, what, option)
        self.report: dict[str, Any] | None = None
        self.errors: list[str] = []
        self.deselected: list[Any] = []
        self.inventory: Any = None
        self.inventory_note = ""

    def without_inventory_under_xdist(self) -> None:
        """An xdist controller collects nothing (no collection hooks run there), and no worker can tell
        an orphan from another worker's cassette: say so instead of listing, or pruning, anything."""
        if self.settings.xdist_controller:
            self.inventory_note = "under -n the workers collect the tests: run --llmport-cassettes without -n"

    def add_junit_properties(self, item: Any, data: Mapping[str, Any], report: Any) -> None:
        """Flat JUnit properties for the test (:func:`junit_properties`), once per test, with --junitxml."""
        if self.junit_xml and not any(name.startswith(f"{PROPERTY}.") for name, _ in item.user_properties):
            item.user_properties.extend(junit_properties(data, report))

    def take_inventory(self, session: Any, run: Any) -> None:
        """``--llmport-cassettes``: list (and prune) cassettes right after collection, before tests run."""
        from . import inventory

        config = session.config
        if hasattr(config, "workerinput"):
            return
        found = inventory.take(run, session.items, self.deselected, self.settings.providers)
        if self.settings.cassette_inventory == "prune":
            inventory.prune(found, config.invocation_params.args, found.roots)
        self.inventory = found

    def build(self, matrix: Matrix) -> dict[str, Any]:
        if self.report is None:
            if self.inventory is not None:
                outdated = {str(path): why for path, why in self.inventory.outdated.items()}
                for row in matrix.cells.values():
                    for cell in row.values():
                        cassette = cell.extra.get("cassette")
                        if isinstance(cassette, dict) and cassette.get("path") in outdated:
                            reasons = outdated[cassette["path"]]
                            cassette["stale"] = sorted({r.split(":", 1)[0] for r in reasons})
            self.report = matrix.as_dict(self.prices, self.capabilities)
        return self.report

    def write(self, matrix: Matrix) -> None:
        """Write the requested files; a failure is remembered for the summary, never half a file."""
        report = self.build(matrix)
        if self.settings.report_path:
            self._write(self.settings.report_path, lambda: dump(report), "JSON report")
        if self.settings.html_path:
            from .html import render_html

            self._write(self.settings.html_path, lambda: render_html(report), "HTML report")

    @property
    def prices(self) -> PriceTable:
        if self._prices is None:
            from .prices import load

            self._prices = load(self._price_overrides)
        return self._prices

    def summary(self, matrix: Matrix, discarded: Iterable[Any]) -> list[tuple[str, list[str]]]:
        """The terminal sections, in order: verdict per provider, matrix, unsaved cassettes, errors."""
        sections: list[tuple[str, list[str]]] = []
        if matrix.cells:
            from .verdict import render

            report = self.build(matrix)
            sections.append((f"verdict per provider (baseline {matrix.baseline})", render(report)))
            sections.append(("portability matrix", matrix.render(self.settings.matrix_rows)))
        if self.inventory is not None:
            sections.append(("cassette inventory", self.inventory.lines(Path.cwd())))
        elif self.inventory_note:
            sections.append(("cassette inventory", [self.inventory_note]))
        discarded = list(discarded)
        if discarded:
            sections.append(("cassettes not saved", group_discarded(discarded)))
        if self.errors:
            sections.append(("report not written", self.errors))
        return sections

    def _write(self, path: str, text: Any, what: str) -> None:
        try:
            write_atomic(path, text(), what)
        except ConfigError as exc:
            self.errors.append(str(exc))


def junit_properties(data: Mapping[str, Any], report: Any) -> list[tuple[str, str]]:
    """Flat ``llmport.*`` string properties for JUnit XML: provider, kind, model and each check's score."""
    from .verdict import cell_kind

    outcome = "error" if report.failed and report.when != "call" else report.outcome
    cell = {**data, "outcome": outcome, "longrepr": report.longreprtext if report.failed else ""}
    props = [(f"{PROPERTY}.provider", str(data["provider"])), (f"{PROPERTY}.kind", cell_kind(cell))]
    sample = data.get("sample")
    if isinstance(sample, Mapping):  # a samples=N test: which of its answers this test case is
        props.append((f"{PROPERTY}.sample", f"{sample.get('index')}/{sample.get('of')}"))
    exchanges = data.get("exchanges") or []
    sent = sorted({str(e["request_model"]) for e in exchanges if e.get("request_model")})
    served = sorted({str(e["response_model"]) for e in exchanges if e.get("response_model")})
    model = data.get("model")
    if isinstance(model, Mapping) and model.get("expected"):
        props.append((f"{PROPERTY}.model", str(model["expected"])))
    elif sent:
        props.append((f"{PROPERTY}.model", ", ".join(sent)))
    if served:
        props.append((f"{PROPERTY}.served_model", ", ".join(served)))
    for check in data.get("checks") or []:
        if check.get("score") is not None:
            name = f"{PROPERTY}.score.{check.get('key', check.get('kind'))}"
            props.append((name, f"{float(check['score']):.4f}"))
            if check.get("threshold") is not None:
                props.append((f"{name}.threshold", f"{float(check['threshold']):.4f}"))
    return props


def schema() -> dict[str, Any]:
    """The JSON Schema of the report (``pytest_llmport/data/report.schema.json``)."""
    from importlib import resources

    text = resources.files(__package__).joinpath("data/report.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_errors(report: object) -> list[str]:
    """Where ``report`` breaks the schema, as ``$.path: message`` lines (empty when it conforms)."""
    import importlib

    # Imported by name, like compare/schema.py does: jsonschema ships no type stubs.
    validators: Any = importlib.import_module("jsonschema.validators")
    validator = validators.Draft202012Validator(schema())
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(report), key=lambda e: list(e.path))
    ]
