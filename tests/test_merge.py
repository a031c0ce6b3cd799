"""``python -m pytest_llmport merge``: shards merge into what one run gives; conflicts are named."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llmport.__main__ import main as cli
from pytest_llmport.testing import FakeProvider

from .conftest import RunModes
from .report_suite import SUITE
from .test_samples import BAD, GOOD, answers

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


# -- samples=N: shards may split a test's samples; the pass_rate gate is decided again -------------------
SAMPLED = """
import pytest


@pytest.mark.llm_portable(samples=8, pass_rate=0.5)
def test_reply(llm_provider, llm_equiv):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "礼貌地回复：订单一直没有更新物流信息"}]
    )
    llm_equiv.similar("reply", reply.choices[0].message.content)
"""


def test_shards_that_split_samples_merge_into_the_single_run_and_the_pass_rate_gate_applies(
    pytester: pytest.Pytester,
    llm_env: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # zhipu strays on samples 6 and 8: 6 of 8 gives a Wilson lower bound of 0.41 < pass_rate 0.5, so the
    # run fails; its first four samples alone (4 of 4, lower bound 0.51) would reach the rate, but a shard
    # holding only some samples proves nothing about the cell: it fails, and the merge decides.
    llm_env.replies = answers(
        openai=GOOD, zhipu=[GOOD[0], GOOD[1], GOOD[2], GOOD[0], GOOD[1], BAD, GOOD[2], BAD]
    )
    pytester.makepyfile(test_app=SAMPLED)
    pytester.runpytest("--providers=openai,zhipu").assert_outcomes(passed=14, xfailed=2)
    monkeypatch.setenv("CI", "true")
    single = pytester.runpytest("--providers=openai,zhipu", "--llmport-report=one.json")
    assert single.ret == pytest.ExitCode.TESTS_FAILED
    ids = [f"test_app.py::test_reply[{p}-s{k}]" for p in ("openai", "zhipu") for k in range(1, 9)]
    first = pytester.runpytest(*ids[:12], "--providers=openai,zhipu", "--llmport-report=a.json")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    first.stdout.fnmatch_lines(["test_app.py::test_reply [[]zhipu[]]: only 4 of 8 samples ran *"])
    second = pytester.runpytest(*ids[12:], "--providers=openai,zhipu", "--llmport-report=b.json")
    assert second.ret == pytest.ExitCode.TESTS_FAILED
    assert read(pytester.path / "a.json")["tests"]["test_app.py::test_reply"]["zhipu"]["outcome"] == "failed"
    # One shard's report alone: its cell is not proven, and the merge says which samples are missing.
    assert cli(["merge", str(pytester.path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "test_app.py::test_reply [zhipu]: only 4 of 8 samples ran" in out
    assert (
        "== samples missing from the merged reports\ntest_app.py::test_reply [zhipu]: 4 of 8 samples reported "
        "(missing: 5, 6, 7, 8); its pass rate counts only those: merge every shard's report"
    ) in out

    code = cli(
        ["merge", str(pytester.path / "a.json"), str(pytester.path / "b.json"), "--json", "merged.json"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "zhipu vs openai: 0/1 equivalent" in out
    assert "6/8 [0.41-0.93]" in out
    assert "== pass rate below pass_rate (the run fails)" in out
    assert "test_app.py::test_reply [zhipu]: 6 of 8 samples equivalent (95% Wilson interval 0.41-0.93)" in out
    assert "samples missing" not in out
    merged, one = read(pytester.path / "merged.json"), read(pytester.path / "one.json")
    merged.pop("merged_from")
    zhipu = merged["tests"]["test_app.py::test_reply"]["zhipu"]  # type: ignore[index]
    assert zhipu["outcome"] == "failed" and zhipu["samples"]["equivalent"] is False
    assert [e["sample"] for e in zhipu["exchanges"]] == list(range(1, 9))
    assert re.sub(r"0x[0-9a-f]+", "0x", json.dumps(merged)) == re.sub(r"0x[0-9a-f]+", "0x", json.dumps(one))

    # A report whose cell says "passed" against its own samples is decided again, not taken at its word.
    forged = read(pytester.path / "one.json")
    cell = forged["tests"]["test_app.py::test_reply"]["zhipu"]  # type: ignore[index]
    cell["outcome"], cell["kind"], cell["samples"]["equivalent"] = "passed", "passed", True
    (pytester.path / "forged.json").write_text(json.dumps(forged), encoding="utf-8")
    assert cli(["merge", str(pytester.path / "forged.json"), "--json", "again.json"]) == 0
    again = read(pytester.path / "again.json")["tests"]["test_app.py::test_reply"]["zhipu"]  # type: ignore[index]
    assert again["outcome"] == "failed" and again["kind"] == "equivalence"
    assert again["samples"]["equivalent"] is False
    assert "== pass rate below pass_rate (the run fails)" in capsys.readouterr().out


def test_sample_shards_that_cannot_be_one_cell_are_named(
    pytester: pytest.Pytester,
    llm_env: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    llm_env.replies = answers(openai=GOOD, zhipu=GOOD)
    pytester.makepyfile(test_app=SAMPLED.replace("samples=8", "samples=4"))
    pytester.runpytest("--providers=openai,zhipu").assert_outcomes(passed=8)
    monkeypatch.setenv("CI", "true")
    ids = [f"test_app.py::test_reply[zhipu-s{k}]" for k in range(1, 5)]
    pytester.runpytest(*ids[:3], "--providers=zhipu", "--llmport-report=a.json")
    pytester.runpytest(*ids[2:], "--providers=zhipu", "--llmport-report=b.json")
    pytester.makepyfile(test_app=SAMPLED.replace("samples=8, pass_rate=0.5", "samples=4"))
    pytester.runpytest(*ids, "--providers=zhipu", "--llmport-report=c.json")  # the same answers, pass_rate=1
    a, b, c = (str(pytester.path / f"{name}.json") for name in "abc")
    assert cli(["merge", a, b, "--json", str(pytester.path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert f"test_app.py::test_reply [zhipu]: sample 3 is in both {a} and {b}, reported differently" in err
    assert cli(["merge", a, c]) == 1
    assert (
        f"test_app.py::test_reply [zhipu] was run with samples=4, pass_rate=1 in {c} but samples=4, "
        f"pass_rate=0.5 in {a}"
    ) in capsys.readouterr().err
    assert not (pytester.path / "out.json").exists()
