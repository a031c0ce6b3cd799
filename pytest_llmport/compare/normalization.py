"""String normalisation applied to both sides of a structural comparison before diffing."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Final

from ..jsonvalue import PathElement, format_path, type_label
from ..textfold import fold_width, nfkc

__all__ = ["StringNormalization", "normalize_tree"]

_WHITESPACE: Final = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class StringNormalization:
    """How strings are normalised on both sides before comparing.

    Applied in this order: ``custom`` (e.g. a simplified/traditional Chinese converter supplied by the
    user), ``width`` (NFKC plus the Chinese punctuation table), ``casefold``, ``whitespace`` (collapse
    runs to one space, strip the ends). ``keys`` also normalises dict keys, not only string values.
    """

    casefold: bool = False
    whitespace: bool = False
    width: bool = False
    custom: Callable[[str], str] | None = None
    keys: bool = False

    def apply(self, text: str) -> str:
        """Return ``text`` normalised according to this configuration."""
        if self.custom is not None:
            converted = self.custom(text)
            if not isinstance(converted, str):
                raise TypeError(f"the custom normaliser returned {type_label(type(converted))}, not str")
            text = converted
        if self.width:
            text = fold_width(text)
        if self.casefold:
            text = text.casefold()
            if self.width:
                # Casefolding can produce sequences NFKC rewrites; renormalising keeps apply() idempotent.
                text = nfkc(text)
        if self.whitespace:
            text = _WHITESPACE.sub(" ", text).strip()
        return text

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description for reports."""
        custom = None
        if self.custom is not None:
            custom = getattr(self.custom, "__qualname__", None) or type(self.custom).__qualname__
            custom = f"{getattr(self.custom, '__module__', '?')}.{custom}"
        return {
            "casefold": self.casefold,
            "whitespace": self.whitespace,
            "width": self.width,
            "keys": self.keys,
            "custom": custom,
        }


def normalize_tree(value: Any, normalization: StringNormalization, path: list[PathElement]) -> Any:
    if isinstance(value, str):
        return normalization.apply(value)
    if isinstance(value, list):
        return [normalize_tree(item, normalization, [*path, index]) for index, item in enumerate(value)]
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for key, item in value.items():
            new_key = normalization.apply(key) if normalization.keys else key
            if new_key in result:
                raise ValueError(
                    f"key normalisation merges {origins[new_key]!r} and {key!r} into {new_key!r} "
                    f"at {format_path(path)}"
                )
            origins[new_key] = key
            result[new_key] = normalize_tree(item, normalization, [*path, new_key])
        return result
    return value
