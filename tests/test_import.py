"""Importing the plugin is cheap: a run without marked tests loads no vcrpy, deepdiff, hypothesis or ssl."""

from __future__ import annotations

import pytest


def test_run_without_marked_tests_imports_no_heavy_dependency(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other installed plugins (anyio, pytest-httpx, respx, langsmith, hypothesis ...) import some of these
    # themselves: load ours alone, so the check is about what pytest-llmport imports.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(
        """
import sys

HEAVY = ("vcr", "deepdiff", "hypothesis", "yaml", "openai", "ssl", "httpx", "httpx2", "pytest_llmport.similarity")

def pytest_sessionfinish(session):
    print("LOADED", session.config.pluginmanager.get_plugin("llmport-run") is not None)
    print("HEAVY", sorted(m for m in HEAVY if m in sys.modules))
"""
    )
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-s", "-p", "pytest_llmport.plugin")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*LOADED True", "*HEAVY []"])
