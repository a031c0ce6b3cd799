"""A small chat client that speaks each provider's native dialect over a given ``httpx.Client``.

:func:`chat` takes OpenAI-style ``messages`` and ``tools``, builds the request the provider's dialect
expects (OpenAI chat completions, DashScope native, ERNIE wenxinworkshop with its OAuth token exchange,
Anthropic Messages, Gemini ``generateContent``), sends it, and returns a :class:`ChatResult`: the
:class:`~pytest_llmport.normalize.NormalizedResult` plus the HTTP status, timings and raw bodies.

Errors the provider answers with are data, not exceptions: they come back in ``result.error``. Only a
transport failure (connection refused, timeout) raises, as the ``httpx`` exception.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .normalize import NormalizedResult, ProviderError, ToolCall, Usage, normalize
from .providers import Provider
from .sse import complete_prefix

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_MAX_TOKENS", "ChatResult", "TokenCache", "build_request", "chat"]

DEFAULT_MAX_TOKENS = 1024
"""Anthropic requires ``max_tokens``; this is sent unless ``extra`` gives one."""

TokenCache = MutableMapping[tuple[str, str, str], str]
"""ERNIE access tokens by ``(base_url, api_key, secret_key)``; hold one per test, never share it wider."""

_ERNIE_CHAT = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"
_ERNIE_STALE_TOKEN = frozenset({"110", "111"})  # access token invalid / expired


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


# ------------------------------------------------------------------------------------- conversion


def _text(content: object) -> str:
    """Plain text of an OpenAI message content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part)
            for part in content
            if not isinstance(part, Mapping) or part.get("type", "text") == "text"
        )
    return str(content)


def _arguments(raw: object) -> Any:
    """Tool-call arguments as an object (OpenAI sends a JSON string)."""
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return {"arguments": raw}
    return raw if raw is not None else {}


def _functions(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """``{name, description, parameters}`` of OpenAI-style tools (bare function dicts are accepted)."""
    result: list[dict[str, Any]] = []
    for tool in tools or ():
        fn = tool.get("function", tool)
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise ValueError(f"a tool needs a function name, got {tool!r}")
        entry: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            entry["description"] = fn["description"]
        entry["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
        result.append(entry)
    return result


def _split_system(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[Mapping[str, Any]]]:
    system = [_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    rest = [m for m in messages if m.get("role") not in ("system", "developer")]
    return "\n\n".join(s for s in system if s), rest


def _tool_names(messages: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Tool-call id -> function name, so tool results can name the function they answer."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            fn = call.get("function", {})
            if isinstance(call.get("id"), str) and isinstance(fn.get("name"), str):
                names[call["id"]] = fn["name"]
    return names


def _tool_result_name(message: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The function a ``tool`` message answers: by its ``tool_call_id``, else its own ``name``."""
    return names.get(str(message.get("tool_call_id")), message.get("name") or "")


def _json_or_none(raw: str) -> Any:
    """``raw`` parsed as JSON, ``None`` when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _stop_list(stop: object) -> object:
    """Stop sequences as a list (OpenAI accepts a single string too)."""
    return [stop] if isinstance(stop, str) else stop


def _json_wanted(response_format: Mapping[str, Any] | None) -> bool:
    return bool(response_format) and response_format is not None and response_format.get("type") != "text"


@dataclass(frozen=True)
class _Ask:
    """What :func:`build_request` was asked for, in OpenAI's terms: the input of every dialect's builder."""

    model: str
    messages: Sequence[Mapping[str, Any]]
    tools: Sequence[Mapping[str, Any]] | None
    response_format: Mapping[str, Any] | None
    stream: bool
    extra: Mapping[str, Any]


def _openai(ask: _Ask) -> dict[str, Any]:
    body: dict[str, Any] = {"model": ask.model, "messages": [dict(m) for m in ask.messages]}
    if ask.tools:
        body["tools"] = [dict(t) for t in ask.tools]
    if ask.response_format:
        body["response_format"] = dict(ask.response_format)
    if ask.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(ask.extra)
    return body


def _dashscope(ask: _Ask) -> dict[str, Any]:
    parameters: dict[str, Any] = {"result_format": "message", "incremental_output": ask.stream}
    if ask.tools:
        parameters["tools"] = [dict(t) for t in ask.tools]
    if ask.response_format:
        parameters["response_format"] = dict(ask.response_format)
    # Every generation knob (temperature, max_tokens, seed, stop ...) lives in `parameters`.
    parameters.update(ask.extra)
    return {
        "model": ask.model,
        "input": {"messages": [dict(m) for m in ask.messages]},
        "parameters": parameters,
    }


def _ernie(ask: _Ask) -> dict[str, Any]:
    system, rest = _split_system(ask.messages)
    names = _tool_names(rest)
    converted: list[dict[str, Any]] = []
    for message in rest:
        role = message.get("role")
        if role == "tool":
            name = _tool_result_name(message, names)
            converted.append({"role": "function", "name": name, "content": _text(message.get("content"))})
        elif role == "assistant" and message.get("tool_calls"):
            # ERNIE's function calling carries one call per turn.
            fn = message["tool_calls"][0].get("function", {})
            call = {"name": fn.get("name"), "arguments": fn.get("arguments") or "{}"}
            converted.append(
                {"role": "assistant", "content": _text(message.get("content")), "function_call": call}
            )
        else:
            converted.append({"role": role, "content": _text(message.get("content"))})
    body: dict[str, Any] = {"messages": converted}
    if system:
        body["system"] = system
    if ask.tools:
        body["functions"] = _functions(ask.tools)
    if _json_wanted(ask.response_format):
        body["response_format"] = "json_object"
    if ask.stream:
        body["stream"] = True
    options = dict(ask.extra)
    if "max_tokens" in options:
        options["max_output_tokens"] = options.pop("max_tokens")
    body.update(options)
    return body


def _anthropic(ask: _Ask) -> dict[str, Any]:
    if ask.response_format and ask.response_format.get("type") != "text":
        raise ValueError(
            "the anthropic dialect has no JSON mode (response_format); "
            "ask for JSON in the prompt or skip providers without the 'json_mode' capability"
        )
    system, rest = _split_system(ask.messages)
    converted: list[dict[str, Any]] = []
    for message in rest:
        role = message.get("role")
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _text(message.get("content")),
            }
            previous = converted[-1] if converted else None
            if previous is not None and previous["role"] == "user" and isinstance(previous["content"], list):
                previous["content"].append(block)  # parallel calls: all results in one user turn
            else:
                converted.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if text := _text(message.get("content")):
                blocks.append({"type": "text", "text": text})
            for call in message["tool_calls"]:
                fn = call.get("function", {})
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": fn.get("name"),
                        "input": _arguments(fn.get("arguments")),
                    }
                )
            converted.append({"role": "assistant", "content": blocks})
        else:
            converted.append({"role": role, "content": _text(message.get("content"))})
    body: dict[str, Any] = {"model": ask.model, "max_tokens": DEFAULT_MAX_TOKENS, "messages": converted}
    if system:
        body["system"] = system
    if ask.tools:
        body["tools"] = [
            {
                "name": fn["name"],
                **({"description": fn["description"]} if "description" in fn else {}),
                "input_schema": fn["parameters"],
            }
            for fn in _functions(ask.tools)
        ]
    if ask.stream:
        body["stream"] = True
    options = dict(ask.extra)
    if "stop" in options:
        options["stop_sequences"] = _stop_list(options.pop("stop"))
    body.update(options)
    return body


_GEMINI_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "max_output_tokens": "maxOutputTokens",
    "seed": "seed",
    "stop": "stopSequences",
}


def _gemini(ask: _Ask) -> dict[str, Any]:
    system, rest = _split_system(ask.messages)
    names = _tool_names(rest)
    contents: list[dict[str, Any]] = []
    for message in rest:
        role = message.get("role")
        parts: list[dict[str, Any]]
        if role == "tool":
            raw = _text(message.get("content"))
            response = _json_or_none(raw)
            part = {
                "functionResponse": {
                    "name": _tool_result_name(message, names),
                    "response": response if isinstance(response, dict) else {"content": raw},
                }
            }
            if contents and contents[-1]["role"] == "user" and "functionResponse" in contents[-1]["parts"][0]:
                contents[-1]["parts"].append(part)
                continue
            contents.append({"role": "user", "parts": [part]})
            continue
        parts = []
        if text := _text(message.get("content")):
            parts.append({"text": text})
        for call in message.get("tool_calls") or ():
            fn = call.get("function", {})
            parts.append({"functionCall": {"name": fn.get("name"), "args": _arguments(fn.get("arguments"))}})
        contents.append(
            {"role": "model" if role == "assistant" else "user", "parts": parts or [{"text": ""}]}
        )
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if ask.tools:
        body["tools"] = [{"functionDeclarations": _functions(ask.tools)}]
    config: dict[str, Any] = {}
    if _json_wanted(ask.response_format):
        assert ask.response_format is not None
        config["responseMimeType"] = "application/json"
        schema = ask.response_format.get("json_schema")
        if isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping):
            config["responseJsonSchema"] = dict(schema["schema"])
    for key, value in ask.extra.items():
        if key in _GEMINI_CONFIG:
            config[_GEMINI_CONFIG[key]] = _stop_list(value) if key == "stop" else value
        elif key == "generationConfig" and isinstance(value, Mapping):
            config.update(value)
        else:
            body[key] = value
    if config:
        body["generationConfig"] = config
    return body


_BUILDERS = {
    "openai": _openai,
    "dashscope": _dashscope,
    "ernie": _ernie,
    "anthropic": _anthropic,
    "gemini": _gemini,
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
    builder = _BUILDERS.get(spec.dialect)
    if builder is None:
        raise ValueError(f"provider {spec.name!r}: unknown dialect {spec.dialect!r}")
    if not messages:
        raise ValueError("messages must not be empty")
    body = builder(_Ask(model, messages, tools, response_format, stream, extra or {}))
    base = spec.base_url.rstrip("/")
    if spec.dialect == "openai":
        url = f"{base}/chat/completions"
    elif spec.dialect == "dashscope":
        url = f"{base}/services/aigc/text-generation/generation"
    elif spec.dialect == "ernie":
        url = f"{base}{_ERNIE_CHAT}{quote(model, safe='/')}"
    elif spec.dialect == "anthropic":
        url = f"{base}/messages"
    else:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{base}/models/{quote(model, safe='')}:{method}"
    return url, body


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
    query = urlencode({"grant_type": "client_credentials", "client_id": api_key, "client_secret": secret_key})
    url = f"{spec.base_url.rstrip('/')}/oauth/2.0/token?{query}"
    response = http.post(url, headers=dict(headers))
    raw = response.text
    token: str | None = None
    payload = _json_or_none(raw)
    if isinstance(payload, dict) and isinstance(payload.get("access_token"), str) and payload["access_token"]:
        token = payload["access_token"]
    return token, response.status_code, response.headers.get("content-type", ""), raw


def _token_failure(
    spec: Provider, status: int, content_type: str, raw: str, request: dict[str, Any]
) -> NormalizedResult:
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
    if stream and spec.dialect == "dashscope":
        headers["X-DashScope-SSE"] = "enable"
    # What every ChatResult of this request shares.
    answer = functools.partial(
        ChatResult, request_body=body, provider=spec.name, dialect=spec.dialect, streamed=stream
    )
    exchanges, token_ms, cache_key, cached = 1, None, None, False
    if spec.dialect == "ernie":
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
                    result=_token_failure(spec, status, content_type, raw, body),
                    status=status,
                    ttft_ms=None,
                    total_ms=token_ms,
                    raw_body=raw,
                    exchanges=1,
                    token_ms=token_ms,
                )
            if tokens is not None:
                tokens[cache_key] = token
        url = f"{url}?{urlencode({'access_token': token})}"
    status, content_type, raw, ttft, total = _send(http, spec, url, body, headers, stream)
    result = normalize(spec.dialect, status=status, body=raw, content_type=content_type, request=body)
    if (
        cached
        and tokens is not None
        and cache_key is not None
        and result.error is not None
        and result.error.code in _ERNIE_STALE_TOKEN
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
