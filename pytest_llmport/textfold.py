"""The package's one table of text variants that read the same: width, Chinese punctuation and script.

Every comparison that should not see the difference between ``，`` and ``,``, ``Ａ`` and ``A`` or
``後`` and ``后`` folds through here: the similarity metrics (:mod:`pytest_llmport.similarity`), the
``width`` normalisation of structural comparisons (:mod:`pytest_llmport.compare`) and the width
strategies and relations (:mod:`pytest_llmport.strategies`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import opencc

__all__ = [
    "CJK_PUNCTUATION",
    "FULL_WIDTH_OFFSET",
    "IDEOGRAPHIC_SPACE",
    "fold_width",
    "nfkc",
    "to_half_width",
    "to_simplified",
]

FULL_WIDTH_OFFSET: Final = 0xFEE0  # U+FF01..U+FF5E are U+0021..U+007E shifted by this
IDEOGRAPHIC_SPACE: Final = "\u3000"

# NFKC folds the full-width ASCII forms (，：；！？（） and letters/digits); these are the Chinese marks it
# leaves alone, mapped to the ASCII punctuation a half-width answer would use.
CJK_PUNCTUATION: Final[dict[str, str]] = {
    "，": ",",
    "、": ",",
    "。": ".",
    "：": ":",
    "；": ";",
    "！": "!",
    "？": "?",
    "（": "(",
    "）": ")",
    "【": "[",
    "】": "]",
    "〔": "[",
    "〕": "]",
    "〖": "[",
    "〗": "]",
    "“": '"',
    "”": '"',
    "„": '"',
    "「": '"',
    "」": '"',
    "『": '"',
    "』": '"',
    "‘": "'",
    "’": "'",
}
_PUNCTUATION_TABLE: Final = str.maketrans(CJK_PUNCTUATION)

_FULL_WIDTH: Final = re.compile("[\uff01-\uff5e\u3000]")
_HALF_WIDTH: Final = {chr(code): chr(code - FULL_WIDTH_OFFSET) for code in range(0xFF01, 0xFF5F)} | {
    IDEOGRAPHIC_SPACE: " "
}


def _half(match: re.Match[str]) -> str:
    return _HALF_WIDTH[match[0]]


def to_half_width(text: str) -> str:
    """Full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space to ASCII; the rest unchanged."""
    # A regex with a callback beats str.translate here: only a few per cent of the characters change.
    return _FULL_WIDTH.sub(_half, text)


def nfkc(text: str) -> str:
    """Unicode NFKC, faster on Chinese prose than calling ``unicodedata.normalize`` directly.

    Mapping the full-width block first lets the common case (Chinese text with full-width punctuation)
    pass the fast ``is_normalized`` check; replacing a character by its own compatibility mapping does
    not change the NFKC result, so the output is exactly NFKC's.
    """
    text = to_half_width(text)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def fold_width(text: str) -> str:
    """NFKC, then the Chinese punctuation NFKC keeps (``。、“”【】`` ...) to ASCII.

    Every width variant of a text folds to the same string.
    """
    return nfkc(text).translate(_PUNCTUATION_TABLE)


@functools.cache
def _t2s() -> opencc.OpenCC:
    # Imported on first use: loading the tables costs about 0.3 ms, and most runs never meet Chinese text.
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese to simplified with OpenCC's phrase and character tables (``t2s``).

    OpenCC converts phrases before characters, so ``乾隆`` stays while ``乾燥`` becomes ``干燥``.
    Simplified text, and text without Chinese, comes back unchanged.
    """
    if text.isascii():
        return text
    return str(_t2s().convert(text))
