"""Clients that install slowly (``pip install -e .[dev,clients-heavy]``): llama-index, instructor, Ark.

Skipped unless installed; recorded against the loopback fake provider on two providers and replayed
offline without keys, plainly and with ``-n 2``.
"""

from __future__ import annotations

import pytest

from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.testing import FakeProvider

from .conftest import KEY, cassettes

pytest.importorskip("llama_index.llms.openai_like")
pytest.importorskip("instructor")
pytest.importorskip("volcenginesdkarkruntime")

HEAVY = """
import asyncio

import instructor
import pydantic
import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai_like import OpenAILike
from volcenginesdkarkruntime import Ark

PROMPT = [{"role": "user", "content": "我的订单三天了还没发货"}]


class Ticket(pydantic.BaseModel):
    category: str


@pytest.mark.llm_portable
def test_llama_index_chat_and_stream(llm_provider):
    llm = OpenAILike(model=llm_provider.model, api_base=llm_provider.base_url, api_key=llm_provider.api_key,
                     is_chat_model=True, max_retries=0)
    assert str(llm.chat([ChatMessage(role="user", content="我的订单三天了还没发货")]).message.content).endswith("还没发货")
    pieces = [r.delta for r in llm.stream_chat([ChatMessage(role="user", content="我的订单三天了还没发货")]) if r.delta]
    assert len(pieces) > 3 and "".join(pieces).endswith("还没发货")


@pytest.mark.llm_portable
def test_instructor_tools_json_md_json(llm_provider):
    for mode in (instructor.Mode.TOOLS, instructor.Mode.JSON, instructor.Mode.MD_JSON):
        client = instructor.from_openai(llm_provider.openai_client(), mode=mode)
        ticket = client.chat.completions.create(model=llm_provider.model, messages=PROMPT, response_model=Ticket)
        assert ticket.category == "shipping", mode


@pytest.mark.llm_portable
def test_instructor_partial_streams(llm_provider):
    for mode in (instructor.Mode.TOOLS, instructor.Mode.MD_JSON):
        client = instructor.from_openai(llm_provider.openai_client(), mode=mode)
        partials = list(
            client.chat.completions.create_partial(model=llm_provider.model, messages=PROMPT, response_model=Ticket)
        )
        assert len(partials) > 3 and partials[-1].category == "shipping", mode


@pytest.mark.llm_portable
def test_instructor_async_and_async_partial(llm_provider):
    async def main():
        client = instructor.from_openai(llm_provider.async_openai_client(), mode=instructor.Mode.JSON)
        ticket = await client.chat.completions.create(model=llm_provider.model, messages=PROMPT, response_model=Ticket)
        partials = [
            partial
            async for partial in client.chat.completions.create_partial(
                model=llm_provider.model, messages=PROMPT, response_model=Ticket
            )
        ]
        return ticket, partials

    ticket, partials = asyncio.run(main())
    assert ticket.category == "shipping"
    assert len(partials) > 3 and partials[-1].category == "shipping"


@pytest.mark.llm_portable
def test_ark(llm_provider):
    client = Ark(base_url=llm_provider.base_url, api_key=llm_provider.api_key)
    reply = client.chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert reply.choices[0].message.content.endswith("还没发货")
    stream = client.chat.completions.create(model=llm_provider.model, messages=PROMPT, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3 and "".join(pieces).endswith("还没发货")
"""


def reply(payload: dict) -> object:
    # instructor asks for a tool call (TOOLS) or a JSON object (JSON); everyone else gets the echo.
    if payload.get("tools"):
        return {
            "tool_call": {
                "name": payload["tools"][0]["function"]["name"],
                "arguments": {"category": "shipping"},
            }
        }
    if payload.get("response_format") or "json" in str(payload.get("messages", "")).lower():
        return {"category": "shipping"}
    messages = payload.get("messages") or [{}]
    return f"[fake] {messages[-1].get('content', '')}"


PROVIDERS = "--providers=doubao,deepseek"
PASSED = 10  # five tests on two providers


def test_heavy_clients_record_then_replay_offline(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    llm_env.replies = reply
    llm_env.chunk_chars = 3
    pytester.makepyfile(test_heavy=HEAVY)
    pytester.runpytest_subprocess(PROVIDERS, *xdist_args).assert_outcomes(passed=PASSED)
    files = cassettes(pytester.path)
    assert len(files) == PASSED and not any(KEY in text for text in files.values())
    for test in ("test_llama_index_chat_and_stream", "test_instructor_partial_streams", "test_ark"):
        assert "chunks:" in files[f"cassettes/test_heavy/{test}/doubao.yaml"], test
    llm_env.stop()
    for provider in BUILTIN_PROVIDERS:
        monkeypatch.delenv(provider.api_key_env, raising=False)
    monkeypatch.setenv("CI", "true")
    pytester.runpytest_subprocess(PROVIDERS, *xdist_args).assert_outcomes(passed=PASSED)
    assert cassettes(pytester.path) == files
