"""Automatic observations: every exchange a test made, normalised and summarised for the report.

The matrix can then say "qwen: content_filter" or "zhipu: length" without the test asking.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .normalize import normalize


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


def summarize_exchanges(cassette: Any, dialect: str) -> list[dict[str, Any]]:
    summaries = []
    added = False
    for request, response in _used(cassette):
        # Kept on the response dict, which the parsed-cassette cache stores: a replayed exchange is
        # normalised once, not on every run. The serializer never writes this key.
        memo = response.setdefault(MEMO, {})
        if dialect in memo:
            summaries.append(memo[dialect])
            continue
        summary = _summarize(request, response, dialect)
        memo[dialect] = summary
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
    result = normalize(
        dialect,
        status=int(response.get("status", {}).get("code", 0)),
        body=body if isinstance(body, (bytes, str)) else b"",
        content_type=_header(response.get("headers", {}), "content-type"),
        request=sent if isinstance(sent, dict) else None,
    )
    summary: dict[str, Any] = {
        "endpoint": f"{request.method} {urlsplit(request.uri).path}",
        "status": response.get("status", {}).get("code"),
        "finish_reason": result.finish_reason,
        "finish_reason_raw": result.finish_reason_raw,
        "streamed": result.streamed,
        "usage": {k: v for k, v in result.usage.__dict__.items() if v is not None},
    }
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
