"""Tests for the fake OpenAI-compatible provider, exercised through real HTTP clients."""

from __future__ import annotations

import asyncio
import base64
import http.client
import itertools
import json
import math
import socket
import statistics
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import openai
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from pytest_llmport.testing import (
    CREATED,
    EMBEDDING_DIMENSIONS,
    FakeProvider,
    ReceivedRequest,
    Reply,
    count_tokens,
    embed_text,
)

WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": user(text), **extra}


def sse_data(raw: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, checking that every event is ``data: …`` plus a blank line."""
    assert raw.endswith("\n\n")
    events = raw[:-2].split("\n\n")
    assert all(event.startswith("data: ") and "\n" not in event for event in events), events
    return [event.removeprefix("data: ") for event in events]


def cosine(left: list[float], right: list[float]) -> float:
    return sum(a * b for a, b in zip(left, right, strict=True))


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def shared_http(shared_fake: FakeProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_fake.base_url) as http:
        yield http


@pytest.fixture
def client(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-unused", max_retries=0) as sdk:
        yield sdk


# --- non-streaming chat -------------------------------------------------------------------------------------


def test_mapping_reply_with_chinese_round_trip() -> None:
    question = "今天北京的天气怎么样？"
    with (
        FakeProvider({"天气": "北京今天晴，气温 25℃。"}) as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk,
    ):
        raw = sdk.chat.completions.with_raw_response.create(model="glm-4-flash", messages=user(question))
        completion = raw.parse()
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert int(raw.headers["content-length"]) == len(raw.content)
    assert "date" not in raw.headers
    assert "北京今天晴".encode() in raw.content  # sent as UTF-8, not as \\u escapes
    assert completion.object == "chat.completion"
    assert completion.created == CREATED
    assert completion.model == "glm-4-flash"
    assert completion.id.startswith("chatcmpl-fake-")
    assert completion.id.endswith("-1")
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "北京今天晴，气温 25℃。"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_tokens(question) == 6
    assert completion.usage.completion_tokens == count_tokens("北京今天晴，气温 25℃。") == 7
    assert completion.usage.total_tokens == 13
    assert fake.requests[0].json()["messages"][0]["content"] == question


def test_mapping_uses_first_matching_key_in_insertion_order() -> None:
    replies = {"weather": "first", "the weather": "second", "rain": "third"}
    with FakeProvider(replies) as fake, httpx.Client(base_url=fake.base_url) as http:
        contents = [
            http.post("/chat/completions", json=chat_body(text)).json()["choices"][0]["message"]["content"]
            for text in ("is the weather nice, any rain?", "rain tomorrow?", "something else")
        ]
    assert contents == ["first", "third", "[fake] something else"]


def test_default_reply_uses_name_and_last_user_message_text() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "an older question"},
        {"role": "assistant", "content": "an older answer"},
        {"role": "user", "content": [{"type": "text", "text": "你好，"}, {"type": "text", "text": "世界"}]},
        {"role": "tool", "tool_call_id": "x", "content": "tool output"},
    ]
    with FakeProvider(name="qwen") as fake, httpx.Client(base_url=fake.base_url) as http:
        body = http.post("/chat/completions", json={"model": "qwen-plus", "messages": messages}).json()
    assert body["choices"][0]["message"]["content"] == "[qwen] 你好，世界"
    # 8, 17, 15, 5 and 11 characters, each message rounded up on its own
    assert body["usage"]["prompt_tokens"] == 4 + 9 + 8 + 3 + 6


def test_callable_reply_receives_the_parsed_request() -> None:
    seen: list[dict[str, Any]] = []

    def reply(request: dict[str, Any]) -> str:
        seen.append(request)
        return f"{request['model']} got {len(request['messages'])} message(s)"

    with (
        FakeProvider(reply) as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk,
    ):
        completion = sdk.chat.completions.create(model="deepseek-chat", messages=user("hi"), temperature=0.3)
    assert completion.choices[0].message.content == "deepseek-chat got 1 message(s)"
    assert seen == [{"model": "deepseek-chat", "messages": user("hi"), "temperature": 0.3}]


def test_failing_reply_callable_becomes_a_500() -> None:
    def reply(request: dict[str, Any]) -> str:
        raise KeyError("no canned answer")

    with (
        FakeProvider(reply) as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk,
    ):
        with pytest.raises(openai.InternalServerError, match="no canned answer"):
            sdk.chat.completions.create(model="m", messages=user("hi"))
        # The connection and the server survive the failure.
        fake.replies = {"hi": "fine now"}
        assert sdk.chat.completions.create(model="m", messages=user("hi")).choices[0].message.content == (
            "fine now"
        )


def test_json_object_response_format_and_dict_replies_are_sent_as_text(fake: FakeProvider) -> None:
    fake.replies = {
        "json": {"answer": "是", "score": 1},
        "tool": {"tool_call": {"name": "f", "arguments": {}}},
    }
    with httpx.Client(base_url=fake.base_url) as http:
        as_json = http.post(
            "/chat/completions", json=chat_body("give json", response_format={"type": "json_object"})
        ).json()
        without_tools = http.post("/chat/completions", json=chat_body("call a tool")).json()
    assert json.loads(as_json["choices"][0]["message"]["content"]) == {"answer": "是", "score": 1}
    assert "tool_calls" not in without_tools["choices"][0]["message"]
    assert json.loads(without_tools["choices"][0]["message"]["content"]) == {
        "tool_call": {"name": "f", "arguments": {}}
    }


def test_max_tokens_truncates_with_finish_reason_length(fake: FakeProvider) -> None:
    fake.replies = {"long": "abcdefghij"}
    with httpx.Client(base_url=fake.base_url) as http:
        cut = http.post("/chat/completions", json=chat_body("long", max_tokens=2)).json()
        newer = http.post("/chat/completions", json=chat_body("long", max_completion_tokens=3)).json()
        enough = http.post("/chat/completions", json=chat_body("long", max_tokens=5)).json()
    assert (cut["choices"][0]["message"]["content"], cut["choices"][0]["finish_reason"]) == ("abcd", "length")
    assert cut["usage"]["completion_tokens"] == 2
    assert newer["choices"][0]["message"]["content"] == "abcdef"
    assert (enough["choices"][0]["message"]["content"], enough["choices"][0]["finish_reason"]) == (
        "abcdefghij",
        "stop",
    )


# --- tool calls ---------------------------------------------------------------------------------------------


def test_tool_call_non_streaming() -> None:
    replies = {"天气": {"tool_call": {"name": "get_weather", "arguments": {"city": "上海"}}}}
    with (
        FakeProvider(replies) as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk,
    ):
        completion = sdk.chat.completions.create(
            model="qwen-plus", messages=user("上海天气如何"), tools=[WEATHER_TOOL]
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_fake_0_")
    assert call.id.endswith("_1")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "上海"}
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens("get_weather" + '{"city": "上海"}')


def test_several_tool_calls_stream_like_openai(fake: FakeProvider) -> None:
    fake.chunk_chars = 5
    fake.replies = {
        "both": {
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "杭州"}},
                {"name": "get_time", "arguments": '{"tz": "Asia/Shanghai"}'},
            ]
        }
    }
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        stream = sdk.chat.completions.create(
            model="m",
            messages=user("both please"),
            tools=[WEATHER_TOOL],
            stream=True,
        )
        chunks = list(stream)
    first_delta = chunks[0].choices[0].delta
    assert first_delta.role == "assistant"
    assert first_delta.content is None
    calls: dict[int, dict[str, str]] = {}
    fragments: dict[int, int] = {}
    for chunk in chunks:
        for delta_call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            entry = calls.setdefault(delta_call.index, {"id": "", "name": "", "arguments": ""})
            fragments[delta_call.index] = fragments.get(delta_call.index, 0) + 1
            if delta_call.id is not None:
                assert entry["id"] == "", "the id must only be in the first fragment"
                entry["id"] = delta_call.id
            assert delta_call.function is not None
            if delta_call.function.name is not None:
                entry["name"] += delta_call.function.name
            entry["arguments"] += delta_call.function.arguments or ""
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "杭州"}
    assert calls[1]["arguments"] == '{"tz": "Asia/Shanghai"}'
    assert [calls[0]["id"][:12], calls[1]["id"][:12]] == ["call_fake_0_", "call_fake_1_"]
    assert fragments[1] == 1 + math.ceil(len('{"tz": "Asia/Shanghai"}') / 5)  # arguments really are split
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --- streaming ----------------------------------------------------------------------------------------------


def test_streaming_with_openai_sdk_and_usage(fake: FakeProvider) -> None:
    fake.chunk_chars = 3
    fake.replies = {"诗": "床前明月光，疑是地上霜。"}
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        chunks = list(
            sdk.chat.completions.create(
                model="moonshot-v1-8k",
                messages=user("念一句诗"),
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        plain = list(sdk.chat.completions.create(model="m", messages=user("念一句诗"), stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    pieces = [chunk.choices[0].delta.content for chunk in chunks[1:-2]]
    assert pieces == ["床前明", "月光，", "疑是地", "上霜。"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens == 2
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert {(chunk.model, chunk.created, chunk.object) for chunk in chunks} == {
        ("moonshot-v1-8k", CREATED, "chat.completion.chunk")
    }
    assert plain[-1].choices[0].finish_reason == "stop"
    assert plain[-1].usage is None


def test_stream_wire_format(fake: FakeProvider) -> None:
    fake.replies = {"hi": "hello!"}
    with httpx.Client(base_url=fake.base_url) as http:
        response = http.post("/chat/completions", json=chat_body("hi", stream=True))
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "hell"},
        {"content": "o!"},
        {},
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None, None, None, "stop"]
    assert all("usage" not in chunk for chunk in chunks)


def test_stream_arrives_incrementally() -> None:
    # Role, five content pieces, finish and [DONE]: seven 100 ms waits after the first event. Timing is taken
    # on raw lines because the openai SDK's first iteration has a large one-off cost of its own. The waits
    # are long enough that a client held up for a few hundred ms by a busy machine still sees the order.
    with (
        FakeProvider({"count": "1111222233334444555"}, chunk_delay=0.1) as fake,
        httpx.Client(base_url=fake.base_url) as http,
    ):
        started = time.perf_counter()
        arrivals: list[tuple[float, str]] = []
        with http.stream("POST", "/chat/completions", json=chat_body("count", stream=True)) as response:
            for line in response.iter_lines():
                if line:
                    arrivals.append((time.perf_counter(), line.removeprefix("data: ")))
        ended = time.perf_counter()
    assert arrivals[-1][1] == "[DONE]"
    contents = [json.loads(data)["choices"][0]["delta"].get("content") for _, data in arrivals[:-1]]
    assert contents == ["", "1111", "2222", "3333", "4444", "555", None]
    assert ended - started >= 0.6  # the server's own sleeps: a lower bound a busy machine only raises
    first_content = arrivals[1][0]
    assert ended - first_content > 0.3, "the first piece must not wait for the last (six waits follow it)"
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(arrivals)]
    assert sum(gap >= 0.05 for gap in gaps) >= 2, gaps


def test_stream_over_http_1_0_closes_the_connection(fake: FakeProvider) -> None:
    body = json.dumps(chat_body("hi", stream=True)).encode()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, payload = received.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert b"chunked" not in head
    assert sse_data(payload.decode())[-1] == "[DONE]"


def test_aiohttp_streaming(fake: FakeProvider) -> None:
    fake.replies = {"x": "streamed through aiohttp"}

    async def run() -> list[str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(fake.base_url + "/chat/completions", json=chat_body("x", stream=True)) as response,
        ):
            assert response.status == 200
            return [line.decode().strip() async for line in response.content if line.strip()]

    lines = asyncio.run(run())
    assert lines[-1] == "data: [DONE]"
    text = "".join(
        json.loads(line.removeprefix("data: "))["choices"][0]["delta"].get("content") or ""
        for line in lines[:-1]
    )
    assert text == "streamed through aiohttp"


# --- async SDK ----------------------------------------------------------------------------------------------


def test_async_openai_client() -> None:
    async def run(fake: FakeProvider) -> tuple[str | None, str, list[str | None]]:
        async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
            completion, tool_completion = await asyncio.gather(
                sdk.chat.completions.create(model="m", messages=user("异步")),
                sdk.chat.completions.create(model="m", messages=user("tool"), tools=[WEATHER_TOOL]),
            )
            stream = await sdk.chat.completions.create(model="m", messages=user("异步"), stream=True)
            pieces = [chunk.choices[0].delta.content async for chunk in stream]
        calls = tool_completion.choices[0].message.tool_calls
        assert calls is not None
        assert calls[0].type == "function"
        return completion.choices[0].message.content, calls[0].function.name, pieces

    replies: dict[str, Reply] = {
        "异步": "异步也可以",
        "tool": {"tool_call": {"name": "get_weather", "arguments": {}}},
    }
    with FakeProvider(replies, chunk_chars=2) as fake:
        content, tool_name, pieces = asyncio.run(run(fake))
    assert content == "异步也可以"
    assert tool_name == "get_weather"
    assert pieces == ["", "异步", "也可", "以", None]


# --- embeddings and models ----------------------------------------------------------------------------------


def test_embeddings_through_the_sdk_use_base64_and_decode(fake: FakeProvider) -> None:
    texts = ["今天天气很好", "今天天气不错", "我喜欢吃苹果"]
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        result = sdk.embeddings.create(model="text-embedding-v3", input=texts)
    assert fake.requests[-1].json()["encoding_format"] == "base64"
    vectors = [item.embedding for item in result.data]
    assert [item.index for item in result.data] == [0, 1, 2]
    assert all(len(vector) == EMBEDDING_DIMENSIONS for vector in vectors)
    assert all(math.isclose(cosine(vector, vector), 1.0, rel_tol=1e-5) for vector in vectors)
    for vector, text in zip(vectors, texts, strict=True):
        assert vector == pytest.approx(embed_text(text), abs=1e-6)
    assert cosine(vectors[0], vectors[1]) > 0.4
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    assert result.usage.prompt_tokens == result.usage.total_tokens == 9
    assert result.model == "text-embedding-v3"


def test_embeddings_float_format_dimensions_and_token_input(fake: FakeProvider) -> None:
    with httpx.Client(base_url=fake.base_url) as http:
        floats = http.post("/embeddings", json={"model": "e", "input": "你好", "dimensions": 8}).json()
        encoded = http.post(
            "/embeddings", json={"model": "e", "input": "你好", "dimensions": 8, "encoding_format": "base64"}
        ).json()
        tokens = http.post("/embeddings", json={"model": "e", "input": [[1, 2, 3], [4]]}).json()
        bad = http.post("/embeddings", json={"model": "e", "input": [1.5]})
        missing = http.post("/embeddings", json={"model": "e"})
    assert floats["object"] == "list"
    assert floats["data"][0]["object"] == "embedding"
    assert floats["data"][0]["embedding"] == embed_text("你好", 8)
    unpacked = struct.unpack("<8f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert list(unpacked) == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)
    assert len(tokens["data"]) == 2
    assert tokens["data"][0]["embedding"] != tokens["data"][1]["embedding"]
    assert (bad.status_code, missing.status_code) == (400, 400)
    assert missing.json()["error"]["type"] == "invalid_request_error"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40), dimensions=st.integers(min_value=1, max_value=128))
def test_embed_text_is_deterministic_and_unit_length(text: str, dimensions: int) -> None:
    vector = embed_text(text, dimensions)
    assert len(vector) == dimensions
    assert math.isclose(math.sqrt(cosine(vector, vector)), 1.0, rel_tol=1e-9)
    assert embed_text(text, dimensions) == vector


def test_models_list_and_retrieve() -> None:
    with (
        FakeProvider(model="glm-4-plus", name="zhipu") as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk,
    ):
        models = list(sdk.models.list())
        retrieved = sdk.models.retrieve("glm-4-plus")
        with pytest.raises(openai.NotFoundError):
            sdk.models.retrieve("gpt-5")
    assert [(model.id, model.owned_by, model.created) for model in models] == [
        ("glm-4-plus", "zhipu", CREATED)
    ]
    assert retrieved.id == "glm-4-plus"


def test_zhipuai_sdk_against_the_fake() -> None:
    zhipuai = pytest.importorskip("zhipuai")
    with FakeProvider({"你好": "你好！我是GLM。"}, api_key="id123.secret456", chunk_chars=3) as fake:
        sdk = zhipuai.ZhipuAI(api_key="id123.secret456", base_url=fake.url + "/api/paas/v4")
        completion = sdk.chat.completions.create(model="glm-4-flash", messages=user("你好"))
        pieces = [
            chunk.choices[0].delta.content
            for chunk in sdk.chat.completions.create(model="glm-4-flash", messages=user("你好"), stream=True)
        ]
    assert completion.choices[0].message.content == "你好！我是GLM。"
    assert "".join(piece or "" for piece in pieces) == "你好！我是GLM。"
    assert {request.path for request in fake.requests} == {"/api/paas/v4/chat/completions"}


# --- paths, auth, errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/paas/v4", "/compatible-mode/v1", "", "/v2"])
def test_chat_completions_under_any_prefix(fake: FakeProvider, prefix: str) -> None:
    with openai.OpenAI(base_url=fake.url + prefix, api_key="k", max_retries=0) as sdk:
        completion = sdk.chat.completions.create(model="m", messages=user("前缀"))
    assert completion.choices[0].message.content == "[fake] 前缀"
    assert fake.requests[-1].path == f"{prefix}/chat/completions"


def test_unknown_paths_and_methods_get_an_openai_404(fake: FakeProvider) -> None:
    with httpx.Client(base_url=fake.url) as http:
        unknown = http.post("/v1/completions", json=chat_body("x"))
        wrong_method = http.get("/v1/chat/completions")
    for response in (unknown, wrong_method):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert unknown.json() == {
        "error": {
            "message": "Invalid URL (POST /v1/completions)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert wrong_method.json()["error"]["message"] == "Invalid URL (GET /v1/chat/completions)"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_type"),
        (json.dumps({"model": "m"}).encode(), "missing_required_parameter"),
        (json.dumps({"model": "m", "messages": []}).encode(), "missing_required_parameter"),
        (json.dumps({"messages": user("x")}).encode(), "missing_required_parameter"),
        (json.dumps({"model": "", "messages": user("x")}).encode(), "missing_required_parameter"),
    ],
)
def test_invalid_chat_requests_get_a_400(fake: FakeProvider, content: bytes, code: str) -> None:
    with httpx.Client(base_url=fake.base_url) as http:
        response = http.post(
            "/chat/completions", content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, code)
    assert error["message"]


def test_api_key_is_enforced() -> None:
    with FakeProvider(api_key="sk-right") as fake:
        with (
            openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0) as wrong,
            pytest.raises(openai.AuthenticationError) as excinfo,
        ):
            wrong.chat.completions.create(model="m", messages=user("hi"))
        assert excinfo.value.status_code == 401
        assert excinfo.value.body == {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
        with openai.OpenAI(base_url=fake.base_url, api_key="sk-right", max_retries=0) as right:
            assert right.chat.completions.create(model="m", messages=user("hi")).choices[0].message.content
            assert right.embeddings.create(model="e", input="hi").data
        with httpx.Client(base_url=fake.base_url) as http:
            azure_style = http.post(
                "/chat/completions", json=chat_body("hi"), headers={"api-key": "sk-right"}
            )
            anonymous_models = http.get("/models")
            lower_scheme = http.get("/models", headers={"authorization": "bearer sk-right"})
    assert azure_style.status_code == 200
    assert anonymous_models.status_code == 401
    assert lower_scheme.status_code == 200


def test_fail_next_serves_queued_errors_first(client: openai.OpenAI, fake: FakeProvider) -> None:
    fake.fail_next(
        429,
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
        times=2,
        headers={"Retry-After": "1"},
    )
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as excinfo:
            client.chat.completions.create(model="m", messages=user("hi"))
        assert excinfo.value.response.headers["retry-after"] == "1"
        assert excinfo.value.code == "rate_limit_exceeded"
    assert client.chat.completions.create(model="m", messages=user("hi")).choices[0].message.content == (
        "[fake] hi"
    )
    fake.fail_next(503, "upstream overloaded")
    with httpx.Client(base_url=fake.base_url) as http:
        overloaded = http.get("/models")
        recovered = http.get("/models")
    assert (overloaded.status_code, overloaded.text) == (503, "upstream overloaded")
    assert overloaded.headers["content-type"] == "text/plain; charset=utf-8"
    assert recovered.status_code == 200
    fake.fail_next(500, '{"code": "InternalError", "message": "内部错误"}')
    with pytest.raises(openai.InternalServerError) as server_error:
        client.chat.completions.create(model="m", messages=user("hi"))
    assert server_error.value.body == {"code": "InternalError", "message": "内部错误"}
    assert len(fake.requests) == 6


def test_fail_next_applies_to_streams_and_validates_arguments(fake: FakeProvider) -> None:
    fake.fail_next(
        400, {"error": {"code": "1301", "message": "系统检测到输入或生成内容可能包含不安全或敏感内容"}}
    )
    with (
        openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk,
        pytest.raises(openai.BadRequestError, match="敏感内容"),
    ):
        sdk.chat.completions.create(model="glm-4", messages=user("x"), stream=True)
    with pytest.raises(ValueError, match="status"):
        fake.fail_next(700, "x")
    with pytest.raises(ValueError, match="times"):
        fake.fail_next(500, "x", times=0)


def test_reset_clears_requests_failures_and_id_counts(fake: FakeProvider) -> None:
    with httpx.Client(base_url=fake.base_url) as http:
        first = http.post("/chat/completions", json=chat_body("a")).json()["id"]
        fake.fail_next(500, "boom", times=3)
        kept = fake.requests
        fake.reset()
        assert fake.requests == []
        assert fake.requests is kept
        again = http.post("/chat/completions", json=chat_body("a"))
    assert again.status_code == 200
    assert again.json()["id"] == first


def test_requests_are_recorded_in_order(fake: FakeProvider) -> None:
    with httpx.Client(base_url=fake.url) as http:
        http.post(
            "/v1/chat/completions?api-version=2024-10-21", json=chat_body("one"), headers={"X-Trace": "7"}
        )
        http.get("/v1/models")
        http.post("/nowhere", content=b"raw")
    first, second, third = fake.requests
    assert isinstance(first, ReceivedRequest)
    assert (first.method, first.path, first.query) == (
        "POST",
        "/v1/chat/completions",
        "api-version=2024-10-21",
    )
    assert first.headers["x-trace"] == "7"
    assert first.headers["content-type"] == "application/json"
    assert all(name == name.lower() for name in first.headers)
    assert first.json() == chat_body("one")
    assert (second.method, second.path, second.body) == ("GET", "/v1/models", b"")
    assert (third.path, third.body) == ("/nowhere", b"raw")


def test_chunked_request_bodies_are_decoded(fake: FakeProvider) -> None:
    payload = json.dumps(chat_body("分块上传")).encode()

    def pieces() -> Iterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    with httpx.Client(base_url=fake.base_url) as http:
        response = http.post(
            "/chat/completions", content=pieces(), headers={"content-type": "application/json"}
        )
    assert fake.requests[0].headers["transfer-encoding"] == "chunked"
    assert fake.requests[0].body == payload
    assert response.json()["choices"][0]["message"]["content"] == "[fake] 分块上传"


def test_requests_library_and_keep_alive(fake: FakeProvider) -> None:
    fake.replies = {"hi": "你好"}
    response = requests.post(fake.base_url + "/chat/completions", json=chat_body("hi"), timeout=5)
    assert response.json()["choices"][0]["message"]["content"] == "你好"
    assert response.encoding == "utf-8"

    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/v1/models")
            assert connection.getresponse().read()
            sockets.append(connection.sock)
        assert sockets[0] is not None
        assert sockets.count(sockets[0]) == 3
        connection.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("hi", stream=True)))
        assert connection.getresponse().read().endswith(b"data: [DONE]\n\n")
        connection.request("GET", "/v1/models")
        assert connection.getresponse().status == 200
        assert connection.sock is sockets[0], "the connection must survive a streamed response"
    finally:
        connection.close()


def test_concurrent_requests(fake: FakeProvider) -> None:
    fake.replies = lambda request: request["messages"][-1]["content"].upper()
    results: dict[int, str] = {}
    barrier = threading.Barrier(16)

    def worker(http: httpx.Client, number: int) -> None:
        barrier.wait()
        body = http.post("/chat/completions", json=chat_body(f"request {number}")).json()
        results[number] = body["choices"][0]["message"]["content"]

    with httpx.Client(base_url=fake.base_url) as http:
        threads = [threading.Thread(target=worker, args=(http, number)) for number in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == {number: f"REQUEST {number}" for number in range(16)}
    assert len(fake.requests) == 16


# --- determinism --------------------------------------------------------------------------------------------


def test_responses_are_deterministic_across_requests_and_servers() -> None:
    body = chat_body("确定性", temperature=0, stream_options={"include_usage": True})

    def exchange(fake: FakeProvider, payload: dict[str, Any]) -> bytes:
        with httpx.Client(base_url=fake.base_url) as http:
            return http.post("/chat/completions", json=payload).content

    with FakeProvider() as first, FakeProvider() as second:
        one, two = exchange(first, body), exchange(first, body)
        elsewhere = exchange(second, body)
        reordered = exchange(second, dict(reversed(list(body.items()))))
        stream_once = exchange(first, {**body, "stream": True})
        stream_twice = exchange(second, {**body, "stream": True})
    assert one == elsewhere
    assert json.loads(reordered)["id"].endswith("-2"), "key order must not change the request hash"
    first_id, second_id = json.loads(one)["id"], json.loads(two)["id"]
    assert first_id.endswith("-1")
    assert second_id == first_id[:-1] + "2"
    assert one.replace(first_id.encode(), b"") == two.replace(second_id.encode(), b"")
    assert stream_once == stream_twice
    different = FakeProvider()
    with different:
        assert json.loads(exchange(different, chat_body("别的")))["id"][:-2] != first_id[:-2]


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=30), chunk_chars=st.integers(min_value=1, max_value=7))
def test_any_text_round_trips_whole_and_streamed(
    shared_fake: FakeProvider, shared_http: httpx.Client, text: str, chunk_chars: int
) -> None:
    shared_fake.chunk_chars = chunk_chars
    whole = shared_http.post("/chat/completions", json=chat_body(text)).json()
    streamed = shared_http.post("/chat/completions", json=chat_body(text, stream=True))
    expected = f"[fake] {text}"
    assert whole["choices"][0]["message"]["content"] == expected
    data = sse_data(streamed.text)
    deltas = [json.loads(item)["choices"][0]["delta"].get("content") for item in data[:-1]]
    assert deltas[0] == ""
    assert deltas[-1] is None
    assert "".join(deltas[1:-1]) == expected
    assert all(len(piece) == chunk_chars for piece in deltas[1:-2])


# --- lifecycle ----------------------------------------------------------------------------------------------


def test_start_and_stop_are_fast() -> None:
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(20):
        fake = FakeProvider()
        began = time.perf_counter()
        fake.start()
        starts.append(time.perf_counter() - began)
        connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        try:
            connection.request("GET", "/v1/models")
            assert connection.getresponse().read()
            # The idle keep-alive connection is still open while stopping.
            began = time.perf_counter()
            fake.stop()
            stops.append(time.perf_counter() - began)
        finally:
            connection.close()
    # Medians (about 0.1 ms here): a server that polled for its shutdown (serve_forever's 0.5 s) or waited
    # for the idle keep-alive connection would take a quarter of a second or more on most of the 20 rounds,
    # while one round held up by a busy machine moves no median.
    assert statistics.median(starts) < 0.05
    assert statistics.median(stops) < 0.05


def test_stopped_server_refuses_connections_even_on_pooled_ones() -> None:
    fake = FakeProvider().start()
    url = fake.url
    with httpx.Client(base_url=fake.base_url) as http:
        assert http.get("/models").status_code == 200
        fake.stop()
        assert not fake.running
        with pytest.raises(httpx.TransportError):
            http.get("/models")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1).close()
    assert fake.url == url
    fake.stop()  # idempotent

    fake.start()
    try:
        assert fake.url == url, "a restart reuses the port when it is free"
        assert httpx.get(fake.base_url + "/models").status_code == 200
    finally:
        fake.stop()


def test_stop_cuts_an_in_flight_stream_quickly() -> None:
    # Ten seconds between pieces: a stop that waited for the sleeping handler would take up to that long,
    # far above the two-second bound however busy the machine is.
    fake = FakeProvider({"slow": "a" * 40}, chunk_chars=1, chunk_delay=10.0).start()
    received: list[str] = []
    failure: list[BaseException] = []
    first_event = threading.Event()

    def consume() -> None:
        try:
            with (
                httpx.Client(base_url=fake.base_url) as http,
                http.stream("POST", "/chat/completions", json=chat_body("slow", stream=True)) as response,
            ):
                for line in response.iter_lines():
                    received.append(line)
                    first_event.set()
        except httpx.TransportError as exc:
            failure.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    assert first_event.wait(5)
    began = time.perf_counter()
    fake.stop()
    stopped_after = time.perf_counter() - began
    thread.join(5)
    assert not thread.is_alive()
    assert stopped_after < 2
    assert failure, "the client must see the stream break, not a clean end"
    assert "data: [DONE]" not in received


def test_stop_from_inside_a_reply_callable_does_not_deadlock() -> None:
    fake = FakeProvider()

    def reply(request: dict[str, Any]) -> str:
        fake.stop()
        return "too late"

    fake.replies = reply
    fake.start()
    with httpx.Client(base_url=fake.base_url, timeout=5) as http, pytest.raises(httpx.TransportError):
        http.post("/chat/completions", json=chat_body("x"))
    assert not fake.running


def test_lifecycle_errors_and_repr() -> None:
    fake = FakeProvider(name="deepseek")
    with pytest.raises(RuntimeError):
        _ = fake.url
    assert "not started" in repr(fake)
    with fake:
        assert fake.running
        assert fake.base_url == fake.url + "/v1"
        assert fake.url.startswith("http://127.0.0.1:")
        assert "running" in repr(fake)
        assert "deepseek" in repr(fake)
        with pytest.raises(RuntimeError):
            fake.start()
    assert not fake.running
    with pytest.raises(ValueError):
        FakeProvider(chunk_chars=0)
    with pytest.raises(ValueError):
        FakeProvider(chunk_delay=-1)


def test_cut_next_breaks_responses_part_way(fake: FakeProvider) -> None:
    import httpx

    body = {"model": "m", "messages": [{"role": "user", "content": "一二三四五六七八九十"}]}
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, timeout=0.3) as http:
        fake.cut_next(body_bytes=10)
        with pytest.raises(httpx.RemoteProtocolError, match="received 10 bytes"):
            http.post("chat/completions", json=body)
        fake.cut_next(events=2)
        lines = []
        with (
            pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
            http.stream("POST", "chat/completions", json={**body, "stream": True}) as response,
        ):
            lines.extend(line for line in response.iter_lines() if line)
        assert len(lines) == 2
        fake.cut_next(how="reset")
        with pytest.raises(httpx.ReadError):
            http.post("chat/completions", json=body)
        fake.cut_next(how="stall", stall=2.0)
        with pytest.raises(httpx.ReadTimeout):
            http.post("chat/completions", json=body)
        fake.cut_next(how="hang", stall=2.0)
        with pytest.raises(httpx.ReadTimeout):
            http.post("chat/completions", json=body)
        # matching: only the request that mentions the text is broken, the others pass by.
        fake.cut_next(matching="CUT-ME")
        assert http.post("chat/completions", json=body).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("chat/completions", json={**body, "messages": [{"role": "user", "content": "CUT-ME"}]})
        assert http.post("chat/completions", json=body).status_code == 200
    for bad in ({"how": "drop"}, {"times": 0}, {"body_bytes": -1}, {"events": -2}):
        with pytest.raises(ValueError):
            fake.cut_next(**bad)  # type: ignore[arg-type]
    fake.cut_next()
    fake.reset()  # forgets queued cuts too
    with httpx.Client(base_url=fake.base_url, headers=headers) as http:
        assert http.post("chat/completions", json=body).status_code == 200
