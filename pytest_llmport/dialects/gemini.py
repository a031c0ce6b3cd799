"""Google Gemini ``generateContent``: the model and the method in the URL path, ``contents`` of ``parts``,
``generationConfig`` for the knobs, and google.rpc errors with ``status`` names."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from .common import (
    Ask,
    Dialect,
    Request,
    UrlTrap,
    arguments,
    as_dict,
    as_int,
    as_list,
    as_str,
    code_text,
    first_choice,
    functions,
    json_or_none,
    json_payloads,
    json_wanted,
    split_system,
    status_category,
    stop_list,
    text_of,
    tool_names,
    tool_result_name,
)

if TYPE_CHECKING:
    from ..sse import SSEEvent
    from .normalizer import Accumulator
    from .result import ErrorCategory, FinishReason

FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"), "content_filter"
    ),
}
STATUS: dict[str, ErrorCategory] = {
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "auth",
    "INVALID_ARGUMENT": "bad_request",
    "FAILED_PRECONDITION": "bad_request",
    "NOT_FOUND": "bad_request",
    "OUT_OF_RANGE": "bad_request",
    "INTERNAL": "server",
    "UNAVAILABLE": "server",
    "DEADLINE_EXCEEDED": "timeout",
}
_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "max_output_tokens": "maxOutputTokens",
    "seed": "seed",
    "stop": "stopSequences",
}

# ------------------------------------------------------------------------------------------ request


def build(ask: Ask) -> dict[str, Any]:
    system, rest = split_system(ask.messages)
    names = tool_names(rest)
    contents: list[dict[str, Any]] = []
    for message in rest:
        role = message.get("role")
        parts: list[dict[str, Any]]
        if role == "tool":
            raw = text_of(message.get("content"))
            response = json_or_none(raw)
            part = {
                "functionResponse": {
                    "name": tool_result_name(message, names),
                    "response": response if isinstance(response, dict) else {"content": raw},
                }
            }
            if contents and contents[-1]["role"] == "user" and "functionResponse" in contents[-1]["parts"][0]:
                contents[-1]["parts"].append(part)
                continue
            contents.append({"role": "user", "parts": [part]})
            continue
        parts = []
        if text := text_of(message.get("content")):
            parts.append({"text": text})
        for call in message.get("tool_calls") or ():
            fn = call.get("function", {})
            parts.append({"functionCall": {"name": fn.get("name"), "args": arguments(fn.get("arguments"))}})
        contents.append(
            {"role": "model" if role == "assistant" else "user", "parts": parts or [{"text": ""}]}
        )
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if ask.tools:
        body["tools"] = [{"functionDeclarations": functions(ask.tools)}]
    config: dict[str, Any] = {}
    if json_wanted(ask.response_format):
        assert ask.response_format is not None
        config["responseMimeType"] = "application/json"
        schema = ask.response_format.get("json_schema")
        if isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping):
            config["responseJsonSchema"] = dict(schema["schema"])
    for key, value in ask.extra.items():
        if key in _CONFIG:
            config[_CONFIG[key]] = stop_list(value) if key == "stop" else value
        elif key == "generationConfig" and isinstance(value, Mapping):
            config.update(value)
        else:
            body[key] = value
    if config:
        body["generationConfig"] = config
    return body


def url(base: str, model: str, stream: bool) -> str:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base}/models/{quote(model, safe='')}:{method}"


def model_from_path(path: str) -> str | None:
    # None when the path names no model (the body is read then); "" for an empty name.
    if "/models/" not in path:
        return None
    return unquote(path.rsplit("/models/", 1)[1].split(":", 1)[0])


# ----------------------------------------------------------------------------------------- response


def _exhausted(message: str, details: list[object]) -> ErrorCategory:
    # RESOURCE_EXHAUSTED covers both per-minute limits (retry later) and spent daily/billing quota;
    # the free-tier 429 says "quota" in its message even for a per-minute limit with a RetryInfo.
    quota_ids = " ".join(
        str(as_dict(v).get("quotaId", "")) for d in details for v in as_list(as_dict(d).get("violations"))
    )
    retry = any(str(as_dict(d).get("@type", "")).endswith("RetryInfo") for d in details)
    if "PerDay" in quota_ids:
        return "quota"
    if "PerMinute" in quota_ids or retry:
        return "rate_limit"
    return "quota" if "quota" in message.lower() or "billing" in message.lower() else "rate_limit"


def _error(acc: Accumulator, raw: object) -> None:
    err = as_dict(raw)
    status, message = as_str(err.get("status")), as_str(err.get("message")) or as_str(raw)
    details = as_list(err.get("details"))
    category: ErrorCategory | None = STATUS.get(status or "")
    if status == "RESOURCE_EXHAUSTED":
        category = _exhausted(message or "", details)
    if "api key not valid" in (message or "").lower() or "API_KEY_INVALID" in json.dumps(details):
        category = "auth"
    code = as_int(err.get("code"))
    category = category or status_category(acc.status) or status_category(code or 0) or "unknown"
    acc.fail(category, status or code_text(code), message)


def _object(acc: Accumulator, obj: dict[str, object]) -> None:
    if "error" in obj:
        _error(acc, obj.get("error"))
        return
    acc.meta(obj.get("modelVersion"), obj.get("responseId"))
    um = as_dict(obj.get("usageMetadata"))
    acc.set_usage(
        prompt=um.get("promptTokenCount"),
        completion=um.get("candidatesTokenCount"),
        total=um.get("totalTokenCount"),
        reasoning=um.get("thoughtsTokenCount"),
        cached=um.get("cachedContentTokenCount"),
    )
    blocked = as_str(as_dict(obj.get("promptFeedback")).get("blockReason"))
    if blocked:
        acc.content_filtered = True
    candidate = first_choice(acc, {"choices": obj.get("candidates")})
    if candidate is None:
        if blocked:  # prompt rejected before generation: no candidates at all
            acc.finish_raw, acc.finish = blocked, "content_filter"
        return
    for part in as_list(as_dict(candidate.get("content")).get("parts")):
        p = as_dict(part)
        if "functionCall" in p:
            call = as_dict(p.get("functionCall"))
            acc.tool(call.get("id"), call.get("name"), call.get("args", {}))
        elif isinstance(text := p.get("text"), str):
            (acc.reasoning if p.get("thought") is True else acc.text).append(text)
    acc.set_finish(candidate.get("finishReason"), FINISH)


def parse_json(acc: Accumulator, obj: object, request: Request) -> None:
    if isinstance(obj, list):  # streamGenerateContent without alt=sse: a JSON array of chunks
        acc.streamed = True
        for item in obj:
            acc.chunks += 1
            if isinstance(item, dict):
                _object(acc, item)
            else:
                acc.warn("stream element is not a JSON object")
    elif isinstance(obj, dict):
        _object(acc, obj)


def parse_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    for _event, obj in json_payloads(acc, events):
        if isinstance(obj, dict):
            _object(acc, obj)
        else:
            acc.warn("stream event is not a JSON object")
    if acc.finish is None and acc.error is None:
        acc.warn("stream ended without finishReason")


DIALECT = Dialect(
    name="gemini",
    build=build,
    url=url,
    parse_json=parse_json,
    parse_stream=parse_stream,
    url_traps=(
        UrlTrap(
            lambda url: url.rstrip("/").endswith("/openai"),
            "Gemini's OpenAI-compatible facade",
            'dialect = "openai"',
        ),
    ),
    model_from_path=model_from_path,
)
