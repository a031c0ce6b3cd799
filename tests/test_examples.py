"""The bundled example suites replay offline from their committed cassettes."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import RunModes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("example", "outcomes"),
    [("support_triage", {"passed": 57}), ("property_based", {"passed": 11, "xfailed": 1})],
)
def test_bundled_example_replays_offline(
    monkeypatch: pytest.MonkeyPatch, example: str, outcomes: dict[str, int], run_modes: RunModes
) -> None:
    folder = EXAMPLES / example
    monkeypatch.setenv("CI", "true")  # record mode none: any unrecorded request fails
    result = run_modes(
        str(folder), "-c", str(folder / "pytest.ini"), "-p", "no:cacheprovider", subprocess=True
    )
    result.assert_outcomes(**outcomes)
    # Issue 11: every run ends with the verdict per provider, the matrix below it (README command 1).
    result.stdout.fnmatch_lines(
        [
            "*llmport: verdict per provider (baseline openai)*",
            "openai (baseline): */* passed*",
            "zhipu vs openai: */* equivalent*",
            "qwen vs openai: */* equivalent*",
            "deepseek vs openai: */* equivalent*",
            "  cost: *",
            "*token counts differ between tokenizers*",
            "*llmport: portability matrix*",
            "test * openai * zhipu * qwen * deepseek",
        ]
    )


def test_property_example_replays_from_the_repository_root_with_other_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The repository's own ini (no llmport_max_examples: 10, not the example's 8) and rootdir, and a
    # third example count on top: the cassettes say how many examples were recorded, and replay obeys.
    root = EXAMPLES.parent
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess(
        str(EXAMPLES / "property_based"),
        "-c",
        str(root / "pyproject.toml"),
        "--rootdir",
        str(root),
        "--providers=openai,zhipu,qwen,deepseek",
        "-o",
        "llmport_max_examples=3",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=11, xfailed=1)
