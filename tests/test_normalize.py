"""Normalisation of every recorded provider exchange in tests/fixtures/real (and synthetic quirks)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmport.dialects import DIALECTS, REGISTRY, UnknownDialectError
from pytest_llmport.dialects.common import categorize
from pytest_llmport.dialects.normalizer import normalize
from pytest_llmport.dialects.result import FINISH_REASONS, NormalizedResult
from pytest_llmport.sse import SSEEvent
from pytest_llmport.sse import iter_events as iter_sse_events

FIX = Path(__file__).parent / "fixtures" / "real"

# (status, body, content_type, request) as handed to normalize()
Exchange = tuple[int, str, str, Mapping[str, object] | None]


# ------------------------------------------------------------------------------------ fixture loaders


def read(rel: str) -> str:
    return (FIX / rel).read_text(encoding="utf-8-sig")


def json_file(rel: str, status: int = 200) -> Exchange:
    return status, read(rel), "application/json", None


def chunks_file(rel: str, dialect: str) -> Exchange:
    """*.chunks.txt holds one SSE data payload per line; rebuild the wire framing of each dialect."""
    lines = [line for line in read(rel).splitlines() if line.strip()]
    if dialect == "anthropic":
        body = "".join(f"event: {json.loads(line)['type']}\ndata: {line}\n\n" for line in lines)
    elif dialect == "gemini":
        body = "".join(f"data: {line}\r\n\r\n" for line in lines)
    else:
        body = "".join(f"data: {line}\n\n" for line in lines) + "data: [DONE]\n\n"
    return 200, body, "text/event-stream", None


def cassette(rel: str, index: int = 0) -> Exchange:
    """One interaction of a vcrpy cassette; pydantic-ai's serializer stores JSON bodies decoded."""
    interaction = yaml.safe_load(read(rel))["interactions"][index]
    response = interaction["response"]
    if "parsed_body" in response:
        body = json.dumps(response["parsed_body"], ensure_ascii=False)
    else:
        body = response["body"]["string"]
    content_type = (response.get("headers", {}).get("content-type") or [""])[0]
    return response["status"]["code"], body, content_type, interaction["request"].get("parsed_body")


def dashscope_raw(name: str) -> Exchange:
    """cnblogs raw HTTP captures: status line + headers, body, and the request body."""
    head = read(f"dashscope/{name}.response.header.txt").splitlines()
    status = int(head[0].split()[1])
    content_type = next(
        (h.split(":", 1)[1].strip() for h in head if h.lower().startswith("content-type:")), ""
    )
    request = json.loads(read(f"dashscope/{name}.request.body.json"))
    return status, read(f"dashscope/{name}.response.body.txt"), content_type, request


def sample(rel: str, index: int, *, as_sse: bool = False) -> Exchange:
    """The index-th body of a samples file: bodies are separated by '#' comment lines.

    In .txt files every non-comment line is one body; in .sse files a body is the block of lines between
    two comment lines. ``as_sse`` frames a lone stream chunk quoted without its ``data:`` prefix.
    """
    text = read(rel)
    if rel.endswith(".txt"):
        bodies = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    else:
        block: list[str] = []
        bodies = []
        for line in text.splitlines(keepends=True):
            if line.startswith("#"):
                bodies.append("".join(block))
                block = []
            else:
                block.append(line)
        bodies.append("".join(block))
        bodies = [b for b in bodies if b.strip()]
    body = bodies[index]
    if as_sse:
        body = f"data: {body}\n\n"
    return 200, body, "", None


def stream_file(rel: str) -> Exchange:
    return 200, read(rel), "", None


def ernie_line(index: int) -> Exchange:
    return 200, read("ernie/qianfan4j-readme-nonstream.jsonl").splitlines()[index], "application/json", None


# ---------------------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Case:
    dialect: str
    load: Callable[[], Exchange]
    expect: dict[str, Any]


def check(result: NormalizedResult, expect: Mapping[str, Any]) -> None:
    exp = dict(expect)
    assert result.finish_reason == exp.pop("finish")
    assert result.finish_reason_raw == exp.pop("raw", None)
    if "text" in exp:
        assert result.text == exp.pop("text")
    if "text_start" in exp:
        assert result.text.startswith(exp.pop("text_start"))
    if "text_end" in exp:
        assert result.text.endswith(exp.pop("text_end"))
    if "text_len" in exp:
        assert len(result.text) == exp.pop("text_len")
    if "reasoning" in exp:
        assert result.reasoning == exp.pop("reasoning")
    if "reasoning_start" in exp:
        assert result.reasoning.startswith(exp.pop("reasoning_start"))
    if "reasoning_len" in exp:
        assert len(result.reasoning) == exp.pop("reasoning_len")
    usage = result.usage
    assert (usage.prompt, usage.completion, usage.total, usage.reasoning, usage.cached) == exp.pop(
        "usage", (None, None, None, None, None)
    )
    assert [(t.name, t.arguments) for t in result.tool_calls] == exp.pop("tools", [])
    if "tool_ids" in exp:
        assert [t.id for t in result.tool_calls] == exp.pop("tool_ids")
    error = result.error
    actual_error = None if error is None else (error.category, error.code, error.http_status)
    assert actual_error == exp.pop("error", None)
    assert result.streamed is exp.pop("streamed", False)
    if "chunks" in exp:
        assert result.chunks == exp.pop("chunks")
    assert result.content_filtered is exp.pop("filtered", False)
    if "model" in exp:
        assert result.model == exp.pop("model")
    if "request_id" in exp:
        assert result.request_id == exp.pop("request_id")
    assert list(result.warnings) == exp.pop("warnings", [])
    assert not exp, f"unchecked expectations: {exp}"


NO_DONE = "stream ended without [DONE]"
NO_FINISH = "no finish reason in response"


CASES_FILE = Path(__file__).parent / "fixtures" / "normalize_cases.yaml"
LOADERS: dict[str, Callable[..., Exchange]] = {
    "json": json_file,
    "chunks": chunks_file,
    "cassette": cassette,
    "dashscope_raw": dashscope_raw,
    "sample": sample,
    "ernie_line": ernie_line,
    "stream": stream_file,
}
# YAML has lists only; check() compares these expectations as tuples.
TUPLES: dict[str, Callable[[Any], Any]] = {
    "usage": tuple,
    "error": tuple,
    "tools": lambda tools: [tuple(tool) for tool in tools],
}


def read_cases() -> dict[str, Case]:
    """The cases of tests/fixtures/normalize_cases.yaml: the dialect, the exchange to load, the expectation."""
    text = CASES_FILE.read_text(encoding="utf-8")
    names = [key.value for key, _ in yaml.compose(text).value]
    assert len(names) == len(set(names)), "a case name stands twice in normalize_cases.yaml"
    cases: dict[str, Case] = {}
    for name, entry in yaml.safe_load(text).items():
        dialect, load = entry.pop("dialect"), entry.pop("load")
        expect = {key: TUPLES[key](value) if key in TUPLES else value for key, value in entry.items()}
        cases[name] = Case(dialect, functools.partial(load_case, dialect, load), expect)
    return cases


def load_case(dialect: str, load: Mapping[str, Any]) -> Exchange:
    """The exchange a case's ``load`` names: ``{loader: fixture, **options}``, loaders as in LOADERS."""
    (kind, source), *options = load.items()
    extra = {"dialect": dialect} if kind == "chunks" else {}
    return LOADERS[kind](source, **dict(options), **extra)


CASES = read_cases()


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_fixture(case: Case) -> None:
    status, body, content_type, request = case.load()
    result = normalize(case.dialect, status=status, body=body, content_type=content_type, request=request)
    check(result, case.expect)


def test_every_fixture_file_has_a_case() -> None:
    """A fixture added to tests/fixtures/real without a case here should fail loudly."""
    ids = " ".join(CASES)
    for path in sorted(FIX.rglob("*")):
        if path.is_file() and not path.name.startswith("ORIGIN"):
            rel = path.relative_to(FIX).as_posix()
            assert rel.split(".")[0].replace("qianfan4j-readme-", "") in ids, rel


# ------------------------------------------------------------------------------------- explicit quirks


def run(dialect: str, body: str, status: int = 200, **kw: Any) -> NormalizedResult:
    return normalize(dialect, status=status, body=body, **kw)


def sse(*payloads: object, done: bool = True) -> str:
    text = "".join(f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads)
    return text + ("data: [DONE]\n\n" if done else "")


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


@pytest.mark.parametrize(
    ("status", "body", "category", "code"),
    [
        (
            400,
            {"error": {"code": "1301", "message": "系统检测到输入或生成内容可能包含不安全或敏感内容"}},
            "content_filter",
            "1301",
        ),
        (429, {"error": {"code": "1113", "message": "余额不足"}}, "quota", "1113"),
        (429, {"error": {"code": "1302", "message": "并发过高"}}, "rate_limit", "1302"),
        (401, {"error": {"code": "1002", "message": "token invalid"}}, "auth", "1002"),
        (
            429,
            {"error": {"type": "insufficient_quota", "code": "insufficient_quota"}},
            "quota",
            "insufficient_quota",
        ),
        (
            429,
            {"error": {"type": "rate_limit_reached_error", "message": "TPM"}},
            "rate_limit",
            "rate_limit_reached_error",
        ),
        (
            400,
            {"error": {"code": "data_inspection_failed", "type": "data_inspection_failed"}},
            "content_filter",
            "data_inspection_failed",
        ),
        (
            400,
            {"error": {"code": "OutputTextSensitiveContentDetected"}},
            "content_filter",
            "OutputTextSensitiveContentDetected",
        ),
        (
            429,
            {"error": {"code": "RateLimitExceeded.EndpointRPMExceeded"}},
            "rate_limit",
            "RateLimitExceeded.EndpointRPMExceeded",
        ),
        (429, {"error": {"code": "QuotaExceeded"}}, "quota", "QuotaExceeded"),
        (402, {"error": {"message": "Insufficient Balance"}}, "quota", None),
        (422, {"error": {"message": "Invalid params"}}, "bad_request", None),
        (503, {"error": {"message": "Server overloaded"}}, "server", None),
        (504, "<html>gateway timeout</html>", "timeout", None),
        (200, {"base_resp": {"status_code": 1004, "status_msg": "invalid api key"}}, "auth", "1004"),
        (200, {"base_resp": {"status_code": 1002, "status_msg": "rate limit"}}, "rate_limit", "1002"),
        (200, {"base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}, "quota", "1008"),
        (
            200,
            {"base_resp": {"status_code": 1027, "status_msg": "output sensitive"}},
            "content_filter",
            "1027",
        ),
        (200, {"code": 10013, "message": "input sensitive", "sid": "x"}, "content_filter", "10013"),
        (
            200,
            {
                "Response": {
                    "Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"},
                    "RequestId": "r",
                }
            },
            "auth",
            "AuthFailure.SignatureFailure",
        ),
    ],
)
def test_openai_family_errors(status: int, body: object, category: str, code: str | None) -> None:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    result = run("openai", text, status)
    assert result.finish_reason == "error"
    assert result.error is not None
    assert (result.error.category, result.error.code, result.error.http_status) == (category, code, status)
    assert result.content_filtered is (category == "content_filter")


@pytest.mark.parametrize(
    ("status", "code", "type_", "category"),
    [
        # A type naming a category beats a generic code (DeepSeek 401/402 bodies).
        (401, "invalid_request_error", "authentication_error", "auth"),
        (400, "invalid_request_error", "insufficient_balance", "quota"),
        # ...and beats the HTTP status (Moonshot sends only a type).
        (429, None, "exceeded_current_quota_error", "quota"),
        (400, None, "content_filter", "content_filter"),
        (400, None, "sensitive_words_detected", "content_filter"),
        (200, None, "rate_limit_reached_error", "rate_limit"),
        (500, "account_quota_exhausted", None, "quota"),
        # A specific code beats a specific type (Spark's catch-all `api_error`).
        (401, "11200", "api_error", "auth"),
        (429, "invalid_api_key", "rate_limit_error", "auth"),
        # A generic code/type defers to a status that names a category.
        (401, "invalid_request_error", "unknown_error", "auth"),
        (402, "invalid_request_error", None, "quota"),
        (403, None, "invalid_request_error", "auth"),
        (429, "invalid_request_error", None, "rate_limit"),
        (503, "invalid_request_error", None, "server"),
        (401, "99999", "api_error", "auth"),
        (400, "invalid_request_error", None, "bad_request"),
        # Inside an HTTP 200 stream only the envelope tells.
        (200, None, "server_error", "server"),
        (200, "internal_error", "internal_error", "server"),
        (200, None, "api_error", "server"),
        (200, None, "overloaded_error", "server"),
        (200, "invalid_request_error", None, "bad_request"),
        (200, None, None, "unknown"),
    ],
)
def test_categorize_precedence(status: int, code: str | None, type_: str | None, category: str) -> None:
    assert categorize(status, code, type_) == category


@pytest.mark.parametrize(
    ("body", "category"),
    [
        ({"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}, "server"),
        ({"error": {"message": "boom", "type": "internal_error", "code": "internal_error"}}, "server"),
        ({"error": {"message": "slow down", "type": "rate_limit_reached_error"}}, "rate_limit"),
        ({"error": {"message": "bad", "type": "invalid_request_error"}}, "bad_request"),
    ],
)
def test_mid_stream_error_in_http_200_is_categorised_by_its_envelope(body: object, category: str) -> None:
    result = run("openai", sse(chunk("半句"), body, done=False))
    assert result.error is not None and result.finish_reason == "error"
    assert (result.error.category, result.error.http_status, result.text) == (category, 200, "半句")


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("sensitive", "content_filter"),
        ("network_error", "error"),
        ("insufficient_system_resource", "error"),
        ("normal", "stop"),
        ("function_call", "tool_calls"),
        ("something_new", "unknown"),
    ],
)
def test_openai_finish_vocabulary(raw: str, finish: str) -> None:
    result = run("openai", sse(chunk("hi"), chunk("", raw)))
    assert (result.finish_reason, result.finish_reason_raw, result.text) == (finish, raw, "hi")
    assert result.error is None
    assert ("unrecognised finish reason 'something_new'" in result.warnings) is (finish == "unknown")


def test_keep_alive_comments_and_moonshot_usage_in_choice() -> None:
    final = {
        "choices": [
            {
                "index": 0,
                "delta": {},
                "finish_reason": "stop",
                "usage": {"prompt_tokens": 10, "completion_tokens": 79, "total_tokens": 89},
            }
        ]
    }
    body = ": keep-alive\n\n: keep-alive\n\n" + sse(chunk("Hel"), chunk("lo"), final)
    result = run("openai", body)
    assert (result.text, result.finish_reason, result.chunks, result.warnings) == ("Hello", "stop", 3, ())
    assert (result.usage.prompt, result.usage.completion, result.usage.total) == (10, 79, 89)


def test_minimax_trailing_full_object_is_not_doubled_and_think_is_split() -> None:
    placeholder = {"total_tokens": 0, "total_characters": 0}
    terminal = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "<think>\nplan\n</think>\n\nAnswer"},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        "output_sensitive": False,
    }
    body = sse(
        chunk("<think>\nplan\n</think>", usage=placeholder), chunk("\n\nAnswer", usage=placeholder), terminal
    )
    result = run("openai", body)
    assert (result.text, result.reasoning, result.finish_reason) == ("Answer", "plan", "stop")
    assert (result.usage.prompt, result.usage.completion, result.usage.total) == (5, 7, 12)


def test_minimax_sensitive_flag_and_zhipu_error_inside_stream() -> None:
    flagged = run("openai", json.dumps({**chunk("x", "stop"), "output_sensitive": True}))
    assert flagged.content_filtered is True
    assert flagged.finish_reason == "stop"
    broken = run("openai", sse(chunk("par"), {"error": {"code": "1234", "message": "网络错误"}}))
    assert broken.finish_reason == "error"
    assert broken.error is not None
    assert (broken.error.category, broken.text) == ("server", "par")


def test_spark_stream_without_finish_reason_but_with_done_is_inferred_stop() -> None:
    body = (
        "data:"
        + json.dumps({"code": 0, "choices": [{"delta": {"content": "你好"}, "index": 0}]})
        + "\n\ndata:[DONE]\n\n"
    )
    result = run("openai", body)
    assert (result.text, result.finish_reason, result.finish_reason_raw) == ("你好", "stop", None)
    assert result.warnings == ("finish_reason absent; inferred from a clean end of response",)


def test_dashscope_cumulative_stream_is_not_duplicated() -> None:
    frames = ["1", "1+1", "1+1 等于 2。"]
    body = "".join(
        f"id:{i}\nevent:result\n:HTTP_STATUS/200\ndata:"
        + json.dumps(
            {
                "output": {"text": t, "finish_reason": "stop" if i == len(frames) else "null"},
                "usage": {"input_tokens": 3, "output_tokens": i, "total_tokens": 3 + i},
                "request_id": "r",
            },
            ensure_ascii=False,
        )
        + "\n\n"
        for i, t in enumerate(frames, 1)
    )
    for request in (None, {"parameters": {"incremental_output": False}}):
        result = run("dashscope", body, request=request)
        assert (result.text, result.finish_reason, result.usage.completion) == ("1+1 等于 2。", "stop", 3)
    forced = run("dashscope", body, request={"parameters": {"incremental_output": True}})
    assert forced.text == "11+11+1 等于 2。"


@pytest.mark.parametrize(
    ("status", "code", "category"),
    [
        (400, "DataInspectionFailed", "content_filter"),
        (400, "InternalError.Algo.DataInspectionFailed", "content_filter"),
        (429, "Throttling.RateQuota", "rate_limit"),
        (400, "Arrearage", "quota"),
        (500, "InternalError", "server"),
    ],
)
def test_dashscope_error_codes(status: int, code: str, category: str) -> None:
    result = run("dashscope", json.dumps({"code": code, "message": "m", "request_id": "r"}), status)
    assert result.error is not None
    assert (result.error.category, result.error.code, result.finish_reason) == (category, code, "error")


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (110, "auth"),
        (111, "auth"),
        (13, "auth"),
        (18, "rate_limit"),
        (17, "quota"),
        (336501, "rate_limit"),
        (336100, "server"),
        (336003, "bad_request"),
        (999, "unknown"),
    ],
)
def test_ernie_error_codes_in_http_200(code: int, category: str) -> None:
    result = run("ernie", json.dumps({"error_code": code, "error_msg": "m", "log_id": 123}))
    assert result.error is not None
    assert (result.error.category, result.error.code, result.error.http_status) == (category, str(code), 200)


def test_ernie_need_clear_history_oauth_and_unfinished_stream() -> None:
    unsafe = run(
        "ernie",
        json.dumps(
            {
                "id": "as-1",
                "result": "",
                "need_clear_history": True,
                "ban_round": -1,
                "finish_reason": "normal",
            }
        ),
    )
    assert (unsafe.finish_reason, unsafe.finish_reason_raw, unsafe.content_filtered) == (
        "content_filter",
        "normal",
        True,
    )
    token = run("ernie", json.dumps({"access_token": "24.x", "expires_in": 2592000}))
    assert token.finish_reason == "unknown"
    assert "OAuth token response, not a chat result" in token.warnings
    oauth = run(
        "ernie", json.dumps({"error": "invalid_client", "error_description": "unknown client id"}), 401
    )
    assert oauth.error is not None
    assert oauth.error.category == "auth"
    cut = run("ernie", sse({"result": "半", "is_end": False, "finish_reason": "normal"}, done=False))
    assert (cut.text, cut.finish_reason) == ("半", "unknown")
    assert "stream ended before is_end" in cut.warnings


def named(event: str, payload: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n"


def test_anthropic_overloaded_and_mid_stream_error() -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    plain = run("anthropic", json.dumps(overloaded), 529)
    assert plain.error is not None
    assert (plain.error.category, plain.error.http_status) == ("server", 529)
    start = {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 3}}}
    thinking = {"type": "thinking", "thinking": ""}
    tool = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
    stream = (
        named("message_start", start)
        + named("content_block_start", {"type": "content_block_start", "index": 0, "content_block": thinking})
        + named(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hmm"},
            },
        )
        + named("content_block_start", {"type": "content_block_start", "index": 1, "content_block": tool})
        + "".join(
            named(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": p},
                },
            )
            for p in ('{"a": ', "1}")
        )
        + named("error", overloaded)
    )
    result = run("anthropic", stream)
    assert (result.reasoning, result.finish_reason, result.usage.prompt) == ("hmm", "error", 3)
    assert [(t.id, t.name, t.arguments) for t in result.tool_calls] == [("t1", "f", {"a": 1})]
    assert result.error is not None
    assert (result.error.category, result.error.code) == ("server", "overloaded_error")


@pytest.mark.parametrize(
    ("body", "finish", "raw", "filtered"),
    [
        ({"promptFeedback": {"blockReason": "SAFETY"}}, "content_filter", "SAFETY", True),
        (
            {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "RECITATION"}]},
            "content_filter",
            "RECITATION",
            True,
        ),
        (
            {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]},
            "length",
            "MAX_TOKENS",
            False,
        ),
        (
            {
                "candidates": [
                    {"content": {"parts": [{"text": "x"}]}, "finishReason": "MALFORMED_FUNCTION_CALL"}
                ]
            },
            "unknown",
            "MALFORMED_FUNCTION_CALL",
            False,
        ),
    ],
)
def test_gemini_finish_and_blocking(body: object, finish: str, raw: str, filtered: bool) -> None:
    result = run("gemini", json.dumps(body))
    assert (result.finish_reason, result.finish_reason_raw, result.content_filtered) == (
        finish,
        raw,
        filtered,
    )


@pytest.mark.parametrize(
    ("status", "error", "category"),
    [
        (
            400,
            {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
            },
            "auth",
        ),
        (400, {"code": 400, "message": "bad field", "status": "INVALID_ARGUMENT"}, "bad_request"),
        (403, {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}, "auth"),
        (
            429,
            {
                "code": 429,
                "message": "Quota exceeded for quota metric",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
                    }
                ],
            },
            "quota",
        ),
        (503, {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}, "server"),
    ],
)
def test_gemini_errors(status: int, error: object, category: str) -> None:
    result = run("gemini", json.dumps({"error": error}), status)
    assert result.error is not None
    assert result.error.category == category


def test_gemini_json_array_stream_and_thought_parts() -> None:
    body = json.dumps(
        [
            {"candidates": [{"content": {"parts": [{"text": "think", "thought": True}, {"text": "Hi"}]}}]},
            {
                "candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2, "totalTokenCount": 4},
            },
        ]
    )
    result = run("gemini", body)
    assert (result.text, result.reasoning, result.streamed, result.chunks, result.usage.total) == (
        "Hi!",
        "think",
        True,
        2,
        4,
    )


def test_unknown_dialect_is_a_configuration_error() -> None:
    with pytest.raises(
        UnknownDialectError, match="known dialects: openai, dashscope, ernie, anthropic, gemini"
    ):
        normalize("zhipu", status=200, body="{}")
    assert issubclass(UnknownDialectError, ValueError)
    assert set(DIALECTS) == set(REGISTRY)


def test_bytes_body_and_to_dict_round_trip_through_json() -> None:
    status, body, content_type, request = dashscope_raw("single-generation-message-with-parallel-tools-sse")
    result = normalize(
        "dashscope", status=status, body=body.encode(), content_type=content_type, request=request
    )
    data = json.loads(json.dumps(result.to_dict(), ensure_ascii=False))
    assert data["tool_calls"][1]["arguments"] == {"location": "上海市"}
    assert data["usage"] == {"prompt": 250, "completion": 37, "total": 287, "reasoning": None, "cached": 0}
    assert data["warnings"] == []
    bad = normalize("openai", status=200, body=b"\xff\xfe{")
    assert bad.warnings == ("body is not valid UTF-8", "body is not JSON", NO_FINISH)


# ---------------------------------------------------------------------------------------------- SSE


def test_sse_parser_tolerates_framing_variants() -> None:
    text = (
        '\ufeff: hello\r\nid:1\r\nevent:result\r\n:HTTP_STATUS/200\r\ndata:{"a":1}\r\n\r\n'
        "data: x\rdata: y\r\rretry: 5\n\ndata: tail"
    )
    assert iter_sse_events(text) == [
        SSEEvent("result", '{"a":1}', "1", ("hello", "HTTP_STATUS/200")),
        SSEEvent(None, "x\ny", None, ()),
        SSEEvent(None, "tail", None, ()),
    ]


def test_sse_parser_splits_events_missing_blank_lines() -> None:
    text = "id:1\nevent:result\ndata:{}\nid:2\nevent:result\ndata:[]\n"
    assert [(e.id, e.data) for e in iter_sse_events(text)] == [("1", "{}"), ("2", "[]")]


def test_joined_data_lines_are_decoded_one_by_one() -> None:
    body = (
        "data: "
        + json.dumps(chunk("a"))
        + "\ndata: "
        + json.dumps(chunk("b", "stop"))
        + "\n\ndata: [DONE]\n\n"
    )
    result = run("openai", body)
    assert (result.text, result.finish_reason, result.warnings) == ("ab", "stop", ())


def test_data_after_done_and_junk_events_are_reported() -> None:
    result = run("openai", sse(chunk("a", "stop")) + sse("not json", chunk("late"), done=False))
    assert (result.text, result.finish_reason) == ("a", "stop")
    assert result.warnings == ("data after [DONE] ignored",)
    cut = run("openai", "data: " + json.dumps(chunk("a"))[:-3])
    assert cut.warnings == ("truncated stream: last event is not valid JSON", NO_DONE, NO_FINISH)


# ----------------------------------------------------------------------------------------- properties

JSON_KEYS = [
    "choices", "delta", "message", "content", "reasoning_content", "tool_calls", "function", "arguments",
    "name", "id", "index", "finish_reason", "usage", "prompt_tokens", "error", "code", "message", "type",
    "base_resp", "status_code", "output", "text", "result", "is_end", "function_call", "error_code",
    "need_clear_history", "candidates", "parts", "functionCall", "args", "finishReason", "usageMetadata",
    "promptFeedback", "blockReason", "status", "details", "content_block", "partial_json", "stop_reason",
    "input", "Choices", "Response", "Delta", "reply", "messages", "thought", "input_tokens",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["stop", "null", "[DONE]", "tool_use", "STOP", "<think>", "RESOURCE_EXHAUSTED"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(JSON_KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)
statuses = st.sampled_from([200, 400, 401, 402, 404, 429, 500, 529, 0, 302])
PROPERTY = settings(max_examples=150, deadline=None, database=None)


def assert_sane(result: NormalizedResult) -> None:
    assert result.finish_reason in FINISH_REASONS
    assert not any(w.startswith("internal normaliser error") for w in result.warnings), result.warnings
    assert (result.error is None) or result.finish_reason == "error"
    json.dumps(result.to_dict())


@PROPERTY
@given(dialect=st.sampled_from(DIALECTS), status=statuses, value=json_values)
def test_any_json_value_never_raises(dialect: str, status: int, value: object) -> None:
    assert_sane(normalize(dialect, status=status, body=json.dumps(value)))


@PROPERTY
@given(dialect=st.sampled_from(DIALECTS), values=st.lists(json_values, max_size=5), done=st.booleans())
def test_any_stream_of_json_values_never_raises(dialect: str, values: list[object], done: bool) -> None:
    body = sse(*(json.dumps(v) for v in values), done=done)
    assert_sane(normalize(dialect, status=200, body=body, content_type="text/event-stream"))


@PROPERTY
@given(
    dialect=st.sampled_from(DIALECTS),
    status=statuses,
    body=st.text() | st.binary(),
    ct=st.sampled_from(["", "text/event-stream", "application/json"]),
)
def test_any_text_never_raises(dialect: str, status: int, body: str | bytes, ct: str) -> None:
    assert_sane(normalize(dialect, status=status, body=body, content_type=ct))


STREAMS: dict[str, tuple[str, Callable[[], Exchange]]] = {
    "openai tool stream": (
        "openai",
        lambda: cassette("openai/test_run_stream_sync_streams_real_model.yaml", 0),
    ),
    "anthropic stream": (
        "anthropic",
        lambda: cassette("anthropic/test_request_stream_fallback_for_high_max_tokens.yaml"),
    ),
    "gemini stream": ("gemini", lambda: cassette("gemini/test_google_model_stream.yaml")),
    "dashscope parallel tools": (
        "dashscope",
        lambda: dashscope_raw("single-generation-message-with-parallel-tools-sse"),
    ),
    "ernie stream": ("ernie", lambda: stream_file("ernie/qianfan4j-readme-stream.sse")),
    "hunyuan tool stream": ("openai", lambda: sample("hunyuan/samples.sse", 1)),
}


@pytest.mark.parametrize(("dialect", "load"), list(STREAMS.values()), ids=list(STREAMS))
def test_every_prefix_of_a_real_stream_is_flagged_not_raised(
    dialect: str, load: Callable[[], Exchange]
) -> None:
    _status, body, content_type, request = load()
    complete = normalize(dialect, status=200, body=body, content_type=content_type, request=request)
    assert complete.warnings == ()
    end = len(body.rstrip())
    for cut in range(end):
        result = normalize(dialect, status=200, body=body[:cut], content_type=content_type, request=request)
        assert_sane(result)
        # Anything short of the full stream lacks its terminator or ends mid-event: it must say so.
        assert result.warnings, f"prefix of {cut} chars passed as a complete stream"
        assert result.finish_reason != "error"
