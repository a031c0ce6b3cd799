"""Baidu ERNIE's native wenxinworkshop API: the model is the endpoint path, an OAuth access token (fetched
with the API key and secret key) rides in the query, and errors are ``error_code`` in an HTTP 200 body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from .common import (
    Ask,
    Dialect,
    Request,
    UrlTrap,
    as_dict,
    as_int,
    as_str,
    code_text,
    functions,
    json_or_none,
    json_payloads,
    json_wanted,
    split_system,
    status_category,
    text_of,
    tool_names,
    tool_result_name,
    usage_openai,
)

if TYPE_CHECKING:
    from ..sse import SSEEvent
    from .normalizer import Accumulator
    from .result import ErrorCategory, FinishReason

CHAT_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"
TOKEN_PATH = "/oauth/2.0/token"  # noqa: S105 - a URL path, not a secret
STALE_TOKEN_CODES = frozenset({"110", "111"})  # access token invalid / expired
"""Error codes after which a cached access token must be fetched again."""
_MODEL_MARKER = "/wenxinworkshop/chat/"

FINISH: dict[str, FinishReason] = {
    "normal": "stop",
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}
CODES: dict[int, ErrorCategory] = {
    **dict.fromkeys((2, 336000, 336100), "server"),  # 336100: high load, retry
    **dict.fromkeys((6, 13, 14, 15, 110, 111, 336004), "auth"),
    # 4 is the cluster-wide request limit and 18 the QPS limit (retry later); 17/19 are daily/total caps.
    **dict.fromkeys((4, 18, 336501, 336502), "rate_limit"),
    **dict.fromkeys((17, 19), "quota"),
    **dict.fromkeys((3, 100, 336001, 336002, 336003, 336005, 336101, 336104, 336105), "bad_request"),
}

# ------------------------------------------------------------------------------------------ request


def build(ask: Ask) -> dict[str, Any]:
    system, rest = split_system(ask.messages)
    names = tool_names(rest)
    converted: list[dict[str, Any]] = []
    for message in rest:
        role = message.get("role")
        if role == "tool":
            name = tool_result_name(message, names)
            converted.append({"role": "function", "name": name, "content": text_of(message.get("content"))})
        elif role == "assistant" and message.get("tool_calls"):
            # ERNIE's function calling carries one call per turn.
            fn = message["tool_calls"][0].get("function", {})
            call = {"name": fn.get("name"), "arguments": fn.get("arguments") or "{}"}
            converted.append(
                {"role": "assistant", "content": text_of(message.get("content")), "function_call": call}
            )
        else:
            converted.append({"role": role, "content": text_of(message.get("content"))})
    body: dict[str, Any] = {"messages": converted}
    if system:
        body["system"] = system
    if ask.tools:
        body["functions"] = functions(ask.tools)
    if json_wanted(ask.response_format):
        body["response_format"] = "json_object"
    if ask.stream:
        body["stream"] = True
    options = dict(ask.extra)
    if "max_tokens" in options:
        options["max_output_tokens"] = options.pop("max_tokens")
    body.update(options)
    return body


def url(base: str, model: str, stream: bool) -> str:
    """The chat URL, still without its ``access_token`` (see :func:`with_token`)."""
    return f"{base}{CHAT_PATH}{quote(model, safe='/')}"


def with_token(chat_url: str, token: str) -> str:
    return f"{chat_url}?{urlencode({'access_token': token})}"


def token_url(base: str, api_key: str, secret_key: str) -> str:
    """The OAuth endpoint that exchanges the API key and secret key for an access token."""
    query = urlencode({"grant_type": "client_credentials", "client_id": api_key, "client_secret": secret_key})
    return f"{base.rstrip('/')}{TOKEN_PATH}?{query}"


def token_of(raw: str) -> str | None:
    """The access token in an OAuth response body, None when it holds none."""
    payload = json_or_none(raw)
    if isinstance(payload, dict) and isinstance(payload.get("access_token"), str) and payload["access_token"]:
        return str(payload["access_token"])
    return None


def model_from_path(path: str) -> str:
    # "" for the token endpoint: an ERNIE request names its model in the chat path or nowhere.
    return unquote(path.split(_MODEL_MARKER, 1)[1]) if _MODEL_MARKER in path else ""


# ----------------------------------------------------------------------------------------- response


def _object(acc: Accumulator, obj: dict[str, object], stream: bool) -> None:
    code = as_int(obj.get("error_code"))
    if code:
        category = CODES.get(code) or status_category(acc.status) or "unknown"
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
    usage_openai(acc, obj.get("usage"))
    if obj.get("is_truncated") is True:
        acc.warn("provider reported is_truncated")
    # Intermediate stream chunks already say "normal"; only the is_end chunk finishes the answer.
    if not stream or obj.get("is_end") is True:
        acc.set_finish(obj.get("finish_reason"), FINISH)
        acc.done = True
    if obj.get("need_clear_history") is True or as_int(obj.get("ban_round")) is not None:
        acc.content_filtered = True


def _wrap_up(acc: Accumulator) -> None:
    if acc.content_filtered and acc.error is None:
        acc.finish = "content_filter"  # need_clear_history/ban_round: the input was judged unsafe


def parse_json(acc: Accumulator, obj: object, request: Request) -> None:
    if isinstance(obj, dict):
        _object(acc, obj, stream=False)
    else:
        acc.warn("body is a JSON array, not an object")
    _wrap_up(acc)


def parse_stream(acc: Accumulator, events: list[SSEEvent], request: Request) -> None:
    for _event, obj in json_payloads(acc, events):
        if isinstance(obj, dict):
            _object(acc, obj, stream=True)
        else:
            acc.warn("stream event is not a JSON object")
    if not acc.done and acc.error is None:
        acc.warn("stream ended before is_end")
    _wrap_up(acc)


DIALECT = Dialect(
    name="ernie",
    build=build,
    url=url,
    parse_json=parse_json,
    parse_stream=parse_stream,
    url_traps=(
        UrlTrap(
            lambda url: "qianfan.baidubce.com/v2" in url,
            "Qianfan v2, which is OpenAI-compatible",
            'dialect = "openai" (as provider ernie)',
        ),
    ),
    # The base URL is a bare host (aip.baidubce.com): only these paths belong to the provider.
    own_paths=("/rpc/2.0/ai_custom", TOKEN_PATH),
    model_from_path=model_from_path,
)
