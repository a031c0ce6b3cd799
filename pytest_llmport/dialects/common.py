"""What the dialect modules share: the :class:`Dialect` record, the request a builder is asked for,
the conversions of OpenAI-style messages, the error vocabulary and the helpers parsers read answers with.

Standard library only, no pytest. A helper lives here only when two or more dialects use it; what one
dialect alone knows stays in that dialect's module. Kept cheap to import (the plugin checks every
provider's URL against its dialect at start-up): the result types and the
:class:`~.normalizer.Accumulator` are only needed once an answer is read, in :mod:`.normalizer`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sse import SSEEvent
    from .normalizer import Accumulator
    from .result import ErrorCategory

Request = Mapping[str, object]
"""The JSON body that was sent, as the parsers see it (some answers only make sense against it)."""


@dataclass(frozen=True)
class Ask:
    """What a chat request asks for, in OpenAI's terms: the input of every dialect's builder."""

    model: str
    messages: Sequence[Mapping[str, Any]]
    tools: Sequence[Mapping[str, Any]] | None
    response_format: Mapping[str, Any] | None
    stream: bool
    extra: Mapping[str, Any]


@dataclass(frozen=True)
class UrlTrap:
    """A base URL that belongs to another dialect: ``what`` it really is and the ``fix`` to name."""

    matches: Callable[[str], bool]
    what: str
    fix: str


@dataclass(frozen=True)
class Dialect:
    """Everything the plugin knows about one wire protocol, from the request it sends to the answer it reads.

    ``url(base, model, stream)`` gets the base URL without its trailing ``/``. ``own_paths`` are the only
    paths that belong to a provider whose base URL is a bare host. ``model_from_path`` reads the model from
    a request path for dialects that name it there: ``None`` when this path names none (the body is read
    then), ``""`` when the request names no model at all.
    """

    name: str
    build: Callable[[Ask], dict[str, Any]]
    url: Callable[[str, str, bool], str]
    parse_json: Callable[[Accumulator, object, Request], None]
    parse_stream: Callable[[Accumulator, list[SSEEvent], Request], None]
    url_traps: tuple[UrlTrap, ...] = ()
    stream_headers: Mapping[str, str] = field(default_factory=dict)
    own_paths: tuple[str, ...] = ()
    model_from_path: Callable[[str], str | None] | None = None


# ------------------------------------------------------------------------------ request conversion


def text_of(content: object) -> str:
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


def arguments(raw: object) -> Any:
    """Tool-call arguments as an object (OpenAI sends a JSON string)."""
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return {"arguments": raw}
    return raw if raw is not None else {}


def functions(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
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


def split_system(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[Mapping[str, Any]]]:
    """The system (and developer) messages joined, and the other messages."""
    system = [text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    rest = [m for m in messages if m.get("role") not in ("system", "developer")]
    return "\n\n".join(s for s in system if s), rest


def tool_names(messages: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Tool-call id -> function name, so tool results can name the function they answer."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            fn = call.get("function", {})
            if isinstance(call.get("id"), str) and isinstance(fn.get("name"), str):
                names[call["id"]] = fn["name"]
    return names


def tool_result_name(message: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The function a ``tool`` message answers: by its ``tool_call_id``, else its own ``name``."""
    return names.get(str(message.get("tool_call_id")), message.get("name") or "")


def json_or_none(raw: str) -> Any:
    """``raw`` parsed as JSON, ``None`` when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def stop_list(stop: object) -> object:
    """Stop sequences as a list (OpenAI accepts a single string too)."""
    return [stop] if isinstance(stop, str) else stop


def json_wanted(response_format: Mapping[str, Any] | None) -> bool:
    return bool(response_format) and response_format is not None and response_format.get("type") != "text"


# ---------------------------------------------------------------------------------- reading values


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def as_dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def code_text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return as_str(value)


# ---------------------------------------------------------------------------------------- errors


def status_category(status: int) -> ErrorCategory | None:
    if status in (401, 403):
        return "auth"
    if status == 402:
        return "quota"
    if status == 429:
        return "rate_limit"
    if status in (408, 504):
        return "timeout"
    if status in (400, 404, 405, 409, 413, 415, 422):
        return "bad_request"
    if 500 <= status <= 599:
        return "server"
    return None


# Codes and types seen in error envelopes across the families (Zhipu and Spark numeric strings,
# OpenAI/DeepSeek/Moonshot/Anthropic types, DashScope native codes). One table for three dialects because
# the families cross them: Qwen's compatible mode speaks DashScope's codes in the openai dialect, and
# Anthropic shares OpenAI's type names. Keys are lower-cased.
_CODE_CATEGORIES: dict[str, ErrorCategory] = {
    **dict.fromkeys(("1000", "1001", "1002", "1003", "1004"), "auth"),
    **dict.fromkeys(("1302", "1303", "1304", "1305"), "rate_limit"),
    "1301": "content_filter",
    "1113": "quota",
    **dict.fromkeys(("1210", "1211", "1214", "1261"), "bad_request"),
    **dict.fromkeys(("1200", "1234"), "server"),
    "10005": "bad_request",
    "11200": "auth",
    **dict.fromkeys(("10013", "10014", "10019", "10907"), "content_filter"),
    "11201": "quota",
    **dict.fromkeys(("11202", "11203"), "rate_limit"),
    **dict.fromkeys(
        (
            "invalid_api_key",
            "invalidapikey",
            "invalid_authentication_error",
            "authentication_error",
            "authenticationerror",
            "permission_error",
            "accessdenied",
        ),
        "auth",
    ),
    **dict.fromkeys(
        ("insufficient_quota", "insufficient_balance", "exceeded_current_quota_error", "billing_error"),
        "quota",
    ),
    **dict.fromkeys(
        ("rate_limit_exceeded", "rate_limit_error", "rate_limit_reached_error", "limit_requests"),
        "rate_limit",
    ),
    **dict.fromkeys(
        ("content_policy_violation", "content_filter", "sensitive", "data_inspection_failed"),
        "content_filter",
    ),
    **dict.fromkeys(
        (
            "server_error",
            "internal_error",
            "internal_server_error",
            "api_error",
            "overloaded",
            "overloaded_error",
            "serveroverloaded",
            "internalserviceerror",
        ),
        "server",
    ),
    **dict.fromkeys(
        (
            "invalid_request_error",
            "not_found_error",
            "request_too_large",
            "context_length_exceeded",
            "unsupported_parameter",
            "invalid_argument",
            "invalidparameter",
            "missingparameter",
        ),
        "bad_request",
    ),
}


# Codes/types that only say "the request failed" (or, for Spark's `api_error`, that the platform did):
# an HTTP status naming a category says more than they do. Every code meaning bad_request counts as weak too.
_WEAK_CODES = frozenset({"api_error"})


def code_category(code: str | None) -> ErrorCategory | None:
    if not code:
        return None
    low = code.strip().lower()
    if low in _CODE_CATEGORIES:
        return _CODE_CATEGORIES[low]
    # Doubao/DashScope codes are dotted or CamelCase families, OpenAI-style ones snake_case variants;
    # match them by stem. Order matters: "InternalError.Algo.DataInspectionFailed" is moderation and
    # "Throttling.RateQuota" a rate limit.
    if any(s in low for s in ("sensitive", "riskdetection", "datainspectionfailed", "data_inspection")):
        return "content_filter"
    if low.startswith(("ratelimitexceeded", "rate_limit", "throttling")):
        return "rate_limit"
    if "quota" in low or "arrear" in low or "insufficient_balance" in low:
        return "quota"
    if low.startswith(("invalidparameter", "missingparameter", "invalidendpointormodel")):
        return "bad_request"
    if low.startswith(("authfailure", "accessdenied", "invalidapikey")):
        return "auth"
    if low.startswith(("internalerror", "internalserviceerror", "internal_error", "server_error")):
        return "server"
    if "overloaded" in low:
        return "server"
    return None


def _is_weak(value: str, category: ErrorCategory) -> bool:
    return category == "bad_request" or value.strip().lower() in _WEAK_CODES


def categorize(
    status: int, code: str | None, type_: str | None = None, message: str | None = None
) -> ErrorCategory:
    """Classify an error envelope.

    1. A code, then a type, that names a category (auth, quota, rate_limit, content_filter, server...)
       wins: DeepSeek's 401 says code ``invalid_request_error`` but type ``authentication_error``, and
       Moonshot's 429 type ``exceeded_current_quota_error`` is quota, not a rate limit.
    2. Otherwise the HTTP status, when it names a category (401/403 auth, 402 quota, 429 rate_limit...).
    3. Otherwise a generic code/type (``invalid_request_error`` -> bad_request, ``api_error`` -> server),
       which is what decides errors inside an HTTP 200 stream.
    4. Otherwise the message.
    """
    named = [(value, category) for value in (code, type_) if value and (category := code_category(value))]
    strong = next((category for value, category in named if not _is_weak(value, category)), None)
    found = strong or status_category(status) or next((category for _, category in named), None)
    if found:
        return found
    low = (message or "").lower()
    if "api key" in low or "api-key" in low:
        return "auth"
    return "unknown"


# ----------------------------------------------------------------------------- parsing helpers


def json_payloads(acc: Accumulator, events: list[SSEEvent]) -> Iterator[tuple[SSEEvent, object]]:
    """Decoded ``data:`` payloads of a stream, with [DONE], junk and truncation turned into state/warnings."""
    with_data = [e for e in events if e.data is not None]
    for position, event in enumerate(with_data):
        data = event.data or ""
        if data.strip() == "[DONE]":
            acc.done = True
            continue
        if acc.done:
            acc.warn("data after [DONE] ignored")
            continue
        acc.chunks += 1
        try:
            yield event, json.loads(data)
            continue
        except ValueError:
            pass
        # Several data: lines without blank separators join into one event; try them one by one.
        parts = [p for p in data.split("\n") if p.strip()]
        decoded: list[object] = []
        for part in parts if len(parts) > 1 else []:
            try:
                decoded.append(json.loads(part))
            except ValueError:
                break
        if parts and len(decoded) == len(parts) and len(parts) > 1:
            for obj in decoded:
                yield event, obj
        elif position == len(with_data) - 1:
            acc.warn("truncated stream: last event is not valid JSON")
        else:
            acc.warn("stream event data is not JSON")


def first_choice(acc: Accumulator, container: dict[str, object]) -> dict[str, object] | None:
    """The choice to normalise (index 0, else the first), warning when there are several."""
    choices = [c for c in as_list(container.get("choices")) if isinstance(c, dict)]
    if not choices:
        return None
    if len({repr(c.get("index")) for c in choices}) > 1:
        acc.warn("several choices: only the first is normalised")
    return next((c for c in choices if c.get("index") == 0), choices[0])


def usage_openai(acc: Accumulator, raw: object) -> None:
    """An OpenAI-shaped ``usage`` object (also ERNIE's), with the families' cached-token spellings."""
    u = as_dict(raw)
    prompt, completion, total = (
        as_int(u.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    )
    if prompt is None and completion is None and not total:
        return  # absent, or MiniMax's {"total_tokens": 0} placeholder on intermediate chunks
    cached = as_int(as_dict(u.get("prompt_tokens_details")).get("cached_tokens"))
    for key in ("prompt_cache_hit_tokens", "cached_tokens"):  # DeepSeek, Moonshot
        cached = cached if cached is not None else as_int(u.get(key))
    reasoning = as_dict(u.get("completion_tokens_details")).get("reasoning_tokens")
    acc.set_usage(prompt=prompt, completion=completion, total=total, reasoning=reasoning, cached=cached)
