"""pytest-recording, pytest-httpx and respx beside the plugin: refused in a marked test, untouched elsewhere."""

from __future__ import annotations

import pytest

from pytest_llmport.testing import FakeProvider

pytest.importorskip("pytest_httpx")
pytest.importorskip("respx")
pytest.importorskip("pytest_recording")

MIXED = """
import httpx
import pytest
import requests

PROMPT = [{"role": "user", "content": "订单"}]


@pytest.mark.llm_portable
@pytest.mark.vcr
def test_portable_and_vcr(llm_provider):
    llm_provider.openai_client().chat.completions.create(model=llm_provider.model, messages=PROMPT)


@pytest.mark.llm_portable
def test_portable_and_httpx_mock(llm_provider, httpx_mock):
    httpx_mock.add_response(json={"mocked": True})
    assert httpx.get(llm_provider.base_url + "/models").json() == {"mocked": True}


@pytest.mark.llm_portable
def test_portable_and_respx(llm_provider, respx_mock):
    respx_mock.get(llm_provider.base_url + "/models").respond(json={"mocked": True})
    assert httpx.get(llm_provider.base_url + "/models").json() == {"mocked": True}
"""

UNCHANGED = """
import os

import httpx
import pytest
import requests

PROMPT = [{"role": "user", "content": "订单"}]


@pytest.mark.vcr
def test_pytest_recording_alone():
    response = requests.post(os.environ["FAKE_URL"] + "/chat/completions", json={"model": "m", "messages": PROMPT},
                             headers={"Authorization": "Bearer " + os.environ["FAKE_KEY"]}, timeout=10)
    assert response.json()["choices"][0]["message"]["content"] == "[fake] 订单"


def test_httpx_mock_alone(httpx_mock):
    httpx_mock.add_response(json={"mocked": True})
    assert httpx.get("https://example.invalid/x").json() == {"mocked": True}


def test_respx_alone(respx_mock):
    respx_mock.get("https://example.invalid/y").respond(json={"mocked": 1})
    assert httpx.get("https://example.invalid/y").json() == {"mocked": 1}


@pytest.mark.llm_portable
def test_portable(llm_provider):
    reply = llm_provider.openai_client().chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert reply.choices[0].message.content == "[fake] 订单"
"""


def test_another_recorder_or_mock_in_a_portable_test_is_refused_with_the_fix(
    pytester: pytest.Pytester, llm_env: FakeProvider
) -> None:
    pytester.makepyfile(test_mixed=MIXED)
    result = pytester.runpytest_subprocess("--providers=deepseek")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_portable_and_vcr[[]deepseek[]]: this llm_portable test on provider 'deepseek' also uses another "
            "HTTP recorder or mock: @pytest.mark.vcr (pytest-recording)*Keep the LLM calls in a test of their own*",
            "*test_portable_and_httpx_mock[[]deepseek[]]: *pytest-httpx's httpx_mock fixture*",
            "*test_portable_and_respx[[]deepseek[]]: *respx's respx_mock*",
        ]
    )
    assert not (pytester.path / "cassettes").exists(), "nothing was recorded"
    assert llm_env.requests == []


def test_the_apps_other_tests_run_unchanged(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    from .conftest import KEY

    monkeypatch.setenv("FAKE_URL", llm_env.base_url)
    monkeypatch.setenv("FAKE_KEY", KEY)
    pytester.makepyfile(test_unchanged=UNCHANGED)
    pytester.runpytest_subprocess("--providers=deepseek", "--record-mode=once", *xdist_args).assert_outcomes(
        passed=4
    )
    assert (pytester.path / "cassettes" / "test_unchanged" / "test_pytest_recording_alone.yaml").is_file()
    assert (pytester.path / "cassettes" / "test_unchanged" / "test_portable" / "deepseek.yaml").is_file()
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    pytester.runpytest_subprocess("--providers=deepseek", *xdist_args).assert_outcomes(passed=4)
