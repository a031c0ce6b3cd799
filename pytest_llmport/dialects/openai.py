"""The OpenAI chat-completions dialect, and the quirks of the families that speak it.

Zhipu, Qwen's compatible mode, DeepSeek, Moonshot, Baichuan, Qianfan v2, Hunyuan, Doubao, MiniMax, Yi,
Spark and local servers all speak it, each with its own deviations (see docs/providers.md); the parser
here reads all of them.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .common import (
    Ask,
    Dialect,
    Request,
    UrlTrap,
    as_dict,
    as_int,
    as_list,
    as_str,
    categorize,
    code_text,
    first_choice,
    json_payloads,
    status_category,
    usage_openai,
)

if TYPE_CHECKING:
    from ..sse import SSEEvent
    from .normalizer import Accumulator
    from .result import ErrorCategory, FinishReason

FINISH: dict[str, FinishReason] = {
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


# ------------------------------------------------------------------------------------------ request


def build(ask: Ask) -> dict[str, Any]:
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


def url(base: str, model: str, stream: bool) -> str:
    return f"{base}/chat/completions"


# ----------------------------------------------------------------------------------------- response


def _error(acc: Accumulator, err: object, obj: dict[str, object]) -> None:
    e = as_dict(err)
    code = code_text(e.get("code")) if e else code_text(obj.get("code"))
    type_ = as_str(e.get("type"))
    message = as_str(e.get("message")) if e else as_str(err) or json.dumps(err)
    acc.fail(categorize(acc.status, code, type_, message), code or type_, message)


def _message(acc: Accumulator, msg: dict[str, object], incremental: bool) -> None:
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


def _object(acc: Accumulator, obj: dict[str, object], stream: bool) -> None:
    if "Choices" in obj or "Response" in obj:  # Tencent native: same model, PascalCase, maybe wrapped
        obj = as_dict(_snake_keys(obj))
        obj = as_dict(obj.get("response")) or obj
    acc.meta(obj.get("model"), obj.get("request_id") or obj.get("id") or obj.get("sid"))
    if obj.get("error") not in (None, "", {}):
        _error(acc, obj.get("error"), obj)
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
    usage_openai(acc, obj.get("usage"))
    choice = first_choice(acc, obj)
    if choice is None:
        reply = as_str(obj.get("reply"))  # MiniMax legacy chatcompletion_pro
        if reply and not acc.text:
            acc.text.append(reply)
        return
    usage_openai(acc, choice.get("usage"))  # Moonshot puts stream usage inside the choice
    terminal = stream and "delta" not in choice and isinstance(choice.get("message"), dict)
    part = as_dict(choice.get("delta") if "delta" in choice else choice.get("message"))
    if terminal and (acc.text or acc.reasoning or acc.tools):
        pass  # MiniMax ends a stream with the whole message again: keep the deltas, take finish/usage
    elif part:
        _message(acc, part, incremental=stream and not terminal)
    else:
        legacy = [as_dict(m) for m in as_list(choice.get("messages"))]  # MiniMax chatcompletion_pro
        acc.text.extend(t for m in legacy[-1:] if isinstance(t := m.get("text"), str))
    acc.set_finish(choice.get("finish_reason"), FINISH)


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


def _wrap_up(acc: Accumulator, clean_end: bool) -> None:
    _split_think(acc)
    # Spark omits finish_reason entirely. Only a clean end ([DONE], or `code: 0` in a body) is
    # trusted as a normal stop; anything else stays "unknown".
    if acc.finish is None and acc.error is None and clean_end and ("".join(acc.text) or acc.tools):
        acc.finish = "tool_calls" if acc.tools else "stop"
        acc.warn("finish_reason absent; inferred from a clean end of response")


def parse_json(acc: Accumulator, obj: object, request: Request) -> None:
    if not isinstance(obj, dict):
        acc.warn("body is a JSON array, not an object")
        return
    _object(acc, obj, stream=False)
    if acc.error is None and acc.finish is None and not "".join(acc.text) and not acc.tools:
        acc.warn("no choices in body")
    first = first_choice(acc, obj)
    _wrap_up(acc, clean_end=obj.get("code") == 0 and first is not None and "message" in first)


def parse_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    for _event, obj in json_payloads(acc, events):
        if isinstance(obj, dict):
            _object(acc, obj, stream=True)
        else:
            acc.warn("stream event is not a JSON object")
    if not acc.done:
        acc.warn("stream ended without [DONE]")
    _wrap_up(acc, clean_end=acc.done)


DIALECT = Dialect(
    name="openai",
    build=build,
    url=url,
    parse_json=parse_json,
    parse_stream=parse_stream,
    url_traps=(
        UrlTrap(
            lambda url: "dashscope" in url and "/api/v1" in url and "compatible-mode" not in url,
            "the native DashScope API",
            'dialect = "dashscope" (as provider qwen-native) or the /compatible-mode/v1 URL',
        ),
        UrlTrap(
            lambda url: "aip.baidubce.com" in url,
            "the native ERNIE wenxinworkshop API",
            'dialect = "ernie" (as provider ernie-native) or https://qianfan.baidubce.com/v2',
        ),
    ),
)
