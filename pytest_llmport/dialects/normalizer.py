"""Reading one response: the :class:`Accumulator` a dialect's parser fills, and :func:`normalize`, which
decodes the body, tells a stream from a JSON body and hands it to the dialect's parser.

Bad input is data, not a bug: :func:`normalize` never raises on a body, only on an unknown dialect name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..sse import iter_events
from . import get
from .common import Dialect, Request, as_int, as_str, code_text, status_category
from .result import ErrorCategory, FinishReason, NormalizedResult, ProviderError, ToolCall, Usage

__all__ = ["Accumulator", "normalize", "parse"]


def normalize(
    dialect: str,
    *,
    status: int,
    body: str | bytes,
    content_type: str = "",
    request: Request | None = None,
) -> NormalizedResult:
    """Normalise one recorded response. Raises only :class:`~pytest_llmport.dialects.UnknownDialectError`."""
    return parse(get(dialect), status=status, body=body, content_type=content_type, request=request)


@dataclass
class _ToolAcc:
    id: str | None
    name: str | None
    args: list[str] = field(default_factory=list)


def _tool_call(acc: _ToolAcc, warnings: list[str]) -> ToolCall:
    raw = "".join(acc.args)
    arguments: object
    if not raw.strip():
        # An argument-less call: the OpenAI family sends "" where Anthropic/Gemini send {}.
        arguments = {}
    else:
        try:
            arguments = json.loads(raw)
        except ValueError:
            arguments = raw
            warnings.append(f"tool call {acc.name!r} arguments are not valid JSON")
    return ToolCall(acc.id, acc.name, arguments, raw)


class Accumulator:
    """Mutable state the dialect parsers fill in; :meth:`build` freezes it."""

    def __init__(self, *, status: int, streamed: bool) -> None:
        self.status = status
        self.streamed = streamed
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tools: list[_ToolAcc] = []
        self._tool_slots: dict[object, _ToolAcc] = {}
        self.finish: FinishReason | None = None
        self.finish_raw: str | None = None
        self.usage: dict[str, int | None] = dict.fromkeys(
            ("prompt", "completion", "total", "reasoning", "cached")
        )
        self.model: str | None = None
        self.request_id: str | None = None
        self.error: ProviderError | None = None
        self.content_filtered = False
        self.warnings: list[str] = []
        self.chunks = 0
        self.done = False

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def meta(self, model: object = None, request_id: object = None) -> None:
        if self.model is None:
            self.model = as_str(model)
        if self.request_id is None:
            self.request_id = as_str(request_id)

    def set_usage(self, **values: object) -> None:
        # Later events carry cumulative counts, so the last value a provider states wins.
        for key, value in values.items():
            number = as_int(value)
            if number is not None:
                self.usage[key] = number

    def set_finish(self, raw: object, table: Mapping[str, FinishReason]) -> None:
        text = as_str(raw)
        if text is not None:
            self.finish_raw = text
            self.finish = table.get(text, "unknown")

    def fail(
        self,
        category: ErrorCategory,
        code: object,
        message: object,
        http_status: int | None = None,
    ) -> None:
        status = self.status if http_status is None else http_status
        if self.error is None:
            self.error = ProviderError(category, code_text(code), as_str(message), status)

    def tool_fragment(self, slot: object, call_id: object, name: object, args: object) -> None:
        """Add one streamed tool-call fragment; fragments are keyed by their ``index``."""
        cid, cname = as_str(call_id), as_str(name)
        cur = self._tool_slots.get(slot) if slot is not None else (self.tools[-1] if self.tools else None)
        # A different id (or name) in the same slot is a new call; a repeated id is the same call
        # (Hunyuan sends the id twice), so only a *conflicting* id starts a new one.
        if cur is None or (cid and cur.id and cid != cur.id) or (cname and cur.name and cname != cur.name):
            cur = _ToolAcc(cid, cname)
            self.tools.append(cur)
            if slot is not None:
                self._tool_slots[slot] = cur
        else:
            cur.id = cur.id or cid
            cur.name = cur.name or cname
        if isinstance(args, str):
            cur.args.append(args)
        elif args is not None:
            cur.args.append(json.dumps(args, ensure_ascii=False))

    def tool(self, call_id: object, name: object, args: object) -> None:
        """Add one complete tool call (arguments as a JSON string or an already-parsed object)."""
        raw = (
            args if isinstance(args, str) else ("" if args is None else json.dumps(args, ensure_ascii=False))
        )
        self.tools.append(_ToolAcc(as_str(call_id), as_str(name), [raw]))

    def build(self) -> NormalizedResult:
        warnings = list(self.warnings)
        tools = tuple(_tool_call(t, warnings) for t in self.tools)
        finish: FinishReason
        if self.error is not None:
            finish = "error"
        elif self.finish is not None:
            finish = self.finish
        else:
            finish = "unknown"
            if "no finish reason in response" not in warnings:
                warnings.append("no finish reason in response")
        if self.finish_raw is not None and finish == "unknown":
            warnings.append(f"unrecognised finish reason {self.finish_raw!r}")
        filtered = (
            self.content_filtered
            or finish == "content_filter"
            or (self.error is not None and self.error.category == "content_filter")
        )
        return NormalizedResult(
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            tool_calls=tools,
            finish_reason=finish,
            finish_reason_raw=self.finish_raw,
            usage=Usage(**self.usage),
            model=self.model,
            request_id=self.request_id,
            streamed=self.streamed,
            chunks=self.chunks,
            error=self.error,
            content_filtered=filtered,
            warnings=tuple(dict.fromkeys(warnings)),
        )


# ------------------------------------------------------------------------------------ entry point

_SSE_START = ("data:", "event:", "id:", ":", "retry:")


def _decode(body: str | bytes, warnings: list[str]) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        warnings.append("body is not valid UTF-8")
        return body.decode("utf-8", errors="replace")


def parse(
    dialect: Dialect,
    *,
    status: int,
    body: str | bytes,
    content_type: str = "",
    request: Request | None = None,
) -> NormalizedResult:
    """Normalise one response in ``dialect``; never raises on a body (bad input is data, not a bug)."""
    warnings: list[str] = []
    text = _decode(body, warnings).lstrip("\ufeff")
    head = text.lstrip()
    is_sse = head.startswith(_SSE_START) or (
        "event-stream" in content_type.lower() and not head.startswith(("{", "["))
    )
    acc = Accumulator(status=status, streamed=is_sse)
    for message in warnings:
        acc.warn(message)
    try:
        if is_sse:
            dialect.parse_stream(acc, iter_events(text), request or {})
        else:
            _parse_json_body(acc, dialect, head, request or {})
        if acc.model is None and request:
            acc.model = as_str(request.get("model"))
        if acc.error is None and (category := status_category(status)) is not None:
            acc.fail(category, None, text[:500] or None)
    except Exception as exc:  # a bad body must yield a result, never an exception
        acc.warn(f"internal normaliser error: {type(exc).__name__}: {exc}")
    return acc.build()


def _parse_json_body(acc: Accumulator, dialect: Dialect, text: str, request: Request) -> None:
    obj: object = None
    if not text.strip():
        acc.warn("empty body")
    else:
        try:
            obj = json.loads(text)
        except ValueError:
            acc.warn("body is not JSON")
    if isinstance(obj, (dict, list)):
        dialect.parse_json(acc, obj, request)
    elif obj is not None:
        acc.warn("body is not a JSON object")
