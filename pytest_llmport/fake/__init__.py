"""The fake provider's wire protocols, one module each, listed once here; the server is :mod:`.server`.

Every module builds the bytes a real provider family sends, from that provider's documentation: the
OpenAI family with per-provider quirks (``quirks={"zhipu"}`` and so on), DashScope's native
text-generation API, Baidu ERNIE's wenxinworkshop API with its OAuth token endpoint, Anthropic Messages
and Gemini ``generateContent``. None of them imports :mod:`pytest_llmport.dialects`: a fake that shared
the client's constants could not catch the client's mistakes. The replies themselves (mapping or
callable, default echo, ``max_tokens`` truncation, deterministic ids) are the ones documented on
:class:`pytest_llmport.testing.FakeProvider`.

A reply dict holding any of the keys ``content_filter``, ``error`` or ``reasoning`` is a *directive*
rather than text to send as JSON:

* ``{"content_filter": True, "content": "partial"}``: the provider's own content-moderation signal;
* ``{"error": "<kind>", "content": "partial"}``: streams send the partial text, then the family's
  mid-stream error event; non-streaming requests get the family's canned error of that kind;
* ``{"reasoning": "…", "content": "…"}``: reasoning text (``reasoning_content``, thinking blocks,
  thought parts) ahead of the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from . import anthropic, dashscope, ernie, gemini, openai
from .common import ERROR_KINDS, ErrorTable, FakeDialect, ReceivedRequest, Response, copy_error

__all__ = [
    "CANNED_ERRORS",
    "ERROR_KINDS",
    "FAKE_DIALECTS",
    "QUIRKS",
    "ernie_access_token",
    "error_body",
]

REGISTRY: Final[Mapping[str, FakeDialect]] = MappingProxyType(
    {d.name: d for d in (openai.DIALECT, dashscope.DIALECT, ernie.DIALECT, anthropic.DIALECT, gemini.DIALECT)}
)
"""Every dialect the fake speaks, by name: the one list of them."""
FAKE_DIALECTS: Final = tuple(REGISTRY)
QUIRKS: Final = openai.QUIRKS
CANNED_ERRORS: Final[Mapping[str, ErrorTable]] = MappingProxyType(
    {family: table for d in REGISTRY.values() for family, table in d.errors.items()}
)
"""Each family's canned errors: ``family -> kind -> (status, body)``."""

ernie_access_token = ernie.access_token


def validate(dialect: str, quirks: frozenset[str]) -> None:
    if dialect not in REGISTRY:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(FAKE_DIALECTS)}")
    unknown = sorted(quirks - set(QUIRKS))
    if unknown:
        raise ValueError(f"unknown quirks {unknown}; known: {', '.join(QUIRKS)}")
    if quirks and dialect != "openai":
        raise ValueError(f"quirks only apply to the 'openai' dialect, not to {dialect!r}")
    # Each quirk is a whole provider family and they disagree on where usage and errors go.
    if len(quirks) > 1:
        raise ValueError(f"quirks name provider families and are mutually exclusive, got {sorted(quirks)}")


def family(dialect: str, quirks: frozenset[str]) -> str:
    return next(iter(quirks)) if dialect == "openai" and quirks else dialect


def error_body(family_name: str, kind: str) -> tuple[int, dict[str, Any]]:
    """The ``(status, body)`` a provider family answers for an error ``kind`` (see :data:`ERROR_KINDS`)."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {kind!r}; known: {', '.join(ERROR_KINDS)}")
    return copy_error(CANNED_ERRORS[family_name], kind)


def not_found(dialect: str, request: ReceivedRequest) -> Response:
    """The 404 (or its dialect's equivalent) for a path ``dialect`` does not serve."""
    return REGISTRY[dialect].not_found(request)
