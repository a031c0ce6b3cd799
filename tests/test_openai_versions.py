"""The openai helpers on each openai SDK this package allows (``openai>=1.40``): 1.x and 2.x are built on
httpx, 3.x on httpx2.

``openai_client()``, ``async_openai_client()`` and ``langchain_chat()`` hand the SDK an HTTP client of
their own (for the shared TLS context); it must be the SDK's own default client, on the httpx the SDK
is built on, so the app is recorded through the stack its ``openai.OpenAI()`` uses. The main venv has
openai 3.x; these tests, with tests/test_clients.py and test_sdks.py, also run in a venv with openai 2.x
(the heavy-clients venv has it: llama-index pins openai below 3; see docs/clients.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.util
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_llmport.handle import ClientCache, LLMProvider
from pytest_llmport.providers import BUILTIN_PROVIDERS

from .conftest import KEY, RunModes, cassettes

SPEC = dataclasses.replace(
    next(spec for spec in BUILTIN_PROVIDERS if spec.name == "deepseek"), base_url="http://127.0.0.1:9/v1"
)


def stack(client: Any) -> str:
    """``httpx`` or ``httpx2``: which of them ``client`` is an instance of."""
    found = []
    for package, kind in (
        ("httpx", "Client"),
        ("httpx", "AsyncClient"),
        ("httpx2", "Client"),
        ("httpx2", "AsyncClient"),
    ):
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        if isinstance(client, getattr(module, kind)):
            found.append(package)
    assert len(found) == 1, (type(client).__mro__, found)
    return found[0]


def test_each_helper_hands_the_sdk_the_http_stack_it_uses_itself() -> None:
    own = openai.OpenAI(api_key=KEY, base_url=SPEC.base_url)
    own_async = openai.AsyncOpenAI(api_key=KEY, base_url=SPEC.base_url)
    expected = stack(own._client)
    assert stack(own_async._client) == expected
    cache = ClientCache()
    provider = LLMProvider(SPEC, KEY, Path("unused.yaml"), "once", False, cache)
    try:
        assert stack(provider.openai_client()._client) == expected
        async_client = provider.async_openai_client()
        assert stack(async_client._client) == expected
        if importlib.util.find_spec("langchain_openai") is not None:
            chat = provider.langchain_chat()
            assert stack(chat.root_client._client) == expected
            assert stack(chat.root_async_client._client) == expected
            asyncio.run(chat.root_async_client.close())
        asyncio.run(async_client.close())
    finally:
        cache.close()
        own.close()
        asyncio.run(own_async.close())


HELPERS = """
import asyncio

import pytest

ASK = [{"role": "user", "content": "我的订单三天了还没发货"}]


@pytest.mark.llm_portable
def test_sync_and_stream(llm_provider):
    client = llm_provider.openai_client(max_retries=0)
    reply = client.chat.completions.create(model=llm_provider.model, messages=ASK)
    assert reply.choices[0].message.content == "[fake] 我的订单三天了还没发货"
    stream = client.chat.completions.create(model=llm_provider.model, messages=ASK, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).endswith("还没发货")


@pytest.mark.llm_portable
def test_async_stream(llm_provider):
    async def main():
        async with llm_provider.async_openai_client(max_retries=0) as client:
            stream = await client.chat.completions.create(model=llm_provider.model, messages=ASK, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(main()).endswith("还没发货")


@pytest.mark.llm_portable
def test_langchain(llm_provider):
    pytest.importorskip("langchain_openai")
    chat = llm_provider.langchain_chat(max_retries=0)
    assert chat.invoke("我的订单三天了还没发货").content == "[fake] 我的订单三天了还没发货"

    async def main():
        return "".join([str(piece.content) async for piece in chat.astream("请礼貌地回复")])

    assert asyncio.run(main()).endswith("请礼貌地回复")
"""


def test_the_helpers_record_and_replay_offline(
    pytester: pytest.Pytester, llm_env: Any, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_helpers=HELPERS)
    run_modes("--providers=zhipu,deepseek").assert_outcomes(passed=6)
    recorded = cassettes(pytester.path / "cassettes")
    assert len(recorded) == 6 and KEY not in "".join(recorded.values())
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    for spec in BUILTIN_PROVIDERS:
        monkeypatch.delenv(spec.api_key_env, raising=False)
    run_modes("--providers=zhipu,deepseek").assert_outcomes(passed=6)
    assert cassettes(pytester.path / "cassettes") == recorded
