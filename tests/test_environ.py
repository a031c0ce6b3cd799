from __future__ import annotations

import os

import pytest

from pytest_llmport.environ import restore_variables, set_variables


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
