"""The facts the default verdict checks: numbers and negation (pytest_llmport.facts, llm_equiv.similar)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pytest_llmport.facts import conflicts, negated_predicates, quantities
from pytest_llmport.similarity import DEFAULT_THRESHOLD, verdict

from .conftest import KEY, RunModes


def values(text: str) -> list[tuple[Decimal, str]]:
    return [(q.value, q.unit) for q in quantities(text)]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("3天内到账", "三天内到账"),
        ("3 days", "三天"),
        ("半小时", "30分钟"),
        ("两个小时", "2小时"),
        ("1.5万元", "15,000元"),
        ("一万五千块", "¥15000"),
        ("两百五十", "250"),
        ("一百零五", "105"),
        ("二零二四年三月五日", "2024-03-05"),
        ("下午3点半", "15:30"),
        ("晚上8点", "8 pm"),
        ("百分之三十", "30%"),
        ("三个半小时", "3.5小时"),
    ],
)
def test_the_same_quantity_written_differently(first: str, second: str) -> None:
    assert values(first) == values(second) != []
    assert conflicts(first, second) == []


def test_numerals_inside_words_are_not_numbers() -> None:
    assert quantities("统一价格，一起下单，稍等一下") == []
    # 一 alone is an article; with a counting word it is a number.
    assert quantities("说一是一") == []
    assert values("我有一个问题") == [(Decimal(1), "")]


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("退款会在3天内到账", "退款会在30天内到账", "numbers differ: 3天 vs 30天"),
        ("三天内送达", "五天内送达", "numbers differ: 三天 vs 五天"),
        ("价格是199元", "价格是99元", "numbers differ: 199元 vs 99元"),
        ("3月5日发货", "5月3日发货", "numbers differ: 3月 vs 5月"),
        ("下午3点开会", "上午3点开会", "numbers differ: 3点 vs 3点"),
        ("这件商品可以退款", "这件商品不可以退款", "negation differs: 可以 vs 不可以"),
        ("订单还没有发货", "订单已经发货了", "negation differs: 没有发货 vs 发货"),
        ("目前无法退款", "目前可以退款", "negation differs: 无法退款 vs 退款"),
        ("You can get a refund.", "You cannot get a refund.", "negation differs: can vs can not"),
        ("I don't know the answer", "I know the answer", "negation differs: not know vs know"),
    ],
)
def test_flips_are_named(first: str, second: str, reason: str) -> None:
    assert conflicts(first, second)[0] == reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # A longer answer adds a number: nothing contradicts.
        ("3天内到账", "退款会在3天内到账，如有疑问请拨打客服电话95588"),
        # Words that negate nothing, questions, and the same negation said two ways.
        ("这个商品质量不错", "这个商品质量很好"),
        ("能不能退款", "可以退款吗"),
        ("有没有优惠", "有优惠吗"),
        ("为什么不能登录", "为什么登录不了"),
        ("不可以退款", "不能退款，抱歉"),
        ("这款手机特别好用", "这款手机非常好用"),
    ],
)
def test_no_false_alarm(first: str, second: str) -> None:
    assert conflicts(first, second) == []


def test_negated_predicates() -> None:
    assert negated_predicates("不能退款") == {"能退": "不能退", "退款": "不能退款"}
    assert negated_predicates("這件商品不可以退款")["可以"] == "不可以"  # traditional script folded first
    assert negated_predicates("it is not possible") == {"is": "is not", "possible": "not possible"}


def test_verdict_combines_score_and_facts() -> None:
    flipped = verdict("退款会在3天内到账", "退款会在30天内到账")
    assert flipped.score >= DEFAULT_THRESHOLD and not flipped.passed
    assert flipped.facts == ("numbers differ: 3天 vs 30天",)
    unchecked = verdict("退款会在3天内到账", "退款会在30天内到账", facts=False)
    assert unchecked.passed and unchecked.facts == ()
    assert verdict("退款会在3天内到账", "退款会在三天内到账").passed


SUITE = """
import pytest


@pytest.mark.llm_portable
def test_default(llm_provider, llm_equiv):
    llm_equiv.similar("reply", "退款会在30天内到账", reference="退款会在3天内到账")


@pytest.mark.llm_portable
def test_call_off(llm_provider, llm_equiv):
    llm_equiv.similar("reply", "退款会在30天内到账", reference="退款会在3天内到账", facts=False)


@pytest.mark.llm_portable(facts=False)
def test_marker_off(llm_provider, llm_equiv):
    llm_equiv.similar("reply", "这件商品不可以退款", reference="这件商品可以退款")


@pytest.mark.llm_portable(facts=False)
def test_call_wins_over_marker(llm_provider, llm_equiv):
    llm_equiv.similar("reply", "这件商品不可以退款", reference="这件商品可以退款", facts=True)
"""


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.mark.usefixtures("openai_key")
def test_similar_checks_facts_per_call_marker_and_ini(pytester: pytest.Pytester, run_modes: RunModes) -> None:
    pytester.makepyfile(test_facts_suite=SUITE)
    report = pytester.path / "report.json"
    result = run_modes("--providers=openai", f"--llmport-report={report}")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_default[[]openai[]]: 'reply' on openai states other facts than the reference text: "
            "numbers differ: 3天 vs 30天 (chrf_lcs 0.* >= threshold 0.61; if such differences are expected "
            "here, pass facts=False)",
        ]
    )
    result.stdout.fnmatch_lines(["*test_call_wins_over_marker*negation differs: 可以 vs 不可以*"])
    result.stdout.fnmatch_lines(["*test_default * numbers differ"])
    data = json.loads(report.read_text("utf-8"))
    (check,) = data["tests"]["test_facts_suite.py::test_default"]["openai"]["checks"]
    assert check["passed"] is False and check["facts"] == ["numbers differ: 3天 vs 30天"]
    assert check["score"] >= 0.61

    pytester.makeini("[pytest]\nllmport_check_facts = false\n")
    result = run_modes("--providers=openai")
    # The ini turns the check off, the call's facts=True still turns it on.
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_call_wins_over_marker*"])


@pytest.mark.usefixtures("openai_key")
def test_bad_facts_values_are_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker="""
import pytest


@pytest.mark.llm_portable(facts="no")
def test_marker(llm_provider, llm_equiv):
    pass
""",
        test_call="""
import pytest


@pytest.mark.llm_portable
def test_call(llm_provider, llm_equiv):
    llm_equiv.similar("reply", "好", reference="好", facts="off")
""",
    )
    result = pytester.runpytest("--providers=openai", "test_marker.py")
    result.stdout.fnmatch_lines(
        ["*test_marker.py::test_marker: @pytest.mark.llm_portable(facts='no'): facts must be True or False*"]
    )
    result = pytester.runpytest("--providers=openai", "test_call.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*test_call[[]openai[]]: llm_equiv.similar('reply', facts='off'): facts must be True or False*"]
    )


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("张伟把公司卖给了李娜。", "李娜把公司卖给了张伟。", "roles differ: 张伟 and 李娜 exchanged"),
        ("房东应该退还租客的押金", "租客应该退还房东的押金", "roles differ: 房东 and 租客 exchanged"),
        ("上海到北京的高铁比飞机慢", "北京到上海的飞机比高铁慢", "roles differ: 上海 and 北京 exchanged"),
        ("Alice paid Bob the deposit", "Bob paid Alice the deposit", "roles differ: alice and bob exchanged"),
    ],
)
def test_exchanged_roles_are_named(first: str, second: str, reason: str) -> None:
    assert conflicts(first, second) == [reason]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("北京是中国的首都", "中国的首都是北京"),  # the two sides of 是 may change places
        ("鹦鹉鱼能和罗汉鱼一起养吗", "罗汉鱼能和鹦鹉鱼一起养吗"),
        ("又胖又矮的女生适合什么发型", "又矮又胖的女生适合什么发型"),
        ("为什么冬天下雪不打雷", "冬天下雪为什么不打雷"),  # a moved phrase, not two exchanged
        ("会议定在周三下午，地点是三楼会议室。", "地点是三楼会议室，会议定在周三下午。"),
    ],
)
def test_reordering_is_not_an_exchange_of_roles(first: str, second: str) -> None:
    assert conflicts(first, second) == []
