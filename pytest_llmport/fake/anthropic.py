"""The fake Anthropic Messages API: ``x-api-key`` (or a bearer token) and ``anthropic-version`` required,
``max_tokens`` required, content blocks, and named SSE events from ``message_start`` to ``message_stop``."""

from __future__ import annotations

import json
from typing import Any, Final

from .common import (
    BadRequest,
    Context,
    ErrorTable,
    FakeDialect,
    ReceivedRequest,
    Response,
    bearer,
    canned,
    chunks_of,
    content_text,
    copy_error,
    encode,
    event_stream,
    last_user_text,
    make_answer,
    parse_json_object,
    serve,
)


def _an(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_fake"}


CANNED: Final[ErrorTable] = {
    "auth": (401, _an("authentication_error", "invalid x-api-key")),
    "rate_limit": (
        429,
        _an("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    ),
    "quota": (402, _an("billing_error", "Your credit balance is too low to access the Anthropic API.")),
    # Anthropic has no moderation error either: the model refuses in a normal message.
    "content_filter": (
        200,
        {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "fake-model",
            "content": [],
            "stop_reason": "refusal",
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        },
    ),
    "server": (529, _an("overloaded_error", "Overloaded")),
    "bad_request": (400, _an("invalid_request_error", "max_tokens: Field required")),
}


def not_found(request: ReceivedRequest) -> Response:
    return Response(404, encode(_an("not_found_error", f"Not Found: {request.method} {request.path}")))


def handle(context: Context, request: ReceivedRequest) -> Response:
    return serve(_route, context, request, errors=CANNED, not_found=not_found)


def _route(context: Context, request: ReceivedRequest) -> Response | None:
    if request.method != "POST" or not request.path.rstrip("/").endswith("/v1/messages"):
        return None
    # The API takes the key in x-api-key or as a bearer token (what current SDKs send with auth_token).
    key = request.headers.get("x-api-key") or bearer(request.headers)
    if not key:
        return Response(401, encode(_an("authentication_error", "x-api-key header is required")))
    if context.settings.api_key is not None and key != context.settings.api_key:
        return canned(CANNED, "auth")
    if not request.headers.get("anthropic-version"):
        return Response(400, encode(_an("invalid_request_error", "anthropic-version: header is required")))
    payload = parse_json_object(request.body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    max_tokens = payload.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise BadRequest("max_tokens: Field required")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required")
    system = payload.get("system")
    answer = make_answer(
        context,
        payload,
        model=model,
        user_text=last_user_text(messages),
        prompt_texts=[content_text(m.get("content")) for m in messages if isinstance(m, dict)]
        + [content_text(system)],
        limit=max_tokens,
        tools=bool(payload.get("tools")),
    )
    ident = f"msg_fake_{answer.tag}"
    stop = {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "refusal",
    }[answer.finish]
    blocks: list[dict[str, Any]] = []
    if answer.reasoning:
        blocks.append(
            {"type": "thinking", "thinking": answer.reasoning, "signature": f"sig_fake_{answer.tag}"}
        )
    if answer.calls is None:
        if answer.text or not blocks:
            blocks.append({"type": "text", "text": answer.text})
    else:
        blocks.extend(
            {"type": "tool_use", "id": f"toolu_fake_{i}_{answer.tag}", "name": c.name, "input": c.args}
            for i, c in enumerate(answer.calls)
        )
    usage = {
        "input_tokens": answer.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": answer.completion_tokens,
    }
    headers = {"request-id": f"req_fake_{answer.tag}"}
    if payload.get("stream") is not True:
        if answer.error is not None:
            return canned(CANNED, answer.error)
        message = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        return Response(200, encode(message), headers=headers)

    def event(name: str, value: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: ".encode() + encode({"type": name, **value}) + b"\n\n"

    start: dict[str, Any] = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
    }
    start.update(stop_reason=None, stop_sequence=None, usage={**usage, "output_tokens": 1})
    events = [event("message_start", {"message": start}), event("ping", {})]
    size = context.settings.chunk_chars
    for index, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            events.append(
                event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            )
            deltas: list[dict[str, Any]] = [
                {"type": "text_delta", "text": p} for p in chunks_of(block["text"], size)
            ]
        elif kind == "thinking":
            opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            events.append(event("content_block_start", {"index": index, "content_block": opening}))
            deltas = [{"type": "thinking_delta", "thinking": p} for p in chunks_of(block["thinking"], size)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            opening = {**block, "input": {}}
            events.append(event("content_block_start", {"index": index, "content_block": opening}))
            arguments = json.dumps(block["input"], ensure_ascii=False)
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in chunks_of(arguments, size)]
        events.extend(event("content_block_delta", {"index": index, "delta": d}) for d in deltas)
        if answer.error is not None:
            _, body = copy_error(CANNED, answer.error)
            events.append(
                b"event: error\ndata: "
                + encode({"type": "error", "error": body.get("error", body)})
                + b"\n\n"
            )
            return event_stream(events, context.settings)
        events.append(event("content_block_stop", {"index": index}))
    delta = {
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": answer.completion_tokens},
    }
    events += [event("message_delta", delta), event("message_stop", {})]
    response = event_stream(events, context.settings)
    return Response(
        200,
        content_type=response.content_type,
        headers={**response.headers, **headers},
        events=events,
        delay=response.delay,
    )


DIALECT = FakeDialect("anthropic", handle, not_found, {"anthropic": CANNED})
