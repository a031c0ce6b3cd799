"""Anthropic Messages: a top-level ``system``, content blocks, ``tool_use``/``tool_result`` turns, a required
``max_tokens``, and named SSE events from ``message_start`` to ``message_stop``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .common import (
    Ask,
    Dialect,
    Request,
    arguments,
    as_dict,
    as_list,
    as_str,
    categorize,
    functions,
    json_payloads,
    split_system,
    stop_list,
    text_of,
)

if TYPE_CHECKING:
    from ..sse import SSEEvent
    from .normalizer import Accumulator
    from .result import FinishReason

DEFAULT_MAX_TOKENS = 1024
"""Anthropic requires ``max_tokens``; this is sent unless ``extra`` gives one."""

FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "unknown",
}

# ------------------------------------------------------------------------------------------ request


def build(ask: Ask) -> dict[str, Any]:
    if ask.response_format and ask.response_format.get("type") != "text":
        raise ValueError(
            "the anthropic dialect has no JSON mode (response_format); "
            "ask for JSON in the prompt or skip providers without the 'json_mode' capability"
        )
    system, rest = split_system(ask.messages)
    converted: list[dict[str, Any]] = []
    for message in rest:
        role = message.get("role")
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": text_of(message.get("content")),
            }
            previous = converted[-1] if converted else None
            if previous is not None and previous["role"] == "user" and isinstance(previous["content"], list):
                previous["content"].append(block)  # parallel calls: all results in one user turn
            else:
                converted.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if text := text_of(message.get("content")):
                blocks.append({"type": "text", "text": text})
            for call in message["tool_calls"]:
                fn = call.get("function", {})
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": fn.get("name"),
                        "input": arguments(fn.get("arguments")),
                    }
                )
            converted.append({"role": "assistant", "content": blocks})
        else:
            converted.append({"role": role, "content": text_of(message.get("content"))})
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
            for fn in functions(ask.tools)
        ]
    if ask.stream:
        body["stream"] = True
    options = dict(ask.extra)
    if "stop" in options:
        options["stop_sequences"] = stop_list(options.pop("stop"))
    body.update(options)
    return body


def url(base: str, model: str, stream: bool) -> str:
    return f"{base}/messages"


# ----------------------------------------------------------------------------------------- response


def _error(acc: Accumulator, obj: dict[str, object]) -> None:
    err = as_dict(obj.get("error"))
    type_, message = as_str(err.get("type")), as_str(err.get("message"))
    acc.fail(categorize(acc.status, type_, None, message), type_, message)
    acc.meta(None, obj.get("request_id"))


def _usage(acc: Accumulator, raw: object) -> None:
    u = as_dict(raw)
    acc.set_usage(
        prompt=u.get("input_tokens"),
        completion=u.get("output_tokens"),
        cached=u.get("cache_read_input_tokens"),
    )


def _block(acc: Accumulator, block: dict[str, object], partial_json: str = "") -> None:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        acc.text.append(str(block["text"]))
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        acc.reasoning.append(str(block["thinking"]))
    elif kind in ("tool_use", "server_tool_use"):
        args = partial_json if partial_json.strip() else block.get("input", {})
        acc.tool(block.get("id"), block.get("name"), args)


def parse_json(acc: Accumulator, obj: object, request: Request) -> None:
    if not isinstance(obj, dict):
        acc.warn("body is a JSON array, not an object")
        return
    if obj.get("type") == "error" or isinstance(obj.get("error"), dict):
        _error(acc, obj)
        return
    acc.meta(obj.get("model"), obj.get("request_id") or obj.get("id"))
    for block in as_list(obj.get("content")):
        _block(acc, as_dict(block))
    _usage(acc, obj.get("usage"))
    acc.set_finish(obj.get("stop_reason"), FINISH)


def parse_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
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
            _usage(acc, message.get("usage"))
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
            acc.set_finish(as_dict(obj.get("delta")).get("stop_reason"), FINISH)
            _usage(acc, obj.get("usage"))
        elif kind == "message_stop":
            acc.done = True
        elif kind == "error":
            _error(acc, obj)
    for index, block in blocks.items():
        _block(acc, block, "".join(partial.get(index, [])))
    if not acc.done and acc.error is None:
        acc.warn("stream ended without message_stop")


DIALECT = Dialect(name="anthropic", build=build, url=url, parse_json=parse_json, parse_stream=parse_stream)
