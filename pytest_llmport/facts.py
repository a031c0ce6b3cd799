"""Facts two answers must agree on whatever their wording: the numbers they state and what they negate.

A similarity score cannot see that "可以退款" and "不可以退款", or "3天内到账" and "30天内到账", say opposite
things: the texts share almost every character. :func:`conflicts` reads both texts for

- **numbers**: Arabic and Chinese numerals (``3``, ``1,000``, ``1.5万``, ``三十``, ``两百五``, ``二零二四``),
  English number words, with their units folded to one scale (``半小时`` = ``30分钟``, ``3 days`` = ``3天``),
  money (``¥30`` = ``30元``), percentages, dates (``2024-03-05`` = ``2024年3月5日``) and times of day
  (``下午3点`` = ``15:00`` = ``3 pm``). Two texts conflict when each states a number the other does not;
  a number only one of them mentions (an extra detail of a longer answer) is not a conflict.
- **negation**: a predicate one text negates (``不可以``, ``没有发货``, ``cannot``, ``not``) that the other
  states only without negation.

The rules are heuristics on the surface text, measured in ``bench/similarity.py`` (flips caught on the
answer-pair fixture, false alarms on LCQMC's equivalent pairs) and documented in ``docs/similarity.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from .textfold import nfkc, to_simplified

__all__ = ["Quantity", "conflicts", "negated_predicates", "quantities"]


@dataclass(frozen=True)
class Quantity:
    """One number a text states: its value on the unit's base scale, the unit, and the text as written."""

    value: Decimal
    unit: str  # canonical unit; "" for a bare number or a counting word (个, 次, 件 ...)
    text: str
    amount: Decimal | None = None  # the number as written, before the unit's factor (3 of 3天)

    def matches(self, other: Quantity) -> bool:
        """Same value on the same scale, or the same number where one side gives no unit."""
        if not self.unit or not other.unit:
            return (self.amount or self.value) == (other.amount or other.value)
        return self.value == other.value and self.unit == other.unit


# ---------------------------------------------------------------------------------------------- units
# Canonical unit and factor to it. Durations go to seconds so that 半小时 equals 30分钟; a day of the
# month (5日, 5号) uses the day's scale too, which keeps "3月5日" apart from "5月3日".
_UNITS: Final[dict[str, tuple[str, Decimal]]] = {}


def _unit(canonical: str, factor: int | str, *names: str) -> None:
    for name in names:
        _UNITS[name] = (canonical, Decimal(factor))


_unit("s", 1, "秒钟", "秒", "seconds", "second", "secs", "sec")
_unit("s", 60, "分钟", "分", "minutes", "minute", "mins", "min")
_unit("s", 3600, "个小时", "小时", "个钟头", "钟头", "hours", "hour", "hrs", "hr", "h")
_unit("s", 86400, "天", "日", "号", "days", "day")
_unit("s", 604800, "个星期", "星期", "个礼拜", "礼拜", "周", "weeks", "week")
_unit("workday", 1, "个工作日", "工作日", "business days", "business day", "working days", "working day")
_unit("月", 1, "个月", "月", "months", "month")
_unit("年", 1, "年", "years", "year")
_unit("点", 1, "点钟", "点", "o'clock")
_unit("元", 1, "块钱", "块", "元", "圆", "人民币", "rmb", "cny", "yuan")
_unit("元", "0.1", "角", "毛")
_unit("$", 1, "美元", "美金", "usd", "dollars", "dollar")
_unit("€", 1, "欧元", "eur", "euros", "euro")
_unit("%", 1, "%", "percent", "per cent")
_unit("折", 1, "折")
_unit("kg", 1, "公斤", "千克", "kg", "kilograms", "kilogram")
_unit("kg", "0.5", "斤")
_unit("kg", "0.001", "克", "g", "grams", "gram")
_unit("m", 1000, "公里", "千米", "km", "kilometres", "kilometers", "kilometre", "kilometer")
_unit("m", 1, "米", "m", "metres", "meters", "metre", "meter")
_unit("GB", 1, "gb", "g内存")
_unit("岁", 1, "周岁", "岁", "years old")
_unit("倍", 1, "倍", "times")
# Counting words say what is counted, not on what scale: a bare number matches them.
_unit("", 1, *"个次件位名人份张台部本条家层页行步种款遍批箱包瓶杯项道把句", "items", "item", "steps", "step")
_CURRENCY_PREFIX: Final = {"¥": "元", "$": "$", "€": "€"}

_UNIT_PATTERN: Final = "|".join(re.escape(name) for name in sorted(_UNITS, key=len, reverse=True) if name)

# ---------------------------------------------------------------------------------------- numerals
_CN_DIGITS: Final = {
    "零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
    "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_CN_SMALL: Final = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_LARGE: Final = {"万": 10_000, "亿": 100_000_000}
_CN_CHARS: Final = "".join(_CN_DIGITS) + "".join(_CN_SMALL) + "".join(_CN_LARGE)
_EN_NUMBERS: Final = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100, "thousand": 1000, "half": 0,
}  # fmt: skip

# Words that contain numerals but state no number.
_CN_IDIOMS: Final = (
    "一下", "一些", "一样", "一起", "一直", "一定", "一般", "一切", "一旦", "一边", "一致", "一向", "一会",
    "一点点", "一点儿", "有点", "一律", "一同", "一再", "一并", "一番", "一贯", "一味", "一气", "统一",
    "唯一", "万一", "一旦", "一面", "一路", "一生", "一心", "一共", "一流", "一体", "不一", "专一",
    "千万", "万分", "十分", "百分百", "一模一样", "乱七八糟", "三心二意", "七上八下", "独一", "之一",
    "一手", "一口", "一方面", "一概", "逐一", "一带", "一身", "第一时间", "一时", "一阵", "一如",
    "不三不四", "五花八门", "四处", "四周", "万物", "千里", "九州", "三明治", "星期天", "七夕",
)  # fmt: skip
_AFTERNOON: Final = ("下午", "晚上", "傍晚", "夜里", "晚", "pm", "p.m.")
_MORNING: Final = ("上午", "早上", "凌晨", "早晨", "清晨", "am", "a.m.")

_ARABIC: Final = r"\d{1,3}(?:,\d{3})+(?![\d])(?:\.\d+)?|\d+(?:\.\d+)?"
_QUANTITY: Final = re.compile(
    rf"(?P<date>(?<![\d.])(?P<y>\d{{4}})[-/.](?P<mo>\d{{1,2}})[-/.](?P<d>\d{{1,2}})(?![\d]))"
    rf"|(?P<time>(?<![\d:])(?P<hh>\d{{1,2}}):(?P<mm>\d{{2}})(?::\d{{2}})?(?![\d]))"
    rf"|(?P<pct>百分之(?P<pctnum>{_ARABIC}|[{_CN_CHARS}点]+))"
    rf"|(?P<mer>(?<![\d:.])(?P<merh>\d{{1,2}})(?::(?P<merm>\d{{2}}))?\s?(?P<ap>[ap])\.?m\b\.?)"
    rf"|(?P<cur>[¥$€])\s?(?P<curnum>{_ARABIC})"
    rf"|(?P<halfonly>半)(?=\s?个?(?:小时|钟头|天|年|月|周|星期))"
    rf"|(?P<ar>{_ARABIC})\s?(?P<armul>[万亿千]|k\b)?"
    rf"|(?P<cn>[{_CN_CHARS}]+(?:点[{''.join(_CN_DIGITS)}]+)?)"
    rf"|\b(?P<en>{'|'.join(_EN_NUMBERS)})\b"
)
_UNIT_AFTER: Final = re.compile(
    rf"\s?(?:个)?(?P<prehalf>半)?(?:个)?(?P<unit>{_UNIT_PATTERN})(?![a-z])(?P<half>半)?", re.IGNORECASE
)


def _parse_cn(run: str) -> Decimal | None:
    """Value of a Chinese numeral (``三十五``, ``两百五``, ``一万五``, ``二零二四``, ``三点五``).

    None when the run is not a well-formed numeral.
    """
    if "点" in run:
        whole, _, fraction = run.partition("点")
        head = _parse_cn(whole)
        if head is None or not fraction or any(ch not in _CN_DIGITS for ch in fraction):
            return None
        return head + Decimal("0." + "".join(str(_CN_DIGITS[ch]) for ch in fraction))
    if len(run) > 1 and all(ch in _CN_DIGITS for ch in run):
        # Digit by digit, as years and phone numbers are read: 二零二四.
        return Decimal("".join(str(_CN_DIGITS[ch]) for ch in run))
    total, section, digit = 0, 0, None
    last_unit = 1
    for ch in run:
        if ch in _CN_DIGITS:
            if _CN_DIGITS[ch] == 0:
                # 一百零五: the zero only says the next digit is in the ones place.
                digit, last_unit = None, 10
                continue
            if digit is not None:
                return None
            digit = _CN_DIGITS[ch]
        elif ch in _CN_SMALL:
            unit = _CN_SMALL[ch]
            section += (1 if digit is None else digit) * unit
            digit, last_unit = None, unit
        else:
            unit = _CN_LARGE[ch]
            total = (total + section + (digit or 0)) * unit
            section, digit, last_unit = 0, None, unit
    if digit is not None:
        # 两百五 is 250 and 一万五 is 15,000: a trailing digit counts in the next smaller place.
        section += digit * (last_unit // 10 if last_unit >= 10 else 1)
    return Decimal(total + section)


def _arabic(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def _hour_of_day(hour: Decimal, before: str) -> Decimal:
    if hour < 12 and before.endswith(_AFTERNOON):
        return hour + 12
    return hour


def _fold(text: str) -> str:
    return nfkc(to_simplified(text)).casefold()


def quantities(text: str) -> list[Quantity]:
    """The numbers ``text`` states, in order, with units folded to one scale (see the module docstring)."""
    text = _fold(text)
    found: list[Quantity] = []
    position = 0
    while True:
        match = _QUANTITY.search(text, position)
        if match is None:
            return found
        position = match.end()
        before = text[max(0, match.start() - 3) : match.start()].rstrip()
        if match["date"]:
            day = int(match["d"])
            found += [
                Quantity(Decimal(int(match["y"])), "年", match["y"]),
                Quantity(Decimal(int(match["mo"])), "月", match["mo"]),
                Quantity(Decimal(day * 86400), "s", match["d"]),
            ]
            continue
        if match["time"]:
            hour = _hour_of_day(Decimal(int(match["hh"])), before)
            found.append(Quantity(hour, "点", match["hh"]))
            found.append(Quantity(Decimal(int(match["mm"]) * 60), "s", match["mm"]))
            continue
        if match["mer"]:
            hour = Decimal(int(match["merh"]))
            if match["ap"] == "p" and hour < 12:
                hour += 12
            found.append(Quantity(hour, "点", match[0]))
            if match["merm"]:
                found.append(Quantity(Decimal(int(match["merm"]) * 60), "s", match[0]))
            continue
        if match["pct"]:
            raw = match["pctnum"]
            value = _arabic(raw) if raw[0].isdigit() else _parse_cn(raw)
            if value is not None:
                found.append(Quantity(value, "%", match[0]))
            continue
        unit_name: str | None = None
        if match["cur"]:
            value, unit_name = _arabic(match["curnum"]), _CURRENCY_PREFIX[match["cur"]]
        elif match["ar"]:
            value = _arabic(match["ar"])
            multiplier = match["armul"]
            if multiplier:
                value *= {"万": 10_000, "亿": 100_000_000, "千": 1000, "k": 1000}[multiplier]
        elif match["halfonly"]:
            value = Decimal("0.5")
        elif match["cn"]:
            run = match["cn"]
            parsed = _cn_quantity(text, match.start(), run)
            if parsed is None:
                continue
            value = parsed
        else:
            value = Decimal(_EN_NUMBERS[match["en"]])
            if match["en"] == "half":
                continue
        unit_match = _UNIT_AFTER.match(text, position)
        unit = ""
        factor = Decimal(1)
        written = match[0].strip()
        if unit_match is not None and unit_name is None:
            unit, factor = _UNITS[unit_match["unit"].lower()]
            written = text[match.start() : unit_match.end()]
            position = unit_match.end()
            if unit_match["half"] or unit_match["prehalf"]:
                value += Decimal("0.5")
        elif unit_name is not None:
            unit = unit_name
        if unit == "点":
            value = _hour_of_day(value, before)
            if unit_match is not None and unit_match["half"]:
                # 3点半 is half past three, not 3.5 o'clock.
                value -= Decimal("0.5")
                found.append(Quantity(value, unit, written))
                found.append(Quantity(Decimal(1800), "s", written))
                continue
        found.append(Quantity(value * factor, unit, written, value))


def _covered(text: str, words: tuple[str, ...]) -> set[int]:
    """Indices of ``text`` inside an occurrence of any of ``words``."""
    covered: set[int] = set()
    for word in words:
        start = text.find(word)
        while start != -1:
            covered.update(range(start, start + len(word)))
            start = text.find(word, start + 1)
    return covered


def _cn_quantity(text: str, start: int, run: str) -> Decimal | None:
    """A Chinese numeral run's value, or None where it is part of a word that states no number."""
    if not _covered(text[max(0, start - 4) : start + len(run) + 4], _CN_IDIOMS).isdisjoint(
        range(start - max(0, start - 4), start - max(0, start - 4) + len(run))
    ):
        return None
    if run[0] in _CN_LARGE or run[0] in "百佰千仟":
        return None
    following = text[start + len(run) : start + len(run) + 4]
    if run in ("一", "壹") and not re.match(rf"\s?(?:个)?(?:{_UNIT_PATTERN})", following, re.IGNORECASE):
        # 一 alone is an article far more often than a number (一个问题 keeps it; 有一说一 does not).
        return None
    return _parse_cn(run)


def _unmatched(first: list[Quantity], second: list[Quantity]) -> tuple[list[Quantity], list[Quantity]]:
    left = list(first)
    right = list(second)
    # Exact units first, so that a bare 3 does not take the 3天 a 3天 on the other side needs.
    for exact in (True, False):
        for x in list(left):
            for y in right:
                if (x.unit == y.unit or not exact) and x.matches(y):
                    left.remove(x)
                    right.remove(y)
                    break
    return left, right


# ---------------------------------------------------------------------------------------- negation
_CN_CUES: Final = ("没有", "无法", "无需", "无须", "并非", "不", "没", "未", "勿", "别")
# Words containing a cue that do not negate anything (or negate twice).
_CN_NOT_NEGATION: Final = (
    "不错", "不过", "不断", "不少", "不久", "不但", "不仅", "不管", "不论", "不如", "不然", "不好意思",
    "不得不", "不只", "不光", "不止", "不禁", "不免", "不愧", "不料", "不时", "不妨", "差不多", "对不起",
    "了不起", "要不", "不客气", "不用谢", "没关系", "没事", "未来", "未免", "别人", "别的", "别处", "别墅",
    "特别", "区别", "分别", "类别", "级别", "告别", "性别", "差别", "识别", "辨别", "个别", "离别", "派别",
    "鉴别", "判别", "不一会", "不知不觉", "不停", "不由", "毫不", "不同寻常", "不得了", "说不定",
)  # fmt: skip
_HAN: Final = re.compile(r"[\u4e00-\u9fff]")
_MODALS: Final = "能会可要用应该必需得敢肯想愿是在让"
_COMPLEMENTS: Final = "了到上下出动起开成完懂清住着见"
_EN_AUX: Final = frozenset((
    "is", "are", "was", "were", "am", "be", "been", "can", "could", "will", "would", "do", "does", "did",
    "should", "shall", "may", "might", "must", "have", "has", "had", "need",
))  # fmt: skip
_EN_CUES: Final = frozenset(("not", "no", "never", "none", "neither", "nor"))
_EN_WORD: Final = re.compile(r"[a-z]+")
_EN_STOP: Final = frozenset((
    "a", "an", "the", "to", "be", "of", "for", "any", "it", "this", "that", "you", "i", "we", "they",
))  # fmt: skip


_CN_CUE: Final = re.compile("|".join(_CN_CUES))


def _cn_negation_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each negating cue in ``text``, lexicalised words such as 不错 skipped."""
    spans: list[tuple[int, int]] = []
    lexical = _covered(text, _CN_NOT_NEGATION)
    for match in _CN_CUE.finditer(text):
        index, end, cue = match.start(), match.end(), match[0]
        if cue[0] in "不没" and index > 0 and index + 1 < len(text) and text[index - 1] == text[index + 1]:
            continue  # 能不能, 有没有, 可不可以: a question, not a negation
        if index in lexical or (cue == "别" and index > 0 and _HAN.match(text[index - 1])):
            continue  # 不错, 特别: words that negate nothing; 别 negates only at the start of a clause
        spans.append((index, end))
    return spans


def _negated_cn(text: str, spans: list[tuple[int, int]]) -> dict[str, str]:
    """Predicates negated in Chinese text, each with the negated phrase as written (可以 -> 不可以)."""
    found: dict[str, str] = {}
    for start, end in spans:
        han = ""
        for ch in text[end : end + 4]:
            if not _HAN.match(ch):
                break
            han += ch
        if text[start] == "不" and han[:1] in _COMPLEMENTS and start >= 2 and _HAN.match(text[start - 2]):
            # 登录不了, 找不到: the verb before 不 is what is negated.
            verb = text[start - 2 : start]
            if all(_HAN.match(ch) for ch in verb):
                found.setdefault(verb, verb + text[start : end + 1])
                continue
        candidates = [han[:2]] if len(han) >= 2 else []
        if len(han) >= 3 and han[0] in _MODALS:
            candidates.append(han[1:3])
        for candidate in candidates:
            found.setdefault(candidate, text[start:end] + han[: han.index(candidate) + 2])
    return found


def _en_tokens(text: str) -> list[str]:
    text = re.sub(r"n't\b", " not", text.replace("cannot", "can not").replace("won't", "will not"))
    return _EN_WORD.findall(text)


def _negated_en(tokens: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for index, token in enumerate(tokens):
        if token not in _EN_CUES:
            continue
        if index > 0 and tokens[index - 1] in _EN_AUX:
            aux = tokens[index - 1]
            found.setdefault(aux, f"{aux} not")
        following = [t for t in tokens[index + 1 : index + 4] if t not in _EN_STOP and t not in _EN_AUX]
        if following:
            found.setdefault(following[0], f"{token} {following[0]}")
    return found


@dataclass(frozen=True)
class _Reading:
    """What the negation check needs from one folded text, computed once."""

    text: str
    tokens: list[str]
    cue_ends: frozenset[int]
    negated: dict[str, str]

    @classmethod
    def of(cls, text: str) -> _Reading:
        text = _fold(text)
        tokens = _en_tokens(text)
        spans = _cn_negation_spans(text)
        negated = _negated_cn(text, spans) | _negated_en(tokens)
        return cls(text, tokens, frozenset(end for _, end in spans), negated)

    def states_positively(self, predicate: str) -> bool:
        """Whether ``predicate`` occurs at least once without a negating cue just before it."""
        if _HAN.match(predicate):
            start = self.text.find(predicate)
            while start != -1:
                # A cue within the three characters before (不可以退款: 退款 is negated by 不可以).
                if not any(start - 3 <= end <= start for end in self.cue_ends):
                    return True
                start = self.text.find(predicate, start + 1)
            return False
        for index, token in enumerate(self.tokens):
            if token == predicate:
                window = self.tokens[max(0, index - 3) : index] + self.tokens[index + 1 : index + 2]
                if not _EN_CUES & set(window):
                    return True
        return False

    def only_negates(self, other: _Reading) -> tuple[str, str] | None:
        """A predicate this text only negates while ``other`` only states it: (predicate, phrase)."""
        for predicate, phrase in self.negated.items():
            if (
                predicate not in other.negated
                and other.states_positively(predicate)
                and not self.states_positively(predicate)
            ):
                return predicate, phrase
        return None


def negated_predicates(text: str) -> dict[str, str]:
    """What ``text`` negates: predicate -> the negated phrase as written (``可以`` -> ``不可以``)."""
    return _Reading.of(text).negated


def _negation_conflict(a: str, b: str) -> str | None:
    first, second = _Reading.of(a), _Reading.of(b)
    found = first.only_negates(second)
    if found is not None:
        return f"negation differs: {found[1]} vs {found[0]}"
    found = second.only_negates(first)
    if found is not None:
        return f"negation differs: {found[0]} vs {found[1]}"
    return None


# ------------------------------------------------------------------------------------------- roles
_CLAUSE: Final = re.compile(r"[,.;:!?()\[\]\"'\n，。；：！？、（）【】“”‘’]+")
# Words whose two sides can change places without changing what is said (北京是首都 = 首都是北京).
_SYMMETRIC: Final = re.compile(r"是|和|与|跟|及|或|又|以及|还是|\b(?:is|are|and|or)\b")
_TOKEN: Final = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]+")


def _clauses(text: str) -> list[str]:
    return [clause.strip() for clause in _CLAUSE.split(text) if clause.strip()]


def _bag(clause: str) -> tuple[str, ...]:
    return tuple(sorted(_TOKEN.findall(clause)))


def _swap(first: list[str], second: list[str]) -> tuple[str, str] | None:
    """(X, Y) when ``second`` is ``first`` with two parts exchanged around a middle: X M Y -> Y M X.

    Prefix and suffix both share are ignored; the middle must not be empty (``全本未删节`` against
    ``未删节全本`` moves a modifier, it does not exchange roles) nor hold a word whose two sides can
    change places (``北京是首都`` = ``首都是北京``, ``A和B``).
    """
    start = 0
    while start < len(first) and first[start] == second[start]:
        start += 1
    end = 0
    while end < len(first) - start and first[-1 - end] == second[-1 - end]:
        end += 1
    a, b = first[start : len(first) - end], second[start : len(second) - end]
    for x_len in range(1, len(a)):
        for y_len in range(1, len(a) - x_len):
            x, middle, y = a[:x_len], a[x_len : len(a) - y_len], a[len(a) - y_len :]
            if b == y + middle + x and x != y:
                if _SYMMETRIC.search(" ".join(middle)) or _SYMMETRIC.search("".join(middle)):
                    return None
                return "".join(x), "".join(y)
    return None


def _swaps(first: list[str], second: list[str]) -> tuple[str, str] | None:
    """The first exchange when ``second`` is ``first`` cut into pieces, each kept or with two parts
    exchanged (上海到北京的高铁比飞机 -> 北京到上海的飞机比高铁); None if any piece is reordered otherwise."""
    found: tuple[str, str] | None = None
    start = 0
    counts: dict[str, int] = {}
    for index, (x, y) in enumerate(zip(first, second, strict=True)):
        counts[x] = counts.get(x, 0) + 1
        counts[y] = counts.get(y, 0) - 1
        if any(counts.values()):
            continue
        piece, other = first[start : index + 1], second[start : index + 1]
        start = index + 1
        if piece == other:
            continue
        swapped = _swap(piece, other)
        if swapped is None:
            return None
        found = found or swapped
    return found


def _roles_conflict(a: str, b: str) -> str | None:
    """A clause of ``a`` that ``b`` states with two of its parts exchanged (张伟卖给李娜 / 李娜卖给张伟)."""
    by_bag: dict[tuple[str, ...], list[str]] = {}
    for clause in _clauses(_fold(a)):
        tokens = _TOKEN.findall(clause)
        if len(tokens) >= 4:
            by_bag.setdefault(tuple(sorted(tokens)), tokens)
    for clause in _clauses(_fold(b)):
        tokens = _TOKEN.findall(clause)
        other = by_bag.get(tuple(sorted(tokens)))
        if other is None or other == tokens:
            continue
        swapped = _swaps(other, tokens)
        if swapped is not None:
            return f"roles differ: {swapped[0]} and {swapped[1]} exchanged"
    return None


def conflicts(a: str, b: str) -> list[str]:
    """Reasons why ``a`` and ``b`` state different facts (empty when they agree as far as can be read).

    ``"numbers differ: 3天 vs 30天"`` when each text states a number the other does not;
    ``"negation differs: 可以 vs 不可以"`` when one negates a predicate the other states without negation.
    """
    reasons: list[str] = []
    left, right = _unmatched(quantities(a), quantities(b))
    if left and right:
        reasons.append(f"numbers differ: {left[0].text} vs {right[0].text}")
    negation = _negation_conflict(a, b)
    if negation is not None:
        reasons.append(negation)
    roles = _roles_conflict(a, b)
    if roles is not None:
        reasons.append(roles)
    return reasons
