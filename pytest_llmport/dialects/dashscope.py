"""Alibaba DashScope's native text-generation API (``/api/v1``): ``input``/``parameters`` requests, cumulative
or incremental streams, errors as ``code``/``message`` with the HTTP status in an SSE comment."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .common import (
    Ask,
    Dialect,
    Request,
    UrlTrap,
    as_dict,
    as_list,
    as_str,
    categorize,
    code_text,
    first_choice,
    json_payloads,
)

if TYPE_CHECKING:
    from ..sse import SSEEvent
    from .normalizer import Accumulator
    from .result import FinishReason

FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}
_HTTP_STATUS = re.compile(r"HTTP_STATUS/(\d{3})")

# ------------------------------------------------------------------------------------------ request


def build(ask: Ask) -> dict[str, Any]:
    parameters: dict[str, Any] = {"result_format": "message", "incremental_output": ask.stream}
    if ask.tools:
        parameters["tools"] = [dict(t) for t in ask.tools]
    if ask.response_format:
        parameters["response_format"] = dict(ask.response_format)
    # Every generation knob (temperature, max_tokens, seed, stop ...) lives in `parameters`.
    parameters.update(ask.extra)
    return {
        "model": ask.model,
        "input": {"messages": [dict(m) for m in ask.messages]},
        "parameters": parameters,
    }


def url(base: str, model: str, stream: bool) -> str:
    return f"{base}/services/aigc/text-generation/generation"


# ----------------------------------------------------------------------------------------- response


@dataclass
class _Frame:
    text: str = ""
    reasoning: str = ""
    tools: list[dict[str, object]] = field(default_factory=list)
    finish: str | None = None


def _error(acc: Accumulator, obj: dict[str, object], http_status: int | None) -> None:
    code, message = code_text(obj.get("code")), as_str(obj.get("message"))
    status = acc.status if http_status is None else http_status
    acc.fail(categorize(status, code, None, message), code, message, http_status)
    acc.meta(None, obj.get("request_id"))


def _frame(acc: Accumulator, obj: dict[str, object]) -> _Frame:
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
    choice = first_choice(acc, out)
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


def _assemble(acc: Accumulator, frames: list[_Frame], request: Request) -> None:
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
        acc.set_finish(frame.finish, FINISH)


def _is_error(obj: dict[str, object]) -> bool:
    return bool(code_text(obj.get("code"))) and "output" not in obj


def parse_json(acc: Accumulator, obj: object, request: Request) -> None:
    if not isinstance(obj, dict):
        acc.warn("body is a JSON array, not an object")
    elif _is_error(obj):
        _error(acc, obj, None)
    else:
        frame = _frame(acc, obj)
        acc.text.append(frame.text)
        acc.reasoning.append(frame.reasoning)
        for call in frame.tools:
            fn = as_dict(call.get("function"))
            acc.tool(call.get("id"), fn.get("name"), fn.get("arguments"))
        acc.set_finish(frame.finish, FINISH)


def parse_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    frames: list[_Frame] = []
    for event, obj in json_payloads(acc, events):
        found = [int(m.group(1)) for c in event.comments if (m := _HTTP_STATUS.search(c))]
        http_status = found[-1] if found else None
        if not isinstance(obj, dict):
            acc.warn("stream event is not a JSON object")
        elif event.event == "error" or (http_status or 200) >= 400 or _is_error(obj):
            _error(acc, obj, http_status)
        else:
            frames.append(_frame(acc, obj))
    _assemble(acc, frames, request)
    if acc.finish is None and acc.error is None:
        acc.warn("stream ended before a finish_reason")


DIALECT = Dialect(
    name="dashscope",
    build=build,
    url=url,
    parse_json=parse_json,
    parse_stream=parse_stream,
    url_traps=(
        UrlTrap(
            lambda url: "compatible-mode" in url,
            "DashScope's OpenAI-compatible mode",
            'dialect = "openai" (as provider qwen) or the /api/v1 URL',
        ),
    ),
    # DashScope streams only when asked in this header; the body has no `stream` key.
    stream_headers={"X-DashScope-SSE": "enable"},
)
