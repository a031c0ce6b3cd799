"""Per-dialect parsers that fill a :class:`~pytest_llmport.normalize.Accumulator`.

Each dialect has a ``json`` parser (one decoded body) and a ``stream`` parser (SSE events). The quirks of
the provider families that share a dialect are handled here; see ``reference/providers.md`` for the wire
formats they come from.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pytest_llmport.normalize import (
    Accumulator,
    ErrorCategory,
    FinishReason,
    SSEEvent,
    as_dict,
    as_int,
    as_list,
    as_str,
    categorize,
    code_text,
    json_payloads,
    status_category,
)

Request = Mapping[str, object]


@dataclass(frozen=True)
class Parser:
    json: Callable[[Accumulator, object, Request], None]
    stream: Callable[[Accumulator, list[SSEEvent], Request], None]


def _first_choice(acc: Accumulator, container: dict[str, object]) -> dict[str, object] | None:
    choices = [c for c in as_list(container.get("choices")) if isinstance(c, dict)]
    if not choices:
        return None
    if len({repr(c.get("index")) for c in choices}) > 1:
        acc.warn("several choices: only the first is normalised")
    return next((c for c in choices if c.get("index") == 0), choices[0])


def _usage_openai(acc: Accumulator, raw: object) -> None:
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


# ------------------------------------------------------------------------------ openai-compatible

OPENAI_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "normal": "stop",  # Qianfan v2
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "sensitive": "content_filter",  # Zhipu, Hunyuan
    "network_error": "error",  # Zhipu inference failure
    "insufficient_system_resource": "error",  # DeepSeek
}
MINIMAX_CODES: dict[int, ErrorCategory] = {
    1000: "unknown",
    1001: "timeout",
    1002: "rate_limit",
    1004: "auth",
    1008: "quota",
    1026: "content_filter",
    1027: "content_filter",
    2013: "bad_request",
}


def _openai_error(acc: Accumulator, err: object, obj: dict[str, object]) -> None:
    e = as_dict(err)
    code = code_text(e.get("code")) if e else code_text(obj.get("code"))
    type_ = as_str(e.get("type"))
    message = as_str(e.get("message")) if e else as_str(err) or json.dumps(err)
    acc.fail(categorize(acc.status, code, type_, message), code or type_, message)


def _openai_message(acc: Accumulator, msg: dict[str, object], incremental: bool) -> None:
    content = msg.get("content")
    if isinstance(content, str):
        acc.text.append(content)
    else:
        acc.text.extend(t for p in as_list(content) if isinstance(t := as_dict(p).get("text"), str))
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str):
        acc.reasoning.append(reasoning)
    else:  # MiniMax reasoning_split
        details = as_list(msg.get("reasoning_details"))
        acc.reasoning.extend(t for d in details if isinstance(t := as_dict(d).get("text"), str))
    calls = [as_dict(c) for c in as_list(msg.get("tool_calls"))]
    legacy = as_dict(msg.get("function_call"))
    if legacy:
        calls.append({"index": "function_call", "function": legacy})
    for position, call in enumerate(calls):
        fn = as_dict(call.get("function"))
        if incremental:
            slot = call.get("index") if isinstance(call.get("index"), (int, str)) else position
            acc.tool_fragment(slot, call.get("id"), fn.get("name"), fn.get("arguments"))
        else:
            acc.tool(call.get("id"), fn.get("name"), fn.get("arguments"))


_PASCAL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _snake_keys(value: object) -> object:
    if isinstance(value, dict):
        return {_PASCAL_BOUNDARY.sub("_", str(k)).lower(): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def _openai_object(acc: Accumulator, obj: dict[str, object], stream: bool) -> None:
    if "Choices" in obj or "Response" in obj:  # Tencent native: same model, PascalCase, maybe wrapped
        obj = as_dict(_snake_keys(obj))
        obj = as_dict(obj.get("response")) or obj
    acc.meta(obj.get("model"), obj.get("request_id") or obj.get("id") or obj.get("sid"))
    if obj.get("error") not in (None, "", {}):
        _openai_error(acc, obj.get("error"), obj)
    base = as_dict(obj.get("base_resp"))  # MiniMax: business errors ride in HTTP 200
    if base_code := as_int(base.get("status_code")):
        category = MINIMAX_CODES.get(base_code) or status_category(acc.status) or "unknown"
        acc.fail(category, base_code, base.get("status_msg"))
    spark_code = as_int(obj.get("code"))
    if spark_code and "error" not in obj:  # Spark: non-zero `code` beside `message`/`sid`
        message = as_str(obj.get("message"))
        acc.fail(categorize(acc.status, str(spark_code), None, message), spark_code, message)
    if obj.get("input_sensitive") is True or obj.get("output_sensitive") is True:
        acc.content_filtered = True
    _usage_openai(acc, obj.get("usage"))
    choice = _first_choice(acc, obj)
    if choice is None:
        reply = as_str(obj.get("reply"))  # MiniMax legacy chatcompletion_pro
        if reply and not acc.text:
            acc.text.append(reply)
        return
    _usage_openai(acc, choice.get("usage"))  # Moonshot puts stream usage inside the choice
    terminal = stream and "delta" not in choice and isinstance(choice.get("message"), dict)
    part = as_dict(choice.get("delta") if "delta" in choice else choice.get("message"))
    if terminal and (acc.text or acc.reasoning or acc.tools):
        pass  # MiniMax ends a stream with the whole message again: keep the deltas, take finish/usage
    elif part:
        _openai_message(acc, part, incremental=stream and not terminal)
    else:
        legacy = [as_dict(m) for m in as_list(choice.get("messages"))]  # MiniMax chatcompletion_pro
        acc.text.extend(t for m in legacy[-1:] if isinstance(t := m.get("text"), str))
    acc.set_finish(choice.get("finish_reason"), OPENAI_FINISH)


def _split_think(acc: Accumulator) -> None:
    """MiniMax M2 puts reasoning inline as a leading ``<think>…</think>`` block in the content."""
    text = "".join(acc.text).lstrip()
    if not text.startswith("<think>"):
        return
    inner = text[len("<think>") :]
    end = inner.find("</think>")
    if end < 0:
        acc.reasoning.append(inner.strip())
        acc.text = []
        acc.warn("unterminated <think> block")
        return
    acc.reasoning.append(inner[:end].strip())
    acc.text = [inner[end + len("</think>") :].lstrip()]


def _openai_wrap_up(acc: Accumulator, clean_end: bool) -> None:
    _split_think(acc)
    # Spark omits finish_reason entirely. Only a clean end ([DONE], or `code: 0` in a body) is
    # trusted as a normal stop; anything else stays "unknown".
    if acc.finish is None and acc.error is None and clean_end and ("".join(acc.text) or acc.tools):
        acc.finish = "tool_calls" if acc.tools else "stop"
        acc.warn("finish_reason absent; inferred from a clean end of response")


def _openai_json(acc: Accumulator, obj: object, request: Request) -> None:
    if not isinstance(obj, dict):
        acc.warn("body is a JSON array, not an object")
        return
    _openai_object(acc, obj, stream=False)
    if acc.error is None and acc.finish is None and not "".join(acc.text) and not acc.tools:
        acc.warn("no choices in body")
    first = _first_choice(acc, obj)
    _openai_wrap_up(acc, clean_end=obj.get("code") == 0 and first is not None and "message" in first)


def _openai_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    for _event, obj in json_payloads(acc, events):
        if isinstance(obj, dict):
            _openai_object(acc, obj, stream=True)
        else:
            acc.warn("stream event is not a JSON object")
    if not acc.done:
        acc.warn("stream ended without [DONE]")
    _openai_wrap_up(acc, clean_end=acc.done)


# ------------------------------------------------------------------------------- dashscope native

DASHSCOPE_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
_HTTP_STATUS = re.compile(r"HTTP_STATUS/(\d{3})")


@dataclass
class _Frame:
    text: str = ""
    reasoning: str = ""
    tools: list[dict[str, object]] = field(default_factory=list)
    finish: str | None = None


def _dashscope_error(acc: Accumulator, obj: dict[str, object], http_status: int | None) -> None:
    code, message = code_text(obj.get("code")), as_str(obj.get("message"))
    status = acc.status if http_status is None else http_status
    acc.fail(categorize(status, code, None, message), code, message, http_status)
    acc.meta(None, obj.get("request_id"))


def _dashscope_frame(acc: Accumulator, obj: dict[str, object]) -> _Frame:
    acc.meta(obj.get("model"), obj.get("request_id"))
    u = as_dict(obj.get("usage"))
    acc.set_usage(
        prompt=u.get("input_tokens", u.get("prompt_tokens")),
        completion=u.get("output_tokens", u.get("completion_tokens")),
        total=u.get("total_tokens"),
        reasoning=as_dict(u.get("output_tokens_details")).get("reasoning_tokens"),
        cached=as_dict(u.get("prompt_tokens_details")).get("cached_tokens"),
    )
    out = as_dict(obj.get("output"))
    choice = _first_choice(acc, out)
    source = as_dict(choice.get("message")) if choice is not None else out
    finish = (choice if choice is not None else out).get("finish_reason")
    text = source.get("content" if choice is not None else "text")
    return _Frame(
        text=text if isinstance(text, str) else "",
        reasoning=as_str(source.get("reasoning_content")) or "",
        tools=[as_dict(c) for c in as_list(source.get("tool_calls"))],
        finish=None if finish == "null" else as_str(finish),  # "null" is a string while streaming
    )


def _looks_cumulative(pieces: list[str]) -> bool:
    pairs = list(itertools.pairwise(pieces))
    return bool(pairs) and all(b.startswith(a) for a, b in pairs) and any(len(b) > len(a) for a, b in pairs)


def _dashscope_assemble(acc: Accumulator, frames: list[_Frame], request: Request) -> None:
    flag = as_dict(request.get("parameters")).get("incremental_output")
    texts = [f.text for f in frames if f.text]
    reasonings = [f.reasoning for f in frames if f.reasoning]
    if isinstance(flag, bool):
        cumulative = not flag
    else:  # not stated: the default is cumulative, but some models only stream incrementally
        cumulative = _looks_cumulative(texts if len(texts) > 1 else reasonings)
    if cumulative:
        acc.text.extend(texts[-1:])
        acc.reasoning.extend(reasonings[-1:])
        with_tools = [f for f in frames if f.tools]
        for call in with_tools[-1].tools if with_tools else []:
            fn = as_dict(call.get("function"))
            acc.tool(call.get("id"), fn.get("name"), fn.get("arguments"))
    else:
        acc.text.extend(texts)
        acc.reasoning.extend(reasonings)
        for frame in frames:
            for position, call in enumerate(frame.tools):
                fn = as_dict(call.get("function"))
                slot = call.get("index") if isinstance(call.get("index"), int) else position
                acc.tool_fragment(slot, call.get("id"), fn.get("name"), fn.get("arguments"))
    for frame in frames:
        acc.set_finish(frame.finish, DASHSCOPE_FINISH)


def _dashscope_is_error(obj: dict[str, object]) -> bool:
    return bool(code_text(obj.get("code"))) and "output" not in obj


def _dashscope_json(acc: Accumulator, obj: object, request: Request) -> None:
    if not isinstance(obj, dict):
        acc.warn("body is a JSON array, not an object")
    elif _dashscope_is_error(obj):
        _dashscope_error(acc, obj, None)
    else:
        frame = _dashscope_frame(acc, obj)
        acc.text.append(frame.text)
        acc.reasoning.append(frame.reasoning)
        for call in frame.tools:
            fn = as_dict(call.get("function"))
            acc.tool(call.get("id"), fn.get("name"), fn.get("arguments"))
        acc.set_finish(frame.finish, DASHSCOPE_FINISH)


def _dashscope_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    frames: list[_Frame] = []
    for event, obj in json_payloads(acc, events):
        found = [int(m.group(1)) for c in event.comments if (m := _HTTP_STATUS.search(c))]
        http_status = found[-1] if found else None
        if not isinstance(obj, dict):
            acc.warn("stream event is not a JSON object")
        elif event.event == "error" or (http_status or 200) >= 400 or _dashscope_is_error(obj):
            _dashscope_error(acc, obj, http_status)
        else:
            frames.append(_dashscope_frame(acc, obj))
    _dashscope_assemble(acc, frames, request)
    if acc.finish is None and acc.error is None:
        acc.warn("stream ended before a finish_reason")


# ------------------------------------------------------------------------------------ ernie native

ERNIE_FINISH: dict[str, FinishReason] = {
    "normal": "stop",
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}
ERNIE_CODES: dict[int, ErrorCategory] = {
    **dict.fromkeys((2, 336000, 336100), "server"),  # 336100: high load, retry
    **dict.fromkeys((6, 13, 14, 15, 110, 111, 336004), "auth"),
    # 4 is the cluster-wide request limit and 18 the QPS limit (retry later); 17/19 are daily/total caps.
    **dict.fromkeys((4, 18, 336501, 336502), "rate_limit"),
    **dict.fromkeys((17, 19), "quota"),
    **dict.fromkeys((3, 100, 336001, 336002, 336003, 336005, 336101, 336104, 336105), "bad_request"),
}


def _ernie_object(acc: Accumulator, obj: dict[str, object], stream: bool) -> None:
    code = as_int(obj.get("error_code"))
    if code:
        category = ERNIE_CODES.get(code) or status_category(acc.status) or "unknown"
        acc.fail(category, code, obj.get("error_msg"))
        acc.meta(None, obj.get("id") or code_text(obj.get("log_id")))
        return
    if "access_token" in obj:
        acc.warn("OAuth token response, not a chat result")
        return
    if oauth_error := as_str(obj.get("error")):  # failed /oauth/2.0/token call
        acc.fail("auth", oauth_error, obj.get("error_description"))
        return
    acc.meta(obj.get("model"), obj.get("id"))
    if isinstance(result := obj.get("result"), str):
        acc.text.append(result)
    call = as_dict(obj.get("function_call"))
    if call and stream:
        acc.tool_fragment("function_call", None, call.get("name"), call.get("arguments"))
    elif call:
        acc.tool(None, call.get("name"), call.get("arguments"))
    _usage_openai(acc, obj.get("usage"))
    if obj.get("is_truncated") is True:
        acc.warn("provider reported is_truncated")
    # Intermediate stream chunks already say "normal"; only the is_end chunk finishes the answer.
    if not stream or obj.get("is_end") is True:
        acc.set_finish(obj.get("finish_reason"), ERNIE_FINISH)
        acc.done = True
    if obj.get("need_clear_history") is True or as_int(obj.get("ban_round")) is not None:
        acc.content_filtered = True


def _ernie_json(acc: Accumulator, obj: object, request: Request) -> None:
    if isinstance(obj, dict):
        _ernie_object(acc, obj, stream=False)
    else:
        acc.warn("body is a JSON array, not an object")
    _ernie_wrap_up(acc)


def _ernie_wrap_up(acc: Accumulator) -> None:
    if acc.content_filtered and acc.error is None:
        acc.finish = "content_filter"  # need_clear_history/ban_round: the input was judged unsafe


def _ernie_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    for _event, obj in json_payloads(acc, events):
        if isinstance(obj, dict):
            _ernie_object(acc, obj, stream=True)
        else:
            acc.warn("stream event is not a JSON object")
    if not acc.done and acc.error is None:
        acc.warn("stream ended before is_end")
    _ernie_wrap_up(acc)


# ---------------------------------------------------------------------------------------- anthropic

ANTHROPIC_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "unknown",
}


def _anthropic_error(acc: Accumulator, obj: dict[str, object]) -> None:
    err = as_dict(obj.get("error"))
    type_, message = as_str(err.get("type")), as_str(err.get("message"))
    acc.fail(categorize(acc.status, type_, None, message), type_, message)
    acc.meta(None, obj.get("request_id"))


def _anthropic_usage(acc: Accumulator, raw: object) -> None:
    u = as_dict(raw)
    acc.set_usage(
        prompt=u.get("input_tokens"),
        completion=u.get("output_tokens"),
        cached=u.get("cache_read_input_tokens"),
    )


def _anthropic_block(acc: Accumulator, block: dict[str, object], partial_json: str = "") -> None:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        acc.text.append(str(block["text"]))
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        acc.reasoning.append(str(block["thinking"]))
    elif kind in ("tool_use", "server_tool_use"):
        args = partial_json if partial_json.strip() else block.get("input", {})
        acc.tool(block.get("id"), block.get("name"), args)


def _anthropic_json(acc: Accumulator, obj: object, request: Request) -> None:
    if not isinstance(obj, dict):
        acc.warn("body is a JSON array, not an object")
        return
    if obj.get("type") == "error" or isinstance(obj.get("error"), dict):
        _anthropic_error(acc, obj)
        return
    acc.meta(obj.get("model"), obj.get("request_id") or obj.get("id"))
    for block in as_list(obj.get("content")):
        _anthropic_block(acc, as_dict(block))
    _anthropic_usage(acc, obj.get("usage"))
    acc.set_finish(obj.get("stop_reason"), ANTHROPIC_FINISH)


def _anthropic_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    blocks: dict[object, dict[str, object]] = {}
    partial: dict[object, list[str]] = {}
    for event, obj in json_payloads(acc, events):
        if not isinstance(obj, dict):
            acc.warn("stream event is not a JSON object")
            continue
        kind = as_str(obj.get("type")) or event.event
        index = obj.get("index") if isinstance(obj.get("index"), int) else None
        if kind == "message_start":
            message = as_dict(obj.get("message"))
            acc.meta(message.get("model"), message.get("id"))
            _anthropic_usage(acc, message.get("usage"))
        elif kind == "content_block_start":
            blocks[index] = dict(as_dict(obj.get("content_block")))
        elif kind == "content_block_delta":
            delta = as_dict(obj.get("delta"))
            block = blocks.setdefault(index, {"type": "text", "text": ""})
            if isinstance(text := delta.get("text"), str):
                block["text"] = str(block.get("text") or "") + text
            if isinstance(thinking := delta.get("thinking"), str):
                block["thinking"] = str(block.get("thinking") or "") + thinking
            if isinstance(fragment := delta.get("partial_json"), str):
                partial.setdefault(index, []).append(fragment)
        elif kind == "message_delta":
            acc.set_finish(as_dict(obj.get("delta")).get("stop_reason"), ANTHROPIC_FINISH)
            _anthropic_usage(acc, obj.get("usage"))
        elif kind == "message_stop":
            acc.done = True
        elif kind == "error":
            _anthropic_error(acc, obj)
    for index, block in blocks.items():
        _anthropic_block(acc, block, "".join(partial.get(index, [])))
    if not acc.done and acc.error is None:
        acc.warn("stream ended without message_stop")


# ------------------------------------------------------------------------------------------- gemini

GEMINI_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"), "content_filter"
    ),
}
GEMINI_STATUS: dict[str, ErrorCategory] = {
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


def _gemini_exhausted(message: str, details: list[object]) -> ErrorCategory:
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


def _gemini_error(acc: Accumulator, raw: object) -> None:
    err = as_dict(raw)
    status, message = as_str(err.get("status")), as_str(err.get("message")) or as_str(raw)
    details = as_list(err.get("details"))
    category: ErrorCategory | None = GEMINI_STATUS.get(status or "")
    if status == "RESOURCE_EXHAUSTED":
        category = _gemini_exhausted(message or "", details)
    if "api key not valid" in (message or "").lower() or "API_KEY_INVALID" in json.dumps(details):
        category = "auth"
    code = as_int(err.get("code"))
    category = category or status_category(acc.status) or status_category(code or 0) or "unknown"
    acc.fail(category, status or code_text(code), message)


def _gemini_object(acc: Accumulator, obj: dict[str, object]) -> None:
    if "error" in obj:
        _gemini_error(acc, obj.get("error"))
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
    candidate = _first_choice(acc, {"choices": obj.get("candidates")})
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
    acc.set_finish(candidate.get("finishReason"), GEMINI_FINISH)


def _gemini_json(acc: Accumulator, obj: object, request: Request) -> None:
    if isinstance(obj, list):  # streamGenerateContent without alt=sse: a JSON array of chunks
        acc.streamed = True
        for item in obj:
            acc.chunks += 1
            if isinstance(item, dict):
                _gemini_object(acc, item)
            else:
                acc.warn("stream element is not a JSON object")
    elif isinstance(obj, dict):
        _gemini_object(acc, obj)


def _gemini_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    for _event, obj in json_payloads(acc, events):
        if isinstance(obj, dict):
            _gemini_object(acc, obj)
        else:
            acc.warn("stream event is not a JSON object")
    if acc.finish is None and acc.error is None:
        acc.warn("stream ended without finishReason")


PARSERS: dict[str, Parser] = {
    "openai": Parser(_openai_json, _openai_stream),
    "dashscope": Parser(_dashscope_json, _dashscope_stream),
    "ernie": Parser(_ernie_json, _ernie_stream),
    "anthropic": Parser(_anthropic_json, _anthropic_stream),
    "gemini": Parser(_gemini_json, _gemini_stream),
}
