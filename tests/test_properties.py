"""Property-based llm_portable tests: replayable @given, metamorphic relations, smallest failing inputs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pytest_llmport.testing import FakeProvider

from .conftest import KEY, cassettes

PROPERTY = """
import pytest
from hypothesis import given, strategies as st


def classify(llm_provider, text):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content


@pytest.mark.llm_portable
@given(order=st.integers(min_value=1000, max_value=9999))
def test_category_is_known(llm_provider, order):
    assert classify(llm_provider, f"订单 A{order} 还没发货") in {"shipping", "refund"}


@pytest.mark.llm_portable
@given(order=st.integers(min_value=1000, max_value=9999))
def test_politeness_keeps_the_category(llm_provider, llm_equiv, order):
    llm_equiv.relation(
        "category", lambda text: classify(llm_provider, text), f"订单 A{order} 还没发货", lambda t: "您好，" + t
    )
"""


def polite_changes_category(request: dict[str, Any]) -> str:
    text = request["messages"][-1]["content"]
    order = int(re.search(r"A(\d+)", text).group(1))  # type: ignore[union-attr]
    return "refund" if text.startswith("您好") and order > 1500 else "shipping"


@pytest.fixture
def two_providers(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CI", raising=False)
    steady = FakeProvider(lambda request: "shipping", api_key=KEY).start()
    fickle = FakeProvider(polite_changes_category, api_key=KEY).start()
    monkeypatch.setenv("LLMPORT_ZHIPU_BASE_URL", steady.base_url)
    monkeypatch.setenv("LLMPORT_QWEN_BASE_URL", fickle.base_url)
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    yield steady, fickle
    steady.stop()
    fickle.stop()


def test_examples_replay_offline_and_broken_relations_are_reported(
    pytester: pytest.Pytester,
    two_providers: tuple[FakeProvider, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    steady, fickle = two_providers
    pytester.makeini("[pytest]\nllmport_max_examples = 6\n")
    pytester.makepyfile(test_prop=PROPERTY)
    report = pytester.path / "report.json"
    recorded = pytester.runpytest("--providers=zhipu,qwen", f"--llmport-report={report}", *xdist_args)
    recorded.assert_outcomes(passed=3, failed=1)
    recorded.stdout.fnmatch_lines(["*relation 'category' (equal) broken on qwen:*"])
    recorded.stdout.fnmatch_lines(
        [
            "test_prop.py::test_category_is_known * ok * ok",
            "test_prop.py::test_politeness_keeps_the_category * ok * broken",
            "*test_prop.py::test_politeness_keeps_the_category [[]qwen[]]: smallest failing input: "
            "*: test_politeness_keeps_the_category(*order=1501*",
        ]
    )
    cell = json.loads(report.read_text("utf-8"))["tests"]["test_prop.py::test_politeness_keeps_the_category"][
        "qwen"
    ]
    assert "order=1501" in cell["falsifying"]
    assert any(check["kind"] == "relation" and not check["passed"] for check in cell["checks"])
    # Bounded: at most 6 generated examples (plus shrinking on the broken relation) per provider.
    assert len(steady.requests) <= 6 * 3
    files = cassettes(pytester.path)
    assert "cassettes/test_prop/test_politeness_keeps_the_category/qwen.yaml" in files, (
        "a finding keeps its cassette"
    )

    steady.stop()
    fickle.stop()
    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest("--providers=zhipu,qwen", *xdist_args)
    replayed.assert_outcomes(passed=3, failed=1)
    replayed.stdout.fnmatch_lines(["*smallest failing input: *order=1501*"])
    assert cassettes(pytester.path) == files


def test_changed_strategy_is_reported_once_before_any_example(
    pytester: pytest.Pytester,
    two_providers: tuple[FakeProvider, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    pytester.makepyfile(test_prop=PROPERTY)
    pytester.runpytest("--providers=zhipu", "-k", "known").assert_outcomes(passed=1)
    for server in two_providers:
        server.stop()
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_prop=PROPERTY.replace("min_value=1000", "min_value=2000"))
    result = pytester.runpytest("--providers=zhipu", "-k", "known", *xdist_args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_prop.py::test_category_is_known[[]zhipu[]]: the @given strategies of this test changed since "
            "its cassette was recorded (fingerprint *, now *), so its examples would be inputs that were never "
            "recorded. Re-record the test whole. To record it: * --llmport-record-mode=all",
        ]
    )
    assert "no recorded response" not in result.stdout.str(), "said once, before any example ran"


def test_an_unrecorded_input_in_a_cassette_without_fingerprint_stops_at_once(
    pytester: pytest.Pytester,
    two_providers: tuple[FakeProvider, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(test_prop=PROPERTY)
    pytester.runpytest("--providers=zhipu", "-k", "known").assert_outcomes(passed=1)
    for server in two_providers:
        server.stop()
    # As recorded by 0.1: no llmport: mapping, so nothing says the strategy changed.
    path = pytester.path / "cassettes/test_prop/test_category_is_known/zhipu.yaml"
    text = path.read_text("utf-8")
    path.write_text(
        "version: 1\n" + text[text.index("\ninteractions:") + 1 :], encoding="utf-8"
    )  # the header dropped: unsealed, as 0.1 wrote it
    monkeypatch.setenv("CI", "true")
    counted = PROPERTY.replace("min_value=1000", "min_value=2000").replace(
        "def classify(llm_provider, text):\n",
        "CALLS = []\n\n\ndef classify(llm_provider, text):\n    CALLS.append(text)\n"
        "    print(f'example {len(CALLS)}')\n",
    )
    pytester.makepyfile(test_prop=counted)
    # INFO: the openai SDK logs each retry it makes ("Retrying request in ... seconds").
    result = pytester.runpytest("--providers=zhipu", "-k", "known", "-o", "log_level=INFO")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_prop.py::test_category_is_known[[]zhipu[]]: no recorded response for POST *",
            "*This is a property-based test: hypothesis generated an input that was never recorded*"
            "Re-record the test whole with --llmport-record-mode=all.",
        ]
    )
    # Stopped at the first unrecorded input: one example, no shrinking, no SDK retries with back-off
    # (counted, not timed: a loaded machine must not fail this test).
    assert "example 1" in result.stdout.str() and "example 2" not in result.stdout.str()
    assert "Retrying request" not in result.stdout.str()


def test_replay_walks_the_recorded_examples_whatever_the_settings(
    pytester: pytest.Pytester,
    two_providers: tuple[FakeProvider, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    steady, fickle = two_providers
    suite = pytester.mkdir("suite")
    (suite / "pytest.ini").write_text("[pytest]\nllmport_max_examples = 4\n", encoding="utf-8")
    (suite / "test_prop.py").write_text(PROPERTY, encoding="utf-8")
    recorded = pytester.runpytest("suite", "-c", "suite/pytest.ini", "--providers=zhipu,qwen")
    recorded.assert_outcomes(passed=3, failed=1)
    files = cassettes(pytester.path)
    text = files["suite/cassettes/test_prop/test_category_is_known/zhipu.yaml"]
    assert "  hypothesis:\n    max_examples: 4\n    strategy: " in text
    steady.stop()
    fickle.stop()
    monkeypatch.setenv("CI", "true")
    # Another example count, another ini and rootdir (the parent folder, no llmport_max_examples: 10).
    pytester.makeini("[pytest]\n")
    for args in (
        ["suite", "-c", "suite/pytest.ini", "-o", "llmport_max_examples=9"],
        ["suite", "-c", "suite/pytest.ini", "-o", "llmport_max_examples=2"],
        ["suite", "--rootdir", str(pytester.path)],
    ):
        replayed = pytester.runpytest(*args, "--providers=zhipu,qwen", "-p", "no:cacheprovider", *xdist_args)
        replayed.assert_outcomes(passed=3, failed=1)
        replayed.stdout.fnmatch_lines(["*smallest failing input: *order=1501*"])
    assert cassettes(pytester.path) == files


def test_bad_relation_expectation_is_explained(
    pytester: pytest.Pytester, two_providers: tuple[FakeProvider, FakeProvider]
) -> None:
    pytester.makepyfile(
        test_rel="""
import pytest

@pytest.mark.llm_portable
def test_rel(llm_provider, llm_equiv):
    llm_equiv.relation("x", len, "ab", str.upper, expect="same-ish")
"""
    )
    result = pytester.runpytest("--providers=zhipu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*relation 'x': expect='same-ish' must be 'equal', 'different' or a callable"]
    )
