"""A small chat client that speaks each provider's native dialect over a given ``httpx.Client``.

:func:`chat` takes OpenAI-style ``messages`` and ``tools``, has the provider's dialect build the request
it expects (OpenAI chat completions, DashScope native, ERNIE wenxinworkshop with its OAuth token exchange,
Anthropic Messages, Gemini ``generateContent``; see :mod:`pytest_llmport.dialects`), sends it, and returns
a :class:`ChatResult`: the :class:`~pytest_llmport.dialects.result.NormalizedResult` plus the HTTP status,
timings and raw bodies. This module owns the sending: timings, the token cache, streaming reads.

Errors the provider answers with are data, not exceptions: they come back in ``result.error``. Only a
transport failure (connection refused, timeout) raises, as the ``httpx`` exception.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .deprecation import moved
from .dialects import REGISTRY, ernie
from .dialects.common import Ask
from .dialects.normalizer import normalize
from .dialects.result import NormalizedResult, ProviderError, ToolCall, Usage
from .sse import complete_prefix

if TYPE_CHECKING:
    import httpx

    from .providers import Provider

__all__ = ["ChatResult", "TokenCache", "build_request", "chat"]

__getattr__ = moved(__name__, {"DEFAULT_MAX_TOKENS": "pytest_llmport.dialects.anthropic:DEFAULT_MAX_TOKENS"})

TokenCache = MutableMapping[tuple[str, str, str], str]
"""ERNIE access tokens by ``(base_url, api_key, secret_key)``; hold one per test, never share it wider."""


@dataclass(frozen=True)
class ChatResult:
    """One chat exchange: the normalised answer, how long it took, and what went over the wire.

    ``ttft_ms`` is the time to the first SSE event carrying content (text, reasoning or a tool call) for a
    streamed request, ``None`` when no such event arrived; for a non-streamed request it is the time to
    the complete response. ``raw_body`` is the decoded response body; ``request_body`` the JSON sent.
    """

    result: NormalizedResult
    status: int
    ttft_ms: float | None
    total_ms: float
    raw_body: str
    request_body: dict[str, Any]
    provider: str = ""
    dialect: str = ""
    streamed: bool = False
    exchanges: int = 1
    """HTTP requests this chat needed (2 when ERNIE had to fetch an access token first)."""
    token_ms: float | None = field(default=None)
    """Time spent fetching the ERNIE access token, not included in ``ttft_ms``/``total_ms``."""

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def reasoning(self) -> str:
        return self.result.reasoning

    @property
    def finish_reason(self) -> str:
        return self.result.finish_reason

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.result.tool_calls

    @property
    def usage(self) -> Usage:
        return self.result.usage

    @property
    def error(self) -> ProviderError | None:
        return self.result.error

    @property
    def content_filtered(self) -> bool:
        return self.result.content_filtered

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.result.warnings

    @property
    def ok(self) -> bool:
        """True when the provider answered without an error."""
        return self.result.error is None

    def json(self) -> Any:
        """The answer parsed as JSON, also when fenced, after prose or a ``<think>`` block; ``ValueError``.

        Some models fence JSON even in JSON mode; :func:`pytest_llmport.compare.extract_json` is the one
        extractor, so this accepts exactly what ``llm_equiv.schema(..., lenient=True)`` accepts.
        """
        from .compare import SchemaError, extract_json

        try:
            return extract_json(self.text, lenient=True).value
        except SchemaError as exc:
            raise ValueError(f"{self.provider}: the answer holds no JSON value: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Report-ready summary: provider, timings, finish reason, usage and the error category."""
        error = self.result.error
        return {
            "provider": self.provider,
            "dialect": self.dialect,
            "status": self.status,
            "streamed": self.streamed,
            "ttft_ms": self.ttft_ms,
            "total_ms": self.total_ms,
            "finish_reason": self.result.finish_reason,
            "usage": {
                "prompt": self.result.usage.prompt,
                "completion": self.result.usage.completion,
                "total": self.result.usage.total,
            },
            "tool_calls": [call.name for call in self.result.tool_calls],
            "error": None if error is None else error.category,
        }


def build_request(
    spec: Provider,
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    response_format: Mapping[str, Any] | None = None,
    stream: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(url, body)`` of the chat request in ``spec``'s dialect (ERNIE's URL lacks the access token)."""
    dialect = REGISTRY.get(spec.dialect)
    if dialect is None:
        raise ValueError(f"provider {spec.name!r}: unknown dialect {spec.dialect!r}")
    if not messages:
        raise ValueError("messages must not be empty")
    body = dialect.build(Ask(model, messages, tools, response_format, stream, extra or {}))
    return dialect.url(spec.base_url.rstrip("/"), model, stream), body


# ------------------------------------------------------------------------------------------ sending


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def _has_content(result: NormalizedResult) -> bool:
    return bool(result.text or result.reasoning or result.tool_calls)


def _send(
    http: httpx.Client,
    spec: Provider,
    url: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
    stream: bool,
) -> tuple[int, str, str, float | None, float]:
    """POST and read the response: (status, content type, body, ttft_ms, total_ms)."""
    start = time.perf_counter()
    ttft: float | None = None
    chunks: list[bytes] = []
    with http.stream("POST", url, json=body, headers=dict(headers)) as response:
        content_type = response.headers.get("content-type", "")
        watch = stream and response.status_code == 200 and "json" not in content_type.lower()
        pending = b""
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if not watch or ttft is not None or not chunk:
                continue
            # Normalise each newly completed event alone: the first one with content fixes the TTFT.
            pending += chunk
            end = complete_prefix(pending)
            if end == 0:
                continue
            events, pending = pending[:end], pending[end:]
            partial = normalize(
                spec.dialect,
                status=response.status_code,
                body=events,
                content_type=content_type,
                request=body,
            )
            if _has_content(partial):
                ttft = _ms(start, time.perf_counter())
        status = response.status_code
    read = time.perf_counter()
    if not stream:
        ttft = _ms(start, read)
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    return status, content_type, raw, ttft, _ms(start, read)


def _ernie_token(
    http: httpx.Client, spec: Provider, api_key: str, secret_key: str, headers: Mapping[str, str]
) -> tuple[str | None, int, str, str]:
    """Exchange AK/SK for an access token: (token or None, status, content type, body)."""
    response = http.post(ernie.token_url(spec.base_url, api_key, secret_key), headers=dict(headers))
    raw = response.text
    return ernie.token_of(raw), response.status_code, response.headers.get("content-type", ""), raw


def _token_failure(status: int, content_type: str, raw: str, request: dict[str, Any]) -> NormalizedResult:
    """The result of a chat whose token exchange failed: the OAuth error, else a missing token."""
    result = normalize("ernie", status=status, body=raw, content_type=content_type, request=request)
    if result.error is not None:
        return result
    error = ProviderError("auth", None, f"no access_token in the OAuth response: {raw[:200]}", status)
    return NormalizedResult(finish_reason="error", error=error, warnings=result.warnings)


def chat(
    spec: Provider,
    *,
    api_key: str,
    secret_key: str = "",
    http: httpx.Client,
    model: str | None = None,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    response_format: Mapping[str, Any] | None = None,
    stream: bool = False,
    extra: Mapping[str, Any] | None = None,
    tokens: TokenCache | None = None,
) -> ChatResult:
    """Send one chat request in ``spec``'s native dialect through ``http`` and normalise the answer.

    ``messages`` and ``tools`` are OpenAI-style and converted per dialect; ``response_format`` is
    OpenAI's (``{"type": "json_object"}`` or ``json_schema``). ``extra`` is merged into the native body
    (DashScope: into ``parameters``); ``max_tokens``/``stop``/``temperature``/``top_p``/``seed`` are
    renamed where the dialect spells them differently (ERNIE ``max_output_tokens``, Anthropic
    ``stop_sequences``, Gemini ``generationConfig``). ERNIE's access token is fetched with ``api_key`` and
    ``secret_key`` and kept in ``tokens`` when given (one mapping per test: each cassette must hold its
    own token exchange), else fetched for every call. Provider errors are in ``result.error``.
    """
    model = model or spec.model
    url, body = build_request(
        spec,
        model=model,
        messages=messages,
        tools=tools,
        response_format=response_format,
        stream=stream,
        extra=extra,
    )
    headers = spec.auth_headers(api_key)
    if stream:
        headers.update(REGISTRY[spec.dialect].stream_headers)
    # What every ChatResult of this request shares.
    answer = functools.partial(
        ChatResult, request_body=body, provider=spec.name, dialect=spec.dialect, streamed=stream
    )
    exchanges, token_ms, cache_key, cached = 1, None, None, False
    if spec.dialect == ernie.DIALECT.name:
        cache_key = (spec.base_url, api_key, secret_key)
        token = tokens.get(cache_key) if tokens is not None else None
        cached = token is not None
        if token is None:
            started = time.perf_counter()
            token, status, content_type, raw = _ernie_token(http, spec, api_key, secret_key, headers)
            token_ms = _ms(started, time.perf_counter())
            exchanges = 2
            if token is None:
                return answer(
                    result=_token_failure(status, content_type, raw, body),
                    status=status,
                    ttft_ms=None,
                    total_ms=token_ms,
                    raw_body=raw,
                    exchanges=1,
                    token_ms=token_ms,
                )
            if tokens is not None:
                tokens[cache_key] = token
        url = ernie.with_token(url, token)
    status, content_type, raw, ttft, total = _send(http, spec, url, body, headers, stream)
    result = normalize(spec.dialect, status=status, body=raw, content_type=content_type, request=body)
    if (
        cached
        and tokens is not None
        and cache_key is not None
        and result.error is not None
        and result.error.code in ernie.STALE_TOKEN_CODES
    ):
        tokens.pop(cache_key, None)  # the next call fetches a fresh token
    return answer(
        result=result,
        status=status,
        ttft_ms=ttft,
        total_ms=total,
        raw_body=raw,
        exchanges=exchanges,
        token_ms=token_ms,
    )
