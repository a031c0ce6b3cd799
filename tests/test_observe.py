"""Capabilities (requires=) and automatic observations of every exchange in the matrix and report."""

from __future__ import annotations

import json

import pytest

from pytest_llmport.testing import FakeProvider

from .conftest import KEY, RunModes, lines_in_any_order

ASK = """
import pytest

@pytest.mark.llm_portable
def test_ask(llm_provider):
    client = llm_provider.httpx_client()
    client.post("chat/completions", json={"model": llm_provider.model, "messages": [{"role": "user", "content": "你好"}]})
"""


def test_requires_skips_providers_that_lack_a_capability(
    pytester: pytest.Pytester, run_modes: RunModes
) -> None:
    pytester.makepyprojecttoml('[tool.llmport.providers.deepseek]\ncapabilities = ["streaming"]\n')
    pytester.makepyfile(
        test_caps="""
import pytest

@pytest.mark.llm_portable(requires=["tools", "json_mode"])
def test_tools(llm_provider):
    pass
"""
    )
    result = pytester.runpytest("--providers=openai,minimax,deepseek", "-rs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["*test_tools[[]openai[]]", "*test_tools[[]minimax[]]", "*test_tools[[]deepseek[]]"]
    )
    result = run_modes("--providers=minimax,deepseek", "-rs")  # skip reasons decided on each worker
    result.assert_outcomes(skipped=2)
    lines_in_any_order(
        result,
        [
            "*minimax lacks json_mode (requires=[[]'tools', 'json_mode'[]])",
            "*deepseek lacks tools, json_mode (requires=[[]'tools', 'json_mode'[]])",
        ],
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('requires="tools"', "*requires must be a list of capabilities*"),
        ('requires=["telepathy"]', "*unknown capabilities telepathy; known: tools, json_mode*"),
    ],
)
def test_bad_requires(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        test_bad=f"import pytest\n\n@pytest.mark.llm_portable({marker})\ndef test_it():\n    pass\n"
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([message])


def test_exchanges_are_observed_and_explain_failures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with FakeProvider(api_key=KEY) as ok, FakeProvider(api_key=KEY) as limited:
        limited.fail_next(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}})
        monkeypatch.setenv("LLMPORT_ZHIPU_BASE_URL", ok.base_url)
        monkeypatch.setenv("LLMPORT_QWEN_BASE_URL", limited.base_url)
        monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
        monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
        pytester.makepyfile(
            test_ask=ASK.replace("    client.post(", "    r = client.post(") + "    r.raise_for_status()\n"
        )
        report = pytester.path / "r.json"
        result = pytester.runpytest("--providers=zhipu,qwen", f"--llmport-report={report}", *xdist_args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["test * zhipu * qwen", "test_ask.py::test_ask  ok * rate_limit"])
    data = json.loads(report.read_text("utf-8"))["tests"]["test_ask.py::test_ask"]
    (ok_exchange,) = data["zhipu"]["exchanges"]
    assert ok_exchange["endpoint"] == "POST /v1/chat/completions"
    assert ok_exchange["finish_reason"] == "stop" and ok_exchange["usage"]["total"] > 0
    assert ok_exchange["total_ms"] >= ok_exchange["first_byte_ms"] > 0
    (limited_exchange,) = data["qwen"]["exchanges"]
    assert limited_exchange["status"] == 429 and limited_exchange["error"]["category"] == "rate_limit"


def test_dialect_and_url_that_disagree_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.llmport.providers.qwen]\nbase_url = "https://dashscope.aliyuncs.com/api/v1"\n'
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*provider 'qwen': dialect 'openai' but * is the native DashScope API*"])


def test_exchange_summaries_are_cached_but_never_written_to_cassettes(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_ask=ASK)
    pytester.runpytest("--providers=zhipu", "-p", "cacheprovider").assert_outcomes(passed=1)
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    for _ in range(2):  # the second replay reads its summary from the cache
        report = pytester.path / "r.json"
        result = run_modes("--providers=zhipu", "-p", "cacheprovider", f"--llmport-report={report}")
        result.assert_outcomes(passed=1)
        (exchange,) = json.loads(report.read_text("utf-8"))["tests"]["test_ask.py::test_ask"]["zhipu"][
            "exchanges"
        ]
        assert exchange["finish_reason"] == "stop"
    text = (pytester.path / "cassettes/test_ask/test_ask/zhipu.yaml").read_text("utf-8")
    assert "_llmport" not in text
