"""What the fake provider's dialect modules share: the request they get, the response they return, the
answer every dialect renders (reply lookup, ``max_tokens`` truncation, deterministic ids, token counts),
and canned-error plumbing.

Deliberately written apart from :mod:`pytest_llmport.dialects`: the fake follows the providers'
documentation on its own, so a mistake in the client's constants shows up as a disagreement in the tests
instead of being served back to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeAlias
from urllib.parse import parse_qs

CREATED: Final = 1_700_000_000
"""The ``created`` timestamp of every response: fixed so that recordings do not change between runs."""

FAKE_UUID: Final = "00000000-0000-4000-8000-000000000000"
ERROR_KINDS: Final = ("auth", "rate_limit", "quota", "content_filter", "server", "bad_request")

Reply: TypeAlias = str | dict[str, Any]
"""A reply is message text, or a dict: ``{"tool_call": {"name": …, "arguments": {…}}}`` (or
``{"tool_calls": [...]}``) becomes a tool call when the request has ``tools``; any other dict (or a tool
call requested without ``tools``) is sent as its JSON text."""

Replies: TypeAlias = Mapping[str, Reply] | Callable[[dict[str, Any]], Reply]

JSON_TYPE: Final = "application/json; charset=utf-8"
SSE_TYPE: Final = "text/event-stream; charset=utf-8"
_DIRECTIVE_KEYS: Final = frozenset({"content_filter", "error", "reasoning"})

ErrorTable: TypeAlias = Mapping[str, tuple[int, dict[str, Any]]]
"""One family's canned errors: ``kind -> (status, body)``."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as the fake provider received it (recorded before any handling)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header names in lower case; repeated headers are joined with ``", "``."""
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (raises :class:`ValueError` if it is not JSON)."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Cut:
    """How to break the next response: after ``body_bytes`` of a body or ``events`` events of a stream."""

    how: str = "close"
    body_bytes: int | None = None
    events: int | None = None
    stall: float = 5.0
    matching: str | None = None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    events: list[bytes] | None = None
    delay: float = 0.0
    cut: Cut | None = None


class Settings(Protocol):
    """The fake provider's settings a dialect reads, live on every request (they may change meanwhile)."""

    api_key: str | None
    chunk_chars: int
    chunk_delay: float
    model: str
    name: str


@dataclass(frozen=True)
class Context:
    """What a dialect handler gets of the fake provider serving the request."""

    settings: Settings
    family: str
    """The quirk in use, or else the dialect: the key of the canned errors."""
    reply: Callable[[dict[str, Any], str], Reply]
    """The reply to a request payload whose last user text is the second argument."""
    occurrence: Callable[[str], int]
    """How many times this server has now seen a request of this digest (1 the first time)."""


class BadRequest(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per two characters, rounded up (``""`` is 0, ``"你好"`` is 1)."""
    return (len(text) + 1) // 2


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def chunks_of(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest(
            "We could not parse the JSON body of your request. The request body must be valid JSON.",
            "invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.", "invalid_type")
    return payload


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def query_of(query: str) -> dict[str, str]:
    """The query string's parameters, the last value of each."""
    return {key: values[-1] for key, values in parse_qs(query).items()}


def failure_text(exc: Exception) -> str:
    return f"the fake provider failed: {exc!r}"


# ------------------------------------------------------------------------------------- SSE framing


def sse(value: Any, *, space: bool = True, end: bytes = b"\n\n") -> bytes:
    return (b"data: " if space else b"data:") + encode(value) + end


def event_stream(events: list[bytes], settings: Settings, content_type: str = SSE_TYPE) -> Response:
    return Response(
        200,
        content_type=content_type,
        headers={"Cache-Control": "no-cache"},
        events=events,
        delay=settings.chunk_delay,
    )


# ------------------------------------------------------------------------------------- canned errors


def copy_error(table: ErrorTable, kind: str) -> tuple[int, dict[str, Any]]:
    """``(status, body)`` of ``kind`` in ``table``, the body a fresh copy the caller may change."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {kind!r}; known: {', '.join(ERROR_KINDS)}")
    status, body = table[kind]
    return status, json.loads(json.dumps(body))


def canned(table: ErrorTable, kind: str, message: str | None = None) -> Response:
    status, body = copy_error(table, kind)
    if message is not None:
        _set_message(body, message)
    return Response(status, encode(body))


def _set_message(body: dict[str, Any], message: str) -> None:
    if isinstance(body.get("error"), dict):
        body["error"]["message"] = message
    elif "error_msg" in body:
        body["error_msg"] = message
    elif isinstance(body.get("base_resp"), dict):
        body["base_resp"]["status_msg"] = message
    elif "message" in body:
        body["message"] = message


Route: TypeAlias = Callable[[Context, ReceivedRequest], Response | None]


@dataclass(frozen=True)
class FakeDialect:
    """One wire protocol the fake speaks: its request handler, its 404 and its families' canned errors."""

    name: str
    handle: Callable[[Context, ReceivedRequest], Response]
    not_found: Callable[[ReceivedRequest], Response]
    errors: Mapping[str, ErrorTable]
    """``family -> kind -> (status, body)``: the dialect itself, and for ``openai`` each quirk family."""


def serve(
    route: Route,
    context: Context,
    request: ReceivedRequest,
    *,
    errors: ErrorTable,
    not_found: Callable[[ReceivedRequest], Response],
) -> Response:
    """Run a native dialect's ``route``; bad requests, crashes and unknown paths get its envelope."""
    try:
        response = route(context, request)
    except BadRequest as exc:
        return canned(errors, "bad_request", exc.message)
    except Exception as exc:
        # A broken reply callable must surface to the client as a server error, not as a dead connection
        # (ERNIE's server error is an error_code in HTTP 200, like all its errors).
        return canned(errors, "server", failure_text(exc))
    return not_found(request) if response is None else response


# ----------------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: str

    @property
    def args(self) -> Any:
        try:
            return json.loads(self.arguments)
        except ValueError:
            return {}


@dataclass(frozen=True)
class Answer:
    """One reply, in neutral terms each dialect module renders in its own wire format."""

    digest: str
    occurrence: int
    model: str
    text: str
    reasoning: str
    calls: list[Call] | None
    finish: str
    """Neutral vocabulary: stop, length, tool_calls or content_filter."""
    error: str | None
    prompt_tokens: int
    completion_tokens: int

    @property
    def tag(self) -> str:
        return f"{self.digest[:16]}_{self.occurrence}"

    @property
    def uuid(self) -> str:
        d = self.digest
        return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{self.occurrence:012x}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def tool_calls(reply: Mapping[str, Any], tag: str) -> list[dict[str, Any]] | None:
    """The OpenAI-shaped tool calls a reply dict asks for, None when it asks for none."""
    if "tool_call" in reply:
        specs: object = [reply["tool_call"]]
    elif "tool_calls" in reply:
        specs = reply["tool_calls"]
    else:
        return None
    if not isinstance(specs, list) or not specs:
        raise TypeError(f"tool calls must be a non-empty list, got {specs!r}")
    calls: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise TypeError(f"a tool call needs a string 'name', got {spec!r}")
        arguments = spec.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(
            {
                "id": f"call_fake_{index}_{tag}",
                "type": "function",
                "function": {"name": spec["name"], "arguments": arguments},
            }
        )
    return calls


def make_answer(
    context: Context,
    payload: dict[str, Any],
    *,
    model: str,
    user_text: str,
    prompt_texts: list[str],
    limit: object,
    tools: bool,
) -> Answer:
    """The reply to ``payload``, with its directives (errors, moderation, reasoning) and token counts."""
    # Hashed before the reply callable runs, which may mutate the payload it is given.
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")
    ).hexdigest()
    reply = context.reply(payload, user_text)
    occurrence = context.occurrence(digest[:16])
    tag = f"{digest[:16]}_{occurrence}"
    text, reasoning, filtered, error = "", "", False, None
    directive = isinstance(reply, dict) and bool(_DIRECTIVE_KEYS & reply.keys())
    if isinstance(reply, dict) and directive:
        text = str(reply.get("content") or "")
        reasoning = str(reply.get("reasoning") or "")
        filtered = bool(reply.get("content_filter"))
        raw_error = reply.get("error")
        if raw_error is not None:
            if raw_error not in ERROR_KINDS:
                raise TypeError(f"'error' must be one of {ERROR_KINDS}, got {raw_error!r}")
            error = str(raw_error)
    raw_calls = tool_calls(reply, tag) if isinstance(reply, dict) and tools else None
    calls = (
        [Call(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in raw_calls]
        if raw_calls is not None
        else None
    )
    finish = "stop"
    if calls is not None:
        finish = "tool_calls"
        completion = sum(count_tokens(c.name + c.arguments) for c in calls)
    else:
        if not directive:
            text = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
        if isinstance(limit, int) and not isinstance(limit, bool) and count_tokens(text) > limit >= 0:
            text, finish = text[: 2 * limit], "length"
        completion = count_tokens(text) + count_tokens(reasoning)
    if filtered:
        finish = "content_filter"
    prompt = sum(count_tokens(t) for t in prompt_texts)
    return Answer(digest, occurrence, model, text, reasoning, calls, finish, error, prompt, completion)
