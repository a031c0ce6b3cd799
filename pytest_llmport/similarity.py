"""Offline, Chinese-aware free-text similarity metrics.

Every metric takes two strings and returns a float in ``[0, 1]``: ``1.0`` for texts that are identical
after :func:`normalize`, ``1.0`` for two empty texts and ``0.0`` when exactly one is empty. No metric
needs word segmentation, a model or the network; Chinese is handled at the character level.

Normalisation (shared by all metrics, :func:`normalize`): traditional Chinese to simplified (OpenCC
``t2s``), width folding (Unicode NFKC, which folds full-width letters, digits and punctuation to their
half-width forms, then the Chinese punctuation NFKC keeps, such as ``。`` and ``“”``, to ASCII; both from
:mod:`pytest_llmport.textfold`), ``str.casefold`` and collapsing every run of whitespace to one space with
the ends stripped. Character-level metrics then drop the remaining spaces, as chrF does, because Chinese
text puts spaces inconsistently (``2005 年`` versus ``2005年``); the token metric uses them as separators.

How the default metric and threshold were chosen, and how each metric scores on human-labelled Chinese
sets, is in ``docs/similarity.md`` (numbers from ``bench/similarity.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rapidfuzz.distance import LCSseq, Levenshtein

from .metrics import DEFAULT_METRIC
from .textfold import fold_width, to_simplified

__all__ = [
    "DEFAULT_METRIC",
    "DEFAULT_THRESHOLD",
    "METRICS",
    "Metric",
    "UnknownMetricError",
    "Verdict",
    "answer_text",
    "bigram_jaccard",
    "chrf",
    "chrf_lcs",
    "chrf_score",
    "contained",
    "default_threshold",
    "edit_similarity",
    "get_metric",
    "lcs_length",
    "levenshtein",
    "normalize",
    "passes",
    "rouge_l",
    "token_jaccard",
    "tokenize",
    "verdict",
]

Metric = Callable[[str, str], float]
_Key = TypeVar("_Key", bound=Hashable)


def normalize(text: str) -> str:
    """The shared normalisation: simplified script, folded width, casefolded, whitespace collapsed."""
    return " ".join(_compatibility_fold(text).split())


def _compatibility_fold(text: str) -> str:
    return fold_width(to_simplified(text)).casefold()


def _chars(text: str) -> str:
    return "".join(_compatibility_fold(text).split())


def _trivial(a: str, b: str) -> float | None:
    # One place for the contract on identical and empty inputs, so that no metric returns 0.999... for
    # equal texts or divides by zero.
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return None


# ---------------------------------------------------------------------------------------------------------
# Sequence kernels: rapidfuzz's bit-parallel C++ implementations (identical results to the textbook tables).


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (strings or sequences of hashables)."""
    return int(LCSseq.similarity(a, b))


def levenshtein(a: str, b: str) -> int:
    """Unit-cost edit distance between ``a`` and ``b``."""
    return int(Levenshtein.distance(a, b))


# ---------------------------------------------------------------------------------------------------------
# Metrics


def _bigram_codes(text: str) -> Counter[int]:
    # Each character is 4 bytes in UTF-32, so every aligned 8-byte word is one bigram and one more pass
    # shifted by a character covers the rest. Counting these integers runs in C and is several times
    # faster than slicing 2,000 two-character strings; the code is injective whatever the byte order.
    data = memoryview(text.encode("utf-32-le"))
    even = len(text) // 2 * 8
    odd = (len(text) - 1) // 2 * 8
    counts = Counter(data[:even].cast("Q"))
    counts.update(data[4 : 4 + odd].cast("Q"))
    return counts


def _shared(a: Counter[_Key], b: Counter[_Key]) -> int:
    """Size of the multiset intersection, i.e. the clipped n-gram matches."""
    keys = a.keys() & b.keys()
    # Most n-grams of real text occur once, so count every shared key once in C and add the surplus of
    # the few repeated in both texts in Python, instead of calling min() on every key.
    repeated = {k for k, v in a.items() if v > 1} & {k for k, v in b.items() if v > 1}
    return len(keys) + sum(min(a[k], b[k]) - 1 for k in repeated)


def _ngram_counts(text: str, n: int) -> Counter[str]:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def _overlaps(a: str, b: str, n: int) -> list[int]:
    """Clipped shared n-gram counts for the orders 1..``n`` that both texts are long enough to have."""
    top = min(n, len(a), len(b))
    if top == 0:
        return []
    common = [_shared(Counter(a), Counter(b))]
    if top >= 2:
        common.append(_shared(_bigram_codes(a), _bigram_codes(b)))
    common.extend(_shared(_ngram_counts(a, k), _ngram_counts(b, k)) for k in range(3, top + 1))
    return common


def _chrf_from_overlaps(common: list[int], ref_len: int, hyp_len: int, beta: float) -> float:
    orders = len(common)
    precision = sum(c / (hyp_len - k) for k, c in enumerate(common)) / orders
    recall = sum(c / (ref_len - k) for k, c in enumerate(common)) / orders
    if precision == 0.0 or recall == 0.0:
        return 0.0
    beta2 = beta * beta
    return (1 + beta2) * precision * recall / (beta2 * precision + recall)


def chrf_score(reference: str, hypothesis: str, *, n: int = 6, beta: float = 2.0) -> float:
    """Directional chrF: character n-gram F-beta of ``hypothesis`` against ``reference``.

    Precision and recall are averaged over the orders 1..``n`` that both texts are long enough to
    have (sacreBLEU's "effective order"), then combined with recall weighted ``beta`` times as much as
    precision. With ``beta=1`` the score is symmetric.
    """
    ref, hyp = _chars(reference), _chars(hypothesis)
    trivial = _trivial(ref, hyp)
    if trivial is not None:
        return trivial
    return _chrf_from_overlaps(_overlaps(ref, hyp, n), len(ref), len(hyp), beta)


def _chrf_symmetric(common: list[int], len_a: int, len_b: int, beta: float) -> float:
    return (
        _chrf_from_overlaps(common, len_a, len_b, beta) + _chrf_from_overlaps(common, len_b, len_a, beta)
    ) / 2


def chrf(a: str, b: str) -> float:
    """Symmetric chrF (n = 6, beta = 2): the mean of the two directional scores."""
    a, b = _chars(a), _chars(b)
    trivial = _trivial(a, b)
    if trivial is not None:
        return trivial
    return _chrf_symmetric(_overlaps(a, b, 6), len(a), len(b), 2.0)


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 over characters: ``2 * LCS / (len(a) + len(b))``."""
    a, b = _chars(a), _chars(b)
    trivial = _trivial(a, b)
    if trivial is not None:
        return trivial
    return 2 * lcs_length(a, b) / (len(a) + len(b))


def edit_similarity(a: str, b: str) -> float:
    """Normalised edit-distance similarity over characters: ``1 - levenshtein / max(len)``."""
    a, b = _chars(a), _chars(b)
    trivial = _trivial(a, b)
    if trivial is not None:
        return trivial
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def _bigram_set(text: str) -> set[str]:
    # A one-character text has no bigram; it stands for itself so that "好" still matches "好".
    if len(text) == 1:
        return {text}
    return {text[i : i + 2] for i in range(len(text) - 1)}


def bigram_jaccard(a: str, b: str) -> float:
    """Jaccard index of the sets of character bigrams (a one-character text is its own token)."""
    a, b = _chars(a), _chars(b)
    trivial = _trivial(a, b)
    if trivial is not None:
        return trivial
    sa, sb = _bigram_set(a), _bigram_set(b)
    return len(sa & sb) / len(sa | sb)


# Han ideographs, kana and Hangul syllables are tokens on their own; runs of other letters and digits are
# words. Punctuation is not a token, so "你好!" and "你好" compare equal here.
_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
    r"|[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]+"
)


def tokenize(text: str) -> list[str]:
    """Split normalised ``text`` into tokens: one per CJK character, one per run of other word characters."""
    return _TOKEN.findall(normalize(text))


def token_jaccard(a: str, b: str) -> float:
    """Jaccard index of the token sets from :func:`tokenize` (suits mixed Chinese/Latin text)."""
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return 1.0
    ta, tb = set(tokenize(na)), set(tokenize(nb))
    if not ta and not tb:
        # Punctuation-only texts that differ: fall back to exact comparison, already known unequal.
        return 0.0
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


def _bigram_sequence(text: str) -> list[int]:
    """The character bigrams of ``text`` in order, each coded as one integer as in :func:`_bigram_codes`."""
    data = memoryview(text.encode("utf-32-le"))
    sequence = [0] * (len(text) - 1)
    sequence[0::2] = data[: len(text) // 2 * 8].cast("Q")
    sequence[1::2] = data[4 : 4 + (len(text) - 1) // 2 * 8].cast("Q")
    return sequence


def _chrf_lcs_parts(a: str, b: str) -> tuple[int, int, int, int, int]:
    """What chrf_lcs needs from a pair of normalised, non-trivial texts.

    ``(len(a), len(b), shared characters, shared bigrams, bigram LCS)``; shared counts are clipped
    (multiset intersection). Split out so that ``bench/similarity.py --tune`` scores a grid of
    parameters from one pass over the data with exactly the metric's arithmetic.
    """
    shared = _shared(Counter(a), Counter(b))
    if len(a) < 2 or len(b) < 2:
        return len(a), len(b), shared, 0, 0
    if len(a) < len(b):
        a, b = b, a
    seq_a, seq_b = _bigram_sequence(a), _bigram_sequence(b)
    shared_bigrams = _shared(Counter(seq_a), Counter(seq_b))
    return len(a), len(b), shared, shared_bigrams, lcs_length(seq_a, seq_b)


def _chrf_lcs_score(
    parts: tuple[int, int, int, int, int], unigram_weight: float, power: int, half_saturation: float
) -> float:
    len_a, len_b, shared, shared_bigrams, ordered = parts
    common = [shared] if min(len_a, len_b) < 2 else [shared, shared_bigrams]
    dice = 2 * shared / (len_a + len_b)
    bag = unigram_weight * dice + (1 - unigram_weight) * _chrf_symmetric(common, len_a, len_b, 2.0)
    displaced = shared_bigrams - ordered
    # Half-saturation relative to the shared content: a long answer has more bigrams that can drift
    # between sentences without changing its meaning, so an absolute count would push every long pair
    # towards the full discount (measured: same-meaning texts fell from 0.71 at 50 chars to 0.43 at 2,000).
    half = max(half_saturation, LENGTH_FRACTION * shared_bigrams)
    return bag * (1 - bag ** (power - 1) * displaced / (displaced + half))


# Parameters of chrf_lcs, chosen on the dev splits only by ``python bench/similarity.py --tune``.
CHRF_LCS_PARAMS: tuple[float, int, float] = (0.2, 4, 8.0)
# Not tuned on the dev sets (their sentences are too short to show it): the fraction of the shared bigrams
# that sets the half-saturation on long texts, chosen with the length check of ``bench/similarity.py``.
LENGTH_FRACTION: float = 0.2


def chrf_lcs(a: str, b: str) -> float:
    """Default metric: a bag-of-characters score discounted for character bigrams shared out of order.

    ``bag = 0.2 * unigram Dice + 0.8 * symmetric chrF(n=2, beta=2)`` rewards shared content;
    ``d = shared bigrams - LCS of the two bigram sequences`` counts bigrams both texts contain but in
    a different order. The score is ``bag * (1 - bag**3 * d / (d + h))`` with the half-saturation
    ``h = max(8, 0.2 * shared bigrams)``: order only matters once the bags nearly agree (swapped names,
    reversed relations), a few displaced bigrams cost little while many approach the full discount, and
    what counts as "many" grows with the texts, so long answers score like short ones. Bigrams rather than
    single characters make a swap of two phrases visible even when the characters of the shorter phrase
    still fit into a common subsequence.
    """
    a, b = _chars(a), _chars(b)
    trivial = _trivial(a, b)
    if trivial is not None:
        return trivial
    return _chrf_lcs_score(_chrf_lcs_parts(a, b), *CHRF_LCS_PARAMS)


class UnknownMetricError(ValueError):
    """Raised by :func:`get_metric` for a name that is not in :data:`METRICS`."""


METRICS: dict[str, Metric] = {
    "chrf_lcs": chrf_lcs,
    "chrf": chrf,
    "rouge_l": rouge_l,
    "bigram_jaccard": bigram_jaccard,
    "token_jaccard": token_jaccard,
    "edit_similarity": edit_similarity,
}

# The metric (DEFAULT_METRIC, in metrics.py) and the threshold were both chosen on the dev splits of
# STS-B zh, LCQMC and PAWS-X zh; the threshold is the multiple of 0.01 maximising balanced accuracy
# averaged over the three sets. It is a starting point, not a calibration: the best cut-off moves a lot
# between domains.
DEFAULT_THRESHOLD: float = 0.61


def default_threshold(metric: str) -> float:
    """The threshold a metric is judged by when none is configured: its own calibrated one where it has
    one (``semantic``), else :data:`DEFAULT_THRESHOLD`."""
    if metric == "semantic":
        from .semantic import SEMANTIC_THRESHOLD

        return SEMANTIC_THRESHOLD
    return DEFAULT_THRESHOLD


def get_metric(name: str) -> Metric:
    """Return the built-in metric ``name``; raise :class:`UnknownMetricError` listing the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise UnknownMetricError(f"unknown similarity metric {name!r}; known metrics: {known}") from None


@dataclass(frozen=True)
class Verdict:
    """Whether two texts count as equivalent: the score against the threshold, and the facts check."""

    passed: bool
    score: float
    threshold: float
    facts: tuple[str, ...] = ()  # why the texts state different facts (empty: none found, or not checked)
    contained: bool = False  # the shorter text is, in order, inside one at least twice as long (any score)


# Markdown that formats an answer without saying anything: list markers, headings, emphasis.
_MARKUP = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,2}[.)、]|#{1,6})[ \t]+|\*\*|__", re.MULTILINE)


def answer_text(text: str) -> str:
    """What an answer says, for comparing it with prose.

    A JSON answer (bare, or alone in a code fence) is read by its string and number values joined with
    commas, since its keys are field names, not content. In other text, Markdown list markers, heading
    marks and bold markers are dropped (a numbered list and a sentence can say the same).
    """
    from .compare import SchemaError, extract_json

    stripped = text.strip()
    if not stripped.startswith(("{", "[", "```")):
        return _MARKUP.sub("", text)
    try:
        value = extract_json(stripped, lenient=stripped.startswith("```") and stripped.endswith("```")).value
    except SchemaError:
        return text
    if not isinstance(value, (dict, list)):
        return text
    return ",".join(_json_values(value))


def _json_values(value: object) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _json_values(item)]
    if isinstance(value, list):
        return [text for item in value for text in _json_values(item)]
    if isinstance(value, bool) or value is None:
        return []
    return [str(value)]


# Containment: an answer that holds the other one's characters in order, inside at least twice as much
# text, says what the other says plus more (a verbose answer). Chosen on the dev splits: it passes 3 more
# equivalent STS-B pairs and 1 more non-equivalent one, and changes nothing on LCQMC or PAWS-X.
CONTAINED_COVERAGE: float = 0.9
CONTAINED_RATIO: float = 2.0


def contained(a: str, b: str) -> bool:
    """Whether the shorter of ``a`` and ``b`` lies, in order (90% of its characters), in a text at least
    twice as long."""
    a, b = _chars(a), _chars(b)
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) < 2 or len(long) < CONTAINED_RATIO * len(short):
        return False
    return lcs_length(short, long) >= CONTAINED_COVERAGE * len(short)


def verdict(
    a: str,
    b: str,
    metric: Metric | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    facts: bool = True,
) -> Verdict:
    """The default verdict on two answers, the one ``llm_equiv.similar`` gives.

    JSON answers are read by their values (:func:`answer_text`). The texts pass when
    ``metric(a, b) >= threshold`` or one is :func:`contained` in the other, and, with ``facts``, they
    state no different numbers, negations or roles (:func:`pytest_llmport.facts.conflicts`).
    """
    from .facts import conflicts

    a, b = answer_text(a), answer_text(b)
    score = float((metric or METRICS[DEFAULT_METRIC])(a, b))
    # Whether one holds the other is a fact about the texts, known whatever the score (a caller that
    # scores otherwise, the mean over a baseline's samples, decides with it through passes()).
    inside = contained(a, b)
    reasons = tuple(conflicts(a, b)) if facts else ()
    return Verdict(passes(score, threshold, inside, reasons), score, threshold, reasons, inside)


def passes(score: float, threshold: float, inside: bool, reasons: Sequence[str]) -> bool:
    """The default verdict's rule: the score reaches the threshold or one text holds the other, and no
    fact differs. ``verdict()`` and ``llm_equiv.similar()`` both decide with it."""
    return (score >= threshold or inside) and not reasons
