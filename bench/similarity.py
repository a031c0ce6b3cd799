"""Benchmark the built-in similarity metrics on human-labelled Chinese sentence pairs.

Usage: ``python bench/similarity.py [--shared PATH] [--tune]``. PATH defaults to
``../shared/benchmarks/similarity`` next to the repository root. The STS-B zh and LCQMC files are
research-only, so they are read from there and never copied into the repository.

Reports, per metric: Spearman x100 and ROC-AUC on the test splits (STS-B AUC treats label >= 4 as
positive), throughput, the dev-split accuracy-optimal threshold per set, and the rule that picks the
default threshold. Standard library only, so it runs wherever the plugin does.

``--tune`` reproduces the choice of the ``chrf_lcs`` parameters from the dev splits alone (see
:func:`tune`); it never reads a test file.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import yaml  # noqa: E402

from pytest_llmport.facts import conflicts  # noqa: E402
from pytest_llmport.similarity import (  # noqa: E402
    CHRF_LCS_PARAMS,
    DEFAULT_METRIC,
    DEFAULT_THRESHOLD,
    METRICS,
    _chars,
    _chrf_lcs_parts,
    _chrf_lcs_score,
    _trivial,
    verdict,
)

DEFAULT_SHARED = REPO_ROOT.parent / "shared" / "benchmarks" / "similarity"
ANSWER_PAIRS = REPO_ROOT / "tests" / "fixtures" / "answer_pairs.yaml"
FLIP_KINDS = ("numbers", "negation")
STSB_POSITIVE = 4.0


@dataclass(frozen=True)
class Split:
    """One split of one set: sentence pairs with their human labels."""

    name: str
    pairs: list[tuple[str, str]]
    labels: list[float]

    def binary(self) -> list[int]:
        """Labels as 0/1; graded STS-B scores count as equivalent from ``STSB_POSITIVE`` up."""
        threshold = STSB_POSITIVE if self.name == "stsb" else 1.0
        return [1 if label >= threshold else 0 for label in self.labels]


def _read_plain(path: Path, name: str) -> Split:
    pairs: list[tuple[str, str]] = []
    labels: list[float] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        first, second, label = line.split("\t")
        pairs.append((first, second))
        labels.append(float(label))
    return Split(name, pairs, labels)


def _read_pawsx(path: Path, *, keep_ns: bool = False) -> Split:
    pairs: list[tuple[str, str]] = []
    labels: list[float] = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        _id, first, second, label = line.split("\t")
        # "NS" marks rows the translators left untranslated; the official zh counts exclude them.
        if not keep_ns and (first == "NS" or second == "NS"):
            continue
        pairs.append((first, second))
        labels.append(float(label))
    return Split("pawsx", pairs, labels)


def load_pawsx_with_ns(shared: Path, split: str) -> Split:
    """PAWS-X zh with the ``NS`` rows kept, as the first measurement in ``MEASURED.md`` scored it."""
    return _read_pawsx(
        shared / "pawsx_zh" / ("dev_2k.tsv" if split == "dev" else "test_2k.tsv"), keep_ns=True
    )


def load(shared: Path, split: str) -> list[Split]:
    """Load the ``"dev"`` or ``"test"`` split of STS-B zh, LCQMC and PAWS-X zh, in that order."""
    dev = split == "dev"
    return [
        _read_plain(shared / "stsb_zh" / ("STS-B.valid.data" if dev else "STS-B.test.data"), "stsb"),
        _read_plain(shared / "lcqmc" / ("dev.txt" if dev else "test.txt"), "lcqmc"),
        _read_pawsx(shared / "pawsx_zh" / ("dev_2k.tsv" if dev else "test_2k.tsv")),
    ]


# ---------------------------------------------------------------------------------------------------------
# Statistics


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        mean_rank = (start + end) / 2 + 1
        for k in range(start, end + 1):
            ranks[order[k]] = mean_rank
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the tie-averaged ranks."""
    rx, ry = average_ranks(x), average_ranks(y)
    n = len(rx)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5 if vx and vy else 0.0


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """ROC-AUC as the Mann-Whitney U statistic; a tie between a positive and a negative counts 1/2."""
    ranks = average_ranks(scores)
    positives = sum(labels)
    negatives = len(labels) - positives
    rank_sum = sum(r for r, label in zip(ranks, labels, strict=True) if label)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def best_threshold(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """Threshold t maximising accuracy of "equivalent iff score >= t", and that accuracy.

    The threshold is placed midway between neighbouring distinct scores so it does not sit on a
    data point.
    """
    pairs = sorted(zip(scores, labels, strict=True))
    n = len(pairs)
    # Everything predicted positive: correct on all positives.
    correct = sum(labels)
    best_acc, best_t = correct / n, pairs[0][0] if pairs else 0.0
    i = 0
    while i < n:
        j = i
        while j < n and pairs[j][0] == pairs[i][0]:
            correct += 1 if pairs[j][1] == 0 else -1
            j += 1
        t = (pairs[i][0] + pairs[j][0]) / 2 if j < n else pairs[i][0] + 1e-9
        if correct / n > best_acc:
            best_acc, best_t = correct / n, t
        i = j
    return best_t, best_acc


def balanced_accuracy(scores: Sequence[float], labels: Sequence[int], threshold: float) -> float:
    """Mean of the true-positive and true-negative rates of "equivalent iff score >= threshold"."""
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= threshold)
    tn = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s < threshold)
    positives = sum(labels)
    return (tp / positives + tn / (len(labels) - positives)) / 2


def default_threshold_rule(
    dev_scores: Sequence[Sequence[float]], dev_labels: Sequence[Sequence[int]]
) -> float:
    """The rule behind DEFAULT_THRESHOLD: the multiple of 0.01 with the best mean dev balanced accuracy.

    Balanced accuracy, because the sets have different positive rates and a default should not lean
    on the base rate of one of them; the mean over sets, because no single domain should decide.
    """
    best_t, best = 0.0, -1.0
    for step in range(101):
        t = step / 100
        value = sum(balanced_accuracy(s, y, t) for s, y in zip(dev_scores, dev_labels, strict=True)) / len(
            dev_scores
        )
        if value > best:
            best_t, best = t, value
    return best_t


# ---------------------------------------------------------------------------------------------------------
# Timing


def long_chinese_pair(length: int = 2000, seed: int = 20240601) -> tuple[str, str]:
    """Two deterministic Chinese texts of ``length`` characters sharing most content, like two answers."""
    rng = random.Random(seed)
    # Common CJK ideographs plus punctuation, so n-grams repeat as they do in real prose.
    alphabet = [chr(0x4E00 + rng.randrange(3000)) for _ in range(600)] + ["，", "。", "、"] * 20
    first = [rng.choice(alphabet) for _ in range(length)]
    second = list(first)
    for _ in range(length // 10):
        second[rng.randrange(length)] = rng.choice(alphabet)
    return "".join(first), "".join(second)


def ms_per_call(
    metric: Callable[[str, str], float], a: str, b: str, repeat: int = 5, number: int = 20
) -> float:
    """Best-of-``repeat`` mean milliseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            metric(a, b)
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1000


LENGTHS = (50, 200, 1000, 2000)


def length_texts(
    splits: Sequence[Split], length: int, count: int = 60, seed: int = 12
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Same-meaning and unrelated text pairs of about ``length`` characters built from labelled pairs.

    A same-meaning pair joins the first sentences of consecutive equivalent pairs into one text and their
    partners, in the same order, into the other, until the first reaches ``length`` characters; an
    unrelated pair joins sentences of disjoint pairs. Sentences stay whole, so texts run a sentence over.
    """
    rng = random.Random(seed + length)
    equivalent = [pair for split in splits for pair, y in zip(split.pairs, split.binary(), strict=True) if y]
    rng.shuffle(equivalent)
    same: list[tuple[str, str]] = []
    unrelated: list[tuple[str, str]] = []
    position = 0

    def take() -> list[tuple[str, str]]:
        nonlocal position
        chosen: list[tuple[str, str]] = []
        size = 0
        while size < length:
            pair = equivalent[position % len(equivalent)]
            position += 1
            chosen.append(pair)
            size += len(pair[0]) + 1
        return chosen

    for _ in range(count):
        first = take()
        same.append(("。".join(a for a, _ in first), "。".join(b for _, b in first)))
        second = take()
        unrelated.append(("。".join(a for a, _ in first), "。".join(b for _, b in second)))
    return same, unrelated


def length_check(splits: Sequence[Split], metric: Callable[[str, str], float], threshold: float) -> None:
    """Print median scores and pass rates of same-meaning and unrelated texts per length."""
    print(
        "| length (chars) | same meaning: median | same meaning: pass | unrelated: median | unrelated: pass |"
    )
    print("|---|---|---|---|---|")
    for length in LENGTHS:
        same, unrelated = length_texts(splits, length)
        cells = []
        for pairs in (same, unrelated):
            scores = sorted(metric(a, b) for a, b in pairs)
            passing = sum(score >= threshold for score in scores) / len(scores)
            cells += [f"{statistics.median(scores):.2f}", f"{100 * passing:.0f}%"]
        print(f"| {length:,} | " + " | ".join(cells) + " |")


def score_split(metric: Callable[[str, str], float], split: Split) -> tuple[list[float], float]:
    """Scores of every pair and the elapsed seconds."""
    start = time.perf_counter()
    scores = [metric(a, b) for a, b in split.pairs]
    return scores, time.perf_counter() - start


def difflib_ratio(a: str, b: str) -> float:
    """``difflib.SequenceMatcher.ratio`` on the shared normalisation: the PAWS-X reference in MEASURED.md."""
    return difflib.SequenceMatcher(None, _chars(a), _chars(b)).ratio()


# The plain lexical metrics the target is stated against ("at least as good as the best of them on each set").
PLAIN: dict[str, Callable[[str, str], float]] = {
    "chrf": METRICS["chrf"],
    "bigram_jaccard": METRICS["bigram_jaccard"],
    "rouge_l": METRICS["rouge_l"],
    "edit_similarity": METRICS["edit_similarity"],
    "difflib": difflib_ratio,
}

# The fixed grid searched by --tune: unigram weight, exponent of the bag gate, half-saturation count.
TUNE_GRID: tuple[tuple[float, ...], tuple[int, ...], tuple[float, ...]] = (
    (0.2, 0.3, 0.4, 0.5, 0.6),
    (3, 4, 5, 6),
    (4.0, 6.0, 8.0, 10.0, 12.0, 16.0),
)


def figure(split: Split, scores: Sequence[float]) -> float:
    """The headline figure of a set: Spearman x100 on STS-B, ROC-AUC on the binary sets."""
    return 100 * spearman(scores, split.labels) if split.name == "stsb" else roc_auc(scores, split.binary())


def on_auc_scale(name: str, value: float) -> float:
    """Spearman x100 on STS-B divided by 100 * sqrt(3), the AUC-scale factor of a balanced binary label."""
    return value / (100 * math.sqrt(3)) if name == "stsb" else value


def tune(shared: Path) -> tuple[float, int, float]:
    """Choose the chrf_lcs parameters on the dev splits only, and print the search.

    Reference per set: the best plain lexical metric (:data:`PLAIN`) on dev, computed the way the test
    target was (PAWS-X with its ``NS`` rows kept, as in MEASURED.md). Objective: the worst margin of the
    candidate over those references across the three sets, STS-B Spearman put on the AUC scale by
    :func:`on_auc_scale`; the grid point with the largest worst margin wins (ties: first in grid order).
    """
    dev = load(shared, "dev")
    references = []
    for split in dev:
        ref_split = load_pawsx_with_ns(shared, "dev") if split.name == "pawsx" else split
        best_name, best = max(
            ((name, figure(ref_split, [m(a, b) for a, b in ref_split.pairs])) for name, m in PLAIN.items()),
            key=lambda item: item[1],
        )
        references.append(best)
        print(f"dev reference {split.name}: {best_name} {best:.4f}")
    # One pass over the data: trivial pairs get their fixed score, the rest the parts of chrf_lcs.
    parts: list[list[tuple[float, tuple[int, int, int, int, int] | None]]] = []
    for split in dev:
        rows: list[tuple[float, tuple[int, int, int, int, int] | None]] = []
        for first, second in split.pairs:
            a, b = _chars(first), _chars(second)
            trivial = _trivial(a, b)
            rows.append((trivial, None) if trivial is not None else (0.0, _chrf_lcs_parts(a, b)))
        parts.append(rows)
    results = []
    for params in itertools.product(*TUNE_GRID):
        values = []
        for split, rows in zip(dev, parts, strict=True):
            scores = [t if p is None else _chrf_lcs_score(p, *params) for t, p in rows]
            values.append(figure(split, scores))
        margin = min(
            on_auc_scale(s.name, v) - on_auc_scale(s.name, r)
            for s, v, r in zip(dev, values, references, strict=True)
        )
        results.append((margin, params, values))
    ranked = sorted(results, key=lambda item: -item[0])
    print()
    print("| unigram weight | power | half-saturation | worst margin | STS-B | LCQMC | PAWS-X |")
    print("|---|---|---|---|---|---|---|")
    for margin, (w, p, k), (sts, lcq, paws) in ranked[:10]:
        print(f"| {w} | {p} | {k:g} | {margin:+.4f} | {sts:.2f} | {lcq:.4f} | {paws:.4f} |")
    chosen = ranked[0][1]
    print()
    print(f"chosen: {chosen} (CHRF_LCS_PARAMS = {CHRF_LCS_PARAMS})")
    return chosen


# ---------------------------------------------------------------------------------------------------------
# Typical answer pairs (tests/fixtures/answer_pairs.yaml) and the default verdict


def load_answer_pairs() -> list[dict[str, object]]:
    pairs: list[dict[str, object]] = yaml.safe_load(ANSWER_PAIRS.read_text(encoding="utf-8"))
    return pairs


Judge = Callable[[str, str], bool]


def kind_table(judges: dict[str, Judge], pairs: Sequence[dict[str, object]]) -> None:
    """Right/wrong count per kind of answer pair for each judge (a metric at its threshold, or a verdict)."""
    kinds = list(dict.fromkeys(str(pair["kind"]) for pair in pairs))
    print("| judge | " + " | ".join(kinds) + " | right |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for name, judge in judges.items():
        right = dict.fromkeys(kinds, 0)
        total = dict.fromkeys(kinds, 0)
        for pair in pairs:
            kind = str(pair["kind"])
            total[kind] += 1
            right[kind] += judge(str(pair["a"]), str(pair["b"])) == pair["equivalent"]
        cells = [f"{right[k]}/{total[k]}" for k in kinds]
        overall = sum(right.values())
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | **{overall}/{len(pairs)}** ({100 * overall / len(pairs):.0f}%) |"
        )


def rates(judge: Judge, split: Split) -> tuple[float, float]:
    """True- and false-positive rates of ``judge`` on a labelled split."""
    labels = split.binary()
    passed = [judge(a, b) for a, b in split.pairs]
    positives = sum(labels)
    tp = sum(1 for p, y in zip(passed, labels, strict=True) if p and y)
    fp = sum(1 for p, y in zip(passed, labels, strict=True) if p and not y)
    return tp / positives, fp / (len(labels) - positives)


def facts_report(pairs: Sequence[dict[str, object]], test: Sequence[Split]) -> None:
    """Flips of numbers and negation caught on the fixture; false alarms on the sets' equivalent pairs."""
    flips = [pair for pair in pairs if pair["kind"] in FLIP_KINDS]
    caught = sum(1 for pair in flips if conflicts(str(pair["a"]), str(pair["b"])))
    print(f"Flips caught (kinds {', '.join(FLIP_KINDS)} of the fixture): {caught}/{len(flips)}")
    for split in test:
        equivalent = [pair for pair, y in zip(split.pairs, split.binary(), strict=True) if y]
        alarms = sum(1 for a, b in equivalent if conflicts(a, b))
        print(
            f"False alarms on {split.name} equivalent test pairs: {alarms}/{len(equivalent)} "
            f"({100 * alarms / len(equivalent):.2f}%)"
        )


def speed_table(judges: dict[str, Judge]) -> None:
    """Milliseconds per call on two 200-character and two 2,000-character generated Chinese texts."""
    short = long_chinese_pair(200)
    long = long_chinese_pair(2000)
    print("| judge | ms/pair, 200 chars | ms/pair, 2,000 chars |")
    print("|---|---|---|")
    for name, judge in judges.items():
        fast, slow = ms_per_call(judge, *short, number=10), ms_per_call(judge, *long, number=5)
        print(f"| {name} | {fast:.2f} | {slow:.2f} |")


def default_verdict(a: str, b: str) -> bool:
    return verdict(a, b).passed


def verdict_report(dev: Sequence[Split], test: Sequence[Split]) -> None:
    pairs = load_answer_pairs()
    dev_thresholds = {
        name: default_threshold_rule([score_split(metric, s)[0] for s in dev], [s.binary() for s in dev])
        for name, metric in METRICS.items()
    }

    def at_threshold(metric: Callable[[str, str], float], t: float) -> Judge:
        return lambda a, b: metric(a, b) >= t

    judges: dict[str, Judge] = {
        f"{name} >= {t:.2f}": at_threshold(METRICS[name], t) for name, t in dev_thresholds.items()
    }
    judges["**default verdict**"] = default_verdict
    print()
    print(
        f"Typical answer pairs ({len(pairs)}, tests/fixtures/answer_pairs.yaml): right per kind. Each metric "
        "at the threshold the default rule picks for it on dev; the default verdict is chrf_lcs >= "
        f"{DEFAULT_THRESHOLD} or contained, with the facts check."
    )
    print()
    kind_table(judges, pairs)
    print()
    facts_report(pairs, test)
    print()
    print(
        f"True and false positive rates on the test splits ({DEFAULT_METRIC} >= {DEFAULT_THRESHOLD}, "
        "then the default verdict):"
    )
    print()
    print("| set | score TPR | score FPR | verdict TPR | verdict FPR |")
    print("|---|---|---|---|---|")
    score_judge = at_threshold(METRICS[DEFAULT_METRIC], DEFAULT_THRESHOLD)
    for split in test:
        s_tpr, s_fpr = rates(score_judge, split)
        v_tpr, v_fpr = rates(default_verdict, split)
        print(f"| {split.name} | {s_tpr:.3f} | {s_fpr:.3f} | {v_tpr:.3f} | {v_fpr:.3f} |")
    print()
    speed_table({DEFAULT_METRIC: METRICS[DEFAULT_METRIC], "default verdict": default_verdict})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder with the benchmark sets")
    parser.add_argument("--tune", action="store_true", help="choose the chrf_lcs parameters on dev only")
    args = parser.parse_args(argv)
    shared: Path = args.shared
    if not (shared / "stsb_zh").is_dir():
        parser.error(f"benchmark sets not found under {shared}")
    if args.tune:
        tune(shared)
        return 0

    dev, test = load(shared, "dev"), load(shared, "test")
    long_a, long_b = long_chinese_pair()
    print("Test splits (PAWS-X without NS rows): " + ", ".join(f"{s.name} {len(s.pairs)}" for s in test))
    print()
    print(
        "| metric | STS-B Spearman | STS-B AUC (>=4) | LCQMC Spearman | LCQMC AUC "
        "| PAWS-X Spearman | PAWS-X AUC | pairs/s (3 sets) | ms/pair, 2,000 chars |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    thresholds: dict[str, list[tuple[float, float, float]]] = {}
    for name, metric in METRICS.items():
        cells: list[str] = []
        total_pairs, total_seconds = 0, 0.0
        for split in test:
            scores, seconds = score_split(metric, split)
            total_pairs += len(scores)
            total_seconds += seconds
            cells.append(f"{100 * spearman(scores, split.labels):.2f}")
            cells.append(f"{roc_auc(scores, split.binary()):.3f}")
        rate = total_pairs / total_seconds
        cells.append(f"{rate:,.0f}")
        cells.append(f"{ms_per_call(metric, long_a, long_b):.2f}")
        label = f"**{name}** (default)" if name == DEFAULT_METRIC else name
        print(f"| {label} | " + " | ".join(cells) + " |")

        rows = []
        for dsplit, tsplit in zip(dev, test, strict=True):
            dscores, _ = score_split(metric, dsplit)
            t, dacc = best_threshold(dscores, dsplit.binary())
            tscores, _ = score_split(metric, tsplit)
            tlabels = tsplit.binary()
            tacc = sum(1 for s, y in zip(tscores, tlabels, strict=True) if (s >= t) == bool(y)) / len(tlabels)
            rows.append((t, dacc, tacc))
        thresholds[name] = rows

    print()
    print("Dev-split accuracy-optimal threshold per set (accuracy on dev -> same threshold on test):")
    print()
    print("| metric | STS-B (>=4) | LCQMC | PAWS-X |")
    print("|---|---|---|---|")
    for name, rows in thresholds.items():
        print(f"| {name} | " + " | ".join(f"{t:.3f} ({d:.3f} -> {a:.3f})" for t, d, a in rows) + " |")

    default = METRICS[DEFAULT_METRIC]
    dev_scores = [score_split(default, s)[0] for s in dev]
    dev_labels = [s.binary() for s in dev]
    chosen = default_threshold_rule(dev_scores, dev_labels)
    print()
    print(
        f"Default threshold rule: the multiple of 0.01 maximising balanced accuracy averaged over the three "
        f"dev sets for {DEFAULT_METRIC} -> {chosen:.2f} (DEFAULT_THRESHOLD = {DEFAULT_THRESHOLD})."
    )
    print()
    print(
        f"Length check ({DEFAULT_METRIC}, threshold {DEFAULT_THRESHOLD}; texts joined from the equivalent "
        "test pairs of the three sets, 60 pairs per length):"
    )
    print()
    length_check(test, default, DEFAULT_THRESHOLD)
    test_scores = [score_split(default, s)[0] for s in test]
    print(
        "Balanced accuracy of DEFAULT_THRESHOLD on test: "
        + ", ".join(
            f"{s.name} {balanced_accuracy(sc, s.binary(), DEFAULT_THRESHOLD):.3f}"
            for s, sc in zip(test, test_scores, strict=True)
        )
    )
    verdict_report(dev, test)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
