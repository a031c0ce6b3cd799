"""Normalisation of every recorded provider exchange in tests/fixtures/real (and synthetic quirks)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmport.dialects import PARSERS
from pytest_llmport.normalize import (
    DIALECTS,
    FINISH_REASONS,
    NormalizedResult,
    SSEEvent,
    UnknownDialectError,
    categorize,
    iter_sse_events,
    normalize,
)

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

CASES: dict[str, Case] = {
    # ---- OpenAI
    "openai/openai-text.json": Case(
        "openai",
        lambda: json_file("openai/openai-text.json"),
        dict(
            finish="stop",
            raw="stop",
            text_start="**Holiday Name:** Galaxy Day",
            text_end="dream beyond our world.",
            usage=(16, 363, 379, 0, 0),
            model="gpt-4.1-nano-2025-04-14",
            request_id="chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU",
        ),
    ),
    "openai/openai-text.chunks": Case(
        "openai",
        lambda: chunks_file("openai/openai-text.chunks.txt", "openai"),
        dict(
            finish="stop",
            raw="stop",
            text_start="**Holiday Name:** Harmony Day",
            text_end="shared human experiences and mutual respect.",
            text_len=1724,
            usage=(16, 300, 316, 0, 0),
            streamed=True,
            chunks=303,
        ),
    ),
    "openai/reasoning-model-legacy-parameter-error": Case(
        "openai",
        lambda: json_file("openai/reasoning-model-legacy-parameter-error.json", 400),
        dict(finish="error", error=("bad_request", "unsupported_parameter", 400)),
    ),
    "openai/test_text_response.yaml (text/plain body)": Case(
        "openai",
        lambda: cassette("openai/test_text_response.yaml"),
        dict(finish="unknown", model="gpt-4o", warnings=["body is not JSON", NO_FINISH]),
    ),
    "openai/test_reasoning_model_with_temperature.yaml": Case(
        "openai",
        lambda: cassette("openai/test_reasoning_model_with_temperature.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text_start="The capital of Mexico is Mexico City.",
            usage=(13, 238, 251, 192, 0),
            model="o3-mini-2025-01-31",
        ),
    ),
    "openai/test_run_stream_sync_streams_real_model.yaml#0 (tool stream)": Case(
        "openai",
        lambda: cassette("openai/test_run_stream_sync_streams_real_model.yaml", 0),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            tools=[("get_capital", {"country": "UK"})],
            tool_ids=["call_ZR5UUuTt3pf61kjwAJIYdVMj"],
            usage=(53, 15, 68, 0, 0),
            streamed=True,
            chunks=8,
        ),
    ),
    "openai/test_run_stream_sync_streams_real_model.yaml#1": Case(
        "openai",
        lambda: cassette("openai/test_run_stream_sync_streams_real_model.yaml", 1),
        dict(
            finish="stop",
            raw="stop",
            text="The capital of the UK is London.",
            usage=(78, 9, 87, 0, 0),
            streamed=True,
            chunks=11,
        ),
    ),
    # ---- Zhipu (api.z.ai twin of open.bigmodel.cn)
    "zhipu/test_zai_model_simple": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_model_simple.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text="2 + 2 is 4.",
            reasoning_start="\n1.  **Analyze the user's input**",
            usage=(13, 437, 450, 427, 0),
            model="glm-4.7",
            request_id="20260701073925df703dd30a854c37",
        ),
    ),
    "zhipu/test_zai_thinking_stream (usage on finish chunk)": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_thinking_stream.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text="4",
            reasoning_start="\n1.  **Analyze the User's Request:**",
            reasoning_len=2173,
            usage=(13, 564, 577, 561, 0),
            streamed=True,
            chunks=93,
        ),
    ),
    "zhipu/test_zai_thinking_mode": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_thinking_mode.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text="2 + 2 is 4.",
            reasoning_start="\n1.  **Identify",
            usage=(13, 247, 260, 237, 0),
        ),
    ),
    "zhipu/test_zai_reasoning_effort": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_reasoning_effort.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text="2 + 2 = 4",
            reasoning_start="1.  Identify",
            usage=(20, 67, 87, 58, 0),
        ),
    ),
    "zhipu/test_zai_glm_5_3_reasoning_effort#1": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_glm_5_3_reasoning_effort.yaml", 1),
        dict(
            finish="stop",
            raw="stop",
            text="2 + 2 = 4",
            reasoning_start="The user",
            usage=(20, 120, 140, 111, 0),
        ),
    ),
    "zhipu/test_zai_clear_thinking_without_thinking": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_clear_thinking_without_thinking.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text="4",
            reasoning_start="\n1.  **Analyze",
            usage=(13, 369, 382, 366, 0),
        ),
    ),
    "zhipu/test_zai_preserved_thinking_round_trip#1": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_preserved_thinking_round_trip.yaml", 1),
        dict(
            finish="stop",
            raw="stop",
            text="323 * 2 is 646.",
            reasoning_start="\nThe user",
            usage=(198, 134, 332, 122, 0),
        ),
    ),
    "zhipu/test_zai_vision_thinking": Case(
        "openai",
        lambda: cassette("zhipu/test_zai_vision_thinking.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text="\nThe fruit in the image is a kiwi.",
            reasoning_start="Got it, let's see.",
            usage=(435, 73, 508, 56, 4),
            model="glm-4.6v",
        ),
    ),
    # ---- DeepSeek
    "deepseek/deepseek-text.json (length)": Case(
        "openai",
        lambda: json_file("deepseek/deepseek-text.json"),
        dict(
            finish="length",
            raw="length",
            text_start="## **Holiday Name: Gratitude of Small Things Day",
            usage=(13, 300, 313, None, 0),
            request_id="00f10ecd-60b3-4707-b5db-e4bcadf7aea1",
        ),
    ),
    "deepseek/deepseek-text.chunks (length, usage on finish chunk)": Case(
        "openai",
        lambda: chunks_file("deepseek/deepseek-text.chunks.txt", "openai"),
        dict(
            finish="length",
            raw="length",
            text_end="observe 15 minutes of silent looking at",
            text_len=1855,
            usage=(13, 400, 413, None, 0),
            streamed=True,
            chunks=402,
        ),
    ),
    "deepseek/deepseek-reasoning.json": Case(
        "openai",
        lambda: json_file("deepseek/deepseek-reasoning.json"),
        dict(
            finish="stop",
            raw="stop",
            text_start='The word "strawberry" contains three',
            reasoning_start="We are asked:",
            usage=(18, 345, 363, 315, 0),
        ),
    ),
    "deepseek/deepseek-reasoning.chunks": Case(
        "openai",
        lambda: chunks_file("deepseek/deepseek-reasoning.chunks.txt", "openai"),
        dict(
            finish="stop",
            raw="stop",
            text='The word "strawberry" contains three "r"s.',
            reasoning_start='We need to count the number of the letter "r"',
            reasoning_len=606,
            usage=(18, 219, 237, 205, 0),
            streamed=True,
        ),
    ),
    "deepseek/deepseek-tool-call.json": Case(
        "openai",
        lambda: json_file("deepseek/deepseek-tool-call.json"),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            reasoning_start="The user is asking for the weather",
            tools=[("weather", {"location": "San Francisco"})],
            tool_ids=["call_00_9V0vrf86Pc9aelHCJMZqnJBo"],
            usage=(339, 92, 431, 48, 320),
        ),
    ),
    "deepseek/deepseek-tool-call.chunks (argument fragments)": Case(
        "openai",
        lambda: chunks_file("deepseek/deepseek-tool-call.chunks.txt", "openai"),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            reasoning_start="The user is asking for the weather",
            tools=[("weather", {"location": "San Francisco"})],
            tool_ids=["call_00_ioIn7yN9p1ZOMNpDLwd4MgAF"],
            usage=(339, 83, 422, 39, 320),
            streamed=True,
            chunks=52,
        ),
    ),
    "deepseek/deepseek-json.json": Case(
        "openai",
        lambda: json_file("deepseek/deepseek-json.json"),
        dict(
            finish="stop",
            raw="stop",
            text='{\n  "location": "San Francisco",\n  "condition": "cloudy",\n  "temperature": 7\n}',
            reasoning_start="I have the result from the weather tool.",
            usage=(495, 144, 639, 118, 320),
        ),
    ),
    "deepseek/test_deepseek_model_thinking_part": Case(
        "openai",
        lambda: cassette("deepseek/test_deepseek_model_thinking_part.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text_start="Crossing the street safely",
            reasoning_start="Okay, the user is asking how to cross the street.",
            usage=(12, 789, 801, 415, 0),
        ),
    ),
    "deepseek/test_deepseek_model_thinking_stream": Case(
        "openai",
        lambda: cassette("deepseek/test_deepseek_model_thinking_stream.yaml"),
        dict(
            finish="stop",
            raw="stop",
            text="Hello there! 😊 How can I help you today?",
            reasoning_start='Hmm, the user just said "Hello".',
            usage=(6, 212, 218, 198, 0),
            streamed=True,
            chunks=211,
        ),
    ),
    "deepseek/test_deepseek_deferred_capability_with_thinking#1 (two calls)": Case(
        "openai",
        lambda: cassette("deepseek/test_deepseek_deferred_capability_with_thinking.yaml", 1),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="Let me get your name and roll the die!",
            reasoning_start="Great, now I have access",
            tools=[("get_player_name", {}), ("roll_dice", {})],
            usage=(875, 79, 954, 26, 0),
            model="deepseek-v4-flash",
        ),
    ),
    "deepseek/test_deepseek_deferred_capability_with_thinking#0": Case(
        "openai",
        lambda: cassette("deepseek/test_deepseek_deferred_capability_with_thinking.yaml", 0),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="Let me load the dice rolling capability!",
            reasoning_start="The user wants to play a dice game.",
            tools=[("load_capability", {"id": "DICE_ROLL"})],
            usage=(563, 116, 679, 60, 512),
        ),
    ),
    # ---- DashScope OpenAI-compatible mode
    "dashscope-compat/alibaba-text.json": Case(
        "openai",
        lambda: json_file("dashscope-compat/alibaba-text.json"),
        dict(
            finish="stop",
            raw="stop",
            text_start="## The Festival of Forgotten Things (Obsidiana)",
            usage=(18, 1064, 1082, None, 0),
            model="qwen3-max",
        ),
    ),
    "dashscope-compat/alibaba-text.chunks (choices: [] usage chunk)": Case(
        "openai",
        lambda: chunks_file("dashscope-compat/alibaba-text.chunks.txt", "openai"),
        dict(
            finish="stop",
            raw="stop",
            text_start='## The Festival of Shared Stories: "Taleweave Day"',
            text_len=3771,
            usage=(18, 779, 797, None, 0),
            streamed=True,
            chunks=174,
        ),
    ),
    "dashscope-compat/alibaba-reasoning.json": Case(
        "openai",
        lambda: json_file("dashscope-compat/alibaba-reasoning.json"),
        dict(
            finish="stop",
            raw="stop",
            text_start='The word **"strawberry"** contains **3**',
            reasoning_start="We are asked:",
            usage=(24, 1668, 1692, 1353, 0),
        ),
    ),
    "dashscope-compat/alibaba-reasoning.chunks": Case(
        "openai",
        lambda: chunks_file("dashscope-compat/alibaba-reasoning.chunks.txt", "openai"),
        dict(
            finish="stop",
            raw="stop",
            text_end="**Answer: 3**",
            reasoning_len=3301,
            reasoning_start="We are asked:",
            usage=(24, 1355, 1379, 1084, 0),
            streamed=True,
        ),
    ),
    "dashscope-compat/alibaba-tool-call.json": Case(
        "openai",
        lambda: json_file("dashscope-compat/alibaba-tool-call.json"),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            tools=[("weather", {"location": "San Francisco"})],
            usage=(295, 22, 317, None, 0),
        ),
    ),
    "dashscope-compat/alibaba-tool-call.chunks (empty id fragments)": Case(
        "openai",
        lambda: chunks_file("dashscope-compat/alibaba-tool-call.chunks.txt", "openai"),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            tools=[("weather", {"location": "San Francisco"})],
            tool_ids=["call_eee11723464a4b9eb8cee71d"],
            usage=(295, 22, 317, None, 0),
            streamed=True,
            chunks=6,
        ),
    ),
    # ---- Moonshot (synthetic fixtures, see ORIGIN-vercel.md)
    "moonshot/moonshotai-text.json": Case(
        "openai",
        lambda: json_file("moonshot/moonshotai-text.json"),
        dict(finish="stop", raw="stop", text="Hello, world!", usage=(9, 5, 14, None, None), model="kimi-k3"),
    ),
    "moonshot/moonshotai-reasoning.json (top-level cached_tokens)": Case(
        "openai",
        lambda: json_file("moonshot/moonshotai-reasoning.json"),
        dict(
            finish="stop",
            raw="stop",
            text="There are three.",
            reasoning="Let me count the letters carefully.",
            usage=(20, 30, 50, 22, 10),
        ),
    ),
    "moonshot/moonshotai-tool-call.json": Case(
        "openai",
        lambda: json_file("moonshot/moonshotai-tool-call.json"),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            tools=[("get_weather", {"city": "Paris"})],
            usage=(30, 12, 42, None, None),
        ),
    ),
    "moonshot/moonshotai-stream.chunks": Case(
        "openai",
        lambda: chunks_file("moonshot/moonshotai-stream.chunks.txt", "openai"),
        dict(
            finish="stop",
            raw="stop",
            text="Hello!",
            reasoning="Thinking aloud. ",
            usage=(9, 12, 21, 7, None),
            streamed=True,
            chunks=4,
        ),
    ),
    # ---- Hunyuan (OpenAI-compatible, and one native PascalCase stream)
    "hunyuan/nonstream.json": Case(
        "openai",
        lambda: json_file("hunyuan/nonstream.json"),
        dict(finish="stop", raw="stop", text="This is a test.", usage=(47, 6, 53, None, None)),
    ),
    "hunyuan/samples.sse[0] plain": Case(
        "openai",
        lambda: sample("hunyuan/samples.sse", 0),
        dict(finish="stop", raw="stop", text="Got", streamed=True, chunks=2, model="hunyuan-lite"),
    ),
    "hunyuan/samples.sse[1] tool id sent twice": Case(
        "openai",
        lambda: sample("hunyuan/samples.sse", 1),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            tools=[("get_current_weather", {"format": "celsius", "location": "北京"})],
            tool_ids=["call_d4nekv42c3mas4ig9k30"],
            streamed=True,
            chunks=3,
        ),
    ),
    "hunyuan/samples.sse[2] native PascalCase, cut short": Case(
        "openai",
        lambda: sample("hunyuan/samples.sse", 2),
        dict(
            finish="unknown",
            text="1+",
            usage=(4, 3, 7, None, None),
            request_id="148b89ef-14e1-489f-8e70-b767e5b27d56",
            streamed=True,
            chunks=2,
            warnings=[NO_DONE, NO_FINISH],
        ),
    ),
    # ---- Doubao / Ark
    "doubao/samples.sse[0]": Case(
        "openai",
        lambda: sample("doubao/samples.sse", 0),
        dict(finish="stop", raw="stop", text="我", streamed=True, chunks=2, model="doubao-seed-1-6-251015"),
    ),
    "doubao/samples.sse[1] reasoning, no end": Case(
        "openai",
        lambda: sample("doubao/samples.sse", 1),
        dict(
            finish="unknown",
            text="这",
            reasoning="用户",
            streamed=True,
            chunks=2,
            warnings=[NO_DONE, NO_FINISH],
        ),
    ),
    # ---- Baichuan
    "baichuan/samples.txt[0]": Case(
        "openai",
        lambda: sample("baichuan/samples.txt", 0),
        dict(
            finish="stop",
            raw="stop",
            text_start="你好！我是百川大模型",
            usage=(8, 52, 60, None, None),
            model="Baichuan2-Turbo",
        ),
    ),
    # ---- MiniMax
    "minimax/samples.txt[0] M2.5 non-stream": Case(
        "openai",
        lambda: sample("minimax/samples.txt", 0),
        dict(
            finish="stop",
            raw="stop",
            text="我是 MiniMax-M2.5，是一个由 MiniMax 公司开发的 AI 助手。有什么我可以帮助您的吗？",
            reasoning="用户问我是什么模型。我应该如实回答我是MiniMax-M2.5。",
            usage=(44, 43, 87, 20, None),
        ),
    ),
    "minimax/samples.txt[1] placeholder-usage tool chunk": Case(
        "openai",
        lambda: sample("minimax/samples.txt", 1, as_sse=True),
        dict(
            finish="unknown",
            tools=[(None, '|event::"}')],
            streamed=True,
            chunks=1,
            warnings=[NO_DONE, "tool call None arguments are not valid JSON", NO_FINISH],
        ),
    ),
    "minimax/samples.txt[2] inline <think> chunk": Case(
        "openai",
        lambda: sample("minimax/samples.txt", 2, as_sse=True),
        dict(
            finish="unknown",
            text="",
            reasoning="The user",
            streamed=True,
            chunks=1,
            warnings=[NO_DONE, "unterminated <think> block", NO_FINISH],
        ),
    ),
    "minimax/samples.txt[3] legacy chatcompletion_pro": Case(
        "openai",
        lambda: sample("minimax/samples.txt", 3),
        dict(
            finish="stop",
            raw="stop",
            text="深圳的天气非常棒哦，阳光明媚，温度适宜，大约28度左右，非常适合外出游玩呢！",
            usage=(None, None, 203, None, None),
        ),
    ),
    # ---- Spark
    "spark/samples.txt[0] no finish_reason, code 0": Case(
        "openai",
        lambda: sample("spark/samples.txt", 0),
        dict(
            finish="stop",
            text="你好！有什么我可以帮助你的吗？",
            usage=(1, 8, 9, None, None),
            request_id="cha000b5de1@dx19e50e7c710b8f3812",
            warnings=["finish_reason absent; inferred from a clean end of response"],
        ),
    ),
    "spark/samples.txt[1] invalid model": Case(
        "openai",
        lambda: sample("spark/samples.txt", 1),
        dict(finish="error", error=("bad_request", "10005", 200)),
    ),
    "spark/samples.txt[2] AppIdNoAuthError": Case(
        "openai",
        lambda: sample("spark/samples.txt", 2),
        dict(finish="error", error=("auth", "11200", 200)),
    ),
    "spark/samples.txt[3] lone stream chunk": Case(
        "openai",
        lambda: sample("spark/samples.txt", 3),
        dict(finish="unknown", text="你好", streamed=True, chunks=1, warnings=[NO_DONE, NO_FINISH]),
    ),
    "spark/samples.txt[4] usage on last content chunk": Case(
        "openai",
        lambda: sample("spark/samples.txt", 4, as_sse=True),
        dict(
            finish="unknown",
            text="😊",
            usage=(1, 418, 419, None, None),
            streamed=True,
            chunks=1,
            warnings=[NO_DONE, NO_FINISH],
        ),
    ),
    # ---- DashScope native
    "dashscope/auth-error-nosse": Case(
        "dashscope",
        lambda: dashscope_raw("auth-error-nosse"),
        dict(
            finish="error",
            error=("auth", "InvalidApiKey", 401),
            request_id="a1c0561c-1dfe-98a6-a62f-983577b8bc5e",
        ),
    ),
    "dashscope/parameter-error-nosse": Case(
        "dashscope",
        lambda: dashscope_raw("parameter-error-nosse"),
        dict(finish="error", error=("bad_request", "InvalidParameter", 400)),
    ),
    "dashscope/parameter-error-sse (event:error in 200)": Case(
        "dashscope",
        lambda: dashscope_raw("parameter-error-sse"),
        dict(finish="error", error=("bad_request", "InvalidParameter", 400), streamed=True, chunks=1),
    ),
    "dashscope/single-generation-message-nosse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-nosse"),
        dict(
            finish="stop",
            raw="stop",
            text=(
                "1+1 等于 2。这是最基本的数学加法之一，"
                "在十进制计数体系中，任何两个相同的数字相加都等于该数字的二倍。"
            ),
            usage=(8, 39, 47, None, None),
            model="qwen-max",
            request_id="e764bfe3-c0b7-97a0-ae57-cd99e1580960",
        ),
    ),
    "dashscope/single-generation-message-sse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-sse"),
        dict(
            finish="stop",
            raw="stop",
            text=(
                "1+1 等于 2。这是最基本的数学加法之一，"
                "在十进制计数体系中，任何情况下 1 加上另一个 1 的结果都是 2。"
            ),
            usage=(8, 40, 48, None, None),
            streamed=True,
            chunks=10,
        ),
    ),
    "dashscope/single-generation-text-nosse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-text-nosse"),
        dict(
            finish="stop",
            raw="stop",
            text="1+1等于2。这是最基本的数学加法运算之一。",
            usage=(16, 14, 30, None, 0),
        ),
    ),
    "dashscope/single-generation-text-sse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-text-sse"),
        dict(
            finish="stop",
            raw="stop",
            text="1+1等于2。",
            usage=(16, 6, 22, None, None),
            streamed=True,
            chunks=5,
        ),
    ),
    "dashscope/single-generation-message-json-nosse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-json-nosse"),
        dict(finish="stop", raw="stop", text='{\n  "result": 2\n}', usage=(25, 9, 34, None, None)),
    ),
    "dashscope/single-generation-message-logprobs-nosse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-logprobs-nosse"),
        dict(finish="stop", raw="stop", text="2", usage=(20, 1, 21, None, 0)),
    ),
    "dashscope/single-generation-message-reasoning-nosse (length)": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-reasoning-nosse"),
        dict(
            finish="length",
            raw="length",
            text="",
            reasoning='我们被问到："请问 1+1 是多少？" 这是一个简单的问题。答案显然是',
            usage=(12, 21, 33, 20, 0),
            model="deepseek-v4-pro",
        ),
    ),
    "dashscope/single-generation-message-reasoning-sse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-reasoning-sse"),
        dict(
            finish="stop",
            raw="stop",
            text=(
                "1+1 等于 **2**。这是数学中最基本的加法运算之一。\n\n"
                "如果你有其他关于数学、科学或任何领域的问题，欢迎继续提问！😊"
            ),
            reasoning="嗯，用户问的是“1+1是多少",
            usage=(16, 53, 69, 10, None),
            streamed=True,
            chunks=16,
        ),
    ),
    "dashscope/single-generation-message-search-nosse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-search-nosse"),
        dict(
            finish="stop",
            raw="stop",
            text_start="截至2025年10月17日，阿里巴巴美股（BABA）的实时价格为167.05美元",
            text_end="涨幅1.09%[ref_2]。",
            usage=(2707, 266, 2973, None, 0),
        ),
    ),
    "dashscope/single-generation-message-with-tools-nosse (forced: finish stop)": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-with-tools-nosse"),
        dict(
            finish="stop",
            raw="stop",
            text="",
            tools=[("get_current_weather", {"location": "浙江省杭州市"})],
            tool_ids=["call_cec4c19d27624537b583af"],
            usage=(211, 8, 219, None, None),
        ),
    ),
    "dashscope/single-generation-message-with-tools-sse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-with-tools-sse"),
        dict(
            finish="stop",
            raw="stop",
            text_start="目前杭州和上海的天气情况如下：",
            text_end="出门携带雨具以防下雨。",
            usage=(283, 53, 336, None, 0),
            streamed=True,
            chunks=14,
        ),
    ),
    "dashscope/single-generation-message-with-parallel-tools-sse": Case(
        "dashscope",
        lambda: dashscope_raw("single-generation-message-with-parallel-tools-sse"),
        dict(
            finish="tool_calls",
            raw="tool_calls",
            text="",
            tools=[
                ("get_current_weather", {"location": "浙江省杭州市"}),
                ("get_current_weather", {"location": "上海市"}),
            ],
            tool_ids=["call_29a870e7106f45deb8add3", "call_026e44bb31a74266949a20"],
            usage=(250, 37, 287, None, 0),
            streamed=True,
            chunks=4,
        ),
    ),
    # ---- ERNIE native
    "ernie/nonstream[0] normal": Case(
        "ernie",
        lambda: ernie_line(0),
        dict(
            finish="stop",
            raw="normal",
            text="你好！很高兴与你交流。有什么我可以帮助你的吗？请随时告诉我。",
            usage=(2, 16, 18, None, None),
            request_id="as-7sntu8vk0p",
        ),
    ),
    "ernie/nonstream[1] function_call": Case(
        "ernie",
        lambda: ernie_line(1),
        dict(
            finish="tool_calls",
            raw="function_call",
            text="",
            tools=[("echo", {"words": "HELLO WORLD!"})],
            tool_ids=[None],
            usage=(112, 24, 136, None, None),
        ),
    ),
    "ernie/nonstream[2]": Case(
        "ernie",
        lambda: ernie_line(2),
        dict(
            finish="stop",
            raw="normal",
            text_start="您好，您输入的消息是：HELLO WORLD!",
            usage=(225, 21, 246, None, None),
        ),
    ),
    "ernie/stream (is_end, usage only at the end)": Case(
        "ernie",
        lambda: (200, read("ernie/qianfan4j-readme-stream.sse"), "", None),
        dict(
            finish="stop",
            raw="normal",
            text="李四的语文成绩是80分，数学成绩是70分。他的平均分是75分。如果您需要更详细的信息或有其他问题，请随时告诉我。",
            usage=(812, 36, 848, None, None),
            streamed=True,
            chunks=5,
        ),
    ),
    # ---- Anthropic
    "anthropic/anthropic-text.json": Case(
        "anthropic",
        lambda: json_file("anthropic/anthropic-text.json"),
        dict(
            finish="stop",
            raw="end_turn",
            text=(
                "Hello! I'm doing well, thanks for asking. How are you doing today? "
                "Is there anything I can help you with?"
            ),
            usage=(12, 29, None, None, 0),
            model="claude-sonnet-4-5-20250929",
        ),
    ),
    "anthropic/anthropic-text.chunks": Case(
        "anthropic",
        lambda: chunks_file("anthropic/anthropic-text.chunks.txt", "anthropic"),
        dict(
            finish="stop",
            raw="end_turn",
            text=(
                "Hello! I'm doing well, thank you for asking. How are you doing today? "
                "Is there anything I can help you with?"
            ),
            usage=(12, 30, None, None, 0),
            streamed=True,
            chunks=12,
        ),
    ),
    "anthropic/anthropic-refusal.json (synthetic)": Case(
        "anthropic",
        lambda: json_file("anthropic/anthropic-refusal.json"),
        dict(finish="content_filter", raw="refusal", text="", usage=(18, 5, None, None, 0), filtered=True),
    ),
    "anthropic/anthropic-refusal.chunks (synthetic)": Case(
        "anthropic",
        lambda: chunks_file("anthropic/anthropic-refusal.chunks.txt", "anthropic"),
        dict(
            finish="content_filter",
            raw="refusal",
            text="",
            usage=(18, 5, None, None, 0),
            filtered=True,
            streamed=True,
            chunks=4,
        ),
    ),
    "anthropic/anthropic-tool-no-args.json": Case(
        "anthropic",
        lambda: json_file("anthropic/anthropic-tool-no-args.json"),
        dict(
            finish="tool_calls",
            raw="tool_use",
            text_start="<thinking>\nThe updateIssueList tool",
            text_end="Okay, I will update the current issue list:",
            tools=[("updateIssueList", {})],
            tool_ids=["toolu_01LRmxn9vGM1d2DZSDBowdZ1"],
            usage=(602, 93, None, None, 0),
        ),
    ),
    "anthropic/anthropic-tool-no-args.chunks (empty partial_json)": Case(
        "anthropic",
        lambda: chunks_file("anthropic/anthropic-tool-no-args.chunks.txt", "anthropic"),
        dict(
            finish="tool_calls",
            raw="tool_use",
            text="I'll update the issue list for you.",
            tools=[("updateIssueList", {})],
            usage=(565, 48, None, None, 0),
            streamed=True,
            chunks=13,
        ),
    ),
    "anthropic/test_request_stream_fallback_for_high_max_tokens": Case(
        "anthropic",
        lambda: cassette("anthropic/test_request_stream_fallback_for_high_max_tokens.yaml"),
        dict(finish="stop", raw="end_turn", text="2", usage=(20, 5, None, None, 0), streamed=True, chunks=7),
    ),
    "anthropic/test_anthropic_count_tokens_error (404)": Case(
        "anthropic",
        lambda: cassette("anthropic/test_anthropic_count_tokens_error.yaml"),
        dict(
            finish="error",
            error=("bad_request", "not_found_error", 404),
            request_id="req_011CVEA3SF7rnb3DuBZytqQa",
        ),
    ),
    # ---- Gemini
    "gemini/google-text.json": Case(
        "gemini",
        lambda: json_file("gemini/google-text.json"),
        dict(
            finish="stop",
            raw="STOP",
            text="There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
            usage=(9, 28, 281, 244, None),
            model="gemini-3-pro-preview",
            request_id="Un6LacrVMcjUxs0PmJfWoQc",
        ),
    ),
    "gemini/google-text.chunks": Case(
        "gemini",
        lambda: chunks_file("gemini/google-text.chunks.txt", "gemini"),
        dict(
            finish="stop",
            raw="STOP",
            text='There are **3** "r"s in strawberry.\n\nst**r**awbe**rr**y',
            usage=(9, 23, 217, 185, None),
            streamed=True,
            chunks=3,
        ),
    ),
    "gemini/google-tool-call.json (STOP with a call)": Case(
        "gemini",
        lambda: json_file("gemini/google-tool-call.json"),
        dict(
            finish="stop",
            raw="STOP",
            text="",
            tools=[("weather", {"location": "San Francisco"})],
            tool_ids=[None],
            usage=(29, 15, 937, 893, None),
        ),
    ),
    "gemini/google-tool-call.chunks": Case(
        "gemini",
        lambda: chunks_file("gemini/google-tool-call.chunks.txt", "gemini"),
        dict(
            finish="stop",
            raw="STOP",
            text="",
            tools=[("weather", {"location": "San Francisco"})],
            usage=(29, 15, 89, 45, None),
            streamed=True,
            chunks=2,
        ),
    ),
    "gemini/google-429-retry-info (per-minute limit)": Case(
        "gemini",
        lambda: json_file("gemini/google-429-retry-info.json", 429),
        dict(finish="error", error=("rate_limit", "RESOURCE_EXHAUSTED", 429)),
    ),
    "gemini/test_google_model_stream (CRLF framing)": Case(
        "gemini",
        lambda: cassette("gemini/test_google_model_stream.yaml"),
        dict(
            finish="stop",
            raw="STOP",
            text="The capital of France is Paris.\n",
            usage=(13, 8, 21, None, None),
            model="gemini-2.0-flash-exp",
            streamed=True,
            chunks=3,
        ),
    ),
}


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
    assert set(DIALECTS) == set(PARSERS)


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
    "ernie stream": ("ernie", lambda: (200, read("ernie/qianfan4j-readme-stream.sse"), "", None)),
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
