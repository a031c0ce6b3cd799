"""Wire-protocol emulation behind :class:`~pytest_llmport.testing.FakeProvider`'s ``dialect``/``quirks``.

Every function here builds the bytes a real provider family sends, following
``reference/providers.md``: the OpenAI family with per-provider quirks (``quirks={"zhipu"}`` and so on),
DashScope's native text-generation API, Baidu ERNIE's wenxinworkshop API with its OAuth token endpoint,
Anthropic Messages and Gemini ``generateContent``. The replies themselves (mapping or callable, default
echo, ``max_tokens`` truncation, deterministic ids) are the ones documented on ``FakeProvider``.

A reply dict holding any of the keys ``content_filter``, ``error`` or ``reasoning`` is a *directive*
rather than text to send as JSON:

* ``{"content_filter": True, "content": "partial"}``: the provider's own content-moderation signal;
* ``{"error": "<kind>", "content": "partial"}``: streams send the partial text, then the family's
  mid-stream error event; non-streaming requests get the family's canned error of that kind;
* ``{"reasoning": "…", "content": "…"}``: reasoning text (``reasoning_content``, thinking blocks,
  thought parts) ahead of the answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

from pytest_llmport.testing import (
    CREATED,
    ReceivedRequest,
    _BadRequest,
    _content_text,
    _encode,
    _last_user_text,
    _parse_json_object,
    _pieces,
    _require_model,
    _Response,
    _tool_calls,
    count_tokens,
)

if TYPE_CHECKING:
    from pytest_llmport.testing import FakeProvider

__all__ = [
    "CANNED_ERRORS",
    "ERROR_KINDS",
    "FAKE_DIALECTS",
    "QUIRKS",
    "ernie_access_token",
    "error_body",
]

FAKE_DIALECTS: Final = ("openai", "dashscope", "ernie", "anthropic", "gemini")
QUIRKS: Final = ("zhipu", "deepseek", "moonshot", "minimax", "spark", "hunyuan", "qwen-compat")
"""Provider families of the ``openai`` dialect; each names the deviations that family puts on the wire."""
ERROR_KINDS: Final = ("auth", "rate_limit", "quota", "content_filter", "server", "bad_request")

_SSE: Final = "text/event-stream; charset=utf-8"
_HUNYUAN_NOTE: Final = "以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记"
_ZHIPU_SENSITIVE: Final = (
    "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"
)
_DIRECTIVE_KEYS: Final = frozenset({"content_filter", "error", "reasoning"})
_GEMINI_ROUTE: Final = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)$")
_ERNIE_CHAT: Final = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"
_DASHSCOPE_CHAT: Final = "/services/aigc/text-generation/generation"
_FAKE_UUID: Final = "00000000-0000-4000-8000-000000000000"


def validate(dialect: str, quirks: frozenset[str]) -> None:
    if dialect not in FAKE_DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(FAKE_DIALECTS)}")
    unknown = sorted(quirks - set(QUIRKS))
    if unknown:
        raise ValueError(f"unknown quirks {unknown}; known: {', '.join(QUIRKS)}")
    if quirks and dialect != "openai":
        raise ValueError(f"quirks only apply to the 'openai' dialect, not to {dialect!r}")
    # Each quirk is a whole provider family and they disagree on where usage and errors go.
    if len(quirks) > 1:
        raise ValueError(f"quirks name provider families and are mutually exclusive, got {sorted(quirks)}")


def family(dialect: str, quirks: frozenset[str]) -> str:
    return next(iter(quirks)) if dialect == "openai" and quirks else dialect


def ernie_access_token(client_id: str) -> str:
    """The access token the fake ERNIE OAuth endpoint issues for ``client_id`` (same id, same token)."""
    digest = hashlib.sha256(f"llmport-fake:{client_id}".encode()).hexdigest()[:32]
    return f"24.{digest}.2592000.{CREATED}.282335-fake"


# ------------------------------------------------------------------------------------- canned errors


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


def _ds(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": _FAKE_UUID}


def _an(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_fake"}


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

# Sources: providers.md sections 2-14 (real bodies where the reference has them, documented codes otherwise).
CANNED_ERRORS: Final[dict[str, dict[str, tuple[int, dict[str, Any]]]]] = {
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
                request_id=_FAKE_UUID,
            ),
        ),
        "rate_limit": (
            429,
            _oa(
                "You exceeded your current requests list.",
                "limit_requests",
                "limit_requests",
                request_id=_FAKE_UUID,
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
                "request_id": _FAKE_UUID,
            },
        ),
        "server": (500, _oa("An internal error has occured.", "internal_error", "internal_error")),
        "bad_request": (400, _oa("Range of max_tokens should be [1, 8192]", "invalid_request_error")),
    },
    "dashscope": {
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
            _ds(
                "InvalidParameter", "Role must be user or assistant and Content length must be greater than 0"
            ),
        ),
    },
    "ernie": {
        "auth": (200, {"error_code": 110, "error_msg": "Access token invalid or no longer valid"}),
        "rate_limit": (200, {"error_code": 18, "error_msg": "Open api qps request limit reached"}),
        "quota": (200, {"error_code": 17, "error_msg": "Open api daily request limit reached"}),
        # ERNIE has no moderation error code: unsafe input is a normal answer flagged need_clear_history.
        "content_filter": (
            200,
            {
                "id": "as-fake",
                "object": "chat.completion",
                "created": CREATED,
                "result": "",
                "is_truncated": False,
                "need_clear_history": True,
                "ban_round": -1,
                "finish_reason": "normal",
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            },
        ),
        "server": (200, {"error_code": 336000, "error_msg": "Internal error"}),
        "bad_request": (
            200,
            {"error_code": 336003, "error_msg": "the length of messages must be an odd number"},
        ),
    },
    "anthropic": {
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
    },
    "gemini": {
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
    },
}


def error_body(family_name: str, kind: str) -> tuple[int, dict[str, Any]]:
    """The ``(status, body)`` a provider family answers for an error ``kind`` (see :data:`ERROR_KINDS`)."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {kind!r}; known: {', '.join(ERROR_KINDS)}")
    status, body = CANNED_ERRORS[family_name][kind]
    return status, json.loads(json.dumps(body))


def _canned(family_name: str, kind: str, message: str | None = None) -> _Response:
    status, body = error_body(family_name, kind)
    if message is not None:
        _set_message(body, message)
    return _Response(status, _encode(body))


def _set_message(body: dict[str, Any], message: str) -> None:
    if isinstance(body.get("error"), dict):
        body["error"]["message"] = message
    elif "error_msg" in body:
        body["error_msg"] = message
    elif isinstance(body.get("base_resp"), dict):
        body["base_resp"]["status_msg"] = message
    elif "message" in body:
        body["message"] = message


# ----------------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class _Call:
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
class _Answer:
    digest: str
    occurrence: int
    model: str
    text: str
    reasoning: str
    calls: list[_Call] | None
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


def _answer(
    provider: FakeProvider,
    payload: dict[str, Any],
    *,
    model: str,
    user_text: str,
    prompt_texts: list[str],
    limit: object,
    tools: bool,
) -> _Answer:
    # Hashed before the reply callable runs, which may mutate the payload it is given.
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")
    ).hexdigest()
    reply = provider._reply(payload, user_text)
    occurrence = provider._occurrence(digest[:16])
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
    raw_calls = _tool_calls(reply, tag) if isinstance(reply, dict) and tools else None
    calls = (
        [_Call(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in raw_calls]
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
    return _Answer(digest, occurrence, model, text, reasoning, calls, finish, error, prompt, completion)


def _sse(value: Any, *, space: bool = True, end: bytes = b"\n\n") -> bytes:
    return (b"data: " if space else b"data:") + _encode(value) + end


def _stream(events: list[bytes], provider: FakeProvider, content_type: str = _SSE) -> _Response:
    return _Response(
        200,
        content_type=content_type,
        headers={"Cache-Control": "no-cache"},
        events=events,
        delay=provider.chunk_delay,
    )


def _error_text(exc: Exception) -> str:
    return f"the fake provider failed: {exc!r}"


# ---------------------------------------------------------------------------------- openai family


def openai_unauthorized(fam: str) -> _Response:
    return _canned(fam, "auth")


def openai_chat(provider: FakeProvider, request: ReceivedRequest) -> _Response:
    fam = family(provider.dialect, provider.quirks)
    payload = _parse_json_object(request.body)
    model = _require_model(payload)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty array", "missing_required_parameter")
    answer = _answer(
        provider,
        payload,
        model=model,
        user_text=_last_user_text(messages),
        prompt_texts=[_content_text(m.get("content")) for m in messages if isinstance(m, dict)],
        limit=payload.get("max_completion_tokens", payload.get("max_tokens")),
        tools=bool(payload.get("tools")),
    )
    stream = payload.get("stream") is True
    if answer.error is not None and not stream:
        return _canned(fam, answer.error)
    if answer.finish == "content_filter" and (
        fam in ("moonshot", "qwen-compat", "minimax", "spark") or (fam == "zhipu" and not stream)
    ):
        return _canned(fam, "content_filter")
    family_ = _OpenAIFamily(fam, answer, provider.chunk_chars)
    if not stream:
        return _Response(200, _encode(family_.body()))
    options = payload.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return _stream(family_.events(include_usage), provider)


class _OpenAIFamily:
    """One answer rendered the way one OpenAI-compatible provider family renders it."""

    def __init__(self, fam: str, answer: _Answer, size: int) -> None:
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
        return _sse(value, space=fam != "spark")

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
                for piece in _pieces(a.reasoning, size)
            )
            events.extend(frame(self._delta_choice({"content": piece})) for piece in _pieces(a.text, size))
        else:
            events.extend(frame(self._delta_choice(delta)) for delta in self._tool_deltas())
        if a.error is not None:
            _, body = error_body(fam, a.error)
            return [*events, _sse(body)]  # the error replaces the rest of the stream, [DONE] included
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
            events.append(_sse(terminal))
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
            for piece in _pieces(call.arguments, self.size):
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
            self._frame(self._delta_choice({"reasoning_content": p})) for p in _pieces(a.reasoning, self.size)
        )
        pieces = _pieces(a.text, self.size) or [""]
        events.extend(self._frame(self._delta_choice({"content": p})) for p in pieces[:-1])
        if a.error is not None:
            events.append(self._frame(self._delta_choice({"content": pieces[-1]})))
            return [*events, _sse(error_body("zhipu", a.error)[1])]
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
            deltas = [{"content": p} for p in _pieces(a.text, self.size) or [""]]
        events = [self._frame(self._delta_choice(d)) for d in deltas[:-1]]
        if a.error is not None:
            events.append(self._frame(self._delta_choice(deltas[-1])))
            return [*events, _sse(error_body("spark", a.error)[1], space=False)]
        # Spark never states a finish_reason; usage rides on the last content chunk.
        events.append(self._frame(self._delta_choice(deltas[-1]), usage=self.usage))
        return [*events, b"data:[DONE]\n\n"]


# ---------------------------------------------------------------------------------- native dialects


def handle(provider: FakeProvider, request: ReceivedRequest) -> _Response:
    """Route a request for a non-OpenAI dialect; errors use that dialect's envelope."""
    dialect = provider.dialect
    routes: dict[str, Callable[[FakeProvider, ReceivedRequest], _Response | None]] = {
        "dashscope": _dashscope,
        "ernie": _ernie,
        "anthropic": _anthropic,
        "gemini": _gemini,
    }
    try:
        response = routes[dialect](provider, request)
    except _BadRequest as exc:
        return _canned(dialect, "bad_request", exc.message)
    except Exception as exc:
        # A broken reply callable must surface to the client as a 500, not as a dead connection.
        if dialect == "ernie":
            return _Response(200, _encode({"error_code": 336000, "error_msg": _error_text(exc)}))
        return _canned(dialect, "server", _error_text(exc))
    if response is None:
        return not_found(dialect, request)
    return response


def not_found(dialect: str, request: ReceivedRequest) -> _Response:
    what = f"{request.method} {request.path}"
    if dialect == "dashscope":
        return _Response(404, _encode(_ds("NotFound", f"Not Found: {what}")))
    if dialect == "ernie":
        return _Response(200, _encode({"error_code": 3, "error_msg": f"Unsupported openapi method: {what}"}))
    if dialect == "anthropic":
        return _Response(404, _encode(_an("not_found_error", f"Not Found: {what}")))
    return _Response(404, _encode(_gm(404, "NOT_FOUND", f"Not Found: {what}")))


_DOUBLED_VERSION: Final = re.compile(r"(/v\d+(?:alpha\d*|beta\d*)?)\1(?:/|$)")


def doubled_version(path: str) -> bool:
    """``/v1/v1/messages``, ``/v1beta/v1beta/models/...``: no real API serves a version segment twice."""
    return _DOUBLED_VERSION.search(path) is not None


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _bool_param(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise _BadRequest(f"Parameter '{name}' must be a boolean")
    return value


def _dashscope(provider: FakeProvider, request: ReceivedRequest) -> _Response | None:
    if request.method != "POST" or not request.path.rstrip("/").endswith(_DASHSCOPE_CHAT):
        return None
    if provider.api_key is not None and _bearer(request.headers) != provider.api_key:
        return _canned("dashscope", "auth")
    payload = _parse_json_object(request.body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("Model not exist.")
    inputs = payload.get("input")
    params = payload.get("parameters", {})
    if not isinstance(inputs, dict) or not isinstance(params, dict):
        raise _BadRequest("'input' and 'parameters' must be objects")
    messages, prompt = inputs.get("messages"), inputs.get("prompt")
    if isinstance(messages, list) and messages:
        user_text = _last_user_text(messages)
        prompt_texts = [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
    elif isinstance(prompt, str) and prompt:
        user_text, prompt_texts = prompt, [prompt]
    else:
        raise _BadRequest("Role must be user or assistant and Content length must be greater than 0")
    result_format = params.get("result_format", "text")
    if result_format not in ("text", "message"):
        raise _BadRequest("result_format must be 'text' or 'message'")
    incremental = _bool_param(params, "incremental_output", False)
    answer = _answer(
        provider,
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
            return _canned("dashscope", answer.error or "content_filter")
        return _Response(
            200,
            _encode(_dashscope_frame(answer, result_format, answer.text, answer.reasoning, True, request_id)),
        )
    pieces = _pieces(answer.text, provider.chunk_chars) or [""]
    reasoning = _pieces(answer.reasoning, provider.chunk_chars)
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
            f"id:{number}\nevent:result\n:HTTP_STATUS/200\ndata:".encode() + _encode(value) + b"\n\n"
        )
    if failing is not None:
        status, body = error_body("dashscope", failing)
        body["request_id"] = request_id
        head = f"id:{len(frames) + 1}\nevent:error\n:HTTP_STATUS/{status}\ndata:".encode()
        events.append(head + _encode(body) + b"\n\n")
    return _stream(events, provider, "text/event-stream;charset=UTF-8")


def _dashscope_frame(
    answer: _Answer,
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


def _ernie(provider: FakeProvider, request: ReceivedRequest) -> _Response | None:
    path = request.path.rstrip("/")
    query = {key: values[-1] for key, values in parse_qs(request.query).items()}
    if path.endswith("/oauth/2.0/token") and request.method in ("GET", "POST"):
        return _ernie_token(provider, query)
    if request.method != "POST" or _ERNIE_CHAT not in path:
        return None
    model_path = path.partition(_ERNIE_CHAT)[2]
    token = query.get("access_token", "")
    expected = ernie_access_token(provider.api_key) if provider.api_key is not None else None
    if not token or (expected is not None and token != expected):
        return _canned("ernie", "auth")
    payload = _parse_json_object(request.body)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) % 2 == 0:
        return _canned("ernie", "bad_request")
    system = payload.get("system")
    answer = _answer(
        provider,
        payload,
        model=model_path,
        user_text=_last_user_text(messages),
        prompt_texts=[_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
        + ([system] if isinstance(system, str) else []),
        limit=payload.get("max_output_tokens"),
        tools=bool(payload.get("functions")),
    )
    ident = f"as-fake{answer.digest[:10]}{answer.occurrence}"
    if payload.get("stream") is not True:
        if answer.error is not None:
            return _canned("ernie", answer.error)
        return _Response(200, _encode(_ernie_body(answer, ident)))
    events: list[bytes] = []
    pieces = _pieces(answer.text, provider.chunk_chars) if answer.calls is None else []
    for number, piece in enumerate(pieces):
        # Intermediate usage says 0 completion tokens; only the is_end chunk has the real count.
        usage = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": 0,
            "total_tokens": answer.prompt_tokens,
        }
        chunk = {
            "id": ident,
            "object": "chat.completion",
            "created": CREATED,
            "sentence_id": number,
            "is_end": False,
            "is_truncated": False,
            "result": piece,
            "need_clear_history": False,
            "finish_reason": "normal",
            "usage": usage,
        }
        events.append(_sse(chunk))
    if answer.error is not None:
        return _stream([*events, _sse(error_body("ernie", answer.error)[1])], provider)
    final = _ernie_body(answer, ident)
    final.update(sentence_id=len(pieces), is_end=True)
    if answer.calls is None:
        final["result"] = ""
    events.append(_sse(final))
    return _stream(events, provider)


def _ernie_body(answer: _Answer, ident: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion",
        "created": CREATED,
        "result": answer.text,
        "is_truncated": False,
        "need_clear_history": False,
        "finish_reason": {"stop": "normal", "tool_calls": "function_call"}.get(answer.finish, answer.finish),
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.total_tokens,
        },
    }
    if answer.calls:
        call = answer.calls[0]  # ERNIE function calling returns one call per turn
        body["function_call"] = {"name": call.name, "thoughts": "", "arguments": call.arguments}
    if answer.finish == "content_filter":
        body.update(result="", need_clear_history=True, ban_round=-1, finish_reason="normal")
    return body


def _ernie_token(provider: FakeProvider, query: Mapping[str, str]) -> _Response:
    body: dict[str, Any]
    if query.get("grant_type") != "client_credentials":
        body = {
            "error": "unsupported_grant_type",
            "error_description": "The authorization grant type is not supported",
        }
        return _Response(400, _encode(body))
    client_id, secret = query.get("client_id", ""), query.get("client_secret", "")
    if not client_id or (provider.api_key is not None and client_id != provider.api_key):
        return _Response(401, _encode({"error": "invalid_client", "error_description": "unknown client id"}))
    if not secret:
        body = {"error": "invalid_client", "error_description": "Client authentication failed"}
        return _Response(401, _encode(body))
    digest = hashlib.sha256(f"llmport-fake-refresh:{client_id}".encode()).hexdigest()[:32]
    body = {
        "refresh_token": f"25.{digest}.315360000.{CREATED}.282335-fake",
        "expires_in": 2592000,
        "session_key": f"fake-session-{digest[:16]}",
        "access_token": ernie_access_token(client_id),
        "scope": "public brain_all_scope wenxinworkshop_mgr",
        "session_secret": f"fake-secret-{digest[16:]}",
    }
    return _Response(200, _encode(body))


def _anthropic(provider: FakeProvider, request: ReceivedRequest) -> _Response | None:
    if request.method != "POST" or not request.path.rstrip("/").endswith("/v1/messages"):
        return None
    # The API takes the key in x-api-key or as a bearer token (what current SDKs send with auth_token).
    key = request.headers.get("x-api-key") or _bearer(request.headers)
    if not key:
        return _Response(401, _encode(_an("authentication_error", "x-api-key header is required")))
    if provider.api_key is not None and key != provider.api_key:
        return _canned("anthropic", "auth")
    if not request.headers.get("anthropic-version"):
        return _Response(400, _encode(_an("invalid_request_error", "anthropic-version: header is required")))
    payload = _parse_json_object(request.body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model: Field required")
    max_tokens = payload.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise _BadRequest("max_tokens: Field required")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("messages: Field required")
    system = payload.get("system")
    answer = _answer(
        provider,
        payload,
        model=model,
        user_text=_last_user_text(messages),
        prompt_texts=[_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
        + [_content_text(system)],
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
            return _canned("anthropic", answer.error)
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
        return _Response(200, _encode(message), headers=headers)

    def event(name: str, value: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: ".encode() + _encode({"type": name, **value}) + b"\n\n"

    start: dict[str, Any] = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
    }
    start.update(stop_reason=None, stop_sequence=None, usage={**usage, "output_tokens": 1})
    events = [event("message_start", {"message": start}), event("ping", {})]
    size = provider.chunk_chars
    for index, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            events.append(
                event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            )
            deltas: list[dict[str, Any]] = [
                {"type": "text_delta", "text": p} for p in _pieces(block["text"], size)
            ]
        elif kind == "thinking":
            opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            events.append(event("content_block_start", {"index": index, "content_block": opening}))
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], size)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            opening = {**block, "input": {}}
            events.append(event("content_block_start", {"index": index, "content_block": opening}))
            arguments = json.dumps(block["input"], ensure_ascii=False)
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(arguments, size)]
        events.extend(event("content_block_delta", {"index": index, "delta": d}) for d in deltas)
        if answer.error is not None:
            _, body = error_body("anthropic", answer.error)
            events.append(
                b"event: error\ndata: "
                + _encode({"type": "error", "error": body.get("error", body)})
                + b"\n\n"
            )
            return _stream(events, provider)
        events.append(event("content_block_stop", {"index": index}))
    delta = {
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": answer.completion_tokens},
    }
    events += [event("message_delta", delta), event("message_stop", {})]
    response = _stream(events, provider)
    return _Response(
        200,
        content_type=response.content_type,
        headers={**response.headers, **headers},
        events=events,
        delay=response.delay,
    )


def _gemini(provider: FakeProvider, request: ReceivedRequest) -> _Response | None:
    found = _GEMINI_ROUTE.search(request.path)
    if request.method != "POST" or found is None:
        return None
    model, method = found.group(1), found.group(2)
    query = {key: values[-1] for key, values in parse_qs(request.query).items()}
    key = request.headers.get("x-goog-api-key") or query.get("key")
    if not key:
        message = (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )
        return _Response(403, _encode(_gm(403, "PERMISSION_DENIED", message)))
    if provider.api_key is not None and key != provider.api_key:
        return _canned("gemini", "auth")
    payload = _parse_json_object(request.body)
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _BadRequest("* GenerateContentRequest.contents: contents is not specified")

    def text_of(item: object) -> str:
        parts = item.get("parts") if isinstance(item, dict) else None
        return _content_text(parts) if isinstance(parts, list) else ""

    users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    config = payload.get("generationConfig")
    answer = _answer(
        provider,
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
            return _canned("gemini", answer.error)
        return _Response(200, _encode(chunk(thought + parts, True, answer.completion_tokens)))
    if answer.calls is not None:
        piece_parts: list[list[dict[str, Any]]] = [thought + parts]
    else:
        piece_parts = [[{"text": p}] for p in _pieces(answer.text, provider.chunk_chars)] or [[]]
        if thought:
            piece_parts.insert(0, thought)
    chunks: list[dict[str, Any]] = []
    seen = 0
    for number, piece in enumerate(piece_parts, start=1):
        seen += sum(count_tokens(str(p.get("text", ""))) for p in piece if "thought" not in p)
        last = number == len(piece_parts) and answer.error is None
        chunks.append(chunk(piece, last, answer.completion_tokens if last else seen))
    if answer.error is not None:
        chunks.append(error_body("gemini", answer.error)[1])
    if query.get("alt") != "sse":
        # Without alt=sse the "stream" is one JSON array of the same chunks.
        return _Response(200, _encode(chunks))
    return _stream([_sse(c, end=b"\r\n\r\n") for c in chunks], provider, "text/event-stream")
