"""llm_equiv.judge(): a judge provider's verdict, recorded in the test's cassette and replayed offline.

The judge is a real :class:`FakeProvider` over HTTP (its openai dialect), answering what each test scripts:
a verdict it reads from the candidate answer in the judge's request, never a fixed pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from pytest_llmport.config import MarkerOptions
from pytest_llmport.errors import ConfigError
from pytest_llmport.judge import (
    DEFAULT_RUBRIC,
    PLACEHOLDERS,
    JudgeAnswerError,
    messages,
    parse_verdict,
    prompt_version,
    read_request,
    recorded_versions,
    render_rubric,
    split_judge,
)
from pytest_llmport.testing import FakeProvider

from .conftest import KEY, RunModes


def scripted_judge(verdicts: Mapping[str, tuple[str, str]]) -> Any:
    """A FakeProvider reply callable: the verdict the test gives for the candidate answer it finds.

    An answer the test did not script gets prose, not a verdict: the judge() call must then fail.
    """

    def reply(payload: dict[str, Any]) -> Any:
        asked = read_request(payload)
        candidate = asked.candidate if asked is not None else ""
        if candidate not in verdicts:
            return f"I am not sure about {candidate!r}."
        verdict, reason = verdicts[candidate]
        return "```json\n" + json.dumps({"verdict": verdict, "reason": reason}, ensure_ascii=False) + "\n```"

    return reply


VERDICTS = {
    "可以退款，三天内到账。": ("equivalent", "两者都说可以退款、三天到账"),
    "不可以退款。": ("not_equivalent", "基准说可以退款，候选说不可以"),
}

SUITE = """
import pytest

ANSWERS = {"openai": "可以退款，3天内到账。", "zhipu": "可以退款，三天内到账。", "qwen": "不可以退款。"}


@pytest.mark.llm_portable
def test_refund(llm_provider, llm_equiv):
    llm_equiv.judge("refund", ANSWERS[llm_provider.name], question="我能退款吗？")
"""


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakeProvider]]:
    monkeypatch.delenv("CI", raising=False)
    started = {
        "openai": FakeProvider(api_key=KEY).start(),
        "zhipu": FakeProvider(api_key=KEY).start(),
        "qwen": FakeProvider(api_key=KEY).start(),
        "deepseek": FakeProvider(scripted_judge(VERDICTS), api_key=KEY, model="judge-model").start(),
    }
    for name, variable, key_env in (
        ("openai", "OPENAI", "OPENAI_API_KEY"),
        ("zhipu", "ZHIPU", "ZHIPUAI_API_KEY"),
        ("qwen", "QWEN", "DASHSCOPE_API_KEY"),
        ("deepseek", "DEEPSEEK", "DEEPSEEK_API_KEY"),
    ):
        monkeypatch.setenv(f"LLMPORT_{variable}_BASE_URL", started[name].base_url)
        monkeypatch.setenv(key_env, KEY)
    yield started
    for server in started.values():
        server.stop()


def judge_requests(server: FakeProvider) -> list[Any]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def judge_once(
    pytester: pytest.Pytester, call: str, *args: str, run: RunModes | None = None
) -> pytest.RunResult:
    """Run one test whose body is ``call``, judged by deepseek, with a JSON report at report.json (through
    ``run``, plainly and under xdist, where given)."""
    pytester.makepyfile(
        test_app=f"""
import pytest

@pytest.mark.llm_portable(judge="deepseek")
def test_refund(llm_provider, llm_equiv):
    {call}
"""
    )
    return (run or pytester.runpytest)(*args, "--llmport-report=report.json")


def read_report(path: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


# -- the recorded path ----------------------------------------------------------------------------------
def test_judge_records_in_the_test_cassette_and_replays_offline(
    pytester: pytest.Pytester,
    servers: dict[str, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    pytester.makeini("[pytest]\nllmport_judge = deepseek:judge-v1\n")
    pytester.makepyfile(test_app=SUITE)
    # The baseline records its text only: no judge call.
    pytester.runpytest("--providers=openai").assert_outcomes(passed=1)
    assert judge_requests(servers["deepseek"]) == []
    report = pytester.path / "report.json"
    result = pytester.runpytest("--providers=zhipu,qwen", f"--llmport-report={report}", *xdist_args)
    result.assert_outcomes(passed=1, failed=1)
    sent = [r.json() for r in judge_requests(servers["deepseek"])]
    assert len(sent) == 2 and {body["model"] for body in sent} == {"judge-v1"}
    assert all(body["temperature"] == 0 for body in sent)
    cells = read_report(report)["tests"]["test_app.py::test_refund"]
    (passed,) = cells["zhipu"]["checks"]
    version = prompt_version(DEFAULT_RUBRIC)
    assert passed["kind"] == "judge" and passed["passed"] is True
    assert passed["judge"] == {
        "provider": "deepseek",
        "model": "judge-v1",
        "prompt_version": version,
        "verdict": "equivalent",
        "reason": "两者都说可以退款、三天到账",
    }
    # The report's exchanges are the provider's own (none here): the judge's are not charged to it.
    assert cells["zhipu"]["exchanges"] == [] and cells["zhipu"]["model"]["sent"] == []
    assert cells["qwen"]["kind"] == "equivalence"
    assert cells["qwen"]["checks"][0]["judge"]["verdict"] == "not_equivalent"
    result.stdout.fnmatch_lines(
        [
            "*'refund' on qwen is not equivalent to the baseline openai according to the judge "
            f"deepseek:judge-v1 (prompt {version}): 基准说可以退款，候选说不可以",
            "findings:",
            f"*test_refund [[]qwen[]]: the judge deepseek:judge-v1 (prompt {version}): not equivalent: "
            "基准说可以退款，候选说不可以",
        ]
    )
    # In the test's own cassette, and not in the baseline's.
    zhipu = (pytester.path / "cassettes/test_app/test_refund/zhipu.yaml").read_text("utf-8")
    assert "judge-v1" in zhipu and f"pytest-llmport judge prompt {version}" in zhipu
    assert "judge-v1" not in (pytester.path / "cassettes/test_app/test_refund/openai.yaml").read_text("utf-8")
    # CI: every server down, the guard on; the same verdicts come back from the cassettes.
    for server in servers.values():
        server.stop()
    monkeypatch.setenv("CI", "true")
    # --llmport-strict-model: the judge's model is the plugin's own request, not the app naming a wrong one.
    replay = pytester.runpytest("--providers=openai,zhipu,qwen", "--llmport-strict-model", *xdist_args)
    replay.assert_outcomes(passed=2, failed=1)
    replay.stdout.fnmatch_lines(["*not equivalent to the baseline openai according to the judge*"])


def test_a_changed_rubric_asks_for_re_recording(
    pytester: pytest.Pytester,
    servers: dict[str, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    run_modes: RunModes,
) -> None:
    pytester.makeini("[pytest]\nllmport_judge = deepseek\n")
    pytester.makepyfile(
        test_app="""
import pytest

@pytest.mark.llm_portable
def test_refund(llm_provider, llm_equiv):
    llm_equiv.judge("refund", "可以退款，三天内到账。", reference="可以退款，3天内到账。", rubric="Same facts.")
"""
    )
    run_modes("--providers=zhipu").assert_outcomes(passed=1)
    for server in servers.values():
        server.stop()
    monkeypatch.setenv("CI", "true")
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=1)
    source = (pytester.path / "test_app.py").read_text("utf-8")
    (pytester.path / "test_app.py").write_text(source.replace("Same facts.", "Same facts and tone."), "utf-8")
    result = run_modes("--providers=zhipu", "--llmport-report=report.json")
    result.assert_outcomes(failed=1)
    old, new = prompt_version("Same facts."), prompt_version("Same facts and tone.")
    result.stdout.fnmatch_lines(
        [
            f"*test_refund[[]zhipu[]]: llm_equiv.judge('refund') on zhipu: the judge's prompt or rubric changed "
            f"since the cassette was recorded (recorded prompt version {old}, now {new})*Re-record the test: "
            "DEEPSEEK_API_KEY=... ZHIPUAI_API_KEY=... pytest 'test_app.py::test_refund[[]zhipu[]]' "
            "--providers=zhipu --llmport-record-mode=all"
        ]
    )
    cell = read_report(pytester.path / "report.json")["tests"]["test_app.py::test_refund"]["zhipu"]
    assert cell["kind"] == "recording-problem"


# -- bad input ------------------------------------------------------------------------------------------
def test_no_judge_configured_names_the_test_provider_and_fix(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider]
) -> None:
    pytester.makepyfile(test_app=SUITE)
    result = pytester.runpytest("--providers=openai")
    result.assert_outcomes(failed=1)  # on the baseline too, which would not call the judge
    result.stdout.fnmatch_lines(
        [
            "*test_app.py::test_refund[[]openai[]]: llm_equiv.judge('refund') on openai: no judge provider is "
            "configured. Name one: ini llmport_judge = openai:gpt-4o-mini, or --llmport-judge=openai:gpt-4o-mini, "
            '*judge="openai:gpt-4o-mini")*'
        ]
    )


def test_unknown_rubric_placeholder_is_named_with_the_known_ones(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider]
) -> None:
    call = 'llm_equiv.judge("refund", "好", rubric="Compare {answer} with {baseline}.")'
    result = judge_once(pytester, call, "--providers=openai")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_refund[[]openai[]]: llm_equiv.judge('refund') on openai: the rubric has the unknown "
            "placeholder {answer}; known: {question}, {baseline}, {candidate}*"
        ]
    )
    assert judge_requests(servers["deepseek"]) == []


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            ["--llmport-judge=nosuch:m"],
            "",
            "*--llmport-judge=nosuch:m: unknown provider(s) nosuch. Known providers:*",
        ),
        (
            [],
            "llmport_judge = :gpt-4o",
            "*ini llmport_judge=':gpt-4o': give <provider>[[]:model[]], e.g. openai:gpt-4o-mini",
        ),
    ],
)
def test_an_unknown_judge_provider_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_app=SUITE)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_bad_marker_judge_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
import pytest

@pytest.mark.llm_portable(judge=["openai"])
def test_a(llm_provider, llm_equiv):
    pass
""",
        test_b="""
import pytest

@pytest.mark.llm_portable(judge="nosuch")
def test_b(llm_provider, llm_equiv):
    pass
""",
    )
    result = pytester.runpytest("--providers=openai")
    result.stdout.fnmatch_lines(
        [
            "*test_a: @pytest.mark.llm_portable(judge=[[]'openai'[]]): judge must be \"<provider>[[]:model[]]\"*",
            "*test_b: @pytest.mark.llm_portable(judge='nosuch'): unknown provider(s) nosuch*",
        ],
        consecutive=False,
    )


def test_the_judge_key_missing_while_recording_is_named(
    pytester: pytest.Pytester,
    servers: dict[str, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    run_modes: RunModes,
) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    pytester.makepyfile(test_app=SUITE)
    # The baseline records its text without asking the judge: it needs no judge key.
    if run_modes.xdist:  # workers do not run the baseline first: it records in a run of its own
        pytester.runpytest("--providers=openai", "--llmport-judge=deepseek").assert_outcomes(passed=1)
    result = run_modes("--providers=openai,zhipu", "--llmport-judge=deepseek")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_refund[[]zhipu[]]: the judge deepseek:deepseek-chat cannot record its verdict: "
            "DEEPSEEK_API_KEY is not set. Set it, or name another judge*"
        ]
    )
    assert judge_requests(servers["deepseek"]) == []


def test_a_reply_that_is_not_a_verdict_never_passes(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider]
) -> None:
    result = judge_once(
        pytester, 'llm_equiv.judge("refund", "可以退款吗？也许。", reference="可以退款")', "--providers=zhipu"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*JudgeAnswerError: test_app.py::test_refund[[]zhipu[]]: llm_equiv.judge('refund') on zhipu: the "
            "judge deepseek:deepseek-chat: the judge's reply holds no JSON verdict*"
        ]
    )


def test_a_judge_error_answer_is_not_a_verdict(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider], run_modes: RunModes
) -> None:
    servers["deepseek"].fail_next_with("rate_limit")
    call = 'llm_equiv.judge("refund", "可以退款，三天内到账。", reference="可以退款")'
    result = judge_once(pytester, call, "--providers=zhipu", run=run_modes)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the judge deepseek:deepseek-chat answered HTTP 429 (rate_limit) instead of a verdict*"]
    )
    # The judge's refusal is not zhipu's: no provider-error for zhipu.
    cell = read_report(pytester.path / "report.json")["tests"]["test_app.py::test_refund"]["zhipu"]
    assert cell["kind"] == "app-failure" and cell["exception"].startswith("JudgeError: ")
    assert cell["exchanges"] == []


# -- the pieces -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"verdict": "equivalent", "reason": "same"}', (True, "same")),
        ('```json\n{"verdict": "not_equivalent", "reason": "3 vs 30"}\n```', (False, "3 vs 30")),
        (
            '<think>{"verdict": "equivalent"}</think>结论：{"verdict": "Not Equivalent", "reason": "否定不同"}',
            (False, "否定不同"),
        ),
        ('{"verdict": "不等价", "reason": "数字不同"}', (False, "数字不同")),
        ('{"equivalent": true}', (True, "(no reason given)")),
    ],
)
def test_parse_verdict_reads_json_in_any_wrapper(reply: str, expected: tuple[bool, str]) -> None:
    assert parse_verdict(reply) == expected


@pytest.mark.parametrize(
    "reply",
    ["Equivalent.", '["equivalent"]', '{"verdict": "maybe"}', '{"verdict": true}', '{"reason": "same"}', ""],
)
def test_parse_verdict_never_takes_a_non_verdict_for_a_pass(reply: str) -> None:
    with pytest.raises(JudgeAnswerError):
        parse_verdict(reply)


def test_rubric_placeholders_and_literal_braces() -> None:
    assert PLACEHOLDERS == ("question", "baseline", "candidate")
    values = {"question": "Q", "baseline": "B", "candidate": "C"}
    assert render_rubric("{question}|{baseline}|{candidate}|{{json}}", values, "t") == "Q|B|C|{json}"
    with pytest.raises(ConfigError, match=r"t: the rubric has the unknown placeholder \{\}; known"):
        render_rubric("{}", values, "t")
    with pytest.raises(ConfigError, match=r"not a valid template .*write a literal brace as \{\{"):
        render_rubric("a { b", values, "t")
    with pytest.raises(ConfigError, match=r"uses \{question\}, but judge\(\) got no question="):
        render_rubric("{question}", {**values, "question": ""}, "t")


def test_the_prompt_version_follows_the_rubric_and_travels_in_the_request() -> None:
    assert prompt_version("a") == prompt_version("a") != prompt_version("b")
    sent = messages("Same facts: {baseline}", "基准", "候选", None, "t")
    assert [m["role"] for m in sent] == ["system", "user"]
    assert "Same facts: 基准" in sent[1]["content"] and "Question" not in sent[1]["content"]
    assert "问题:\n我能退款吗" in messages(DEFAULT_RUBRIC, "a", "b", "我能退款吗", "t")[1]["content"]

    asked = read_request({"messages": messages("R {candidate}", "基准", "候\n选", "问", "t")})
    assert asked is not None and (asked.rubric, asked.question, asked.baseline, asked.candidate) == (
        "R 候\n选",
        "问",
        "基准",
        "候\n选",
    )
    assert asked.prompt_version == prompt_version("R {candidate}")
    assert read_request({"messages": [{"role": "user", "content": "hi"}]}) is None

    class Recorded:
        body = json.dumps({"messages": sent}).encode()

    assert recorded_versions([Recorded()]) == {prompt_version("Same facts: {baseline}")}
    # Chinese and English in the instruction: both languages of the answers it judges.
    assert "等价" in sent[0]["content"] and "equivalent" in sent[0]["content"]


def test_split_judge_and_marker_default() -> None:
    assert split_judge("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert split_judge(" qwen ") == ("qwen", None)
    assert MarkerOptions().judge is None


# -- replay follows the judge as recorded, not as configured now --------------------------------------
def test_replay_uses_the_judges_recorded_base_url_and_a_changed_judge_asks_for_re_recording(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nllmport_judge = deepseek:judge-v1\n")
    pytester.makepyfile(test_app=SUITE)
    pytester.runpytest("--providers=openai").assert_outcomes(passed=1)
    pytester.runpytest("--providers=zhipu,qwen").assert_outcomes(passed=1, failed=1)
    recorded = (pytester.path / "cassettes/test_app/test_refund/zhipu.yaml").read_text("utf-8")
    assert f"base_url: {servers['deepseek'].base_url}" in recorded
    for server in servers.values():
        server.stop()
    monkeypatch.setenv("CI", "true")
    # The judge's base URL moved (a gateway, or a new default in the provider table): replay still answers
    # from the recording, which went to the old one, and nothing reaches the network.
    monkeypatch.setenv("LLMPORT_DEEPSEEK_BASE_URL", "http://192.0.2.1:9/v1")
    moved = pytester.runpytest("--providers=openai,zhipu,qwen")
    moved.assert_outcomes(passed=2, failed=1)
    moved.stdout.fnmatch_lines(
        ["*not equivalent to the baseline openai according to the judge deepseek:judge-v1*"]
    )
    # Adding episodes to a cassette whose judge was elsewhere would mix two servers in one cassette.
    monkeypatch.delenv("CI")
    mixed = pytester.runpytest("--providers=zhipu", "--llmport-record-mode=new_episodes")
    mixed.assert_outcomes(errors=1)
    mixed.stdout.fnmatch_lines(
        [
            f"*cassette * was recorded with the judge deepseek:judge-v1 at {servers['deepseek'].base_url}, it is "
            "now at http://192.0.2.1:9/v1; record mode new_episodes would mix the two in one cassette."
        ]
    )
    monkeypatch.setenv("CI", "true")
    # A cassette of an earlier version does not say where its judge was: the message says what to do.
    cassette = pytester.path / "cassettes/test_app/test_refund/zhipu.yaml"
    text = cassette.read_text("utf-8")
    entry = text[text.index("  judge:\n") :]
    entry = entry[: entry.index("\n", entry.index("model:")) + 1]
    cassette.write_text(text.replace(entry, ""), "utf-8")
    old = pytester.runpytest("--providers=zhipu")
    old.assert_outcomes(errors=1)
    old.stdout.fnmatch_lines(
        [
            f"*cassette * holds the LLM judge's request #1, POST {servers['deepseek'].base_url}/chat/completions, "
            "but the judge's provider is now configured at another base URL*",
            "  Fix: point the judge's provider at that base URL again (LLMPORT_<NAME>_BASE_URL), or re-record*",
        ]
    )
    cassette.write_text(text, "utf-8")
    # Another judge model, or another judge provider: the recorded verdict does not answer it.
    for judge, was in (
        ("deepseek:judge-v2", "deepseek:judge-v1"),
        ("openai:gpt-4o-mini", "deepseek:judge-v1"),
    ):
        changed = pytester.runpytest("--providers=zhipu", f"--llmport-judge={judge}")
        changed.assert_outcomes(errors=1)
        changed.stdout.fnmatch_lines(
            [
                f"*test_app.py::test_refund[[]zhipu[]]: cassette * was recorded with the judge {was} at "
                f"{servers['deepseek'].base_url}, but the judge is now {judge}*",
                "*Fix: re-record the test whole (*_API_KEY set for the judge), or configure the judge as "
                "recorded. To record it: *pytest 'test_app.py::test_refund[[]zhipu[]]' --providers=zhipu "
                "--llmport-record-mode=all*",
            ]
        )
