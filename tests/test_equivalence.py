"""llm_equiv: schema checks, structural and similarity comparisons against the baseline provider."""

from __future__ import annotations

import json

import pytest

from pytest_llmport.testing import FakeProvider

from .conftest import KEY, RunModes

REPLIES = {
    "openai": {
        "分类": '{"category": "shipping", "order_id": "A1234", "days": 3}',
        "回复": "您好，您的订单正在加急处理，请耐心等待。",
    },
    "zhipu": {
        "分类": '```json\n{"category": "shipping", "order_id": "A1234", "days": 3}\n```',
        "回复": "您好，您的订单正在加急处理中，请您耐心等待。",
    },
    "qwen": {
        "分类": '以下是结果：{"category": "refund", "order_id": "A1234", "days": 3}',
        "回复": "抱歉，我无法回答。",
    },
}

SUITE = """
import pytest
from typing import TypedDict


class Ticket(TypedDict):
    category: str
    order_id: str
    days: int


def ask(llm_provider, text):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content


@pytest.mark.llm_portable
def test_fields(llm_provider, llm_equiv):
    fields = llm_equiv.schema(ask(llm_provider, "分类"), Ticket, lenient=True)
    llm_equiv.same("fields", fields)


@pytest.mark.llm_portable(threshold=0.5)
def test_reply(llm_provider, llm_equiv):
    llm_equiv.similar("reply", ask(llm_provider, "回复"))
"""


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeProvider]:
    monkeypatch.delenv("CI", raising=False)
    started = {}
    for name, replies in REPLIES.items():
        server = FakeProvider(replies, api_key=KEY).start()
        started[name] = server
        prefix = {"openai": "OPENAI", "zhipu": "ZHIPU", "qwen": "QWEN"}[name]
        monkeypatch.setenv(f"LLMPORT_{prefix}_BASE_URL", server.base_url)
        monkeypatch.setenv(
            {"openai": "OPENAI_API_KEY", "zhipu": "ZHIPUAI_API_KEY", "qwen": "DASHSCOPE_API_KEY"}[name], KEY
        )
    yield started
    for server in started.values():
        server.stop()


def test_baseline_records_then_others_compare(
    pytester: pytest.Pytester,
    servers: dict[str, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    pytester.makepyfile(test_eq=SUITE)
    # The baseline records first; its observations land beside its cassette.
    pytester.runpytest("--providers=openai").assert_outcomes(passed=2)
    stored = json.loads(
        (pytester.path / "cassettes/test_eq/test_fields/openai.observations.json").read_text("utf-8")
    )
    assert stored == {
        "provider": "openai",
        "observations": {"fields": {"category": "shipping", "days": 3, "order_id": "A1234"}},
    }
    report = pytester.path / "report.json"
    result = pytester.runpytest("--providers=zhipu,qwen", f"--llmport-report={report}", *xdist_args)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        ["*'fields' on qwen differs from baseline openai:", "*$.category: 'shipping' != 'refund'"]
    )
    result.stdout.fnmatch_lines(
        ["*'reply' on qwen is not similar enough to the baseline openai: chrf_lcs 0.* < threshold 0.50"]
    )
    result.stdout.fnmatch_lines(
        [
            "*llmport: portability matrix*",
            "test * zhipu * qwen",
            "test_eq.py::test_fields  ok[*] * differs",
            "test_eq.py::test_reply   ok 0.9* * 0.?*<0.50",
            "*test_eq.py::test_fields [[]qwen[]]: not bare JSON (prose_before)",
            "*test_eq.py::test_fields [[]zhipu[]]: not bare JSON (code_fence)",
        ]
    )
    data = json.loads(report.read_text("utf-8"))
    assert data["baseline"] == "openai" and data["providers"] == ["zhipu", "qwen"]
    qwen_reply = data["tests"]["test_eq.py::test_reply"]["qwen"]
    assert qwen_reply["outcome"] == "failed"
    (check,) = qwen_reply["checks"]
    assert check["kind"] == "similar" and check["threshold"] == 0.5 and check["metric"] == "chrf_lcs"
    assert check["score"] < 0.5
    assert qwen_reply["observations"] == {"reply": "抱歉，我无法回答。"}
    zhipu_fields = data["tests"]["test_eq.py::test_fields"]["zhipu"]
    assert [c["finding"] for c in zhipu_fields["checks"] if "finding" in c] == ["not bare JSON (code_fence)"]

    # Non-equivalent answers are findings: their cassettes are kept, so CI reproduces them.
    assert (pytester.path / "cassettes/test_eq/test_reply/qwen.yaml").is_file()
    # CI replays without the baseline in --providers: committed observations are enough.
    for server in servers.values():
        server.stop()
    monkeypatch.setenv("CI", "true")
    again = pytester.runpytest("--providers=zhipu,qwen", *xdist_args)
    again.assert_outcomes(passed=2, failed=2)


def test_missing_baseline_observation_says_how_to_record_it(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider], run_modes: RunModes
) -> None:
    pytester.makepyfile(test_eq=SUITE)
    result = run_modes("--providers=zhipu", "-k", "reply")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_eq.py::test_reply[[]zhipu[]]: the baseline provider 'openai' has no observation 'reply' "
            "(it has: none). Record it: OPENAI_API_KEY=... pytest 'test_eq.py::test_reply[[]openai[]]' "
            "--providers=openai --llmport-record-mode=all"
        ]
    )


def test_baseline_from_command_line_and_reference_text(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider], run_modes: RunModes
) -> None:
    pytester.makepyfile(
        test_ref="""
import pytest

@pytest.mark.llm_portable
def test_fixed(llm_provider, llm_equiv):
    text = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "回复"}]).choices[0].message.content
    score = llm_equiv.similar("reply", text, reference="您好，您的订单正在加急处理，请耐心等待。", metric="bigram_jaccard")
    assert 0 < score <= 1
"""
    )
    run_modes("--providers=zhipu,openai", "--llmport-baseline=zhipu").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('llm_equiv.similar("k", "x", threshold=2)', "*threshold=2 must be a number between 0 and 1"),
        (
            'llm_equiv.similar("k", "x", metric="bleu")',
            "*unknown similarity metric 'bleu'; known: bigram_jaccard*",
        ),
        ('llm_equiv.schema("{}", 42)', "*42*"),
        (
            'llm_equiv.same("k", object())',
            "*observation 'k' on zhipu at $: *object is not JSON-serialisable*",
        ),
    ],
)
def test_bad_arguments_are_clear_errors(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider], call: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
import pytest

@pytest.mark.llm_portable
def test_bad(llm_provider, llm_equiv):
    {call}
"""
    )
    result = pytester.runpytest("--providers=zhipu")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])


def test_bad_ini_threshold_and_metric(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmport_threshold = 1.2\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*ini llmport_threshold='1.2' must be a number between 0 and 1"])
    pytester.makeini("[pytest]\nllmport_metric = bleu\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*ini llmport_metric='bleu' is not a known metric; known: *chrf_lcs*"])


def test_embedding_metric_goes_through_the_cassette(
    pytester: pytest.Pytester,
    servers: dict[str, FakeProvider],
    monkeypatch: pytest.MonkeyPatch,
    run_modes: RunModes,
) -> None:
    pytester.makeini(
        "[pytest]\nllmport_embedding_provider = openai\nllmport_embedding_model = text-embedding-3-small\n"
    )
    pytester.makepyfile(
        test_emb="""
import pytest

@pytest.mark.llm_portable(metric="embedding", threshold=0.3)
def test_emb(llm_provider, llm_equiv):
    assert llm_equiv.similar("reply", "您的订单正在加急处理", reference="订单正在处理") > 0.3
"""
    )
    run_modes("--providers=zhipu").assert_outcomes(passed=1)
    assert len(servers["openai"].requests) == 1 and servers["openai"].requests[0].path.endswith("/embeddings")
    text = (pytester.path / "cassettes/test_emb/test_emb/zhipu.yaml").read_text("utf-8")
    assert "text-embedding-3-small" in text
    for server in servers.values():
        server.stop()
    monkeypatch.setenv("CI", "true")
    run_modes("--providers=zhipu").assert_outcomes(passed=1)
    # The embedding request goes to another provider and names another model, and is the plugin's own.
    pytester.runpytest("--providers=zhipu", "--llmport-strict-model").assert_outcomes(passed=1)
    # The embedding provider moved (a gateway, a new default base URL): replay answers from the recording.
    monkeypatch.setenv("LLMPORT_OPENAI_BASE_URL", "http://192.0.2.1:9/v1")
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=1)
    # Another embedding model: the recorded vectors are not its vectors.
    pytester.makeini("[pytest]\nllmport_embedding_provider = openai\nllmport_embedding_model = bge-m3\n")
    changed = pytester.runpytest("--providers=zhipu")
    changed.assert_outcomes(errors=1)
    changed.stdout.fnmatch_lines(
        [
            "*test_emb.py::test_emb[[]zhipu[]]: cassette * was recorded with the embedding "
            f"openai:text-embedding-3-small at {servers['openai'].base_url}, but the embedding is now "
            "openai:bge-m3: the recorded answers are another model's.",
            "  Fix: re-record the test whole (OPENAI_API_KEY set for the embedding), or configure the "
            "embedding as recorded. To record it: *--llmport-record-mode=all*",
        ]
    )


def test_custom_metric_through_the_hook(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider], run_modes: RunModes
) -> None:
    pytester.makeconftest(
        """
def pytest_llmport_add_metrics(config):
    return {"length_ratio": lambda a, b: min(len(a), len(b)) / max(len(a), len(b), 1)}
"""
    )
    pytester.makepyfile(
        test_metric="""
import pytest

@pytest.mark.llm_portable(metric="length_ratio", threshold=0.9)
def test_len(llm_provider, llm_equiv):
    assert llm_equiv.similar("t", "abcd", reference="abce") == 1.0
    with pytest.raises(AssertionError, match="length_ratio 0.500 < threshold 0.90"):
        llm_equiv.similar("u", "xy", reference="abcd")
    # Whatever the metric, the verdict passes a text that the other holds in order (containment).
    assert llm_equiv.similar("v", "ab", reference="abcd") == 0.5
"""
    )
    run_modes("--providers=zhipu").assert_outcomes(passed=1)


def test_bad_same_options_fail_on_the_baseline_too(
    pytester: pytest.Pytester, servers: dict[str, FakeProvider]
) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.llm_portable
def test_bad(llm_provider, llm_equiv):
    llm_equiv.same("k", 1, tolerance="x")
"""
    )
    result = pytester.runpytest("--providers=openai")  # openai is the baseline: nothing is compared
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tolerance must be a finite number >= 0, got 'x'*"])


def test_check_threshold_is_a_deprecated_alias_of_the_one_threshold_check() -> None:
    from pytest_llmport import equivalence
    from pytest_llmport.errors import ConfigError

    with pytest.warns(DeprecationWarning, match="config.threshold_value"):
        check = equivalence.check_threshold
    assert check(0.25, "t") == 0.25
    with pytest.raises(ConfigError, match=r"^t: threshold=True must be a number between 0 and 1$"):
        check(True, "t")


# -- containment: a verbose answer holding the short one passes, whichever side is the baseline --------
SHORT = "可以退款。"
LONG = "您好！根据我们的退换货政策，这件商品是可以退款的。如果还有其他问题，欢迎联系客服。"
NEGATED = "您好！根据我们的退换货政策，这件商品是不可以退款的。如果还有其他问题，欢迎联系客服。"

CONTAINED_SUITE = """
import pytest


@pytest.mark.llm_portable(MARKER)
def test_reply(llm_provider, llm_equiv):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "能退款吗"}]
    )
    llm_equiv.similar("reply", reply.choices[0].message.content)
"""


@pytest.mark.parametrize("marker", ["", "samples=2"])
def test_a_contained_answer_passes_similar_whichever_side_is_the_baseline(
    pytester: pytest.Pytester, llm_env: FakeProvider, marker: str
) -> None:
    from pytest_llmport.providers import BUILTIN_PROVIDERS
    from pytest_llmport.similarity import DEFAULT_THRESHOLD, verdict

    # The pure verdict passes the pair in both orders on containment alone; similar() must decide the same.
    assert all(
        verdict(a, b).passed and verdict(a, b).score < DEFAULT_THRESHOLD
        for a, b in [(SHORT, LONG), (LONG, SHORT)]
    )
    by_model = {
        p.model: text for p, text in zip(BUILTIN_PROVIDERS, [SHORT] * len(BUILTIN_PROVIDERS), strict=True)
    }
    texts = {"openai": SHORT, "zhipu": LONG, "qwen": NEGATED}
    by_model.update({p.model: texts[p.name] for p in BUILTIN_PROVIDERS if p.name in texts})
    llm_env.replies = lambda payload: by_model[str(payload["model"])]
    pytester.makepyfile(test_app=CONTAINED_SUITE.replace("MARKER", marker))
    result = pytester.runpytest("--providers=openai,zhipu,qwen", "--llmport-report=report.json")
    per_provider = 2 if marker else 1
    result.assert_outcomes(passed=2 * per_provider, failed=per_provider)
    result.stdout.fnmatch_lines(
        ["*'reply' on qwen states other facts than the baseline openai*negation differs*"]
    )
    cells = json.loads((pytester.path / "report.json").read_text("utf-8"))["tests"]["test_app.py::test_reply"]
    check = cells["zhipu"]["checks"][0]
    assert check["passed"] is True and check["contained"] is True and check["score"] < check["threshold"]
    # The other way round: the verbose answer is the baseline, the short one the candidate.
    swapped = pytester.runpytest(
        "--providers=zhipu,openai", "--llmport-baseline=zhipu", "--llmport-record-mode=all"
    )
    swapped.assert_outcomes(passed=2 * per_provider)
