"""samples=N: N answers per test and provider, a pass rate with its Wilson interval, a calibrated threshold."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable

import pytest

from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.samples import PassRate, fewest, spread, wilson
from pytest_llmport.similarity import METRICS
from pytest_llmport.testing import FakeProvider

from .conftest import RunModes

MODELS = {provider.name: provider.model for provider in BUILTIN_PROVIDERS}
GOOD = [
    "您好，订单已经发出，请耐心等待。",
    "您好，订单已发货，请耐心等待。",
    "您好，您的订单已经发出，请再等等。",
]
BAD = "抱歉，我无法回答这个问题。"

SUITE = """
import re

import pytest


def ask(llm_provider, request):
    # The sample rides in the prompt, so the fake answers sample k the same whichever order they run in.
    sample = re.search(r"-s(\\d+)]$", request.node.name)
    text = f"礼貌地回复：订单一直没有更新物流信息 (#{sample.group(1) if sample else 1})"
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content


@pytest.mark.llm_portable(MARKER)
def test_reply(llm_provider, llm_equiv, request):
    llm_equiv.similar("reply", ask(llm_provider, request))
"""


def answers(**cycles: list[str]) -> Callable[[dict[str, object]], str]:
    """Replies by provider (its model): sample k (``(#k)`` in the prompt) gets answer k, cycling; a prompt
    without a sample gets each answer in turn."""
    by_model = {MODELS[name]: replies for name, replies in cycles.items()}
    turns = {model: itertools.cycle(replies) for model, replies in by_model.items()}

    def reply(payload: dict[str, object]) -> str:
        model, messages = str(payload["model"]), payload["messages"]
        assert isinstance(messages, list)
        sample = re.search(r"\(#(\d+)\)$", str(messages[-1]["content"]))
        if sample is None:
            return next(turns[model])
        replies = by_model[model]
        return replies[(int(sample.group(1)) - 1) % len(replies)]

    return reply


@pytest.fixture
def varying(llm_env: FakeProvider) -> FakeProvider:
    # openai varies its wording; zhipu answers something else every third time; qwen stays close.
    llm_env.replies = answers(openai=GOOD, zhipu=[GOOD[0], BAD, GOOD[1]], qwen=[GOOD[1], GOOD[0], GOOD[2]])
    return llm_env


def suite(pytester: pytest.Pytester, marker: str) -> None:
    pytester.makepyfile(test_app=SUITE.replace("MARKER", marker))


def matrix_row(output: list[str], label: str = "test_app.py::test_reply") -> str:
    return next(line for line in output if line.startswith(label + " "))


# -- the statistics ---------------------------------------------------------------------------------------
def test_wilson_interval_at_small_counts() -> None:
    assert wilson(5, 5) == pytest.approx((0.5655, 1.0), abs=1e-4)
    assert wilson(3, 5) == pytest.approx((0.2307, 0.8824), abs=1e-4)
    assert wilson(0, 5) == pytest.approx((0.0, 0.4345), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    assert fewest(0.5) == 4 and fewest(0.8) == 16


@pytest.mark.parametrize("required", [0.5, 0.6, 0.75, 0.9, 1.0])
def test_two_failed_samples_of_five_are_never_equivalent(required: float) -> None:
    # Tolerated (xfailed) or outright failures: 3 of 5 never makes a cell equivalent, whatever pass_rate.
    assert not PassRate(3, 5, 5, required, failed=0).equivalent
    assert not PassRate(3, 5, 5, required, failed=2).equivalent
    assert not PassRate(4, 5, 5, required, failed=0).equivalent  # the lower bound, 0.38, is below 0.5
    assert PassRate(5, 5, 5, required, failed=0).equivalent is (required <= 0.5 or required == 1.0)


def test_spread_is_the_least_typical_samples_mean_similarity() -> None:
    score = METRICS["chrf_lcs"]
    own = spread(GOOD, score)
    pairs = [score(a, b) for a in GOOD for b in GOOD if a is not b]
    assert own.mean == pytest.approx(sum(pairs) / 6)
    assert own.least <= own.mean and own.threshold() == pytest.approx(own.least - 0.05)
    assert spread([GOOD[0], BAD], score).least < 0.2


# -- recording and replaying ------------------------------------------------------------------------------
def test_samples_record_one_cassette_each_and_replay_with_a_pass_rate(
    pytester: pytest.Pytester, varying: FakeProvider, xdist_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite(pytester, "samples=3")
    recorded = pytester.runpytest("--providers=openai,zhipu,qwen")
    recorded.assert_outcomes(passed=8, failed=1)
    folder = pytester.path / "cassettes/test_app/test_reply"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{p}.s{k}.yaml" for p in ("openai", "zhipu", "qwen") for k in (1, 2, 3)]
        + [f"openai.s{k}.observations.json" for k in (1, 2, 3)]
    )
    second = json.loads((folder / "openai.s2.observations.json").read_text("utf-8"))
    assert second["sample"] == {"index": 2, "of": 3} and second["observations"] == {"reply": GOOD[1]}
    recorded.stdout.fnmatch_lines(
        ["*test_reply[[]zhipu-s2[]]*not similar enough to the baseline openai's 3 samples*"]
    )

    monkeypatch.setenv("CI", "true")
    report = pytester.path / "report.json"
    replayed = pytester.runpytest("--providers=openai,zhipu,qwen", f"--llmport-report={report}", *xdist_args)
    replayed.assert_outcomes(passed=8, failed=1)
    row = matrix_row(replayed.outlines)
    assert "ok 3/3 [0.44-1.00]" in row and "2/3 [0.21-0.94] 0.0" in row, row
    replayed.stdout.fnmatch_lines(
        ["baseline: openai; *; k/n [[]a-b[]] = samples passed of those that ran, 95% Wilson interval"]
    )
    replayed.stdout.fnmatch_lines(
        ["*zhipu vs openai: 0/1 equivalent*", "*samples:  1 sampled test, 0 equivalent*"]
    )
    cells = json.loads(report.read_text("utf-8"))["tests"]["test_app.py::test_reply"]
    zhipu = cells["zhipu"]
    assert zhipu["outcome"] == "failed" and zhipu["kind"] == "equivalence"
    assert {k: zhipu["samples"][k] for k in ("of", "ran", "passed", "failed", "required", "equivalent")} == {
        "of": 3,
        "ran": 3,
        "passed": 2,
        "failed": 1,
        "required": 1.0,
        "equivalent": False,
    }
    assert zhipu["samples"]["interval"] == pytest.approx([0.2077, 0.9385], abs=1e-4)
    assert [c["outcome"] for c in zhipu["samples"]["cells"]] == ["passed", "failed", "passed"]
    assert [c["sample"] for c in zhipu["checks"]] == [1, 2, 3]
    assert len(zhipu["exchanges"]) == 3  # every answer bought counts for cost and latency
    assert cells["qwen"]["samples"]["equivalent"] is True and cells["qwen"]["kind"] == "passed"


def test_a_cell_whose_samples_did_not_all_run_is_never_ok(
    pytester: pytest.Pytester, varying: FakeProvider, xdist_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite(pytester, "samples=3")
    pytester.runpytest("--providers=openai,zhipu").assert_outcomes(passed=5, failed=1)
    monkeypatch.setenv("CI", "true")
    # zhipu's second sample is the one that differs; leaving it out must not make the cell pass.
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "--providers=openai,zhipu", "-k", "not zhipu-s2", f"--llmport-report={report}", *xdist_args
    )
    result.assert_outcomes(passed=5)
    assert result.ret != 0
    row = matrix_row(result.outlines)
    assert row.rstrip().endswith("2/2 [0.34-1.00] only 2 of 3 ran"), row
    result.stdout.fnmatch_lines(
        ["*lowest: test_app.py::test_reply 2/2 [[]0.34-1.00[]] (needs every sample; only 2 of 3 ran)"]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_app.py::test_reply [[]zhipu[]]: only 2 of 3 samples ran (the others were deselected, skipped "
            "or not reported), so the cell is not proven: run every sample (pytest test_app.py::test_reply "
            "--providers=zhipu)"
        ]
    )
    zhipu = json.loads(report.read_text("utf-8"))["tests"]["test_app.py::test_reply"]["zhipu"]
    assert zhipu["outcome"] == "failed" and zhipu["samples"]["equivalent"] is False
    assert (zhipu["samples"]["ran"], zhipu["samples"]["of"]) == (2, 3)


def test_tolerated_samples_xfail_and_the_lower_bound_decides_the_run(
    pytester: pytest.Pytester, varying: FakeProvider, run_modes: RunModes
) -> None:
    suite(pytester, "samples=4, pass_rate=0.5")
    if run_modes.xdist:  # workers do not run the baseline first: it records in a run of its own
        pytester.runpytest("--providers=openai").assert_outcomes(passed=4)
    result = run_modes("--providers=openai,zhipu", "-rx", "--junitxml=junit.xml")
    junit = (pytester.path / "junit.xml").read_text("utf-8")
    assert '<property name="llmport.sample" value="2/4" />' in junit
    # zhipu: samples 1, 3, 4 equivalent, sample 2 tolerated; 3 of 4 gives a lower bound of 0.30 < 0.5.
    result.assert_outcomes(passed=7, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*llmport: pass rate below pass_rate (the run fails)*",
            "test_app.py::test_reply [[]zhipu[]]: 3 of 4 samples equivalent (95% Wilson interval 0.30-0.95); "
            "the lower bound 0.30 is below pass_rate=0.5.*",
            "XFAIL test_app.py::test_reply[[]zhipu-s2[]] - sample 2 of 4 not equivalent, tolerated by pass_rate=0.5*",
        ]
    )
    assert "3/4 [0.30-0.95] 0.0" in matrix_row(result.outlines)
    # qwen never strays: 4 of 4 reaches 0.51 >= 0.5, and the run passes.
    again = run_modes("--providers=openai,qwen")
    again.assert_outcomes(passed=8)
    assert again.ret == pytest.ExitCode.OK
    assert "ok 4/4 [0.51-1.00]" in matrix_row(again.outlines)


def test_a_failure_other_than_the_answer_is_never_tolerated(
    pytester: pytest.Pytester, varying: FakeProvider, run_modes: RunModes
) -> None:
    pytester.makepyfile(
        test_app="""
import pytest


@pytest.mark.llm_portable(samples=4, pass_rate=0.5)
def test_reply(llm_provider, llm_equiv):
    assert llm_provider.name != "zhipu", "the app broke"
"""
    )
    result = run_modes("--providers=zhipu")
    result.assert_outcomes(failed=4)
    assert "0/4 [0.00-0.49] app:AssertionError" in matrix_row(result.outlines)


def test_threshold_baseline_calibrates_on_the_baselines_own_spread(
    pytester: pytest.Pytester, varying: FakeProvider, run_modes: RunModes
) -> None:
    suite(pytester, 'samples=3, threshold="baseline"')
    if run_modes.xdist:  # workers do not run the baseline first: it records in a run of its own
        pytester.runpytest("--providers=openai").assert_outcomes(passed=3)
    result = run_modes("--providers=openai,zhipu,qwen", "--llmport-report=report.json")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_reply[[]zhipu-s2[]]: 'reply' on zhipu is not similar enough to the baseline openai's 3 samples "
            "(mean score): chrf_lcs 0.0* < threshold 0.58 (the baseline's own samples score 0.626 to each other "
            "at the least typical, 0.699 on average; threshold = 0.626 - margin 0.05)"
        ]
    )
    report = json.loads((pytester.path / "report.json").read_text("utf-8"))
    check = report["tests"]["test_app.py::test_reply"]["qwen"]["checks"][0]
    assert check["threshold"] == pytest.approx(0.576, abs=1e-3)
    assert check["spread"]["samples"] == 3 and check["spread"]["least"] == pytest.approx(0.626, abs=1e-3)


def test_threshold_baseline_without_baseline_samples_says_how_to_record_them(
    pytester: pytest.Pytester, varying: FakeProvider
) -> None:
    pytester.makeini("[pytest]\nllmport_threshold = baseline\n")
    suite(pytester, "")
    pytester.runpytest("--providers=openai").assert_outcomes(passed=1)
    result = pytester.runpytest("--providers=zhipu", "--llmport-samples=2")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*threshold='baseline') calibrates on the baseline's own samples, but 'openai' has 1: record the "
            "baseline with samples=N (N >= 2*: *pytest test_app.py::test_reply --providers=openai*"
        ]
    )


def test_a_candidate_with_other_sample_counts_pairs_with_the_baselines_samples(
    pytester: pytest.Pytester, varying: FakeProvider
) -> None:
    pytester.makepyfile(
        test_app="""
import pytest


@pytest.mark.llm_portable
def test_answer(llm_provider, llm_equiv):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "回复"}]
    )
    llm_equiv.observe("text", reply.choices[0].message.content)
    print("paired with", llm_equiv.baseline("text") if not llm_equiv.is_baseline else "-")
"""
    )
    pytester.runpytest("--providers=openai", "--llmport-samples=3").assert_outcomes(passed=3)
    # Candidate sample k pairs with baseline sample ((k - 1) mod 3) + 1, whatever the candidate's count.
    result = pytester.runpytest("--providers=qwen", "--llmport-samples=4", "-s")
    result.assert_outcomes(passed=4)
    assert [line.split("paired with ")[1] for line in result.outlines if "paired with" in line] == [
        GOOD[0],
        GOOD[1],
        GOOD[2],
        GOOD[0],
    ]
    # A candidate without samples is sample 1.
    unsampled = pytester.runpytest("--providers=zhipu", "-s")
    unsampled.assert_outcomes(passed=1)
    unsampled.stdout.fnmatch_lines([f"*paired with {GOOD[0]}*"])
    # A baseline file gone missing is named, with the command that records the baseline's samples.
    (pytester.path / "cassettes/test_app/test_answer/openai.s2.observations.json").unlink()
    missing = pytester.runpytest("--providers=zhipu", "--llmport-samples=2")
    missing.assert_outcomes(failed=2)
    missing.stdout.fnmatch_lines(
        [
            "*the baseline 'openai' was recorded with samples=3 (openai.s1.observations.json says so), but *"
            "openai.s2.observations.json is missing. Record it: *--providers=openai*"
        ]
    )


def test_the_inventory_knows_sample_cassettes(pytester: pytest.Pytester, varying: FakeProvider) -> None:
    suite(pytester, "")
    pytester.runpytest("--providers=openai", "--llmport-samples=3").assert_outcomes(passed=3)
    result = pytester.runpytest(
        "--providers=openai", "--llmport-samples=2", "--llmport-cassettes=report", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(
        [
            "orphaned cassettes (no collected test uses them): 2",
            "  cassettes/test_app/test_reply/openai.s3.observations.json",
            "  cassettes/test_app/test_reply/openai.s3.yaml",
            "marked tests without a cassette for a selected provider: 0",
        ]
    )


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "marker:samples=0",
            "test_app.py::test_reply: @pytest.mark.llm_portable: samples=0 must be a whole number >= 1*",
        ),
        (
            "marker:samples='3'",
            "*: samples='3' must be a whole number >= 1 (how many answers to record per provider)*",
        ),
        ("marker:samples=True", "*: samples=True must be a whole number >= 1*"),
        ("marker:samples=2.5", "*: samples=2.5 must be a whole number >= 1*"),
        ("marker:samples=5, pass_rate=0.3", "*: pass_rate=0.3 must be a number between 0.5 and 1*"),
        (
            "marker:samples=3, pass_rate=0.5",
            "test_app.py::test_reply: samples=3 cannot show pass_rate=0.5 at 95% confidence: even 3 of 3 passing "
            "gives a Wilson lower bound of 0.44. Use samples=4 or more",
        ),
        ("option:--llmport-samples=0", "ERROR: --llmport-samples=0: samples=0 must be a whole number >= 1*"),
        (
            "option:--llmport-pass-rate=2",
            "ERROR: --llmport-pass-rate=2: pass_rate=2.0 must be a number between*",
        ),
        (
            "ini:llmport_samples = many",
            "ERROR: ini llmport_samples='many': samples='many' must be a whole number*",
        ),
    ],
)
def test_bad_samples_are_usage_errors_naming_the_test_and_the_fix(
    pytester: pytest.Pytester, where: str, message: str
) -> None:
    source, _, value = where.partition(":")
    suite(pytester, value if source == "marker" else "")
    if source == "ini":
        pytester.makeini(f"[pytest]\n{value}\n")
    result = pytester.runpytest("--providers=openai", *([value] if source == "option" else []))
    assert result.ret in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR)
    (result.stdout if source == "marker" else result.stderr).fnmatch_lines([message])


def test_a_sampled_cell_keeps_its_finding_star_and_a_user_xfail() -> None:
    from pytest_llmport.report import Cell
    from pytest_llmport.samples import aggregate

    found = [{"kind": "schema", "key": "k", "passed": True, "finding": "not bare JSON (code_fence)"}]
    cell = aggregate({1: Cell("passed", found), 2: Cell("passed")}, 2, 1.0)
    assert cell.word() == "ok 2/2 [0.34-1.00]*" and cell.differs()
    expected = aggregate({1: Cell("xfailed", kind="app-failure", exception="ValueError: x")}, 1, 1.0)
    assert expected.outcome == "xfailed"
    tolerated = aggregate({1: Cell("xfailed", kind="equivalence"), 2: Cell("passed")}, 2, 0.5)
    assert tolerated.outcome == "failed" and tolerated.kind == "equivalence"


def test_a_missing_sample_cassette_says_how_to_record_that_sample(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    suite(pytester, "")
    result = pytester.runpytest("--providers=zhipu", "--llmport-samples=2")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*test_app.py::test_reply[[]zhipu-s2[]]: no cassette for provider 'zhipu' at *zhipu.s2.yaml (record mode: "
            "none).",
            "  To record it: ZHIPUAI_API_KEY=... pytest 'test_app.py::test_reply[[]zhipu-s2[]]' --providers=zhipu "
            "--llmport-record-mode=once --llmport-samples=2",
        ]
    )
