"""Properties and hand-computed values of the built-in similarity metrics (no data files, no network)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import opencc
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmport.similarity import (
    DEFAULT_METRIC,
    DEFAULT_THRESHOLD,
    METRICS,
    Metric,
    UnknownMetricError,
    answer_text,
    bigram_jaccard,
    chrf,
    chrf_lcs,
    chrf_score,
    contained,
    edit_similarity,
    get_metric,
    lcs_length,
    levenshtein,
    normalize,
    rouge_l,
    token_jaccard,
    tokenize,
    verdict,
)
from pytest_llmport.textfold import CJK_PUNCTUATION, fold_width, to_half_width

ALL = pytest.mark.parametrize("metric", list(METRICS.values()), ids=list(METRICS))

# Few distinct characters make shared subsequences and repeated n-grams likely, which is where the
# bit-parallel kernels and clipped counts can go wrong.
small_text = st.text(alphabet="ab中文 ，Ａ", max_size=30)
mixed_text = st.text(
    alphabet=st.sampled_from(list("abcAB 12中文字的了，。！？ＡＢ１\u3000\t")) | st.characters(codec="utf-8"),
    max_size=40,
)


def naive_lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def naive_levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# ------------------------------------------------------------------------------------------------ kernels


@given(st.text(alphabet="abc", max_size=150), st.text(alphabet="abcd", max_size=150))
@settings(max_examples=300)
def test_lcs_matches_dynamic_programming(a: str, b: str) -> None:
    assert lcs_length(a, b) == naive_lcs(a, b)


@given(st.text(alphabet="abc", max_size=150), st.text(alphabet="abcd", max_size=150))
@settings(max_examples=300)
def test_levenshtein_matches_dynamic_programming(a: str, b: str) -> None:
    assert levenshtein(a, b) == naive_levenshtein(a, b)


def test_kernels_on_known_pairs() -> None:
    assert lcs_length("ABCBDAB", "BDCABA") == 4
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert lcs_length("", "abc") == 0
    # Longer than one 64-character block, so the periodic trimming of high bits is exercised.
    a = "的了是" * 50
    b = "是的" * 70
    assert lcs_length(a, b) == naive_lcs(a, b)
    assert levenshtein(a, b) == naive_levenshtein(a, b)


# ------------------------------------------------------------------------------------------ normalisation


def test_normalize_folds_width_case_and_whitespace() -> None:
    assert normalize("  ＨＥＬＬＯ，\u3000Ｗｏｒｌｄ！ ") == "hello, world!"
    assert normalize("你好\n\t  世界") == "你好 世界"
    assert normalize("Straße") == "strasse"


@given(mixed_text)
def test_normalize_equals_its_documented_definition(text: str) -> None:
    # The fast paths (full-width block first, ASCII skips OpenCC) must not change the documented result.
    simplified = opencc.OpenCC("t2s").convert(text)
    folded = unicodedata.normalize("NFKC", simplified).translate(str.maketrans(CJK_PUNCTUATION))
    assert normalize(text) == " ".join(folded.casefold().split())


def test_normalize_folds_chinese_punctuation_and_script() -> None:
    assert normalize("“可以”。【注意】、") == '"可以".[注意],'
    assert normalize("我們的退貨政策：七天內可以無理由退貨。") == "我们的退货政策:七天内可以无理由退货."
    # OpenCC converts phrases before characters: the emperor's name keeps its character.
    assert normalize("乾隆年間很乾燥") == "乾隆年间很干燥"


@ALL
def test_traditional_equals_simplified(metric: Metric) -> None:
    assert metric("退款會在三個工作日內到賬。", "退款会在三个工作日内到账.") == 1.0


def test_one_folding_table_for_the_package() -> None:
    from pytest_llmport import compare, strategies

    text = "「退貨」，３天內。【Ａ】"
    assert compare.StringNormalization(width=True).apply(text) == fold_width(text) == '"退貨",3天內.[A]'
    assert strategies.fold_width is fold_width
    assert strategies.to_half_width is to_half_width


@ALL
def test_full_width_equals_half_width(metric: Metric) -> None:
    assert metric("ＡＢＣ，１２３？你好", "abc,123?你好") == 1.0
    assert metric("模型　回答", "模型 回答") == 1.0


# ------------------------------------------------------------------------------------------------ contract


@ALL
def test_empty_inputs(metric: Metric) -> None:
    assert metric("", "") == 1.0
    assert metric(" \n ", "") == 1.0
    assert metric("", "你好") == 0.0
    assert metric("你好", "") == 0.0


@ALL
@given(a=mixed_text, b=mixed_text)
def test_range_and_symmetry(metric: Metric, a: str, b: str) -> None:
    score = metric(a, b)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(metric(b, a), abs=1e-12)


@ALL
@given(a=mixed_text)
def test_identity(metric: Metric, a: str) -> None:
    assert metric(a, a) == 1.0


@ALL
def test_unrelated_texts_score_low(metric: Metric) -> None:
    assert metric("今天天气很好", "xyz") == 0.0


@ALL
def test_more_overlap_scores_higher(metric: Metric) -> None:
    reference = "北京是中国的首都"
    assert metric(reference, "北京是中国的首府") > metric(reference, "上海是一座城市")


# ------------------------------------------------------------------------------------- hand-computed values


def test_rouge_l_value() -> None:
    # LCS("abcd", "acbd") = 3, so F1 = 2 * 3 / (4 + 4).
    assert rouge_l("abcd", "acbd") == pytest.approx(0.75)
    assert rouge_l("我爱北京", "我爱上海") == pytest.approx(0.5)


def test_edit_similarity_value() -> None:
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    # Spaces are ignored by character metrics, so only the substitution counts.
    assert edit_similarity("模型 A", "模型B") == pytest.approx(1 - 1 / 3)


def test_bigram_jaccard_value() -> None:
    assert bigram_jaccard("abc", "abd") == pytest.approx(1 / 3)
    assert bigram_jaccard("好", "好") == 1.0
    assert bigram_jaccard("好", "好的") == 0.0


def test_token_jaccard_value_and_tokens() -> None:
    assert tokenize("我爱 Python3，真的!") == ["我", "爱", "python3", "真", "的"]
    assert token_jaccard("我爱 Python", "我 爱 java") == pytest.approx(2 / 4)
    # Punctuation is not a token.
    assert token_jaccard("你好！", "你好") == 1.0


def test_chrf_values() -> None:
    # n = 2 is the effective order for a two-character hypothesis. Reference "abc", hypothesis "ab":
    # P = (2/2 + 1/1) / 2 = 1, R = (2/3 + 1/2) / 2 = 7/12, F2 = 5PR / (4P + R) = 7/11.
    assert chrf_score("abc", "ab") == pytest.approx(7 / 11)
    # Swapping the roles: P = 7/12, R = 1, F2 = 7/8; chrf is the mean of both directions.
    assert chrf_score("ab", "abc") == pytest.approx(7 / 8)
    assert chrf("abc", "ab") == pytest.approx((7 / 11 + 7 / 8) / 2)
    # With beta = 1 the directional score is symmetric: F1 of P = 1, R = 7/12.
    f1 = float(2 * Fraction(7, 12) / (1 + Fraction(7, 12)))
    assert chrf_score("abc", "ab", beta=1.0) == pytest.approx(f1)
    assert chrf_score("ab", "abc", beta=1.0) == pytest.approx(f1)


def test_chrf_lcs_value() -> None:
    # "abc" vs "cab": unigram Dice 1; bigrams {ab, bc} and {ca, ab} share one, so chrF(n=2) has
    # P = R = (1 + 1/2) / 2 = 3/4 and bag = 0.2 + 0.8 * 3/4 = 0.8. The shared bigram "ab" is in order
    # (bigram LCS 1), so nothing is displaced and the score is the bag.
    assert chrf_lcs("abc", "cab") == pytest.approx(0.8)
    # "abcd" vs "cdab": bigrams ab, cd shared, bag = 0.2 + 0.8 * (1 + 2/3) / 2 = 13/15; the bigram LCS
    # is 1, so one bigram is displaced: 13/15 * (1 - (13/15)**3 * 1 / 9).
    bag = 13 / 15
    assert chrf_lcs("abcd", "cdab") == pytest.approx(bag * (1 - bag**3 / 9))


def reference_chrf_lcs(a: str, b: str) -> float:
    """chrf_lcs written from its documented formula with the slow building blocks."""
    a, b = "".join(normalize(a).split()), "".join(normalize(b).split())
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    shared = sum(min(a.count(ch), b.count(ch)) for ch in set(a))
    dice = 2 * shared / (len(a) + len(b))
    bag = 0.2 * dice + 0.8 * (chrf_score(a, b, n=2) + chrf_score(b, a, n=2)) / 2
    bigrams_a = [a[i : i + 2] for i in range(len(a) - 1)]
    bigrams_b = [b[i : i + 2] for i in range(len(b) - 1)]
    shared_bigrams = sum(min(bigrams_a.count(g), bigrams_b.count(g)) for g in set(bigrams_a))
    displaced = shared_bigrams - naive_lcs(bigrams_a, bigrams_b)
    return bag * (1 - bag**3 * displaced / (displaced + max(8, 0.2 * shared_bigrams)))


@given(small_text, small_text)
@settings(max_examples=300)
def test_chrf_lcs_matches_its_formula(a: str, b: str) -> None:
    assert chrf_lcs(a, b) == pytest.approx(reference_chrf_lcs(a, b), abs=1e-12)


def test_chrf_lcs_ranks_a_paraphrase_above_swapped_roles() -> None:
    original = "张伟在二零一九年把公司卖给了李娜"
    swapped = "李娜在二零一九年把公司卖给了张伟"
    paraphrase = "张伟在二零一九年把公司卖给李娜"
    assert chrf_lcs(original, paraphrase) - chrf_lcs(original, swapped) > 0.15


def test_long_texts_are_handled() -> None:
    a = "模型的回答应当保持一致，" * 200
    b = "模型的回答需要保持一致。" * 200
    for metric in METRICS.values():
        assert 0.0 < metric(a, b) < 1.0


# ---------------------------------------------------------------------------------------------- registry


def test_registry_and_defaults() -> None:
    assert DEFAULT_METRIC in METRICS
    assert get_metric(DEFAULT_METRIC) is chrf_lcs
    assert get_metric("chrf") is chrf
    assert 0.0 < DEFAULT_THRESHOLD < 1.0


def test_unknown_metric_lists_known_names() -> None:
    with pytest.raises(UnknownMetricError) as excinfo:
        get_metric("bleu")
    message = str(excinfo.value)
    assert "'bleu'" in message
    for name in METRICS:
        assert name in message
    assert isinstance(excinfo.value, ValueError)


# ------------------------------------------------------------------------------------ the default verdict

ANSWER_PAIRS = yaml.safe_load((Path(__file__).parent / "fixtures" / "answer_pairs.yaml").read_text("utf-8"))


def test_answer_pair_fixture_covers_every_kind() -> None:
    kinds = {pair["kind"] for pair in ANSWER_PAIRS}
    assert len(ANSWER_PAIRS) >= 40
    assert kinds == {
        "paraphrase", "reordering", "verbosity", "list-vs-prose", "zh-vs-en", "json-vs-prose", "script",
        "negation", "numbers", "swapped-roles", "unrelated",
    }  # fmt: skip
    for pair in ANSWER_PAIRS:
        assert isinstance(pair["equivalent"], bool) and pair["a"] and pair["b"]


def test_default_verdict_on_typical_answer_pairs() -> None:
    # The figures docs/similarity.md publishes (bench/similarity.py prints them per kind).
    right = {kind: 0 for kind in {pair["kind"] for pair in ANSWER_PAIRS}}
    for pair in ANSWER_PAIRS:
        right[pair["kind"]] += verdict(pair["a"], pair["b"]).passed == pair["equivalent"]
    assert sum(right.values()) == 38
    # Every flip of a number or a negation is caught; script variants always pass.
    assert right["numbers"] == 6 and right["negation"] == 6 and right["script"] == 4
    assert right["zh-vs-en"] == 0  # needs the semantic option


def test_scores_do_not_drift_with_length() -> None:
    # Same-meaning texts: the equivalent pairs' two sides joined in order (cycling once they run out);
    # unrelated: one half's first sides against the other half's second sides. bench/similarity.py runs
    # the same check on the public sets; with the old absolute half-saturation, d / (d + 8), same-meaning
    # texts here fall from 0.54 at 50 characters to 0.44 at 2,000.
    kinds = ("paraphrase", "reordering", "script", "list-vs-prose")
    pairs = [pair for pair in ANSWER_PAIRS if pair["equivalent"] and pair["kind"] in kinds]
    half = len(pairs) // 2

    def joined(size: int, side: str, chosen: list[dict[str, object]]) -> str:
        text, index = "", 0
        while len(text) < size:
            text += str(chosen[index % len(chosen)][side])
            index += 1
        return text

    same = {n: chrf_lcs(joined(n, "a", pairs), joined(n, "b", pairs)) for n in (50, 200, 1000, 2000)}
    unrelated = {n: chrf_lcs(joined(n, "a", pairs[:half]), joined(n, "b", pairs[half:])) for n in same}
    assert all(score >= same[50] - 0.05 for score in same.values()), same
    assert all(same[n] - unrelated[n] > 0.15 for n in same), (same, unrelated)


def test_answer_text_reads_json_by_its_values_and_drops_markup() -> None:
    assert answer_text('{"city": "北京", "weather": "晴", "temperature": 25, "ok": true}') == "北京,晴,25"
    assert answer_text('```json\n{"name": "张伟", "tags": ["a", "b"]}\n```') == "张伟,a,b"
    assert answer_text("1. 身份证\n2. 户口本\n- **照片**") == "身份证\n户口本\n照片"
    # JSON inside prose is prose: its words count as they are.
    assert answer_text('结果是 {"a": 1}') == '结果是 {"a": 1}'


def test_contained_answers_pass_the_verdict() -> None:
    short, long = (
        "可以退款。",
        "您好！根据我们的退换货政策，这件商品是可以退款的。如果还有其他问题，欢迎联系客服。",
    )
    assert contained(short, long) and contained(long, short)
    result = verdict(short, long)
    assert result.score < DEFAULT_THRESHOLD and result.contained and result.passed
    # Only twice as long and more: a similar-length text is judged by its score.
    assert not contained("可以退款", "可以退款的")
    # Contained, but negated: the facts still decide.
    assert not verdict("可以退款", "很抱歉，这件商品不可以退款，请谅解").passed
    # Containment is a fact about the two texts, reported whatever the score and whichever comes first.
    high = verdict("您好，可以退款。", "您好，可以退款。退款三天内到账。")
    assert high.score >= DEFAULT_THRESHOLD and high.contained


verdict_text = st.text(alphabet=st.sampled_from(list("可以不退款三3天内到账您好，。没有30元")), max_size=24)


@settings(max_examples=300, deadline=None)
@given(verdict_text, verdict_text)
def test_the_verdict_does_not_depend_on_which_text_comes_first(a: str, b: str) -> None:
    first, second = verdict(a, b), verdict(b, a)
    assert (first.passed, first.contained) == (second.passed, second.contained)
    assert first.score == pytest.approx(second.score, abs=1e-12)
    assert {reason.split(":")[0] for reason in first.facts} == {
        reason.split(":")[0] for reason in second.facts
    }
