"""The run's scrubbers (redaction.py): found again for the same secrets, never kept past a change of them."""

from __future__ import annotations

import os

import pytest

from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.redaction import Redaction

KEY = "sk-live-0123456789abcdef"
OTHER = "sk-live-fedcba9876543210"


@pytest.fixture
def redaction(monkeypatch: pytest.MonkeyPatch) -> Redaction:
    for spec in BUILTIN_PROVIDERS:
        monkeypatch.delenv(spec.api_key_env, raising=False)
    return Redaction(BUILTIN_PROVIDERS)


def test_a_scrubber_follows_the_key_variables_as_they_are_now(
    redaction: Redaction, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = redaction.scrubber()
    assert before.text(f"key {KEY}") == f"key {KEY}"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert redaction.scrubber().text(f"key {KEY}") == "key <REDACTED:OPENAI_API_KEY>"
    monkeypatch.setenv("OPENAI_API_KEY", OTHER)
    assert redaction.scrubber().text(f"{KEY} {OTHER}") == f"{KEY} <REDACTED:OPENAI_API_KEY>"
    monkeypatch.setenv("OPENAI_API_KEY", "")  # empty counts as unset
    assert redaction.scrubber() is before
    monkeypatch.delenv("OPENAI_API_KEY")
    assert redaction.scrubber() is before  # the same secrets as at first: the same scrubber
    # What a hook adds, and the test's own key, count as well.
    assert redaction.scrubber("", {"TENANT_TOKEN": KEY}).text(KEY) == "<REDACTED:TENANT_TOKEN>"
    assert redaction.scrubber(OTHER).text(OTHER) == "<REDACTED:API_KEY>"
    assert redaction.scrubber() is before
    # The output scrubber keeps every key seen in the run.
    assert redaction.output().text(f"{KEY} {OTHER}") == "<REDACTED:OPENAI_API_KEY> <REDACTED:OPENAI_API_KEY>"


def test_a_replaced_os_environ_is_read_as_it_is(
    redaction: Redaction, monkeypatch: pytest.MonkeyPatch
) -> None:
    redaction.scrubber()
    monkeypatch.setattr(os, "environ", {**os.environ, "DEEPSEEK_API_KEY": KEY})
    assert redaction.scrubber().text(KEY) == "<REDACTED:DEEPSEEK_API_KEY>"


def test_the_plugins_own_junit_properties_are_kept_and_a_users_look_alike_is_scrubbed(
    redaction: Redaction, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    ours = ("llmport.provider", "openai")
    theirs = ("llmport.provider", f"key {KEY}")  # a user's property under the plugin's name
    report = pytest.TestReport(
        "test_x.py::test_x", ("test_x.py", 0, "test_x"), {}, "passed", None, "teardown",
        user_properties=[ours, theirs, ("note", KEY)],
    )  # fmt: skip
    redaction.scrub_report(report, clean=[ours])
    assert report.user_properties[0] is ours
    assert report.user_properties[1:] == [
        ("llmport.provider", "key <REDACTED:OPENAI_API_KEY>"),
        ("note", "<REDACTED:OPENAI_API_KEY>"),
    ]
    # Nothing but the plugin's own properties: nothing to read, and nothing changed.
    report = pytest.TestReport(
        "test_x.py::test_x",
        ("test_x.py", 0, "test_x"),
        {},
        "passed",
        None,
        "teardown",
        user_properties=[ours],
    )
    redaction.scrub_report(report, clean=[ours])
    assert report.user_properties == [ours]
