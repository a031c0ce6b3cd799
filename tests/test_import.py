"""Importing the plugin is cheap: a run without marked tests loads no vcrpy, deepdiff, hypothesis or ssl."""

from __future__ import annotations

import pytest


def test_run_without_marked_tests_imports_no_heavy_dependency(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import sys

def pytest_sessionfinish(session):
    heavy = sorted(m for m in ("vcr", "deepdiff", "hypothesis", "yaml", "openai", "ssl", "httpx", "pytest_llmport.similarity") if m in sys.modules)
    print("HEAVY", heavy)
"""
    )
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-s", "-p", "no:hypothesispytest", "-p", "no:recording", "-p", "no:anyio"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*plugins: llmport*", "*HEAVY []"])
