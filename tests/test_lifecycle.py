"""The per-test recording lifecycle's plan (pytest_llmport.lifecycle): what one test on one provider does,
decided before its cassette is opened, as a frozen Plan."""

from __future__ import annotations

import pytest

from pytest_llmport.testing import FakeProvider

# The plan as the run makes it, before the test's setup exports its SDK environment (a key among it).
CONFTEST = """
import pytest

from pytest_llmport.plugin import RUN_KEY


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item):
    item.llm_plan = item.config.stash[RUN_KEY].lifecycle.plan(item, "openai")
    return (yield)
"""

INNER = """
import dataclasses
import os

import pytest

from pytest_llmport.placeholders import replay_key


@pytest.mark.llm_portable(providers=["openai"])
def test_plan(request, llm_provider):
    plan = request.node.llm_plan
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.mode = "all"
    assert plan.spec.name == "openai" and plan.path == llm_provider.cassette_path
    assert plan.path.name == "openai.yaml"
    expected = os.environ["EXPECT"]
    if expected == "record":
        assert (plan.mode, plan.replaying, plan.key) == ("once", False, os.environ["OPENAI_API_KEY"])
        llm_provider.chat([{"role": "user", "content": "你好"}])
    else:  # no key, a cassette: nothing may go out, pure replay with the placeholder key
        assert (plan.mode, plan.replaying, plan.key) == ("none", True, replay_key("OPENAI_API_KEY"))
        assert llm_provider.chat([{"role": "user", "content": "你好"}]).text
"""


def test_the_plan_records_with_a_key_and_replays_without_one(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("EXPECT", "record")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert llm_env.requests, "the first run recorded through the fake provider"
    sent = len(llm_env.requests)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("EXPECT", "replay")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert len(llm_env.requests) == sent, "the replay sent nothing"


def test_no_cassette_in_record_mode_none_fails_setup_with_the_command_that_records_it(
    pytester: pytest.Pytester, llm_env: FakeProvider
) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmport-record-mode=none")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_plan[[]openai[]]: no cassette for provider 'openai' at *openai.yaml (record mode: none).",
            "  To record it: OPENAI_API_KEY=... pytest 'test_inner.py::test_plan[[]openai[]]' "
            "--providers=openai --llmport-record-mode=once",
        ]
    )
