"""Variance, not one sample: ``samples=N`` runs a test N times per provider and judges the pass rate.

Each sample is an item of its own (``test[qwen-s1]`` .. ``test[qwen-sN]``) with its own cassette
(``qwen.s1.yaml``) and, on the baseline, its own observation file (``openai.s1.observations.json``), so
xdist spreads samples over workers, record modes, seals, identity checks and the cassette inventory treat
each like any cassette, and raising N records only the new samples.

Candidate sample ``k`` compares with baseline sample ``((k - 1) mod N) + 1`` (``same()``, ``baseline()``,
the facts of ``similar()``); ``similar()`` scores the candidate's text against every baseline sample and
takes the mean. ``threshold="baseline"`` sets the threshold from the baseline's own spread: the mean
similarity of its least typical sample to its other samples, minus :data:`CALIBRATION_MARGIN`.

A cell's pass rate comes with a 95% Wilson score interval. With ``pass_rate=1`` (the default) every
sample must pass, as any test must; with ``pass_rate=p`` (0.5 <= p < 1) a sample whose answer is not
equivalent is reported as xfailed and the cell passes only when the interval's lower bound is at least p.
"""

from __future__ import annotations

import contextlib
import json
import math
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .report import Cell

SAMPLE = "llmport_sample"  # the parameter that carries an item's sample (beside lifecycle.PARAM)
CALIBRATED = "baseline"  # threshold="baseline": calibrated on the baseline's own samples
CALIBRATION_MARGIN = 0.05
Z_95 = 1.959963984540054  # two-sided 95% normal quantile, for the Wilson score interval
MIN_PASS_RATE = 0.5


@dataclass(frozen=True)
class Sample:
    """Sample ``index`` (1-based) of ``count`` of one test on one provider."""

    index: int
    count: int
    pass_rate: float = 1.0

    def stem(self, provider: str) -> str:
        """The cassette's file name without ``.yaml``: ``qwen.s2``."""
        return f"{provider}.s{self.index}"

    def ident(self, provider: str) -> str:
        """The item's provider id: ``qwen-s2``."""
        return f"{provider}-s{self.index}"

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "of": self.count, "pass_rate": self.pass_rate}


def sample_of(item: Any) -> Sample | None:
    """The sample an ``llm_portable`` item runs, or None for a test without ``samples``."""
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get(SAMPLE) if callspec is not None else None
    return value if isinstance(value, Sample) else None


def check_samples(value: object, source: str, text: bool = True) -> int:
    """``samples`` must be a whole number >= 1 (``source`` names where it was given, for the message);
    ``text`` accepts ``"5"`` (the ini and command line)."""
    if text and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{source}: samples={value!r} must be a whole number >= 1 (how many answers to record per "
            f"provider), e.g. samples=5; samples=1 is one answer, as without it"
        )
    return value


def check_pass_rate(value: object, source: str, text: bool = True) -> float:
    """``pass_rate`` must be a number in [0.5, 1]: below half, "equivalent" would mean "usually not"."""
    if text and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_PASS_RATE <= value <= 1:
        raise ConfigError(
            f"{source}: pass_rate={value!r} must be a number between {MIN_PASS_RATE} and 1, e.g. "
            f"pass_rate=0.8 (the share of samples that must be equivalent, at 95% confidence)"
        )
    return float(value)


def wilson(passed: int, ran: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``passed`` successes in ``ran`` trials (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0/n or n/n, which is
    where small sample counts live: 5 of 5 gives 0.566 to 1.
    """
    if ran <= 0:
        return 0.0, 1.0
    share = passed / ran
    denominator = 1 + z * z / ran
    centre = (share + z * z / (2 * ran)) / denominator
    half = z * math.sqrt(share * (1 - share) / ran + z * z / (4 * ran * ran)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PassRate:
    passed: int
    ran: int
    of: int
    required: float
    failed: int  # samples that failed outright (never tolerated): an app failure, a recording problem

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.passed, self.ran)

    @property
    def equivalent(self) -> bool:
        """The cell passes: no sample failed outright, and every sample passed (``pass_rate=1``) or the
        interval's lower bound reaches the required rate."""
        # A sample that did not run (deselected, skipped, its shard's report left out) may be the one
        # that differs: a cell is proven on every one of its N samples or not at all.
        if self.ran == 0 or self.failed or self.ran < self.of:
            return False
        if self.required >= 1.0:
            return self.passed == self.ran
        return self.interval[0] >= self.required

    def text(self) -> str:
        """``4/5 [0.38-0.96]``: samples passed of those that ran, and the 95% Wilson interval."""
        low, high = self.interval
        missing = f" ({self.ran} of {self.of} ran)" if self.ran < self.of else ""
        return f"{self.passed}/{self.ran} [{low:.2f}-{high:.2f}]{missing}"

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "of": self.of,
            "ran": self.ran,
            "passed": self.passed,
            "failed": self.failed,
            "rate": self.passed / self.ran if self.ran else 0.0,
            "interval": [round(low, 4), round(high, 4)],
            "confidence": 0.95,
            "method": "wilson",
            "required": self.required,
            "equivalent": self.equivalent,
        }


def tolerated(state: Any, exc: BaseException | None) -> bool:
    """A sample of a test with pass_rate < 1 whose only failure is a non-equivalent answer: reported as
    xfailed, and counted against the cell's pass rate. Anything else (the app's exception, a recording
    problem, a missing baseline) fails the sample as it fails any test."""
    from .outcome import is_finding

    sample = getattr(state, "sample", None)
    if sample is None or sample.pass_rate >= 1.0 or exc is None or not is_finding(exc):
        return False
    recording = state.recording
    return not (recording.unmatched or recording.blocked)


def fewest(required: float) -> int:
    """The fewest samples whose lower bound can reach ``required`` (all of them passing)."""
    return next(n for n in range(1, 100_000) if wilson(n, n)[0] >= required)


def unreachable(count: int, required: float, where: str) -> str | None:
    """A usage error when ``count`` samples cannot show ``required`` at 95% confidence even all passing."""
    if required >= 1.0 or wilson(count, count)[0] >= required:
        return None
    return (
        f"{where}: samples={count} cannot show pass_rate={required:g} at 95% confidence: even {count} of "
        f"{count} passing gives a Wilson lower bound of {wilson(count, count)[0]:.2f}. Use "
        f"samples={fewest(required)} or more" + (", or a lower pass_rate" if required > MIN_PASS_RATE else "")
    )


def shortfall(rate: PassRate, label: str, provider: str) -> str | None:
    """Why a sampled cell fails the run (too many tolerated samples, or not every sample ran), or None."""
    if rate.equivalent or rate.failed or not rate.ran:
        return None
    if rate.ran < rate.of:
        return (
            f"{label} [{provider}]: only {rate.ran} of {rate.of} samples ran (the others were deselected, "
            f"skipped or not reported), so the cell is not proven: run every sample (pytest "
            f"{shlex.quote(label)} --providers={provider})"
        )
    if rate.required >= 1.0:
        return None
    low, high = rate.interval
    return (
        f"{label} [{provider}]: {rate.passed} of {rate.ran} samples equivalent (95% Wilson interval "
        f"{low:.2f}-{high:.2f}); the lower bound {low:.2f} is below pass_rate={rate.required:g}. The "
        f"xfailed samples say how their answers differ: fix the prompt, or re-record with more samples"
    )


def _sampled(cells: Mapping[str, Mapping[str, Cell]]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(test, provider, pass-rate summary) of every sampled cell, in order."""
    for label, row in sorted(cells.items()):
        for provider, cell in sorted(row.items()):
            if cell.samples:
                yield label, provider, cell.samples


def shortfalls(cells: Mapping[str, Mapping[str, Cell]]) -> list[str]:
    """Every sampled cell with more tolerated samples than its pass_rate allows: each fails the run."""
    lines = []
    for label, provider, summary in _sampled(cells):
        rate = PassRate(
            int(summary["passed"]),
            int(summary["ran"]),
            int(summary["of"]),
            float(summary["required"]),
            int(summary.get("failed", 0)),
        )
        line = shortfall(rate, label, provider)
        if line:
            lines.append(line)
    return lines


def unreported(cells: Mapping[str, Mapping[str, Cell]]) -> list[str]:
    """Sampled cells that hold fewer samples than the test asks for (a shard's report left out of a
    merge, or samples deselected): their pass rate counts only the samples that are there."""
    lines = []
    for label, provider, summary in _sampled(cells):
        have = {int(line["sample"]) for line in summary.get("cells") or []}
        count = int(summary["of"])
        if len(have) < count:
            absent = [str(index) for index in range(1, count + 1) if index not in have]
            lines.append(
                f"{label} [{provider}]: {len(have)} of {count} samples reported (missing: "
                f"{', '.join(absent)}); its pass rate counts only those: merge every shard's report"
            )
    return lines


# -- the baseline's samples -------------------------------------------------------------------------------
def read_file(path: Path) -> tuple[Mapping[str, Any], int | None] | None:
    """A baseline observation file's observations and the sample count it says it was recorded with."""
    if not path.is_file():
        return None
    from .equivalence import load_observations

    observations = load_observations(path)  # validates, with a message naming the file
    meta = json.loads(path.read_text(encoding="utf-8")).get("sample")
    count = meta.get("of") if isinstance(meta, dict) else None
    return observations, count if isinstance(count, int) and count >= 1 else None


def baseline_samples(
    folder: Path, baseline: str, lookup: Callable[[Path], tuple[Mapping[str, Any], int | None] | None]
) -> tuple[list[Mapping[str, Any]], list[Path]]:
    """The baseline's observations, one mapping per recorded sample, and the files they come from.

    ``lookup(path)`` gives a file's observations and the sample count it was recorded with (None for an
    unsampled file), or None when there is none. A baseline recorded with samples has
    ``<baseline>.s1.observations.json`` .. ``sN`` (N from the files, so a candidate may run other counts);
    otherwise its one ``<baseline>.observations.json`` is its only sample. A missing sample in 1..N raises.
    """
    first = folder / f"{baseline}.s1.observations.json"
    found = lookup(first)
    if found is None:
        plain = folder / f"{baseline}.observations.json"
        single = lookup(plain)
        return ([single[0]], [plain]) if single is not None else ([], [])
    count = found[1] or 1
    values, paths = [found[0]], [first]
    for index in range(2, count + 1):
        path = folder / f"{baseline}.s{index}.observations.json"
        entry = lookup(path)
        if entry is None:
            from .equivalence import MissingBaselineError

            raise MissingBaselineError(
                f"the baseline {baseline!r} was recorded with samples={count} ({first.name} says so), but "
                f"{path} is missing"
            )
        values.append(entry[0])
        paths.append(path)
    return values, paths


def paired(index: int, count: int) -> int:
    """The baseline sample (0-based) candidate sample ``index`` (1-based) compares with."""
    return (index - 1) % count


@dataclass(frozen=True)
class Spread:
    """How similar the baseline's own samples are to each other, under one metric."""

    least: float  # the least typical sample's mean similarity to the others
    mean: float  # the mean over every ordered pair
    samples: int

    def threshold(self, margin: float = CALIBRATION_MARGIN) -> float:
        return max(0.0, min(1.0, self.least - margin))


def spread(texts: Sequence[str], score: Callable[[str, str], float]) -> Spread:
    """Every ordered pair of the baseline's texts, scored as ``similar()`` scores (baseline first)."""
    count = len(texts)
    typical = []
    pairs = []
    for i, text in enumerate(texts):
        row = [score(other, text) for j, other in enumerate(texts) if j != i]
        typical.append(sum(row) / len(row))
        pairs.extend(row)
    return Spread(min(typical), sum(pairs) / len(pairs), count)


# -- the matrix cell of a sampled test ------------------------------------------------------------------
# Which sample explains a cell: one that failed outright, else a tolerated one, else any that ran.
_ORDER = {"failed": 0, "error": 0, "xfailed": 1, "passed": 2, "skipped": 3}


def rate_of(outcomes: Mapping[int, str], count: int, required: float) -> PassRate:
    """The pass rate of one test on one provider from each sample's outcome (skipped ones do not count)."""
    ran = [outcome for outcome in outcomes.values() if outcome != "skipped"]
    passed = sum(1 for outcome in ran if outcome == "passed")
    failed = sum(1 for outcome in ran if outcome in ("failed", "error"))
    return PassRate(passed, len(ran), count, required, failed)


def explaining(outcomes: Mapping[int, str]) -> int:
    """The sample that explains a cell: the first that failed, else the first tolerated one."""
    return min(outcomes, key=lambda index: (_ORDER.get(outcomes[index], 0), index))


def decide(rate: PassRate, outcome: str, kind: str) -> tuple[str, str]:
    """The cell's (outcome, kind) from its pass rate and the (outcome, kind) of the sample explaining it.

    The one place the ``pass_rate`` gate is applied: a run (:func:`aggregate`) and a merge of reports
    (:func:`combine`) both decide here, so a merged report cannot show "ok" where the run failed.
    """
    if rate.ran and rate.equivalent:
        return "passed", "passed"
    if rate.ran and outcome == "passed":
        # Every sample that ran passed, yet the rate is not proven (a tolerated sample was skipped...):
        return "failed", "equivalence"
    if outcome == "xfailed" and rate.required >= 1.0:
        return "xfailed", kind  # the test's own xfail marker: nothing was tolerated
    if outcome == "xfailed":
        return "failed", kind or "equivalence"  # tolerated samples, and too many of them
    return outcome, kind


def _summary(rate: PassRate, cells: Sequence[Mapping[str, Any]], explained_by: int) -> dict[str, Any]:
    summary = rate.as_dict()
    summary["cells"] = sorted((dict(cell) for cell in cells), key=lambda cell: int(cell["sample"]))
    summary["explained_by"] = explained_by
    return summary


def aggregate(cells: Mapping[int, Cell], count: int, required: float) -> Cell:
    """One matrix cell for the N items of a sampled test on one provider.

    The cell's outcome, kind and observations are those of the sample that explains it (the first that
    failed, else the first tolerated one); its checks and exchanges are every sample's (so cost and
    latency count every answer bought, and each check and exchange says its ``sample``); ``samples``
    holds the rate, its 95% Wilson interval, whether the cell counts as equivalent, and a line per sample.
    """
    from .report import Cell

    outcomes = {index: cell.outcome for index, cell in cells.items()}
    rate = rate_of(outcomes, count, required)
    index = explaining(outcomes)
    first = cells[index]
    outcome, kind = decide(rate, first.outcome, first.kind)
    ordered = sorted(cells.items())
    checks = [{**check, "sample": i} for i, cell in ordered for check in cell.checks]
    lines = [
        {"sample": i, "outcome": cell.outcome, "kind": cell.kind or "", "word": cell.word()}
        for i, cell in ordered
    ]
    return Cell(
        outcome,
        checks,
        dict(first.observations),
        [p for _, cell in ordered for p in cell.problems],
        first.longrepr,
        [{**e, "sample": i} for i, cell in ordered for e in cell.exchanges],
        first.falsifying,
        kind=kind,
        exception=first.exception,
        category=first.category,
        model=dict(first.model),
        background=[b for _, cell in ordered for b in cell.background],
        extra=dict(first.extra),
        samples=_summary(rate, lines, index),
    )


def combine(parts: Sequence[tuple[str, Mapping[str, Any]]], where: str) -> dict[str, Any]:
    """One sampled cell (as the JSON report holds it) from the cells several reports give for the same
    test and provider, each over some of its samples (CI shards that split a test's samples); ``parts``
    are (report name, cell). The pass rate is counted again over every sample and the ``pass_rate`` gate
    decided by :func:`decide`, as the run does; a single part is decided again too, so a report whose
    outcome disagrees with its own samples is not taken at its word.

    Raises :class:`ValueError` naming ``where`` and the reports when the parts cannot be one cell: other
    sample counts or pass rates, or the same sample in two of them.
    """
    first_name, first = parts[0]
    count, required = int(first["samples"]["of"]), float(first["samples"]["required"])
    owner: dict[int, tuple[str, Mapping[str, Any]]] = {}
    lines: list[Mapping[str, Any]] = []
    for name, cell in parts:
        summary = cell["samples"]
        if (int(summary["of"]), float(summary["required"])) != (count, required):
            raise ValueError(
                f"{where} was run with samples={summary['of']}, pass_rate={summary['required']:g} in {name} "
                f"but samples={count}, pass_rate={required:g} in {first_name}: run every shard with the "
                f"same marker and options"
            )
        for line in summary["cells"]:
            index = int(line["sample"])
            if index in owner:
                raise ValueError(
                    f"{where}: sample {index} is in both {owner[index][0]} and {name}, reported "
                    f"differently: keep one shard per sample"
                )
            owner[index] = (name, cell)
            lines.append(line)
    outcomes = {int(line["sample"]): str(line["outcome"]) for line in lines}
    rate = rate_of(outcomes, count, required)
    index = explaining(outcomes)
    base = next(cell for _, cell in parts if cell["samples"].get("explained_by") == index)
    outcome, kind = decide(rate, outcomes[index], next(str(x["kind"]) for x in lines if x["sample"] == index))
    # Parts in the order of their first sample: lists without a sample number (problems, background
    # traffic) then come in the order a single run gives for shards that split the samples in ranges.
    ordered = sorted(parts, key=lambda part: min(int(line["sample"]) for line in part[1]["samples"]["cells"]))

    def each(field: str) -> list[Any]:
        return [entry for _, cell in ordered for entry in cell.get(field) or []]

    merged = {
        **base,
        "outcome": outcome,
        "kind": kind,
        "checks": sorted(each("checks"), key=lambda check: int(check.get("sample", 0))),
        "exchanges": sorted(each("exchanges"), key=lambda exchange: int(exchange.get("sample", 0))),
        "problems": each("problems"),
        "background": each("background"),
        "samples": _summary(rate, lines, index),
    }
    if not merged["kind"]:
        from .verdict import cell_kind

        merged["kind"] = cell_kind(merged)  # as Cell.to_dict fills it in a run's report
    return merged


def sampled_word(cell: Cell, word: str) -> str:
    """``ok 4/5 [0.38-0.96] 0.71``: the cell's word with its pass rate and 95% Wilson interval."""
    summary = cell.samples
    low, high = summary.get("interval") or (0.0, 1.0)
    rate = f"{summary.get('passed', 0)}/{summary.get('ran', 0)} [{low:.2f}-{high:.2f}]"
    if cell.outcome == "skipped":
        return word
    if cell.outcome == "passed":
        # "ok 0.87*" -> "ok 5/5 [0.57-1.00] 0.87*": a finding's star stays last (Cell.differs reads it)
        star = "*" if word.endswith("*") else ""
        head, _, rest = word.removesuffix("*").partition(" ")
        return f"{head} {rate}" + (f" {rest}" if rest else "") + star
    explained = next(
        (c for c in summary.get("cells", []) if c.get("sample") == summary.get("explained_by")), None
    )
    inner = str(explained.get("word", word)) if explained else word
    ran, of = int(summary.get("ran", 0)), int(summary.get("of", 0))
    if inner.startswith("ok") and ran < of:
        inner = f"only {ran} of {of} ran"  # every sample that ran passed: the missing ones fail the cell
    return f"{rate} {inner.removesuffix(' (xfail)')}"
