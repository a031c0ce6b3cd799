"""``chat()`` / ``llm_provider.chat()``: native dialects against the fake provider, then record and replay."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from pytest_llmport.chat import ChatResult, chat
from pytest_llmport.dialects.anthropic import DEFAULT_MAX_TOKENS
from pytest_llmport.fake import ernie_access_token
from pytest_llmport.handle import LLMProvider
from pytest_llmport.providers import BUILTIN_PROVIDERS, Provider
from pytest_llmport.testing import FakeProvider

from .conftest import cassettes

AK = "ak-llmport-chat-0123456789"
SK = "sk-llmport-chat-secret-9876543210"
BUILTIN = {p.name: p for p in BUILTIN_PROVIDERS}
# dialect -> (built-in provider, path prefix of its base URL on the fake)
DIALECTS = {
    "openai": ("openai", "/v1"),
    "dashscope": ("qwen-native", "/api/v1"),
    "ernie": ("ernie-native", ""),
    "anthropic": ("anthropic", "/v1"),
    "gemini": ("gemini", "/v1beta"),
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
REPLIES = {"天气": {"tool_call": {"name": "get_weather", "arguments": {"city": "北京"}}}}
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好，世界"}]


def spec_for(fake: FakeProvider) -> Provider:
    name, prefix = DIALECTS[fake.dialect]
    return dataclasses.replace(BUILTIN[name], base_url=fake.url + prefix)


@pytest.fixture(params=list(DIALECTS))
def native(request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    with FakeProvider(REPLIES, dialect=request.param, api_key=AK, chunk_chars=2) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def ask(fake: FakeProvider, http: httpx.Client, **kwargs: object) -> ChatResult:
    options: dict[str, object] = {"messages": HELLO, "api_key": AK, "secret_key": SK}
    options.update(kwargs)
    return chat(spec_for(fake), http=http, **options)  # type: ignore[arg-type]


def chat_requests(fake: FakeProvider) -> list[object]:
    return [r for r in fake.requests if "oauth" not in r.path]


# ------------------------------------------------------------------------------------ every dialect


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_text_answer_is_normalised_with_usage_and_timings(
    native: FakeProvider, http: httpx.Client, stream: bool
) -> None:
    result = ask(native, http, stream=stream)
    assert result.ok and result.error is None and result.status == 200
    assert result.text == "[fake] 你好，世界"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt, result.usage.completion) == (8, 6)  # the fake counts two chars a token
    assert result.result.streamed is stream
    assert result.ttft_ms is not None and 0 < result.ttft_ms <= result.total_ms
    if not stream:
        assert result.ttft_ms == result.total_ms
    assert result.dialect == native.dialect and result.streamed is stream
    assert result.raw_body.count("[f") == 1 and result.request_body
    summary = result.to_dict()
    assert summary["finish_reason"] == "stop" and summary["error"] is None
    assert summary["ttft_ms"] == result.ttft_ms
    assert json.dumps(summary)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_call_comes_back_parsed(native: FakeProvider, http: httpx.Client, stream: bool) -> None:
    result = ask(
        native, http, messages=[{"role": "user", "content": "北京天气怎么样"}], tools=TOOLS, stream=stream
    )
    assert result.ok, result.error
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "北京"})]
    # Gemini signals a function call with finishReason STOP.
    assert result.finish_reason == ("stop" if native.dialect == "gemini" else "tool_calls")
    assert result.ttft_ms is not None  # a tool call is content


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_provider_errors_are_results_not_exceptions(
    native: FakeProvider, http: httpx.Client, stream: bool
) -> None:
    tokens: dict[tuple[str, str, str], str] = {}
    if native.dialect == "ernie":
        assert ask(native, http, tokens=tokens).ok  # the token is fetched: the failure hits the chat call
    native.fail_next_with("rate_limit")
    result = ask(native, http, stream=stream, tokens=tokens)
    assert not result.ok and result.error is not None
    assert result.error.category == "rate_limit"
    assert result.finish_reason == "error" and result.text == ""
    assert result.ttft_ms is None if stream else result.ttft_ms is not None
    assert result.to_dict()["error"] == "rate_limit"


def test_wrong_key_is_an_auth_error(native: FakeProvider, http: httpx.Client) -> None:
    result = ask(native, http, api_key="sk-wrong-key-000000")
    assert result.error is not None and result.error.category == "auth"


def test_transport_failure_raises(native: FakeProvider, http: httpx.Client) -> None:
    spec = spec_for(native)
    native.stop()
    with pytest.raises(httpx.ConnectError):
        chat(spec, api_key=AK, secret_key=SK, http=http, messages=HELLO)


def test_streamed_ttft_is_the_first_content_event_not_the_whole_stream(http: httpx.Client) -> None:
    for dialect in DIALECTS:
        with FakeProvider(dialect=dialect, api_key=AK, chunk_chars=2, chunk_delay=0.03) as fake:
            result = ask(fake, http, stream=True)
        assert result.text == "[fake] 你好，世界", dialect
        # Seven content events 30 ms apart: the first arrives long before the last.
        assert result.ttft_ms is not None and result.ttft_ms + 100 < result.total_ms, (dialect, result)


def test_tool_round_trip_is_converted_for_every_dialect(native: FakeProvider, http: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "You answer about weather."},
        {"role": "user", "content": "北京天气怎么样"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "北京"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"forecast": "晴"}'},
    ]
    result = ask(native, http, messages=messages, tools=TOOLS)
    assert result.ok, result.error  # the fake accepted the converted history
    body = result.request_body
    if native.dialect == "anthropic":
        assert body["system"] == "You answer about weather."
        assert body["messages"][1]["content"] == [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "北京"}}
        ]
        assert body["messages"][2]["content"][0] == {
            "type": "tool_result",
            "tool_use_id": "call_1",
            "content": '{"forecast": "晴"}',
        }
    elif native.dialect == "gemini":
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["contents"][1]["parts"] == [
            {"functionCall": {"name": "get_weather", "args": {"city": "北京"}}}
        ]
        assert body["contents"][2]["parts"] == [
            {"functionResponse": {"name": "get_weather", "response": {"forecast": "晴"}}}
        ]
    elif native.dialect == "ernie":
        assert body["system"] == "You answer about weather."
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "function"]
        assert body["messages"][1]["function_call"] == {
            "name": "get_weather",
            "arguments": '{"city": "北京"}',
        }
        assert body["messages"][2] == {
            "role": "function",
            "name": "get_weather",
            "content": '{"forecast": "晴"}',
        }
    else:
        messages_sent = body["messages"] if native.dialect == "openai" else body["input"]["messages"]
        assert messages_sent == messages


# ----------------------------------------------------------------------------------- wire formats


def sent(
    fake: FakeProvider, index: int = -1
) -> tuple[str, dict[str, str], dict[str, object], dict[str, list[str]]]:
    request = chat_requests(fake)[index]
    return request.path, request.headers, request.json(), parse_qs(request.query)  # type: ignore[attr-defined]


def test_openai_wire(http: httpx.Client) -> None:
    with FakeProvider(api_key=AK) as fake:
        ask(fake, http, stream=True, response_format={"type": "json_object"}, extra={"temperature": 0})
        path, headers, body, _ = sent(fake)
    assert path == "/v1/chat/completions" and headers["authorization"] == f"Bearer {AK}"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0
    assert body["messages"] == HELLO and body["model"] == BUILTIN["openai"].model


@pytest.mark.parametrize("stream", [False, True])
def test_dashscope_wire(http: httpx.Client, stream: bool) -> None:
    with FakeProvider(REPLIES, dialect="dashscope", api_key=AK) as fake:
        result = ask(
            fake, http, stream=stream, tools=TOOLS, response_format={"type": "json_object"}, extra={"seed": 7}
        )
        path, headers, body, _ = sent(fake)
    assert result.ok
    assert path == "/api/v1/services/aigc/text-generation/generation"
    assert headers["authorization"] == f"Bearer {AK}"
    assert (headers.get("x-dashscope-sse") == "enable") is stream
    assert body == {
        "model": "qwen-plus",
        "input": {"messages": HELLO},
        "parameters": {
            "result_format": "message",
            "incremental_output": stream,
            "tools": TOOLS,
            "response_format": {"type": "json_object"},
            "seed": 7,
        },
    }


def test_ernie_wire_and_token_exchange(http: httpx.Client) -> None:
    with FakeProvider(REPLIES, dialect="ernie", api_key=AK) as fake:
        tokens: dict[tuple[str, str, str], str] = {}
        first = ask(fake, http, stream=True, tools=TOOLS, tokens=tokens, extra={"max_tokens": 50})
        second = ask(fake, http, tokens=tokens)
        requests = list(fake.requests)
    assert first.ok and second.ok and first.exchanges == 2 and second.exchanges == 1
    assert first.token_ms is not None and second.token_ms is None
    token_request, chat_one, chat_two = requests  # one token exchange for the caller's token mapping
    assert token_request.method == "POST" and token_request.path == "/oauth/2.0/token"
    assert parse_qs(token_request.query) == {
        "grant_type": ["client_credentials"],
        "client_id": [AK],
        "client_secret": [SK],
    }
    token = ernie_access_token(AK)
    assert chat_one.path == "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro"
    assert parse_qs(chat_one.query) == parse_qs(chat_two.query) == {"access_token": [token]}
    assert "authorization" not in chat_one.headers
    body = chat_one.json()
    assert body == {
        "messages": [{"role": "user", "content": "你好，世界"}],
        "system": "Be brief.",
        "functions": [
            {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": TOOLS[0]["function"]["parameters"],  # type: ignore[index]
            }
        ],
        "stream": True,
        "max_output_tokens": 50,
    }
    assert token not in first.raw_body + second.raw_body and SK not in json.dumps(first.request_body)


def test_ernie_without_a_token_mapping_fetches_a_token_per_call(http: httpx.Client) -> None:
    with FakeProvider(dialect="ernie", api_key=AK) as fake:
        assert ask(fake, http).ok and ask(fake, http).ok
        assert [r.path for r in fake.requests].count("/oauth/2.0/token") == 2


def test_ernie_token_failures_are_results(http: httpx.Client) -> None:
    with FakeProvider(dialect="ernie", api_key=AK) as fake:
        missing_secret = ask(fake, http, secret_key="")
        fake.fail_next(500, {"error": "server_error"})
        broken = ask(fake, http)
        assert all("oauth" in r.path for r in fake.requests)  # no chat request without a token
    assert missing_secret.error is not None and missing_secret.error.category == "auth"
    assert missing_secret.status == 401 and missing_secret.exchanges == 1
    assert broken.error is not None and broken.status == 500


def test_ernie_drops_a_rejected_cached_token(http: httpx.Client) -> None:
    with FakeProvider(dialect="ernie", api_key=AK) as fake:
        tokens: dict[tuple[str, str, str], str] = {}
        assert ask(fake, http, tokens=tokens).ok and tokens
        fake.fail_next_with("auth")  # error_code 110: access token invalid
        rejected = ask(fake, http, tokens=tokens)
        assert rejected.error is not None and rejected.error.category == "auth" and not tokens
        assert ask(fake, http, tokens=tokens).exchanges == 2


def test_anthropic_wire(http: httpx.Client) -> None:
    with FakeProvider(REPLIES, dialect="anthropic", api_key=AK) as fake:
        assert ask(fake, http, tools=TOOLS, stream=True).ok
        path, headers, body, _ = sent(fake)
        assert ask(fake, http, extra={"max_tokens": 64, "stop": "END"}).ok
        _, _, override, _ = sent(fake)
    assert path == "/v1/messages"
    assert headers["x-api-key"] == AK and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "你好，世界"}],
        "system": "Be brief.",
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather of a city",
                "input_schema": TOOLS[0]["function"]["parameters"],  # type: ignore[index]
            }
        ],
        "stream": True,
    }
    assert override["max_tokens"] == 64 and override["stop_sequences"] == ["END"]


def test_anthropic_has_no_json_mode(http: httpx.Client) -> None:
    with FakeProvider(dialect="anthropic", api_key=AK) as fake, pytest.raises(ValueError, match="JSON mode"):
        ask(fake, http, response_format={"type": "json_object"})


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_wire(http: httpx.Client, stream: bool) -> None:
    with FakeProvider(dialect="gemini", api_key=AK, replies=lambda _: '{"ok": true}') as fake:
        result = ask(
            fake,
            http,
            stream=stream,
            tools=TOOLS,
            response_format={"type": "json_object"},
            extra={"temperature": 0.2, "max_tokens": 100},
        )
        path, headers, body, query = sent(fake)
    assert result.ok and result.json() == {"ok": True}
    method = "streamGenerateContent" if stream else "generateContent"
    assert path == f"/v1beta/models/gemini-2.5-flash:{method}"
    assert query == ({"alt": ["sse"]} if stream else {})
    assert headers["x-goog-api-key"] == AK and "authorization" not in headers
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "你好，世界"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather of a city",
                        "parameters": TOOLS[0]["function"]["parameters"],  # type: ignore[index]
                    }
                ]
            }
        ],
        "generationConfig": {
            "responseMimeType": "application/json",
            "temperature": 0.2,
            "maxOutputTokens": 100,
        },
    }


def test_model_override_and_empty_messages(http: httpx.Client) -> None:
    with FakeProvider(api_key=AK) as fake:
        result = ask(fake, http, model="other-model")
        assert result.request_body["model"] == "other-model" and result.result.model == "other-model"
        with pytest.raises(ValueError, match="empty"):
            ask(fake, http, messages=[])


# ---------------------------------------------------------------------------------- LLMProvider.chat


def test_handle_chat_records_exchanges_and_reads_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QIANFAN_SK", SK)
    with FakeProvider(REPLIES, dialect="ernie", api_key=AK) as fake:
        handle = LLMProvider(spec_for(fake), AK, tmp_path / "c.yaml", "once", False)
        try:
            first = handle.chat(HELLO, temperature=0.5)
            second = handle.chat([{"role": "user", "content": "天气"}], tools=TOOLS, stream=True)
        finally:
            handle._cache.close()
        assert [r.path for r in fake.requests].count("/oauth/2.0/token") == 1  # one per handle (= per test)
    assert handle.exchanges == [first, second]
    assert first.request_body["temperature"] == 0.5 and first.text == "[fake] 你好，世界"
    assert second.tool_calls[0].name == "get_weather"
    assert SK not in repr(handle)
    explicit = LLMProvider(spec_for(fake), AK, tmp_path / "c.yaml", "once", False, secret_key="given")
    assert explicit.secret() == "given"


# ------------------------------------------------------------------------------ record, then replay

PORTABLE = """
import pytest

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
PROMPT = [{"role": "system", "content": "简短回答。"}, {"role": "user", "content": "我的订单三天了还没发货"}]


@pytest.mark.llm_portable
def test_plain_and_stream(llm_provider):
    plain = llm_provider.chat(PROMPT)
    assert plain.ok and plain.text.endswith("我的订单三天了还没发货") and plain.finish_reason == "stop"
    streamed = llm_provider.chat(PROMPT, stream=True)
    assert streamed.text == plain.text and streamed.ttft_ms is not None
    assert streamed.usage.completion == plain.usage.completion
    assert [e.finish_reason for e in llm_provider.exchanges] == ["stop", "stop"]


@pytest.mark.llm_portable
def test_tool_call(llm_provider):
    result = llm_provider.chat([{"role": "user", "content": "北京天气"}], tools=TOOLS, stream=True)
    assert result.ok and result.tool_calls[0].name == "get_weather"
    assert result.tool_calls[0].arguments == {"city": "北京"}
"""

KEYS = {
    "DASHSCOPE_API_KEY": "sk-dashscope-secret-0001",
    "QIANFAN_AK": "ak-qianfan-secret-0002",
    "QIANFAN_SK": "sk-qianfan-secret-0003",
    "ANTHROPIC_API_KEY": "sk-ant-secret-0004",
    "GEMINI_API_KEY": "AIza-gemini-secret-0005",
}
NATIVE = {
    "qwen-native": ("dashscope", "/api/v1", "DASHSCOPE_API_KEY"),
    "ernie-native": ("ernie", "", "QIANFAN_AK"),
    "anthropic": ("anthropic", "/v1", "ANTHROPIC_API_KEY"),
    "gemini": ("gemini", "/v1beta", "GEMINI_API_KEY"),
}


def test_native_chat_records_then_replays_offline_without_secrets(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    fakes: list[FakeProvider] = []
    try:
        for provider, (dialect, prefix, key_env) in NATIVE.items():
            fake = FakeProvider(REPLIES, dialect=dialect, api_key=KEYS[key_env]).start()
            fakes.append(fake)
            monkeypatch.setenv(f"{BUILTIN[provider].env_prefix}_BASE_URL", fake.url + prefix)
        providers = "--providers=" + ",".join(NATIVE)
        pytester.makepyfile(test_app=PORTABLE)
        recorded = pytester.runpytest(providers, *xdist_args)
        recorded.assert_outcomes(passed=8)
        recorded_requests = sum(len(f.requests) for f in fakes)
        # 3 chats per provider; ERNIE adds one token exchange per test (never shared across tests).
        assert recorded_requests == 3 * 4 + 2
    finally:
        for fake in fakes:
            fake.stop()

    files = cassettes(pytester.path)
    assert sorted(files) == sorted(
        f"cassettes/test_app/{test}/{provider}.yaml"
        for test in ("test_plain_and_stream", "test_tool_call")
        for provider in NATIVE
    )
    for path, text in files.items():
        if "ernie-native" in path:
            assert text.count("/oauth/2.0/token") == 1, path
        leaked = [
            secret for secret in (*KEYS.values(), ernie_access_token(KEYS["QIANFAN_AK"])) if secret in text
        ]
        assert not leaked, f"{path} leaks {leaked}"

    monkeypatch.setenv("CI", "true")  # record mode none; the servers are gone and so are the keys
    for name in KEYS:
        monkeypatch.delenv(name)
    replayed = pytester.runpytest(providers, *xdist_args)
    replayed.assert_outcomes(passed=8)
    assert cassettes(pytester.path) == files, "replay must not rewrite cassettes"


@pytest.mark.parametrize(
    "answer",
    [
        '```JSON\n{"ok": true}\n```',
        '好的，结果如下：\n```json\n{"ok": true}\n```',
        '<think>先想一想 {"ok": false}</think>\n{"ok": true}',
        '  {"ok": true}  ',
    ],
)
def test_json_takes_what_lenient_schema_takes(http: httpx.Client, answer: str) -> None:
    with FakeProvider(api_key=AK, replies=lambda _: answer) as fake:
        result = ask(fake, http)
    assert result.json() == {"ok": True}


def test_json_without_a_json_value_names_the_provider(http: httpx.Client) -> None:
    with FakeProvider(api_key=AK, replies=lambda _: "抱歉，我无法回答") as fake:
        result = ask(fake, http)
    with pytest.raises(ValueError, match=r"^openai: the answer holds no JSON value"):
        result.json()
