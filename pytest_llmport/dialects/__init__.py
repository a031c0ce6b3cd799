"""The wire protocols ("dialects") the plugin speaks and reads, one module each, listed once here.

Each module (:mod:`.openai`, :mod:`.dashscope`, :mod:`.ernie`, :mod:`.anthropic`, :mod:`.gemini`) holds all
its dialect knows: the request builder, the URL rules (paths, URL traps), the response parser and its
finish-reason and error tables, as one :class:`~.common.Dialect`. :mod:`.common` holds what two or more
of them share, :mod:`.normalizer` reads a response into the shape of :mod:`.result`
(:func:`pytest_llmport.dialects.normalizer.normalize`). Standard library only: no pytest, no HTTP client.

To add a dialect: write its module with a ``DIALECT``, add it to :data:`REGISTRY`, and teach the fake
provider (``pytest_llmport.fake``) to speak it too, from the provider's documentation rather than from
these constants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from ..deprecation import moved
from . import anthropic, dashscope, ernie, gemini, openai
from .common import Dialect, UrlTrap

__all__ = ["DIALECTS", "REGISTRY", "Dialect", "UnknownDialectError", "find", "get", "url_trap"]

REGISTRY: Mapping[str, Dialect] = MappingProxyType(
    {d.name: d for d in (openai.DIALECT, dashscope.DIALECT, ernie.DIALECT, anthropic.DIALECT, gemini.DIALECT)}
)
"""Every dialect by name: the one list of them."""
DIALECTS: tuple[str, ...] = tuple(REGISTRY)


class UnknownDialectError(ValueError):
    """A configuration error: the dialect name is not one of :data:`DIALECTS`."""

    def __init__(self, dialect: str) -> None:
        super().__init__(f"unknown dialect {dialect!r}; known dialects: {', '.join(DIALECTS)}")
        self.dialect = dialect


def find(name: str) -> Dialect | None:
    """The dialect called ``name``, None when there is none."""
    return REGISTRY.get(name)


def get(name: str) -> Dialect:
    """The dialect called ``name``; :class:`UnknownDialectError` when there is none."""
    dialect = REGISTRY.get(name)
    if dialect is None:
        raise UnknownDialectError(name)
    return dialect


def url_trap(dialect: str, base_url: str) -> UrlTrap | None:
    """The trap ``base_url`` falls into under ``dialect`` (a URL of another dialect's API), if any."""
    found = REGISTRY.get(dialect)
    return next((trap for trap in found.url_traps if trap.matches(base_url)), None) if found else None


# ------------------------------------------------------------- the names of the former dialects.py


class _Parser(NamedTuple):
    json: Callable[..., None]
    stream: Callable[..., None]


_PARSERS = {name: _Parser(d.parse_json, d.parse_stream) for name, d in REGISTRY.items()}

__getattr__ = moved(
    __name__,
    {
        "PARSERS": f"{__name__}:_PARSERS",
        "Parser": f"{__name__}:_Parser",
        "OPENAI_FINISH": f"{__name__}.openai:FINISH",
        "MINIMAX_CODES": f"{__name__}.openai:MINIMAX_CODES",
        "DASHSCOPE_FINISH": f"{__name__}.dashscope:FINISH",
        "ERNIE_FINISH": f"{__name__}.ernie:FINISH",
        "ERNIE_CODES": f"{__name__}.ernie:CODES",
        "ANTHROPIC_FINISH": f"{__name__}.anthropic:FINISH",
        "GEMINI_FINISH": f"{__name__}.gemini:FINISH",
        "GEMINI_STATUS": f"{__name__}.gemini:STATUS",
    },
)
