"""The fake Gemini API: ``models/<model>:generateContent`` and ``:streamGenerateContent`` (SSE with
``alt=sse``, else one JSON array), the key in ``x-goog-api-key`` or ``?key=``, google.rpc error bodies."""

from __future__ import annotations

import re
from typing import Any, Final

from .common import (
    BadRequest,
    Context,
    ErrorTable,
    FakeDialect,
    ReceivedRequest,
    Response,
    canned,
    chunks_of,
    content_text,
    copy_error,
    count_tokens,
    encode,
    event_stream,
    make_answer,
    parse_json_object,
    query_of,
    serve,
    sse,
)

_ROUTE: Final = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)$")


def _gm(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


_RETRY_INFO: Final = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}
_PER_DAY: Final = {
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
}
CANNED: Final[ErrorTable] = {
    "auth": (
        400,
        _gm(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
        ),
    ),
    "rate_limit": (429, _gm(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.", _RETRY_INFO)),
    "quota": (429, _gm(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", _PER_DAY)),
    "content_filter": (
        200,
        {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 0, "totalTokenCount": 0},
            "modelVersion": "fake-model",
        },
    ),
    "server": (500, _gm(500, "INTERNAL", "An internal error has occurred.")),
    "bad_request": (400, _gm(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")),
}


def not_found(request: ReceivedRequest) -> Response:
    return Response(404, encode(_gm(404, "NOT_FOUND", f"Not Found: {request.method} {request.path}")))


def handle(context: Context, request: ReceivedRequest) -> Response:
    return serve(_route, context, request, errors=CANNED, not_found=not_found)


def _route(context: Context, request: ReceivedRequest) -> Response | None:
    found = _ROUTE.search(request.path)
    if request.method != "POST" or found is None:
        return None
    model, method = found.group(1), found.group(2)
    query = query_of(request.query)
    key = request.headers.get("x-goog-api-key") or query.get("key")
    if not key:
        message = (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )
        return Response(403, encode(_gm(403, "PERMISSION_DENIED", message)))
    if context.settings.api_key is not None and key != context.settings.api_key:
        return canned(CANNED, "auth")
    payload = parse_json_object(request.body)
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")

    def text_of(item: object) -> str:
        parts = item.get("parts") if isinstance(item, dict) else None
        return content_text(parts) if isinstance(parts, list) else ""

    users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    config = payload.get("generationConfig")
    answer = make_answer(
        context,
        {**payload, "model": model},
        model=model,
        user_text=text_of(users[-1]) if users else "",
        prompt_texts=[text_of(c) for c in contents] + [text_of(payload.get("systemInstruction"))],
        limit=config.get("maxOutputTokens") if isinstance(config, dict) else None,
        tools=bool(payload.get("tools")),
    )
    response_id = f"fake-{answer.tag}"
    finish = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}[
        answer.finish
    ]

    def chunk(parts: list[dict[str, Any]], final: bool, completion: int) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = finish
        usage = {
            "promptTokenCount": answer.prompt_tokens,
            "candidatesTokenCount": completion,
            "totalTokenCount": answer.prompt_tokens + completion,
        }
        if answer.reasoning:
            usage["thoughtsTokenCount"] = count_tokens(answer.reasoning)
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": response_id,
        }

    thought: list[dict[str, Any]] = [{"text": answer.reasoning, "thought": True}] if answer.reasoning else []
    parts: list[dict[str, Any]]
    if answer.calls is not None:
        parts = [{"functionCall": {"name": c.name, "args": c.args}} for c in answer.calls]
    else:
        parts = [{"text": answer.text}] if answer.text or answer.finish != "content_filter" else []
    if method == "generateContent":
        if answer.error is not None:
            return canned(CANNED, answer.error)
        return Response(200, encode(chunk(thought + parts, True, answer.completion_tokens)))
    if answer.calls is not None:
        piece_parts: list[list[dict[str, Any]]] = [thought + parts]
    else:
        piece_parts = [[{"text": p}] for p in chunks_of(answer.text, context.settings.chunk_chars)] or [[]]
        if thought:
            piece_parts.insert(0, thought)
    chunks: list[dict[str, Any]] = []
    seen = 0
    for number, piece in enumerate(piece_parts, start=1):
        seen += sum(count_tokens(str(p.get("text", ""))) for p in piece if "thought" not in p)
        last = number == len(piece_parts) and answer.error is None
        chunks.append(chunk(piece, last, answer.completion_tokens if last else seen))
    if answer.error is not None:
        chunks.append(copy_error(CANNED, answer.error)[1])
    if query.get("alt") != "sse":
        # Without alt=sse the "stream" is one JSON array of the same chunks.
        return Response(200, encode(chunks))
    return event_stream([sse(c, end=b"\r\n\r\n") for c in chunks], context.settings, "text/event-stream")


DIALECT = FakeDialect("gemini", handle, not_found, {"gemini": CANNED})
