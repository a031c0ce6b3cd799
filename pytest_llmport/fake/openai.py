"""The fake OpenAI chat-completions API, and the deviations each OpenAI-compatible family puts on the
wire (``quirks``: stream framing, usage placement, error envelopes, moderation), plus ``/embeddings`` and
``/models``."""

from __future__ import annotations

import base64
import math
import struct
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from .common import (
    CREATED,
    FAKE_UUID,
    Answer,
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
    failure_text,
    last_user_text,
    make_answer,
    parse_json_object,
    sse,
)

QUIRKS: Final = ("zhipu", "deepseek", "moonshot", "minimax", "spark", "hunyuan", "qwen-compat")
"""Provider families of the ``openai`` dialect; each names the deviations that family puts on the wire."""

EMBEDDING_DIMENSIONS: Final = 64
"""Length of the vectors returned by ``/embeddings`` unless the request asks for ``dimensions``."""

_MAX_EMBEDDING_DIMENSIONS: Final = 4096
_HUNYUAN_NOTE: Final = "以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记"
_ZHIPU_SENSITIVE: Final = (
    "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"
)


def error_response(
    status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None
) -> Response:
    """A response in OpenAI's error envelope."""
    envelope = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Response(status, encode(envelope))


def _oa(message: str, type_: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}, **extra}


def _zp(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _mm(code: int, message: str) -> dict[str, Any]:
    return {
        "id": "",
        "choices": None,
        "created": CREATED,
        "object": "chat.completion",
        "input_sensitive": False,
        "output_sensitive": code == 1027,
        "base_resp": {"status_code": code, "status_msg": message},
    }


_OPENAI_ERRORS: Final[dict[str, tuple[int, dict[str, Any]]]] = {
    "auth": (401, _oa("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")),
    "rate_limit": (429, _oa("Rate limit reached for requests.", "requests", "rate_limit_exceeded")),
    "quota": (429, _oa("You exceeded your current quota.", "insufficient_quota", "insufficient_quota")),
    "content_filter": (
        400,
        _oa(
            "Your request was rejected by the safety system.",
            "invalid_request_error",
            "content_policy_violation",
        ),
    ),
    "server": (500, _oa("The server had an error while processing your request.", "server_error")),
    "bad_request": (400, _oa("Invalid value for 'messages'.", "invalid_request_error", "invalid_value")),
}

# Sources: docs/providers.md and each vendor's error-code pages (real bodies where we have them).
CANNED: Final[dict[str, ErrorTable]] = {
    "openai": _OPENAI_ERRORS,
    "zhipu": {
        "auth": (401, _zp("1002", "Authorization Token非法，请确认Authorization Token正确传递。")),
        "rate_limit": (429, _zp("1302", "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。")),
        "quota": (429, _zp("1113", "您的账户已欠费，请充值后重试。")),
        "content_filter": (400, _zp("1301", _ZHIPU_SENSITIVE)),
        "server": (500, _zp("1234", "网络错误，错误id：fake，请联系客服。")),
        "bad_request": (400, _zp("1210", "API 调用参数有误，请检查文档。")),
    },
    "deepseek": {
        # The real 401/402 bodies carry code "invalid_request_error" beside the meaningful type.
        "auth": (
            401,
            _oa("Authentication Fails (no such user)", "authentication_error", "invalid_request_error"),
        ),
        "rate_limit": (429, _oa("Rate Limit Reached", "rate_limit_error", "rate_limit_exceeded")),
        "quota": (402, _oa("Insufficient Balance", "unknown_error", "invalid_request_error")),
        "content_filter": (
            400,
            _oa("Content Exists Risk", "invalid_request_error", "content_filter"),
        ),
        "server": (503, _oa("Server overloaded, please try again later.", "server_error")),
        "bad_request": (422, _oa("Failed to deserialize the JSON body.", "invalid_request_error")),
    },
    "moonshot": {
        "auth": (
            401,
            {"error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}},
        ),
        "rate_limit": (
            429,
            {"error": {"message": "request reached max RPM rate limit", "type": "rate_limit_reached_error"}},
        ),
        "quota": (
            429,
            {"error": {"message": "Your account is suspended", "type": "exceeded_current_quota_error"}},
        ),
        "content_filter": (
            400,
            {
                "error": {
                    "message": "The request was rejected because it was considered high risk",
                    "type": "content_filter",
                }
            },
        ),
        "server": (500, {"error": {"message": "server error", "type": "server_error"}}),
        "bad_request": (400, {"error": {"message": "Invalid request", "type": "invalid_request_error"}}),
    },
    "minimax": {
        "auth": (200, _mm(1004, "invalid api key")),
        "rate_limit": (200, _mm(1002, "rate limit exceeded")),
        "quota": (200, _mm(1008, "insufficient balance")),
        "content_filter": (200, _mm(1027, "output new_sensitive")),
        "server": (200, _mm(1000, "unknown error")),
        "bad_request": (200, _mm(2013, "invalid params")),
    },
    "spark": {
        "auth": (401, _oa("AppIdNoAuthError (sid: cha000fake)", "api_error", "11200")),
        "rate_limit": (429, _oa("AppIdQpsOverFlowError (sid: cha000fake)", "api_error", "11202")),
        "quota": (429, _oa("AppIdNoLicenseError (sid: cha000fake)", "api_error", "11201")),
        # Spark reports moderation in an HTTP 200 body, as a non-zero business code.
        "content_filter": (200, {"code": 10013, "message": "输入内容审核不通过", "sid": "cha000fake"}),
        "server": (500, _oa("EngineInternalError (sid: cha000fake)", "api_error", "10000")),
        "bad_request": (
            400,
            _oa("invalid param model:spark-x (sid: cha000fake)", "invalid_request_error", "10005"),
        ),
    },
    "hunyuan": {
        **_OPENAI_ERRORS,
        "auth": (401, _oa("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")),
    },
    "qwen-compat": {
        "auth": (
            401,
            _oa(
                "Incorrect API key provided.",
                "invalid_request_error",
                "invalid_api_key",
                request_id=FAKE_UUID,
            ),
        ),
        "rate_limit": (
            429,
            _oa(
                "You exceeded your current requests list.",
                "limit_requests",
                "limit_requests",
                request_id=FAKE_UUID,
            ),
        ),
        "quota": (
            400,
            _oa(
                "Access denied, please make sure your account is in good standing.", "Arrearage", "Arrearage"
            ),
        ),
        "content_filter": (
            400,
            {
                **_oa(
                    "Input data may contain inappropriate content.",
                    "data_inspection_failed",
                    "data_inspection_failed",
                ),
                "id": "chatcmpl-fake",
                "request_id": FAKE_UUID,
            },
        ),
        "server": (500, _oa("An internal error has occured.", "internal_error", "internal_error")),
        "bad_request": (400, _oa("Range of max_tokens should be [1, 8192]", "invalid_request_error")),
    },
}

# ------------------------------------------------------------------------------------------ routes


def not_found(request: ReceivedRequest) -> Response:
    return error_response(404, f"Invalid URL ({request.method} {request.path})")


def _authorized(api_key: str | None, headers: Mapping[str, str]) -> bool:
    if api_key is None:
        return True
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip() == api_key:
        return True
    return headers.get("api-key") == api_key


def handle(context: Context, request: ReceivedRequest) -> Response:
    path = request.path.rstrip("/")
    route: Callable[[Context, ReceivedRequest], Response]
    if request.method == "POST" and path.endswith("/chat/completions"):
        route = _chat
    elif request.method == "POST" and path.endswith("/embeddings"):
        route = _embeddings
    elif request.method == "GET" and (path.endswith("/models") or "/models/" in path):
        route = _models
    else:
        return not_found(request)
    if not _authorized(context.settings.api_key, request.headers):
        if context.family != "openai":
            return canned(CANNED[context.family], "auth")
        return error_response(401, "Incorrect API key provided", code="invalid_api_key")
    try:
        return route(context, request)
    except BadRequest as exc:
        return error_response(400, exc.message, code=exc.code)
    except Exception as exc:
        # A broken reply callable must surface to the client as a 500, not as a dead connection.
        return error_response(500, failure_text(exc), kind="server_error")


def require_model(payload: Mapping[str, Any]) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "missing_required_parameter")
    return model


# -------------------------------------------------------------------------------- embeddings, models


def embed_text(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The deterministic unit-length embedding of ``text``.

    Character bigrams (with start and end markers, so one-character and empty texts have features) are
    hashed with CRC-32 into ``dimensions`` buckets with a hash-derived sign. Texts sharing many bigrams,
    such as two Chinese sentences differing by a word, get a high cosine similarity; unrelated texts get
    one near zero, because the signs cancel instead of every vector sitting in the positive orthant.
    """
    if dimensions < 1:
        raise ValueError("dimensions must be at least 1")
    vector = [0.0] * dimensions
    padded = f"\x02{text}\x03"
    for start in range(len(padded) - 1):
        digest = zlib.crc32(padded[start : start + 2].encode("utf-8", "surrogatepass"))
        vector[(digest & 0x7FFF_FFFF) % dimensions] += 1.0 if digest & 0x8000_0000 else -1.0
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        # Signed buckets can cancel out exactly; any fixed unit vector keeps the result deterministic.
        vector[0] = 1.0
        return vector
    return [value / norm for value in vector]


def _embeddings(context: Context, request: ReceivedRequest) -> Response:
    payload = parse_json_object(request.body)
    model = require_model(payload)
    texts = _embedding_inputs(payload.get("input"))
    dimensions = payload.get("dimensions", EMBEDDING_DIMENSIONS)
    if (
        not isinstance(dimensions, int)
        or isinstance(dimensions, bool)
        or not 1 <= dimensions <= _MAX_EMBEDDING_DIMENSIONS
    ):
        raise BadRequest(f"'dimensions' must be an integer from 1 to {_MAX_EMBEDDING_DIMENSIONS}")
    encoding = payload.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'")
    data: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        vector = embed_text(text, dimensions)
        embedding: list[float] | str = vector
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(count_tokens(text) for text in texts)
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return Response(200, encode(body))


def _embedding_inputs(value: object) -> list[str]:
    def is_tokens(item: object) -> bool:
        return (
            isinstance(item, list)
            and bool(item)
            and all(isinstance(token, int) and not isinstance(token, bool) for token in item)
        )

    # Token arrays have no text; their decimal spelling still gives stable, distinct vectors.
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return cast("list[str]", value)
        if is_tokens(value):
            return [" ".join(map(str, value))]
        if all(is_tokens(item) for item in value):
            return [" ".join(map(str, item)) for item in value]
    raise BadRequest(
        "'input' must be a string, an array of strings or an array of token arrays",
        "missing_required_parameter" if value is None else "invalid_type",
    )


def _models(context: Context, request: ReceivedRequest) -> Response:
    model, name = context.settings.model, context.settings.name
    card = {"id": model, "object": "model", "created": CREATED, "owned_by": name}
    path = request.path.rstrip("/")
    if path.endswith("/models"):
        return Response(200, encode({"object": "list", "data": [card]}))
    wanted = path.partition("/models/")[2]
    if wanted != model:
        return error_response(404, f"The model '{wanted}' does not exist", code="model_not_found")
    return Response(200, encode(card))


# -------------------------------------------------------------------------------------------- chat


def _chat(context: Context, request: ReceivedRequest) -> Response:
    fam = context.family
    payload = parse_json_object(request.body)
    model = require_model(payload)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", "missing_required_parameter")
    answer = make_answer(
        context,
        payload,
        model=model,
        user_text=last_user_text(messages),
        prompt_texts=[content_text(m.get("content")) for m in messages if isinstance(m, dict)],
        limit=payload.get("max_completion_tokens", payload.get("max_tokens")),
        tools=bool(payload.get("tools")),
    )
    stream = payload.get("stream") is True
    if answer.error is not None and not stream:
        return canned(CANNED[fam], answer.error)
    if answer.finish == "content_filter" and (
        fam in ("moonshot", "qwen-compat", "minimax", "spark") or (fam == "zhipu" and not stream)
    ):
        return canned(CANNED[fam], "content_filter")
    family_ = _OpenAIFamily(fam, answer, context.settings.chunk_chars)
    if not stream:
        return Response(200, encode(family_.body()))
    options = payload.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return event_stream(family_.events(include_usage), context.settings)


class _OpenAIFamily:
    """One answer rendered the way one OpenAI-compatible provider family renders it."""

    def __init__(self, fam: str, answer: Answer, size: int) -> None:
        self.fam = fam
        self.a = answer
        self.size = size
        self.id = f"chatcmpl-fake-{answer.tag.replace('_', '-')}"
        if fam == "deepseek":
            self.id = answer.uuid  # bare UUIDs, no chatcmpl- prefix
        elif fam == "hunyuan":
            self.id = answer.digest[:32]

    @property
    def finish_raw(self) -> str:
        if self.a.finish == "content_filter" and self.fam in ("zhipu", "hunyuan"):
            return "sensitive"
        return self.a.finish

    @property
    def usage(self) -> dict[str, Any]:
        a = self.a
        usage: dict[str, Any] = {
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "total_tokens": a.total_tokens,
        }
        if self.fam == "deepseek":
            usage["prompt_cache_hit_tokens"] = 0
            usage["prompt_cache_miss_tokens"] = a.prompt_tokens
        elif self.fam == "minimax":
            usage["total_characters"] = 0
        if a.reasoning and self.fam in ("deepseek", "zhipu", "minimax"):
            usage["completion_tokens_details"] = {"reasoning_tokens": count_tokens(a.reasoning)}
        return usage

    def _fingerprint(self) -> str | None:
        return {"qwen-compat": None, "hunyuan": "", "moonshot": "fpv0_fake"}.get(self.fam, "fp_fake")

    def _calls(self) -> list[dict[str, Any]] | None:
        if self.a.calls is None:
            return None
        return [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in self.a.calls
        ]

    # -- non-streaming

    def body(self) -> dict[str, Any]:
        a, fam = self.a, self.fam
        message: dict[str, Any] = {"role": "assistant", "content": a.text if a.calls is None else None}
        if fam == "openai":
            message["refusal"] = None
        if fam == "minimax":
            message.update(name="MiniMax AI", audio_content="")
        if a.reasoning:
            message["reasoning_content"] = a.reasoning
        if (calls := self._calls()) is not None:
            message["tool_calls"] = calls
        if fam == "spark":
            # Spark's non-stream body has no id/object/created/model/finish_reason: business status instead.
            return {
                "code": 0,
                "message": "Success",
                "sid": f"cha000{a.tag}",
                "choices": [{"message": message, "index": 0}],
                "usage": self.usage,
            }
        choice: dict[str, Any] = {"index": 0, "message": message}
        if fam not in ("zhipu", "minimax"):
            choice["logprobs"] = None
        choice["finish_reason"] = self.finish_raw
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": CREATED,
            "model": a.model,
            "choices": [choice],
            "usage": self.usage,
        }
        if fam == "zhipu":
            body["request_id"] = self.id
        elif fam == "minimax":
            body.update(
                input_sensitive=False,
                output_sensitive=False,
                input_sensitive_type=0,
                output_sensitive_type=0,
                output_sensitive_int=0,
                base_resp={"status_code": 0, "status_msg": ""},
            )
        else:
            body["system_fingerprint"] = self._fingerprint()
        if fam == "hunyuan":
            body["note"] = _HUNYUAN_NOTE
        return body

    # -- streaming

    def _frame(
        self, choice: dict[str, Any] | None, *, usage: Any = ..., include_usage: bool = False
    ) -> bytes:
        fam = self.fam
        value: dict[str, Any]
        if fam == "spark":
            value = {
                "code": 0,
                "message": "Success",
                "sid": f"cha000{self.a.tag}",
                "id": self.id,
                "created": CREATED,
            }
        elif fam == "zhipu":
            value = {
                "id": self.id,
                "created": CREATED,
                "object": "chat.completion.chunk",
                "model": self.a.model,
            }
        else:
            value = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": self.a.model,
            }
            if fam != "minimax":
                value["system_fingerprint"] = self._fingerprint()
        value["choices"] = [] if choice is None else [choice]
        if usage is not ...:
            value["usage"] = usage
        elif fam == "minimax":
            value["usage"] = {"total_tokens": 0, "total_characters": 0}  # placeholders until the last frame
        elif fam == "deepseek" or (include_usage and fam in ("openai", "hunyuan", "qwen-compat")):
            value["usage"] = None
        if fam == "hunyuan":
            value["note"] = _HUNYUAN_NOTE
        return sse(value, space=fam != "spark")

    def _delta_choice(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        fam = self.fam
        if fam == "zhipu":
            # Zhipu repeats the role on every delta and leaves finish_reason out until the end.
            choice: dict[str, Any] = {"index": 0, "delta": {"role": "assistant", **delta}}
            if finish is not None:
                choice["finish_reason"] = finish
            return choice
        if fam == "spark":
            return {"delta": {"role": "assistant", **delta}, "index": 0}
        if fam == "minimax" and delta:
            delta = {**delta, "role": "", "name": "MiniMax AI", "audio_content": ""}
        if fam == "hunyuan" and delta:
            delta = {"role": "assistant", "reasoning_content": "", **delta}
        choice = {"index": 0, "delta": delta}
        if fam in ("openai", "deepseek", "qwen-compat"):
            choice["logprobs"] = None
        choice["finish_reason"] = finish
        return choice

    def events(self, include_usage: bool) -> list[bytes]:
        if self.fam == "zhipu":
            return self._zhipu_events()
        if self.fam == "spark":
            return self._spark_events()
        a, size, fam = self.a, self.size, self.fam

        def frame(choice: dict[str, Any] | None, **kw: Any) -> bytes:
            return self._frame(choice, include_usage=include_usage, **kw)

        events: list[bytes] = []
        if fam == "deepseek":
            events += [b": keep-alive\n\n", b": keep-alive\n\n"]  # sent while the request waits in a queue
        if a.calls is None:
            events.append(frame(self._delta_choice({"role": "assistant", "content": ""})))
            reasoning_delta = {"content": None} if fam == "deepseek" else {}
            events.extend(
                frame(self._delta_choice({**reasoning_delta, "reasoning_content": piece}))
                for piece in chunks_of(a.reasoning, size)
            )
            events.extend(frame(self._delta_choice({"content": piece})) for piece in chunks_of(a.text, size))
        else:
            events.extend(frame(self._delta_choice(delta)) for delta in self._tool_deltas())
        if a.error is not None:
            _, body = copy_error(CANNED[fam], a.error)
            return [*events, sse(body)]  # the error replaces the rest of the stream, [DONE] included
        finish = self._delta_choice({}, self.finish_raw)
        if fam == "deepseek":
            events.append(frame(finish, usage=self.usage))
        elif fam == "moonshot":
            events.append(frame({**finish, "usage": self.usage}))
        else:
            events.append(frame(finish))
        if fam == "minimax":
            terminal = self.body()
            terminal["choices"][0]["message"]["content"] = a.text if a.calls is None else None
            events.append(sse(terminal))
        elif include_usage and fam not in ("deepseek", "moonshot"):
            events.append(frame(None, usage=self.usage))
        events.append(b"data: [DONE]\n\n")
        return events

    def _tool_deltas(self) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = []
        for index, call in enumerate(self.a.calls or []):
            opening = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            delta: dict[str, Any] = {"tool_calls": [opening]}
            if index == 0:
                delta = {"role": "assistant", "content": None, **delta}
            deltas.append(delta)
            if self.fam == "hunyuan":
                # Hunyuan repeats the id with an empty name and the whole argument string.
                again = {
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "", "arguments": call.arguments},
                }
                deltas.append({"tool_calls": [again]})
                continue
            for piece in chunks_of(call.arguments, self.size):
                fragment: dict[str, Any] = {"index": index, "function": {"arguments": piece}}
                if self.fam == "qwen-compat":
                    fragment = {"index": index, "id": "", "type": "function", **fragment}
                deltas.append({"tool_calls": [fragment]})
        if self.fam == "qwen-compat" and self.a.calls:
            empty = {
                "index": len(self.a.calls) - 1,
                "id": "",
                "type": "function",
                "function": {"arguments": ""},
            }
            deltas.append({"tool_calls": [empty]})
        return deltas

    def _zhipu_events(self) -> list[bytes]:
        a = self.a
        events: list[bytes] = []
        if a.calls is not None:
            # Zhipu sends each tool call whole, in one delta.
            calls = [{**call, "index": i} for i, call in enumerate(self._calls() or [])]
            events.append(self._frame(self._delta_choice({"content": None, "tool_calls": calls})))
            events.append(self._frame(self._delta_choice({"content": ""}, self.finish_raw), usage=self.usage))
            return [*events, b"data: [DONE]\n\n"]
        events.extend(
            self._frame(self._delta_choice({"reasoning_content": p}))
            for p in chunks_of(a.reasoning, self.size)
        )
        pieces = chunks_of(a.text, self.size) or [""]
        events.extend(self._frame(self._delta_choice({"content": p})) for p in pieces[:-1])
        if a.error is not None:
            events.append(self._frame(self._delta_choice({"content": pieces[-1]})))
            return [*events, sse(copy_error(CANNED["zhipu"], a.error)[1])]
        # The last content piece carries finish_reason and usage too.
        events.append(
            self._frame(self._delta_choice({"content": pieces[-1]}, self.finish_raw), usage=self.usage)
        )
        return [*events, b"data: [DONE]\n\n"]

    def _spark_events(self) -> list[bytes]:
        a = self.a
        if a.calls is not None:
            deltas = [
                {"content": "", "tool_calls": [{**c, "index": i} for i, c in enumerate(self._calls() or [])]}
            ]
        else:
            deltas = [{"content": p} for p in chunks_of(a.text, self.size) or [""]]
        events = [self._frame(self._delta_choice(d)) for d in deltas[:-1]]
        if a.error is not None:
            events.append(self._frame(self._delta_choice(deltas[-1])))
            return [*events, sse(copy_error(CANNED["spark"], a.error)[1], space=False)]
        # Spark never states a finish_reason; usage rides on the last content chunk.
        events.append(self._frame(self._delta_choice(deltas[-1]), usage=self.usage))
        return [*events, b"data:[DONE]\n\n"]


# ---------------------------------------------------------------------------------- native dialects


DIALECT = FakeDialect("openai", handle, not_found, CANNED)
