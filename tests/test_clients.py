"""The clients apps use, recorded against loopback fake providers and replayed offline (plain and -n 2).

Each client reaches the provider under test either from the fixture's helpers or from nothing but the
environment the plugin exports; import-time clients construct in CI replay without any key set.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_llmport.fake.ernie import access_token
from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.testing import FakeProvider

from .conftest import KEY, cassettes

pytest.importorskip("anthropic")
pytest.importorskip("google.genai")
pytest.importorskip("litellm")
pytest.importorskip("langchain_openai")
pytest.importorskip("qianfan")

# A second provider of ERNIE's native dialect (another model, i.e. another endpoint path), so qianfan is
# recorded on two providers like every other client.
CONFTEST = """
from pytest_llmport import Provider


def pytest_llmport_add_providers(config):
    return [
        Provider(
            "ernie-speed", "https://aip.baidubce.com", "ernie_speed", "QIANFAN_AK", auth="query-access-token",
            dialect="ernie", secret_key_env="QIANFAN_SK",
        )
    ]
"""

CLIENTS = """
import asyncio

import anthropic
import dashscope
import litellm
import openai
import pytest
import qianfan
import zhipuai
from google import genai

# Built at import time, before any test: needs a key in CI replay, where none is set.
MODULE_CLIENT = openai.AsyncOpenAI()
MODULE_ANTHROPIC = anthropic.Anthropic()
MODULE_ZHIPUAI = zhipuai.ZhipuAI()  # raises without ZHIPUAI_API_KEY
MODULE_GENAI = genai.Client()  # raises without GOOGLE_API_KEY or GEMINI_API_KEY
PROMPT = [{"role": "user", "content": "我的订单三天了还没发货"}]
OPENAI_LIKE = ["deepseek", "qwen"]


def pieces_check(llm_provider, pieces):
    assert "".join(pieces).endswith("还没发货")
    assert len(pieces) > 3, "a stream arrives in pieces, recording and replay alike"


@pytest.mark.llm_portable(providers=OPENAI_LIKE)
def test_litellm_native_prefix_from_the_environment(llm_provider):
    # No api_base: litellm reads DEEPSEEK_API_BASE / DASHSCOPE_API_BASE, which the plugin exports.
    reply = litellm.completion(model=llm_provider.model_id, messages=PROMPT)
    assert reply.choices[0].message.content.endswith("还没发货")


@pytest.mark.llm_portable(providers=OPENAI_LIKE)
def test_litellm_async_stream(llm_provider):
    async def main():
        stream = await litellm.acompletion(**llm_provider.litellm_kwargs(messages=PROMPT, stream=True))
        pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
        await litellm.close_litellm_async_clients()  # its cached client's sockets belong to this loop
        return pieces

    pieces_check(llm_provider, asyncio.run(main()))


@pytest.mark.llm_portable(providers=OPENAI_LIKE)
def test_langchain_invoke_and_astream_on_two_loops(llm_provider):
    assert llm_provider.langchain_chat().invoke("我的订单三天了还没发货").content.endswith("还没发货")

    async def stream():
        chat = llm_provider.langchain_chat()
        return [chunk.content async for chunk in chat.astream("我的订单三天了还没发货") if chunk.content]

    for _ in range(2):
        pieces_check(llm_provider, asyncio.run(stream()))


@pytest.mark.llm_portable(providers=OPENAI_LIKE)
def test_zhipuai_and_module_level_client_from_the_environment(llm_provider):
    with zhipuai.ZhipuAI() as client:
        reply = client.chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert reply.choices[0].message.content.endswith("还没发货")

    async def main():
        # A fresh connection pool per event loop: a pooled connection of an earlier asyncio.run() is bound
        # to a closed loop (the trap docs/clients.md describes for langchain's cached async client).
        async with openai.DefaultAsyncHttpxClient() as http_client:
            client = MODULE_CLIENT.with_options(base_url=llm_provider.base_url, http_client=http_client)
            return await client.chat.completions.create(model=llm_provider.model, messages=PROMPT)

    assert asyncio.run(main()).choices[0].message.content.endswith("还没发货")


@pytest.mark.llm_portable(providers=["anthropic"])
def test_anthropic(llm_provider):
    from_env = anthropic.Anthropic().messages.create(model=llm_provider.model, max_tokens=200, messages=PROMPT)
    assert from_env.content[0].text.endswith("还没发货")
    with llm_provider.anthropic_client().messages.stream(
        model=llm_provider.model, max_tokens=200, messages=PROMPT
    ) as stream:
        pieces_check(llm_provider, list(stream.text_stream))
    reply = litellm.completion(**llm_provider.litellm_kwargs(messages=PROMPT, max_tokens=200))
    assert reply.choices[0].message.content.endswith("还没发货")

    async def main():
        kwargs = llm_provider.litellm_kwargs(messages=PROMPT, max_tokens=200, stream=True)
        stream = await litellm.acompletion(**kwargs)
        return [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]

    pieces_check(llm_provider, asyncio.run(main()))


@pytest.mark.llm_portable(providers=["gemini"])
def test_genai(llm_provider):
    from_env = genai.Client()  # kept in a variable: a Client closes its HTTP client when collected
    reply = from_env.models.generate_content(model=llm_provider.model, contents="我的订单三天了还没发货")
    assert reply.text.endswith("还没发货")

    async def main():
        client = llm_provider.genai_client()
        stream = await client.aio.models.generate_content_stream(
            model=llm_provider.model, contents="我的订单三天了还没发货"
        )
        return [chunk.text async for chunk in stream if chunk.text]

    pieces_check(llm_provider, asyncio.run(main()))


@pytest.mark.llm_portable(providers=["qwen-native"])
def test_dashscope_stream_through_requests(llm_provider):
    assert dashscope.base_http_api_url == llm_provider.base_url  # the module global, set for the test
    responses = dashscope.Generation.call(
        model=llm_provider.model, messages=PROMPT, stream=True, incremental_output=True, result_format="message"
    )
    pieces_check(llm_provider, [r.output.choices[0].message.content for r in responses if r.output.choices])


@pytest.mark.llm_portable(providers=["ernie-native", "ernie-speed"])
def test_qianfan_token_exchange_chat_and_streams(llm_provider):
    # qianfan reads QIANFAN_BASE_URL/AK/SK once, into get_config(): the plugin sets its fields for the test.
    assert qianfan.get_config().BASE_URL == llm_provider.base_url
    chat = qianfan.ChatCompletion(endpoint=llm_provider.model)  # ERNIE's model is the endpoint path
    assert chat.do(messages=PROMPT).body["result"].endswith("还没发货")
    pieces_check(llm_provider, [r.body["result"] for r in chat.do(messages=PROMPT, stream=True) if r.body["result"]])

    async def main():  # through aiohttp
        stream = await chat.ado(messages=PROMPT, stream=True)
        return [r.body["result"] async for r in stream if r.body["result"]]

    pieces_check(llm_provider, asyncio.run(main()))
"""


PROVIDERS = "--providers=deepseek,qwen,anthropic,gemini,qwen-native,ernie-native,ernie-speed"
SECRET = "qianfan-secret-key-0123456789"  # QIANFAN_SK, the OAuth client secret


def dialect_servers() -> dict[str, FakeProvider]:
    """The fake providers of the native dialects, by the provider they stand in for (not started)."""
    return {
        "anthropic": FakeProvider(api_key=KEY, dialect="anthropic", chunk_chars=3),
        "gemini": FakeProvider(api_key=KEY, dialect="gemini", chunk_chars=3),
        "qwen-native": FakeProvider(api_key=KEY, dialect="dashscope", chunk_chars=3),
        "ernie-native": FakeProvider(api_key=KEY, dialect="ernie", chunk_chars=3),
    }


def dialect_variables(servers: dict[str, FakeProvider]) -> dict[str, str]:
    """What points the native-dialect providers at ``servers`` while recording (with QIANFAN_SK)."""
    return {
        "LLMPORT_ANTHROPIC_BASE_URL": servers["anthropic"].url + "/v1",
        "LLMPORT_GEMINI_BASE_URL": servers["gemini"].url + "/v1beta",
        "LLMPORT_QWEN_NATIVE_BASE_URL": servers["qwen-native"].url + "/api/v1",
        "LLMPORT_ERNIE_NATIVE_BASE_URL": servers["ernie-native"].url,
        "LLMPORT_ERNIE_SPEED_BASE_URL": servers["ernie-native"].url,
        "QIANFAN_SK": SECRET,
    }


# Key variables a replay must not need (besides every provider's api_key_env).
OTHER_KEYS = ("ZHIPUAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "ARK_API_KEY", "QIANFAN_SK")


@pytest.fixture
def fakes(llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakeProvider]]:
    """OpenAI-compatible providers on ``llm_env``; the others on a fake of their own dialect."""
    servers = dialect_servers()
    llm_env.chunk_chars = 3
    for server in servers.values():
        server.start()
    for name, value in dialect_variables(servers).items():
        monkeypatch.setenv(name, value)
    yield {"openai": llm_env, **servers}
    for server in servers.values():
        server.stop()


def test_clients_record_then_replay_offline_without_keys(
    pytester: pytest.Pytester,
    fakes: dict[str, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    pytester.makepyfile(test_app=CLIENTS, conftest=CONFTEST)
    recorded = pytester.runpytest_subprocess(PROVIDERS, *xdist_args)
    recorded.assert_outcomes(passed=13)
    files = cassettes(pytester.path)
    assert len(files) == 13
    for secret in (KEY, SECRET, access_token(KEY)):
        assert not any(secret in text for text in files.values()), "no secret on disk"
    # Streams kept their chunks: through aiohttp (genai async; litellm's async route, whose aiohttp
    # transport reads with auto_decompress=False), requests (dashscope) and httpx (langchain).
    for test in (
        "test_genai/gemini",
        "test_dashscope_stream_through_requests/qwen-native",
        "test_litellm_async_stream/deepseek",
        "test_litellm_async_stream/qwen",
        "test_langchain_invoke_and_astream_on_two_loops/qwen",
        "test_qianfan_token_exchange_chat_and_streams/ernie-native",
        "test_qianfan_token_exchange_chat_and_streams/ernie-speed",
    ):
        assert "chunks:" in files[f"cassettes/test_app/{test}.yaml"], test

    for server in fakes.values():
        server.stop()
    for provider in BUILTIN_PROVIDERS:
        monkeypatch.delenv(provider.api_key_env, raising=False)
    for name in OTHER_KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest_subprocess(PROVIDERS, *xdist_args)
    replayed.assert_outcomes(passed=13)
    assert cassettes(pytester.path) == files, "replay must not rewrite cassettes"
