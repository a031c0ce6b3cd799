from __future__ import annotations

import os

import pytest

from pytest_llmport.environ import current, environment_reader, restore_variables, set_variables


def test_variables_set_twice_come_back_as_they_were_before_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMPORT_T_HELD", "before")
    monkeypatch.delenv("LLMPORT_T_UNSET", raising=False)
    saved: dict[str, str | None] = {}
    set_variables({"LLMPORT_T_HELD": "one", "LLMPORT_T_UNSET": "one"}, saved)
    set_variables({"LLMPORT_T_HELD": "two"}, saved)
    assert (os.environ["LLMPORT_T_HELD"], os.environ["LLMPORT_T_UNSET"]) == ("two", "one")
    restore_variables(saved)
    assert os.environ["LLMPORT_T_HELD"] == "before"
    assert "LLMPORT_T_UNSET" not in os.environ
    assert saved == {}


def test_current_reads_what_os_environ_holds_even_after_it_was_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMPORT_T_READ", "värde")  # non-ASCII: decoded as os.environ decodes it
    monkeypatch.delenv("LLMPORT_T_GONE", raising=False)
    assert current("LLMPORT_T_READ") == "värde" and current("LLMPORT_T_GONE") is None
    read = environment_reader(["LLMPORT_T_READ", "LLMPORT_T_GONE"])
    assert read() == {"LLMPORT_T_READ": "värde"}
    # A test may swap os.environ for a plain dict: the fast path must not keep reading the old one.
    monkeypatch.setattr(os, "environ", {"LLMPORT_T_GONE": "here"})
    assert current("LLMPORT_T_READ") is None and current("LLMPORT_T_GONE") == "here"
    assert read() == {"LLMPORT_T_GONE": "here"}


def test_a_variable_already_holding_the_value_is_not_written_yet_still_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMPORT_T_SAME", "same")
    monkeypatch.delenv("LLMPORT_T_NEW", raising=False)
    saved: dict[str, str | None] = {}
    set_variables({"LLMPORT_T_SAME": "same", "LLMPORT_T_NEW": "new"}, saved)
    assert saved == {"LLMPORT_T_SAME": "same", "LLMPORT_T_NEW": None}
    os.environ["LLMPORT_T_SAME"] = "changed by the test"
    restore_variables(saved)
    assert os.environ["LLMPORT_T_SAME"] == "same" and "LLMPORT_T_NEW" not in os.environ
