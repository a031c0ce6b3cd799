"""The fake DashScope native text-generation API: ``input``/``parameters`` bodies, streams on
``X-DashScope-SSE: enable`` with ``id:``/``event:``/``:HTTP_STATUS`` framing, cumulative unless
``incremental_output``, errors as ``code``/``message``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .common import (
    FAKE_UUID,
    Answer,
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
    count_tokens,
    encode,
    event_stream,
    last_user_text,
    make_answer,
    parse_json_object,
    serve,
)

_CHAT: Final = "/services/aigc/text-generation/generation"


def _ds(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": FAKE_UUID}


CANNED: Final[ErrorTable] = {
    "auth": (401, _ds("InvalidApiKey", "Invalid API-key provided.")),
    "rate_limit": (
        429,
        _ds("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    ),
    "quota": (400, _ds("Arrearage", "Access denied, please make sure your account is in good standing.")),
    "content_filter": (400, _ds("DataInspectionFailed", "Input data may contain inappropriate content.")),
    "server": (500, _ds("InternalError", "An internal error has occured, please try again later.")),
    "bad_request": (
        400,
        _ds("InvalidParameter", "Role must be user or assistant and Content length must be greater than 0"),
    ),
}


def not_found(request: ReceivedRequest) -> Response:
    return Response(404, encode(_ds("NotFound", f"Not Found: {request.method} {request.path}")))


def handle(context: Context, request: ReceivedRequest) -> Response:
    return serve(_route, context, request, errors=CANNED, not_found=not_found)


def _bool_param(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"Parameter '{name}' must be a boolean")
    return value


def _route(context: Context, request: ReceivedRequest) -> Response | None:
    if request.method != "POST" or not request.path.rstrip("/").endswith(_CHAT):
        return None
    if context.settings.api_key is not None and bearer(request.headers) != context.settings.api_key:
        return canned(CANNED, "auth")
    payload = parse_json_object(request.body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("Model not exist.")
    inputs = payload.get("input")
    params = payload.get("parameters", {})
    if not isinstance(inputs, dict) or not isinstance(params, dict):
        raise BadRequest("'input' and 'parameters' must be objects")
    messages, prompt = inputs.get("messages"), inputs.get("prompt")
    if isinstance(messages, list) and messages:
        user_text = last_user_text(messages)
        prompt_texts = [content_text(m.get("content")) for m in messages if isinstance(m, dict)]
    elif isinstance(prompt, str) and prompt:
        user_text, prompt_texts = prompt, [prompt]
    else:
        raise BadRequest("Role must be user or assistant and Content length must be greater than 0")
    result_format = params.get("result_format", "text")
    if result_format not in ("text", "message"):
        raise BadRequest("result_format must be 'text' or 'message'")
    incremental = _bool_param(params, "incremental_output", False)
    answer = make_answer(
        context,
        payload,
        model=model,
        user_text=user_text,
        prompt_texts=prompt_texts,
        limit=params.get("max_tokens"),
        tools=bool(params.get("tools")),
    )
    accept = request.headers.get("accept", "")
    stream = request.headers.get("x-dashscope-sse", "").lower() == "enable" or "text/event-stream" in accept
    request_id = answer.uuid
    if not stream:
        if answer.error is not None or answer.finish == "content_filter":
            return canned(CANNED, answer.error or "content_filter")
        return Response(
            200,
            encode(_dashscope_frame(answer, result_format, answer.text, answer.reasoning, True, request_id)),
        )
    pieces = chunks_of(answer.text, context.settings.chunk_chars) or [""]
    reasoning = chunks_of(answer.reasoning, context.settings.chunk_chars)
    events: list[bytes] = []
    frames: list[tuple[str, str]] = [("", r) for r in reasoning] + [(p, "") for p in pieces]
    if answer.calls is not None:
        frames = [("", "")]
    seen_text, seen_reasoning = "", ""
    failing = answer.error or ("content_filter" if answer.finish == "content_filter" else None)
    for number, (text, thought) in enumerate(frames, start=1):
        seen_text, seen_reasoning = seen_text + text, seen_reasoning + thought
        last = number == len(frames) and failing is None
        value = _dashscope_frame(
            answer,
            result_format,
            text if incremental else seen_text,
            thought if incremental else seen_reasoning,
            last,
            request_id,
            completion=count_tokens(seen_text) + count_tokens(seen_reasoning),
        )
        events.append(
            f"id:{number}\nevent:result\n:HTTP_STATUS/200\ndata:".encode() + encode(value) + b"\n\n"
        )
    if failing is not None:
        status, body = copy_error(CANNED, failing)
        body["request_id"] = request_id
        head = f"id:{len(frames) + 1}\nevent:error\n:HTTP_STATUS/{status}\ndata:".encode()
        events.append(head + encode(body) + b"\n\n")
    return event_stream(events, context.settings, "text/event-stream;charset=UTF-8")


def _dashscope_frame(
    answer: Answer,
    result_format: str,
    text: str,
    reasoning: str,
    last: bool,
    request_id: str,
    completion: int | None = None,
) -> dict[str, Any]:
    # Streams say the string "null" until the last event.
    finish = answer.finish if last else "null"
    output_tokens = answer.completion_tokens if completion is None or last else completion
    usage = {
        "total_tokens": answer.prompt_tokens + output_tokens,
        "output_tokens": output_tokens,
        "input_tokens": answer.prompt_tokens,
    }
    if result_format == "text" and answer.calls is None:
        output: dict[str, Any] = {"finish_reason": finish, "text": text}
    else:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning:
            message["reasoning_content"] = reasoning
        if answer.calls is not None:
            message["tool_calls"] = [
                {
                    "function": {"name": c.name, "arguments": c.arguments},
                    "index": i,
                    "id": c.id,
                    "type": "function",
                }
                for i, c in enumerate(answer.calls)
            ]
        output = {"choices": [{"finish_reason": finish, "message": message}]}
    return {"output": output, "usage": usage, "request_id": request_id}


DIALECT = FakeDialect("dashscope", handle, not_found, {"dashscope": CANNED})
