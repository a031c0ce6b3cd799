"""The fake Baidu ERNIE wenxinworkshop API: the OAuth token endpoint, chat on the endpoint path with the
token in the query, an odd number of messages, ``is_end`` streams, ``error_code`` bodies in HTTP 200."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from .common import (
    CREATED,
    Answer,
    Context,
    ErrorTable,
    FakeDialect,
    ReceivedRequest,
    Response,
    canned,
    chunks_of,
    content_text,
    copy_error,
    encode,
    event_stream,
    last_user_text,
    make_answer,
    parse_json_object,
    query_of,
    serve,
    sse,
)

_CHAT: Final = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"

CANNED: Final[ErrorTable] = {
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
}


def not_found(request: ReceivedRequest) -> Response:
    message = f"Unsupported openapi method: {request.method} {request.path}"
    return Response(200, encode({"error_code": 3, "error_msg": message}))


def handle(context: Context, request: ReceivedRequest) -> Response:
    return serve(_route, context, request, errors=CANNED, not_found=not_found)


def access_token(client_id: str) -> str:
    """The access token the fake ERNIE OAuth endpoint issues for ``client_id`` (same id, same token)."""
    digest = hashlib.sha256(f"llmport-fake:{client_id}".encode()).hexdigest()[:32]
    return f"24.{digest}.2592000.{CREATED}.282335-fake"


def _route(context: Context, request: ReceivedRequest) -> Response | None:
    path = request.path.rstrip("/")
    query = query_of(request.query)
    if path.endswith("/oauth/2.0/token") and request.method in ("GET", "POST"):
        return _ernie_token(context, query)
    if request.method != "POST" or _CHAT not in path:
        return None
    model_path = path.partition(_CHAT)[2]
    token = query.get("access_token", "")
    expected = access_token(context.settings.api_key) if context.settings.api_key is not None else None
    if not token or (expected is not None and token != expected):
        return canned(CANNED, "auth")
    payload = parse_json_object(request.body)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) % 2 == 0:
        return canned(CANNED, "bad_request")
    system = payload.get("system")
    answer = make_answer(
        context,
        payload,
        model=model_path,
        user_text=last_user_text(messages),
        prompt_texts=[content_text(m.get("content")) for m in messages if isinstance(m, dict)]
        + ([system] if isinstance(system, str) else []),
        limit=payload.get("max_output_tokens"),
        tools=bool(payload.get("functions")),
    )
    ident = f"as-fake{answer.digest[:10]}{answer.occurrence}"
    if payload.get("stream") is not True:
        if answer.error is not None:
            return canned(CANNED, answer.error)
        return Response(200, encode(_ernie_body(answer, ident)))
    events: list[bytes] = []
    pieces = chunks_of(answer.text, context.settings.chunk_chars) if answer.calls is None else []
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
        events.append(sse(chunk))
    if answer.error is not None:
        return event_stream([*events, sse(copy_error(CANNED, answer.error)[1])], context.settings)
    final = _ernie_body(answer, ident)
    final.update(sentence_id=len(pieces), is_end=True)
    if answer.calls is None:
        final["result"] = ""
    events.append(sse(final))
    return event_stream(events, context.settings)


def _ernie_body(answer: Answer, ident: str) -> dict[str, Any]:
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


def _ernie_token(context: Context, query: Mapping[str, str]) -> Response:
    body: dict[str, Any]
    if query.get("grant_type") != "client_credentials":
        body = {
            "error": "unsupported_grant_type",
            "error_description": "The authorization grant type is not supported",
        }
        return Response(400, encode(body))
    client_id, secret = query.get("client_id", ""), query.get("client_secret", "")
    if not client_id or (context.settings.api_key is not None and client_id != context.settings.api_key):
        return Response(401, encode({"error": "invalid_client", "error_description": "unknown client id"}))
    if not secret:
        body = {"error": "invalid_client", "error_description": "Client authentication failed"}
        return Response(401, encode(body))
    digest = hashlib.sha256(f"llmport-fake-refresh:{client_id}".encode()).hexdigest()[:32]
    body = {
        "refresh_token": f"25.{digest}.315360000.{CREATED}.282335-fake",
        "expires_in": 2592000,
        "session_key": f"fake-session-{digest[:16]}",
        "access_token": access_token(client_id),
        "scope": "public brain_all_scope wenxinworkshop_mgr",
        "session_secret": f"fake-secret-{digest[16:]}",
    }
    return Response(200, encode(body))


DIALECT = FakeDialect("ernie", handle, not_found, {"ernie": CANNED})
