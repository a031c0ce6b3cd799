"""Every dialect and provider quirk of the fake provider, driven over real sockets and read back through
``pytest_llmport.dialects``, so the fake and the normalisers check each other."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import requests

from pytest_llmport.dialects.normalizer import normalize
from pytest_llmport.dialects.result import NormalizedResult
from pytest_llmport.fake import CANNED_ERRORS, ERROR_KINDS, QUIRKS, ernie_access_token
from pytest_llmport.sse import iter_events as iter_sse_events
from pytest_llmport.testing import FakeProvider, Reply, count_tokens

KEY = "sk-fake-dialects-0123"
TEXT = "你好，世界！这是一段比较长的回复。"
QUESTION = "请打个招呼"
FAMILIES = ("openai", *QUIRKS, "dashscope", "ernie", "anthropic", "gemini")
WEATHER = {"name": "get_weather", "arguments": {"city": "北京"}}
OPENAI_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def dialect_of(family: str) -> str:
    return "openai" if family == "openai" or family in QUIRKS else family


def fake_for(family: str, replies: Reply | None = None, **kwargs: Any) -> FakeProvider:
    dialect = dialect_of(family)
    quirks = {family} if family in QUIRKS else set()
    return FakeProvider(
        {QUESTION: replies if replies is not None else TEXT},
        api_key=KEY,
        dialect=dialect,
        quirks=quirks,
        chunk_chars=3,
        **kwargs,
    )


def call(
    fake: FakeProvider,
    family: str,
    *,
    stream: bool = False,
    tools: bool = False,
    text: str = QUESTION,
    include_usage: bool = False,
) -> tuple[httpx.Response, dict[str, Any]]:
    """Send one chat request the way a client of ``family`` does, on the family's real path."""
    dialect = dialect_of(family)
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    messages = [{"role": "user", "content": text}]
    body: dict[str, Any]
    if dialect == "openai":
        path, headers["Authorization"] = "/v1/chat/completions", f"Bearer {KEY}"
        body = {"model": "m", "messages": messages, "stream": stream}
        if tools:
            body["tools"] = [OPENAI_TOOL]
        if include_usage or stream:
            body["stream_options"] = {"include_usage": True}
    elif dialect == "dashscope":
        path, headers["Authorization"] = "/api/v1/services/aigc/text-generation/generation", f"Bearer {KEY}"
        parameters: dict[str, Any] = {"result_format": "message", "incremental_output": True}
        if tools:
            parameters["tools"] = [OPENAI_TOOL]
        body = {"model": "qwen-plus", "input": {"messages": messages}, "parameters": parameters}
        if stream:
            headers["X-DashScope-SSE"] = "enable"
    elif dialect == "ernie":
        path = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro"
        params["access_token"] = ernie_access_token(KEY)
        body = {"messages": messages, "stream": stream}
        if tools:
            body["functions"] = [{"name": "get_weather", "parameters": {"type": "object"}}]
    elif dialect == "anthropic":
        path = "/v1/messages"
        headers.update({"x-api-key": KEY, "anthropic-version": "2023-06-01"})
        body = {"model": "claude-x", "max_tokens": 100, "messages": messages, "stream": stream}
        if tools:
            body["tools"] = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    else:
        method = "streamGenerateContent" if stream else "generateContent"
        path, headers["x-goog-api-key"] = f"/v1beta/models/gemini-x:{method}", KEY
        if stream:
            params["alt"] = "sse"
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [{"name": "get_weather"}]}]
    with httpx.Client(base_url=fake.url) as http:
        response = http.post(path, json=body, headers=headers, params=params)
    return response, body


def normalized(family: str, response: httpx.Response, request: dict[str, Any]) -> NormalizedResult:
    return normalize(
        dialect_of(family),
        status=response.status_code,
        body=response.content,
        content_type=response.headers.get("content-type", ""),
        request=request,
    )


def prompt_and_completion(text: str = TEXT) -> tuple[int, int]:
    return count_tokens(QUESTION), count_tokens(text)


@pytest.fixture
def raw() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


# --- every family: text, tool calls, usage, errors -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("family", FAMILIES)
def test_text_reply_normalises_to_text_finish_and_usage(family: str, stream: bool) -> None:
    with fake_for(family) as fake:
        response, request = call(fake, family, stream=stream)
    assert response.status_code == 200
    result = normalized(family, response, request)
    prompt, completion = prompt_and_completion()
    assert (result.text, result.finish_reason, result.error) == (TEXT, "stop", None)
    assert (result.usage.prompt, result.usage.completion) == (prompt, completion)
    assert result.usage.total in (None, prompt + completion)  # Anthropic states no total
    assert result.streamed is stream
    assert not result.content_filtered


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("family", FAMILIES)
def test_tool_call_normalises_to_one_call(family: str, stream: bool) -> None:
    with fake_for(family, {"tool_call": WEATHER}) as fake:
        response, request = call(fake, family, stream=stream, tools=True)
    result = normalized(family, response, request)
    assert result.error is None, result
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "北京"})]
    # Gemini ends function calls with STOP; every other family says it called a tool.
    assert result.finish_reason == ("stop" if family == "gemini" else "tool_calls")


# Families whose real envelope maps a kind to another category (or to no error at all).
EXPECTED_CATEGORY: dict[tuple[str, str], str | None] = {
    ("minimax", "server"): "unknown",  # base_resp 1000 is MiniMax's "unknown error"
    ("ernie", "content_filter"): None,  # need_clear_history: a normal answer, flagged
    ("anthropic", "content_filter"): None,  # stop_reason refusal
    ("gemini", "content_filter"): None,  # promptFeedback.blockReason
}


@pytest.mark.parametrize("kind", ERROR_KINDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_canned_errors_normalise_to_their_category(family: str, kind: str) -> None:
    with fake_for(family) as fake:
        fake.fail_next_with(kind)
        status, _ = fake.error_body(kind)
        response, body = call(fake, family)
    assert response.status_code == status
    result = normalized(family, response, body)
    expected = EXPECTED_CATEGORY.get((family, kind), kind)
    if expected is None:
        assert result.error is None and result.content_filtered and result.finish_reason == "content_filter"
    else:
        assert result.error is not None and result.error.category == expected, result
        assert result.finish_reason == "error"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("family", FAMILIES)
def test_content_filter_directive_uses_the_family_signal(family: str, stream: bool) -> None:
    with fake_for(family, {"content_filter": True, "content": "部分"}) as fake:
        response, body = call(fake, family, stream=stream)
    result = normalized(family, response, body)
    assert result.content_filtered, result
    if result.error is None:
        assert result.finish_reason == "content_filter"
    else:
        assert result.error.category == "content_filter"


@pytest.mark.parametrize("family", FAMILIES)
def test_error_directive_breaks_a_stream_midway(family: str) -> None:
    with fake_for(family, {"error": "server", "content": "半句话"}) as fake:
        response, body = call(fake, family, stream=True)
        whole, whole_request = call(fake, family)
    streamed = normalized(family, response, body)
    assert response.status_code == 200
    assert streamed.error is not None and streamed.finish_reason == "error"
    expected = "unknown" if family == "minimax" else "server"
    assert streamed.error.category == expected
    whole_result = normalized(family, whole, whole_request)
    assert whole_result.error is not None and whole_result.error.category == expected
    assert whole.status_code == CANNED_ERRORS[family]["server"][0]


@pytest.mark.parametrize(
    "family", ["openai", "zhipu", "deepseek", "minimax", "dashscope", "anthropic", "gemini"]
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_reasoning_directive(family: str, stream: bool) -> None:
    with fake_for(family, {"reasoning": "先想一想再回答", "content": TEXT}) as fake:
        response, request = call(fake, family, stream=stream)
    result = normalized(family, response, request)
    assert (result.reasoning, result.text, result.finish_reason) == ("先想一想再回答", TEXT, "stop")


def test_max_tokens_truncation_is_length_everywhere() -> None:
    with fake_for("anthropic") as fake, httpx.Client(base_url=fake.url) as http:
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        body = {"model": "c", "max_tokens": 2, "messages": [{"role": "user", "content": QUESTION}]}
        response = http.post("/v1/messages", json=body, headers=headers)
    result = normalized("anthropic", response, body)
    assert (result.text, result.finish_reason) == (TEXT[:4], "length")


# --- OpenAI-family quirks on the wire ----------------------------------------------------------------------


def sse_json(response: httpx.Response) -> list[Any]:
    return [json.loads(e.data) for e in iter_sse_events(response.text) if e.data and e.data != "[DONE]"]


def test_zhipu_stream_shape() -> None:
    with fake_for("zhipu") as fake:
        response, _ = call(fake, "zhipu", stream=True)
    chunks = sse_json(response)
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
    assert all("finish_reason" not in c["choices"][0] for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"]["content"]
    assert last["usage"]["completion_tokens"] == count_tokens(TEXT)
    assert response.text.endswith("data: [DONE]\n\n")


def test_zhipu_sensitive_is_a_400_with_a_string_code_or_a_stream_finish_reason() -> None:
    with fake_for("zhipu", {"content_filter": True, "content": "部分"}) as fake:
        whole, _ = call(fake, "zhipu")
        streamed, _ = call(fake, "zhipu", stream=True)
    assert whole.status_code == 400 and whole.json()["error"]["code"] == "1301"
    assert sse_json(streamed)[-1]["choices"][0]["finish_reason"] == "sensitive"


def test_zhipuai_sdk_sees_quirks_and_errors() -> None:
    zhipuai = pytest.importorskip("zhipuai")
    with fake_for("zhipu") as fake:
        sdk = zhipuai.ZhipuAI(api_key=KEY, base_url=fake.url + "/api/paas/v4", max_retries=0)
        chunks = list(
            sdk.chat.completions.create(
                model="glm-4", messages=[{"role": "user", "content": QUESTION}], stream=True
            )
        )
        fake.replies = {QUESTION: {"content_filter": True}}
        with pytest.raises(zhipuai.APIRequestFailedError) as raised:
            sdk.chat.completions.create(model="glm-4", messages=[{"role": "user", "content": QUESTION}])
        fake.fail_next_with("rate_limit")
        with pytest.raises(zhipuai.APIReachLimitError):
            sdk.chat.completions.create(model="glm-4", messages=[{"role": "user", "content": QUESTION}])
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None
    assert "1301" in str(raised.value)


def test_deepseek_keep_alive_and_usage_on_the_finish_chunk() -> None:
    with fake_for("deepseek") as fake:
        response, _ = call(fake, "deepseek", stream=True)
    assert response.text.startswith(": keep-alive\n\n: keep-alive\n\ndata: ")
    chunks = sse_json(response)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["total_tokens"] > 0


def test_moonshot_usage_inside_the_choice() -> None:
    with fake_for("moonshot") as fake:
        response, _ = call(fake, "moonshot", stream=True)
    last = sse_json(response)[-1]
    assert "usage" not in last and last["choices"][0]["usage"]["completion_tokens"] == count_tokens(TEXT)


def test_minimax_placeholders_noise_and_terminal_completion() -> None:
    with fake_for("minimax") as fake:
        response, _ = call(fake, "minimax", stream=True)
        fake.fail_next_with("auth")
        failed, body = call(fake, "minimax")
    chunks = sse_json(response)
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1] if c["choices"][0]["delta"].get("content")]
    assert all(d["role"] == "" and d["name"] == "MiniMax AI" for d in deltas)
    assert all(c["usage"] == {"total_tokens": 0, "total_characters": 0} for c in chunks[:-1])
    terminal = chunks[-1]
    assert terminal["object"] == "chat.completion" and terminal["choices"][0]["message"]["content"] == TEXT
    assert terminal["usage"]["completion_tokens"] == count_tokens(TEXT)
    assert failed.status_code == 200 and failed.json()["base_resp"]["status_code"] == 1004
    assert normalized("minimax", failed, body).error is not None


def test_spark_body_and_stream_framing() -> None:
    with fake_for("spark") as fake:
        whole, _ = call(fake, "spark")
        streamed, _request = call(fake, "spark", stream=True)
    body = whole.json()
    assert {"code", "message", "sid"} <= body.keys() and not {"id", "model", "object"} & body.keys()
    assert "finish_reason" not in body["choices"][0]
    lines = [line for line in streamed.text.split("\n") if line]
    assert all(line.startswith("data:") and not line.startswith("data: ") for line in lines)
    assert lines[-1] == "data:[DONE]"
    assert "usage" in sse_json(streamed)[-1]


def test_hunyuan_note_and_twice_sent_tool_call_id() -> None:
    with fake_for("hunyuan", {"tool_call": WEATHER}) as fake:
        response, request = call(fake, "hunyuan", stream=True, tools=True)
    chunks = sse_json(response)
    assert all(c["note"] for c in chunks)
    fragments = [t for c in chunks if c["choices"] for t in c["choices"][0]["delta"].get("tool_calls", [])]
    assert len(fragments) == 2 and fragments[0]["id"] == fragments[1]["id"]
    assert fragments[1]["function"]["name"] == ""
    assert len(normalized("hunyuan", response, request).tool_calls) == 1


def test_qwen_compat_empty_fragment_and_usage_chunk() -> None:
    with fake_for("qwen-compat", {"tool_call": WEATHER}) as fake:
        response, request = call(fake, "qwen-compat", stream=True, tools=True, include_usage=True)
    chunks = sse_json(response)
    fragments = [
        t for c in chunks for t in (c["choices"][0]["delta"].get("tool_calls", []) if c["choices"] else [])
    ]
    assert fragments[-1]["function"]["arguments"] == "" and fragments[-1]["id"] == ""
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert normalized("qwen-compat", response, request).usage.total == chunks[-1]["usage"]["total_tokens"]


@pytest.mark.parametrize("family", ["openai", *QUIRKS])
def test_openai_sdk_reads_every_family(family: str) -> None:
    with fake_for(family) as fake, openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as sdk:
        messages: Any = [{"role": "user", "content": QUESTION}]
        whole = sdk.chat.completions.create(model="m", messages=messages)
        pieces = [
            c.choices[0].delta.content or ""
            for c in sdk.chat.completions.create(model="m", messages=messages, stream=True)
            if c.choices and getattr(c.choices[0], "delta", None) is not None
        ]
        fake.fail_next_with("rate_limit")
        if CANNED_ERRORS[family]["rate_limit"][0] == 429:
            with pytest.raises(openai.RateLimitError):
                sdk.chat.completions.create(model="m", messages=messages)
    assert whole.choices[0].message.content == TEXT
    assert "".join(pieces) == TEXT


def test_wrong_key_gets_the_family_auth_error() -> None:
    with fake_for("zhipu") as fake, httpx.Client(base_url=fake.url) as http:
        response = http.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert response.status_code == 401 and response.json()["error"]["code"] == "1002"


# --- DashScope native ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("incremental", [True, False])
@pytest.mark.parametrize("result_format", ["text", "message"])
def test_dashscope_stream_framing(incremental: bool, result_format: str) -> None:
    with fake_for("dashscope") as fake, httpx.Client(base_url=fake.url) as http:
        body = {
            "model": "qwen-plus",
            "input": {"prompt": QUESTION},
            "parameters": {"result_format": result_format, "incremental_output": incremental},
        }
        path = "/api/v1/services/aigc/text-generation/generation"
        response = http.post(
            path, json=body, headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"}
        )
    events = iter_sse_events(response.text)
    assert "[DONE]" not in response.text and response.headers["content-type"].startswith("text/event-stream")
    assert all(e.event == "result" and e.comments == ("HTTP_STATUS/200",) and e.id for e in events)
    assert "\ndata:{" in response.text
    payloads = [json.loads(e.data or "") for e in events]
    outputs = [p["output"] if result_format == "text" else p["output"]["choices"][0] for p in payloads]
    texts = [o["text"] if result_format == "text" else o["message"]["content"] for o in outputs]
    assert [o["finish_reason"] for o in outputs] == ["null"] * (len(outputs) - 1) + ["stop"]
    assert all({"input_tokens", "output_tokens", "total_tokens"} <= p["usage"].keys() for p in payloads)
    assert ("".join(texts) if incremental else texts[-1]) == TEXT
    if not incremental:
        assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    result = normalized("dashscope", response, body)
    assert (result.text, result.finish_reason, result.usage.completion) == (TEXT, "stop", count_tokens(TEXT))


def test_dashscope_stream_error_event_inside_a_200() -> None:
    with fake_for("dashscope", {"content_filter": True, "content": "部分"}) as fake:
        response, _request = call(fake, "dashscope", stream=True)
    events = iter_sse_events(response.text)
    assert response.status_code == 200
    assert (events[-1].event, events[-1].comments) == ("error", ("HTTP_STATUS/400",))
    assert json.loads(events[-1].data or "")["code"] == "DataInspectionFailed"


def test_dashscope_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    dashscope = pytest.importorskip("dashscope")
    with fake_for("dashscope") as fake:
        monkeypatch.setattr(dashscope, "base_http_api_url", fake.url + "/api/v1")
        messages = [{"role": "user", "content": QUESTION}]
        whole = dashscope.Generation.call(
            model="qwen-plus", messages=messages, result_format="message", api_key=KEY
        )
        text = dashscope.Generation.call(model="qwen-plus", prompt=QUESTION, api_key=KEY)
        pieces = list(
            dashscope.Generation.call(
                model="qwen-plus",
                messages=messages,
                result_format="message",
                stream=True,
                incremental_output=True,
                api_key=KEY,
            )
        )
        denied = dashscope.Generation.call(model="qwen-plus", prompt=QUESTION, api_key="sk-wrong")
        fake.replies = {QUESTION: {"error": "rate_limit", "content": "半句"}}
        broken = list(dashscope.Generation.call(model="qwen-plus", prompt=QUESTION, stream=True, api_key=KEY))
    assert whole.status_code == 200 and whole.output.choices[0].message.content == TEXT
    assert whole.usage.input_tokens == count_tokens(QUESTION)
    assert text.output.text == TEXT and text.output.finish_reason == "stop"
    assert "".join(p.output.choices[0].message.content for p in pieces) == TEXT
    assert pieces[-1].output.choices[0].finish_reason == "stop"
    assert (denied.status_code, denied.code) == (401, "InvalidApiKey")
    assert broken[-1].code == "Throttling.RateQuota"


# --- ERNIE ---------------------------------------------------------------------------------------------------


def test_ernie_token_flow_and_chat_with_requests() -> None:
    with fake_for("ernie") as fake, requests.Session() as http:
        token_url = fake.url + "/oauth/2.0/token"
        params = {"grant_type": "client_credentials", "client_id": KEY, "client_secret": "secret"}
        token = http.post(token_url, params=params).json()["access_token"]
        bad = http.post(token_url, params={**params, "client_id": "other"})
        chat = fake.url + "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/eb-instant"
        body = {"messages": [{"role": "user", "content": QUESTION}], "system": "你是助手"}
        whole = http.post(chat, params={"access_token": token}, json=body)
        streamed = http.post(chat, params={"access_token": token}, json={**body, "stream": True})
        wrong = http.post(chat, params={"access_token": "24.nope"}, json=body)
    assert token == ernie_access_token(KEY) and bad.status_code == 401
    payload = whole.json()
    assert (payload["result"], payload["finish_reason"], payload["is_truncated"]) == (TEXT, "normal", False)
    assert payload["need_clear_history"] is False
    events = [json.loads(e.data or "") for e in iter_sse_events(streamed.text)]
    assert "[DONE]" not in streamed.text
    assert [e["sentence_id"] for e in events] == list(range(len(events)))
    assert [e["is_end"] for e in events] == [False] * (len(events) - 1) + [True]
    result = normalize(
        "ernie", status=200, body=streamed.content, content_type=streamed.headers["content-type"]
    )
    assert (result.text, result.finish_reason, result.usage.completion) == (TEXT, "stop", count_tokens(TEXT))
    assert result.usage.prompt == count_tokens(QUESTION) + count_tokens("你是助手")
    assert wrong.status_code == 200 and wrong.json()["error_code"] == 110
    assert normalize("ernie", status=200, body=wrong.content).error.category == "auth"  # type: ignore[union-attr]


# --- Anthropic -----------------------------------------------------------------------------------------------


def test_anthropic_headers_events_and_tool_use(raw: httpx.Client) -> None:
    with fake_for("anthropic", {"tool_call": WEATHER}) as fake:
        url = fake.url + "/v1/messages"
        body = {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": QUESTION}]}
        no_version = raw.post(url, json=body, headers={"x-api-key": KEY})
        no_key = raw.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
        response, request = call(fake, "anthropic", stream=True, tools=True)
    assert no_version.status_code == 400 and no_version.json()["type"] == "error"
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    names = [e.event for e in iter_sse_events(response.text)]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    assert "input_json_delta" in response.text and "[DONE]" not in response.text
    result = normalized("anthropic", response, request)
    assert result.tool_calls[0].id is not None and result.tool_calls[0].id.startswith("toolu_")


def test_anthropic_plain_message_body() -> None:
    with fake_for("anthropic") as fake:
        response, _ = call(fake, "anthropic")
    body = response.json()
    assert body["content"] == [{"type": "text", "text": TEXT}] and body["stop_reason"] == "end_turn"
    assert body["usage"]["input_tokens"] == count_tokens(QUESTION)
    assert response.headers["request-id"].startswith("req_fake_")


# --- Gemini --------------------------------------------------------------------------------------------------


def test_gemini_keys_sse_and_json_array(raw: httpx.Client) -> None:
    with fake_for("gemini") as fake:
        body = {"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]}
        base = fake.url + "/v1beta/models/gemini-x"
        by_query = raw.post(base + ":generateContent", params={"key": KEY}, json=body)
        no_key = raw.post(base + ":generateContent", json=body)
        bad_key = raw.post(base + ":generateContent", params={"key": "nope"}, json=body)
        sse = raw.post(base + ":streamGenerateContent", params={"alt": "sse", "key": KEY}, json=body)
        array = raw.post(base + ":streamGenerateContent", params={"key": KEY}, json=body)
    assert by_query.json()["candidates"][0]["finishReason"] == "STOP"
    assert no_key.status_code == 403 and no_key.json()["error"]["status"] == "PERMISSION_DENIED"
    assert normalize("gemini", status=400, body=bad_key.content).error.category == "auth"  # type: ignore[union-attr]
    assert sse.text.endswith("\r\n\r\n") and "\n\n" not in sse.text.replace("\r\n\r\n", "")
    events = [json.loads(e.data or "") for e in iter_sse_events(sse.text)]
    assert all("usageMetadata" in e for e in events)
    assert ["finishReason" in e["candidates"][0] for e in events] == [False] * (len(events) - 1) + [True]
    assert isinstance(array.json(), list)
    for response in (sse, array):
        result = normalize(
            "gemini", status=200, body=response.content, content_type=response.headers["content-type"]
        )
        assert (result.text, result.finish_reason, result.streamed) == (TEXT, "stop", True)


# --- configuration -------------------------------------------------------------------------------------------


def test_dialect_and_quirk_validation_and_switching() -> None:
    with pytest.raises(ValueError, match="unknown dialect"):
        FakeProvider(dialect="cohere")
    with pytest.raises(ValueError, match="unknown quirks"):
        FakeProvider(quirks={"baichuan"})
    with pytest.raises(ValueError, match="only apply"):
        FakeProvider(dialect="gemini", quirks={"zhipu"})
    with pytest.raises(ValueError, match="mutually exclusive"):
        FakeProvider(quirks={"zhipu", "deepseek"})
    with pytest.raises(ValueError, match="unknown error kind"):
        FakeProvider().error_body("teapot")
    fake = FakeProvider(quirks="spark")
    assert (fake.dialect, fake.quirks, fake.family) == ("openai", frozenset({"spark"}), "spark")
    with fake:
        fake.set_dialect("gemini")
        response, request = call(fake, "gemini")
    assert normalized("gemini", response, request).text.startswith("[fake]")


def test_fail_next_sends_the_body_as_given_in_every_dialect() -> None:
    for family in ("dashscope", "ernie", "anthropic", "gemini"):
        with fake_for(family) as fake:
            fake.fail_next(418, {"anything": family})
            response, _ = call(fake, family)
        assert (response.status_code, response.json()) == (418, {"anything": family})


def test_ids_are_deterministic_per_dialect() -> None:
    bodies = []
    for _ in range(2):
        with fake_for("anthropic") as fake:
            bodies.append([call(fake, "anthropic")[0].json()["id"] for _ in range(2)])
    assert bodies[0] == bodies[1] and bodies[0][0] != bodies[0][1]


# --- fidelity: auth the real APIs accept, paths they refuse ---------------------------------------------


def test_anthropic_accepts_a_bearer_token_as_well_as_x_api_key(raw: httpx.Client) -> None:
    body = {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": QUESTION}]}
    version = {"anthropic-version": "2023-06-01"}
    with fake_for("anthropic") as fake:
        url = fake.url + "/v1/messages"
        bearer = raw.post(url, json=body, headers={**version, "Authorization": f"Bearer {KEY}"})
        wrong = raw.post(url, json=body, headers={**version, "Authorization": "Bearer sk-wrong"})
    assert bearer.status_code == 200 and bearer.json()["content"][0]["text"] == TEXT
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"


def test_anthropic_sdk_with_an_auth_token() -> None:
    anthropic = pytest.importorskip("anthropic")
    with fake_for("anthropic") as fake:
        client = anthropic.Anthropic(base_url=fake.url, auth_token=KEY, api_key=None, max_retries=0)
        message = client.messages.create(
            model="c", max_tokens=50, messages=[{"role": "user", "content": QUESTION}]
        )
    assert message.content[0].text == TEXT


@pytest.mark.parametrize(
    ("family", "path"),
    [
        ("openai", "/v1/v1/chat/completions"),
        ("zhipu", "/api/paas/v4/v4/chat/completions"),
        ("anthropic", "/v1/v1/messages"),
        ("gemini", "/v1beta/v1beta/models/gemini-x:generateContent"),
        ("dashscope", "/api/v1/v1/services/aigc/text-generation/generation"),
    ],
)
def test_doubled_version_segments_are_not_found(raw: httpx.Client, family: str, path: str) -> None:
    with fake_for(family) as fake:
        headers = {
            "Authorization": f"Bearer {KEY}",
            "x-api-key": KEY,
            "x-goog-api-key": KEY,
            "anthropic-version": "2023-06-01",
        }
        response = raw.post(fake.url + path, json={"model": "m"}, headers=headers)
        assert response.status_code == 404
        assert fake.requests[-1].path == path


@pytest.mark.parametrize("family", ["openai", "dashscope", "ernie", "anthropic", "gemini"])
def test_a_failing_reply_callable_is_the_dialects_server_error(family: str) -> None:
    def broken(payload: dict[str, Any]) -> Reply:
        raise RuntimeError("the reply table is broken")

    with fake_for(family) as fake:
        fake.replies = broken
        response, body = call(fake, family)
    result = normalized(family, response, body)
    assert result.error is not None
    assert result.error.category == "server"
    assert "the reply table is broken" in (result.error.message or "")
    # The family's own server error: ERNIE answers it in HTTP 200, Anthropic as 529 overloaded.
    assert (
        response.status_code
        == fake.error_body("server")[0]
        == {"ernie": 200, "anthropic": 529}.get(family, 500)
    )
