"""The cassette inventory: orphans (and pruning them), missing cassettes, outdated recordings."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmport.inventory import why_outdated

from .conftest import RunModes
from .report_suite import SUITE

UNDER_XDIST = "under -n the workers collect the tests: run --llmport-cassettes without -n"


@pytest.fixture
def recorded(pytester: pytest.Pytester, llm_env: object) -> Path:
    pytester.makepyfile(test_app=SUITE)
    pytester.runpytest("--providers=openai,zhipu", "--llmport-record-on-failure")
    root = pytester.path / "cassettes" / "test_app"
    gone = root / "test_gone"
    gone.mkdir()
    shutil.copy(root / "test_reply" / "openai.yaml", gone / "openai.yaml")
    shutil.copy(root / "test_reply" / "openai.yaml", root / "test_reply" / "retired-provider.yaml")
    old = root / "test_case" / "case=a" / "openai.yaml"
    # Edit its header as an older plugin would have written it (the bodies' seals stay valid).
    text = re.sub(r"\n  plugin: [^\n]*", "\n  plugin: 0.0.1", old.read_text(encoding="utf-8"), count=1)
    text = re.sub(r"\n  recorded: [^\n]*", "\n  recorded: '2020-01-01'", text, count=1)
    text = re.sub(r"\n  sdk:\n    openai: [^\n]*", "\n  sdk:\n    openai: 0.0.1", text, count=1)
    assert "openai: 0.0.1" in text and "plugin: 0.0.1" in text
    old.write_text(text, encoding="utf-8")
    return root


def test_report_lists_orphans_missing_and_outdated_cassettes(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    result = pytester.runpytest(
        "--providers=openai,qwen", "--llmport-cassettes=report", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(
        [
            "*= llmport: cassette inventory =*",
            "orphaned cassettes (no collected test uses them): 2",
            "  cassettes/test_app/test_gone/openai.yaml",
            "  cassettes/test_app/test_reply/retired-provider.yaml",
            "marked tests without a cassette for a selected provider: 5",
            "  test_app.py::test_reply[[]qwen[]]: no qwen cassette at cassettes/test_app/test_reply/qwen.yaml",
            "outdated cassettes: 1 (old 1, plugin 1, sdk 1)",
            "  cassettes/test_app/test_case/case=a/openai.yaml: old: recorded 2020-01-01, * days ago (limit 180);"
            " plugin: recorded with pytest-llmport 0.0.1, now *; sdk: recorded with openai 0.0.1, now *",
        ]
    )
    assert (recorded / "test_gone" / "openai.yaml").is_file()  # report deletes nothing


def test_deselected_tests_keep_their_cassettes(
    pytester: pytest.Pytester, recorded: Path, run_modes: RunModes
) -> None:
    result = run_modes("--providers=openai", "--llmport-cassettes=prune", "-k", "test_case", "-q")
    result.assert_outcomes(passed=3)
    if run_modes.xdist:  # the controller collects nothing, and no worker sees every test: nothing pruned
        result.stdout.fnmatch_lines([UNDER_XDIST])
        assert (recorded / "test_gone" / "openai.yaml").is_file()
        return
    result.stdout.fnmatch_lines(["orphaned cassettes (no collected test uses them): 2"])
    assert (recorded / "test_reply" / "openai.yaml").is_file()
    assert not (recorded / "test_gone").exists()  # the folder went with its only cassette
    assert not (recorded / "test_reply" / "retired-provider.yaml").exists()


def test_prune_refuses_when_tests_were_picked_by_node_id(pytester: pytest.Pytester, recorded: Path) -> None:
    result = pytester.runpytest(
        "--providers=openai", "--llmport-cassettes=prune", "--collect-only", "test_app.py::test_reply"
    )
    result.stdout.fnmatch_lines(["  not pruned: the run selected tests by node id; *"])
    assert (recorded / "test_gone" / "openai.yaml").is_file()


def test_the_verdict_counts_cells_by_cassette(
    pytester: pytest.Pytester, recorded: Path, run_modes: RunModes
) -> None:
    result = run_modes("--providers=openai", "--llmport-cassettes=report", "-q")
    if run_modes.xdist:
        result.stdout.fnmatch_lines(["  cells:    replayed 5", UNDER_XDIST])
        return
    result.stdout.fnmatch_lines(["  cells:    replayed 5, stale: old 1, stale: plugin 1, stale: sdk 1"])


def test_the_subcommand_collects_only(pytester: pytest.Pytester, recorded: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_llmport", "cassettes", "report", "--providers=openai,zhipu"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "orphaned cassettes (no collected test uses them): 2" in done.stdout
    assert "passed" not in done.stdout  # nothing ran


def test_age_and_versions() -> None:
    today = dt.date(2026, 1, 31)
    assert why_outdated({"recorded": "2026-01-01"}, 30, today) == []
    assert why_outdated({"recorded": "2025-12-01"}, 30, today) == [
        "old: recorded 2025-12-01, 61 days ago (limit 30)"
    ]
    assert why_outdated({"plugin": "99.0"}, 30, today) == []  # newer than this plugin: not outdated
