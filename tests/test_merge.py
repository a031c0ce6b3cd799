"""``python -m pytest_llmport merge``: shards merge into what one run gives; conflicts are named."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llmport.__main__ import main as cli

from .conftest import RunModes
from .report_suite import SUITE

PROVIDERS = ("openai", "zhipu", "qwen")


def read(path: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return report


def make_shards(pytester: pytest.Pytester, run: Callable[..., pytest.RunResult]) -> Path:
    """One report of a run over all providers and one per provider, all replaying the same cassettes; the
    reports come from ``run``."""
    pytester.makepyfile(test_app=SUITE)
    pytester.runpytest("--providers=openai").assert_outcomes(passed=5)
    # Record every provider once (a failing test keeps its cassette), then replay for the reports.
    pytester.runpytest(f"--providers={','.join(PROVIDERS)}", "--llmport-record-on-failure")
    run(f"--providers={','.join(PROVIDERS)}", "--llmport-report=one.json")
    for provider in PROVIDERS:
        run(f"--providers={provider}", f"--llmport-report={provider}.json")
    return pytester.path


@pytest.fixture
def shards(pytester: pytest.Pytester, llm_env: object) -> Path:
    return make_shards(pytester, pytester.runpytest)


def test_per_provider_runs_merge_into_the_single_run(
    pytester: pytest.Pytester, llm_env: object, run_modes: RunModes, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sharded CI runs each use xdist: reports written by the controller from its workers' data.
    shards = make_shards(pytester, run_modes)
    args = [str(shards / f"{p}.json") for p in PROVIDERS]
    code = cli(["merge", *args, "--json", str(shards / "merged.json"), "--html", str(shards / "merged.html")])
    assert code == 0
    out = capsys.readouterr().out
    assert "zhipu vs openai: 4/5 equivalent" in out and "qwen vs openai: 4/5 equivalent" in out
    assert "test_app.py::test_parse" in out
    merged, single = read(shards / "merged.json"), read(shards / "one.json")
    assert merged.pop("merged_from") == args

    # Tracebacks name objects by address, which differs between any two runs, and under xdist begin with
    # the worker that ran the test ("[gw1] linux -- Python ..."), which may too; and xdist's workers finish
    # cells in any order (a mapping's order is not compared).
    def comparable(report: dict[str, object]) -> object:
        return json.loads(re.sub(r"\[gw\d+\]", "[gw]", re.sub(r"0x[0-9a-f]+", "0x", json.dumps(report))))

    assert comparable(merged) == comparable(single)
    assert "Migration report" in (shards / "merged.html").read_text(encoding="utf-8")


INCOMPATIBLE = [
    ({"version": 1}, "report format version 1, but this pytest-llmport reads version 2"),
    ({"baseline": "zhipu"}, "compares against baseline 'zhipu'"),
    ({"prices": {"cny_per_usd": 6.5, "models": {}}}, "priced with different tables or exchange rates"),
    ({"format": "other"}, "not a pytest-llmport report"),
    ({"tests": {"t": {"zhipu": {"outcome": "fine"}}}}, "does not match the report schema"),
]


def test_conflicts_and_incompatible_reports_are_named_and_nothing_is_written(
    shards: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = read(shards / "zhipu.json")
    tests = changed["tests"]
    assert isinstance(tests, dict)
    tests["test_app.py::test_parse"]["zhipu"]["outcome"] = "passed"
    (shards / "zhipu-again.json").write_text(json.dumps(changed), encoding="utf-8")
    args = [str(shards / "zhipu.json"), str(shards / "zhipu-again.json"), str(shards / "openai.json")]
    assert cli(["merge", *args, "--json", str(shards / "out.json")]) == 1
    err = capsys.readouterr().err
    assert "test_app.py::test_parse [zhipu] differs between " in err
    assert "(outcome failed vs passed): keep one shard per test and provider" in err
    assert not (shards / "out.json").exists()
    # The same cell twice, unchanged, is no conflict.
    assert cli(["merge", str(shards / "zhipu.json"), str(shards / "zhipu.json")]) == 0
    capsys.readouterr()
    # Broken on purpose, so not named *.json (the suite checks every *.json report against the schema).
    for edit, message in INCOMPATIBLE:
        other = {**read(shards / "zhipu.json"), **edit}
        (shards / "other.report").write_text(json.dumps(other), encoding="utf-8")
        out = shards / "out.html"
        assert (
            cli(["merge", str(shards / "openai.json"), str(shards / "other.report"), "--html", str(out)]) == 1
        )
        assert message in capsys.readouterr().err, edit
        assert not out.exists()


def test_unreadable_inputs_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert cli(["merge", str(tmp_path / "bad.json")]) == 1
    assert "bad.json: not a JSON file" in capsys.readouterr().err
    assert cli(["merge", str(tmp_path / "missing.json")]) == 1
    assert "missing.json: cannot read it" in capsys.readouterr().err


def test_the_github_actions_example_uses_options_that_exist() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "report.md").read_text(encoding="utf-8")
    workflow = page.split("## Merging shards", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    assert "matrix:" in workflow and "--llmport-report=" in workflow
    assert "python -m pytest_llmport merge" in workflow and "--html" in workflow
