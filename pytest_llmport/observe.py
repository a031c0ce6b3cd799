"""Automatic observations: every exchange a test made, normalised and summarised for the report.

The matrix can then say "qwen: content_filter" or "zhipu: length" without the test asking.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .dialects.normalizer import normalize


def _used(cassette: Any) -> list[tuple[Any, Any]]:
    """The interactions this test played or recorded, in cassette order."""
    loaded = getattr(cassette, "_loaded_count", 0)
    counts = getattr(cassette, "play_counts", {})
    return [pair for index, pair in enumerate(cassette.data) if index >= loaded or counts.get(index)]


def _header(headers: Any, name: str) -> str:
    for key, values in headers.items():
        if key.lower() == name:
            return str(values[0] if isinstance(values, list) and values else values)
    return ""


MEMO = "_llmport_summary"
# Bumped whenever the summary's shape changes, so summaries memoised in the parsed-cassette cache by an
# older version are recomputed rather than shown without the new fields.
SUMMARY_VERSION = 2
TEXT_LIMIT = 4000  # characters of the answer kept per exchange: enough to compare, small enough to ship


def summarize_exchanges(cassette: Any, dialect: str) -> list[dict[str, Any]]:
    summaries = []
    added = False
    for request, response in _used(cassette):
        # Kept on the response dict, which the parsed-cassette cache stores: a replayed exchange is
        # normalised once, not on every run. The serializer never writes this key.
        memo = response.setdefault(MEMO, {})
        memo_key = f"{dialect}/{SUMMARY_VERSION}"
        if memo_key in memo:
            summaries.append(memo[memo_key])
            continue
        summary = _summarize(request, response, dialect)
        memo[memo_key] = summary
        summaries.append(summary)
        added = True
    if added:
        mark = getattr(getattr(cassette, "_persister", None), "mark_changed", None)
        if callable(mark):
            mark()
    return summaries


def _summarize(request: Any, response: Any, dialect: str) -> dict[str, Any]:
    body = response.get("body", {}).get("string", b"")
    try:
        sent = json.loads(request.body) if request.body else None
    except (TypeError, ValueError):
        sent = None
    sent = sent if isinstance(sent, dict) else None
    result = normalize(
        dialect,
        status=int(response.get("status", {}).get("code", 0)),
        body=body if isinstance(body, (bytes, str)) else b"",
        content_type=_header(response.get("headers", {}), "content-type"),
        request=sent,
    )
    path = urlsplit(request.uri).path
    summary: dict[str, Any] = {
        "endpoint": f"{request.method} {path}",
        "status": response.get("status", {}).get("code"),
        "request_model": request_model(sent, path),
        "response_model": result.model,
        "finish_reason": result.finish_reason,
        "finish_reason_raw": result.finish_reason_raw,
        "streamed": result.streamed,
        "usage": {k: v for k, v in result.usage.__dict__.items() if v is not None},
        "features": request_features(sent, path, len(result.tool_calls)),
    }
    if result.text:
        summary["text"] = result.text[:TEXT_LIMIT]
    if result.tool_calls:
        summary["tool_calls"] = [call.name for call in result.tool_calls]
    if result.error is not None:
        summary["error"] = {"category": result.error.category, "code": result.error.code}
    if result.content_filtered:
        summary["content_filtered"] = True
    timing = response.get("timing")
    if isinstance(timing, dict):
        summary["first_byte_ms"] = timing.get("first_byte_ms")
        summary["total_ms"] = timing.get("total_ms")
    return summary


def request_model(sent: dict[str, Any] | None, path: str) -> str | None:
    """The model the app asked for: the body's ``model`` field, else the URL's (Gemini, ERNIE native)."""
    if sent is not None and isinstance(sent.get("model"), str):
        return str(sent["model"])
    marker = "/models/"
    if marker in path:  # Gemini: /v1beta/models/gemini-2.5-flash:generateContent
        return path.split(marker, 1)[1].split(":", 1)[0] or None
    if "/wenxinworkshop/chat/" in path:  # ERNIE native: the model is the endpoint's last segment
        return path.rsplit("/", 1)[1] or None
    return None


def _has_image(content: Any) -> bool:
    if not isinstance(content, list):
        return False
    for part in content:
        if isinstance(part, dict) and (
            part.get("type") in ("image_url", "image", "input_image")
            or "inline_data" in part
            or "inlineData" in part
            or "image" in part  # DashScope native: {"image": "https://..."}
        ):
            return True
    return False


def _table(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def request_features(sent: dict[str, Any] | None, path: str, tool_calls: int = 0) -> list[str]:
    """The request features this exchange relies on, named like the capabilities ``requires=`` takes.

    Read from the request body (OpenAI-compatible, Anthropic, Gemini and DashScope shapes) plus the answer:
    an answer with several tool calls relied on parallel tool calls whatever the request said.
    """
    if sent is None:
        return []
    found: set[str] = set()
    params = _table(sent, "parameters")  # DashScope native
    generation = _table(sent, "generationConfig")  # Gemini
    fmt = sent.get("response_format") or params.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        found.add("json_mode")
    elif kind == "json_schema":
        found.add("json_schema")
    if "responseSchema" in generation or "responseJsonSchema" in generation:
        found.add("json_schema")
    elif generation.get("responseMimeType") == "application/json":
        found.add("json_mode")
    if sent.get("tools") or sent.get("functions") or params.get("tools"):
        found.add("tools")
    if sent.get("parallel_tool_calls") is True or tool_calls > 1:
        found.add("parallel_tool_calls")
    if (
        sent.get("stream") is True
        or params.get("incremental_output")
        or path.endswith(":streamGenerateContent")
    ):
        found.add("streaming")
    if isinstance(sent.get("stream_options"), dict):
        found.add("stream_options")
    if sent.get("seed") is not None or params.get("seed") is not None or generation.get("seed") is not None:
        found.add("seed")
    messages = sent.get("messages")
    if not isinstance(messages, list):
        messages = (sent.get("input") or {}).get("messages") if isinstance(sent.get("input"), dict) else None
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "system":
            found.add("system_role")
        if _has_image(message.get("content")):
            found.add("vision")
    if sent.get("system") or sent.get("systemInstruction") or sent.get("system_instruction"):
        found.add("system_role")
    for content in sent.get("contents") or []:  # Gemini
        if isinstance(content, dict) and _has_image(content.get("parts")):
            found.add("vision")
    return sorted(found)


def exchange_word(exchanges: list[dict[str, Any]]) -> str | None:
    """The one word that explains a provider's behaviour: an error category or an unusual finish."""
    for exchange in exchanges:
        if "error" in exchange:
            return str(exchange["error"]["category"])
    for exchange in exchanges:
        if exchange.get("content_filtered"):
            return "content_filter"
        if exchange["finish_reason"] in ("length", "content_filter", "error"):
            return str(exchange["finish_reason"])
    return None
