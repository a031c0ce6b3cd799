"""The bundled example suites replay offline from their committed cassettes."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("example", "outcomes"),
    [("support_triage", {"passed": 57}), ("property_based", {"passed": 11, "xfailed": 1})],
)
def test_bundled_example_replays_offline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, example: str, outcomes: dict[str, int]
) -> None:
    folder = EXAMPLES / example
    monkeypatch.setenv("CI", "true")  # record mode none: any unrecorded request fails
    result = pytester.runpytest_subprocess(
        str(folder), "-c", str(folder / "pytest.ini"), "-p", "no:cacheprovider"
    )
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines(["*llmport: portability matrix*", "test * openai * zhipu * qwen * deepseek"])
