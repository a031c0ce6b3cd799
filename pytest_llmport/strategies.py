"""Hypothesis strategies for realistic prompt inputs, and text transformations for metamorphic tests.

Import this module only where hypothesis is used (it imports hypothesis at the top)::

    from hypothesis import given, strategies as st
    from pytest_llmport.strategies import mixed_text, order_ids, templated

    days = st.integers(1, 30).map(str)

    @pytest.mark.llm_portable
    @given(templated("我的订单 {order} 已经 {days} 天没发货", order=order_ids(), days=days))
    def test_refund(llm_provider, prompt): ...

Text strategies: :func:`chinese_text`, :func:`english_text`, :func:`mixed_text`, :func:`order_ids`,
:func:`templated`. Variants of one text that a model should treat alike: :func:`punctuation_variants`
(full-width/half-width punctuation, letters and digits) and :func:`noise` (surrounding whitespace, doubled
spaces, emoji). Structured payloads: :func:`from_json_schema` and :func:`from_model` (pydantic models,
dataclasses, ``TypedDict``), always JSON-serialisable.

Pure helpers, usable as metamorphic relations without hypothesis: :func:`to_full_width`,
:func:`to_half_width`, :func:`fold_width`, :func:`swap_punctuation_width`, :func:`add_politeness`.

Every strategy here draws only through hypothesis, so a derandomised property test (as the plugin runs
``llm_portable`` ``@given`` tests) generates the same examples on every run and replays from a cassette.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as _dt
import importlib
import json
import math
import re
import string
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .compare.typecheck import is_typeddict
from .jsonvalue import to_json
from .textfold import CJK_PUNCTUATION, FULL_WIDTH_OFFSET, IDEOGRAPHIC_SPACE, fold_width, to_half_width

__all__ = [
    "CHINESE_PUNCTUATION",
    "COMMON_HANZI",
    "EMOJI",
    "add_politeness",
    "chinese_text",
    "english_text",
    "fold_width",
    "from_json_schema",
    "from_model",
    "is_cjk",
    "json_values",
    "mixed_text",
    "noise",
    "order_ids",
    "punctuation_variants",
    "swap_punctuation_width",
    "templated",
    "to_full_width",
    "to_half_width",
    "to_json",
]

# -- alphabets ------------------------------------------------------------------------------------
CJK_FIRST, CJK_LAST = 0x4E00, 0x9FFF  # the CJK Unified Ideographs block
COMMON_HANZI = (
    "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后"
    "小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长"
    "知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最"
    "间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市"
    "眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计"
    "订单退款货物流快递客服售后换价格优惠券支付账户密码登录手机号码地址收到发送取消申请查询帮助谢请问"
)
# Punctuation of written Chinese (full-width forms and CJK symbols).
CHINESE_PUNCTUATION = "，。？！：；、“”‘’（）《》【】…—·"
EMOJI = ("😊", "🙏", "👍")
_ZERO_WIDTH_SPACE = "\u200b"

_ENGLISH_SENTENCES = (
    "my order has not arrived yet please help me check the status of refund "
    "I want to return this item it was damaged when delivered can you tell when will "
    "package be shipped how do change delivery address cancel subscription account "
    "password reset invoice payment failed card charged twice thanks hello what is why "
    "does not work today yesterday week support agent price discount coupon code"
)
_ENGLISH_WORDS = tuple(_ENGLISH_SENTENCES.split())
_PRODUCTS = ("iPhone 15", "AirPods", "Kindle", "Switch", "MacBook Pro", "Mate 60", "Xiaomi 14", "VIP")
_ORDER_PREFIXES = ("A", "B", "SO", "JD", "TB", "DD", "PO", "RMA")


def is_cjk(char: str) -> bool:
    """Whether ``char`` is a CJK Unified Ideograph (U+4E00..U+9FFF)."""
    return len(char) == 1 and CJK_FIRST <= ord(char) <= CJK_LAST


def _check_sizes(min_size: int, max_size: int) -> None:
    if min_size < 0 or max_size < min_size:
        raise ValueError(f"need 0 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}")


# -- text -----------------------------------------------------------------------------------------
# Mostly frequent characters, sometimes any ideograph of the block (rare ones tokenise differently).
_common_hanzi = st.sampled_from(COMMON_HANZI)
_any_hanzi = st.characters(min_codepoint=CJK_FIRST, max_codepoint=CJK_LAST)
_chinese_punctuation = st.sampled_from("，。？！、：；“”（）《》…")
_digits = st.sampled_from(string.digits)


def _chinese_char(n: int) -> SearchStrategy[str]:
    if n < 16:
        return _common_hanzi
    return _any_hanzi if n == 16 else _digits if n == 19 else _chinese_punctuation


_chinese_alphabet = st.integers(0, 19).flatmap(_chinese_char)


def chinese_text(min_size: int = 1, max_size: int = 60) -> SearchStrategy[str]:
    """Chinese text: CJK Unified Ideographs (mostly common ones), Chinese punctuation and ASCII digits.

    No whitespace and no Latin letters; every character is in the CJK block, in
    :data:`CHINESE_PUNCTUATION` or a digit 0-9. Lengths are counted in characters.
    """
    _check_sizes(min_size, max_size)
    return st.text(alphabet=_chinese_alphabet, min_size=min_size, max_size=max_size)


def _fill(pieces: list[str], sep: str, min_size: int, max_size: int, filler: str) -> str:
    text = ""
    for piece in pieces:
        candidate = f"{text}{sep}{piece}" if text else piece
        if len(candidate) > max_size:
            break
        text = candidate
    while len(text) < min_size:
        text += filler[: min_size - len(text)] if len(text) + len(filler) > min_size else filler
    return text


def english_text(min_size: int = 1, max_size: int = 80) -> SearchStrategy[str]:
    """English sentences from a customer-support vocabulary (plus arbitrary ASCII words), single spaces.

    Only printable ASCII; no leading, trailing or doubled spaces.
    """
    _check_sizes(min_size, max_size)
    word = st.one_of(
        st.sampled_from(_ENGLISH_WORDS),
        st.sampled_from(_ENGLISH_WORDS),
        st.sampled_from(_ENGLISH_WORDS),
        st.text(string.ascii_letters, min_size=1, max_size=10),
        st.integers(0, 9999).map(str),
    )

    @st.composite
    def build(draw: st.DrawFn) -> str:
        target = draw(st.integers(max(min_size, 1), max(max_size, 1))) if max_size else 0
        text = ""
        while len(text) < target:
            word_ = draw(word)
            if text:
                if max_size - len(text) < 2:  # no room for a space and a word: lengthen the last word
                    text += word_[0]
                    continue
                text += " "
            text += word_[: max_size - len(text)]
        text = text[:1].upper() + text[1:]
        end = draw(st.sampled_from(("", ".", "?", "!")))
        return text + end if text and len(text) < max_size else text

    return build()


def order_ids() -> SearchStrategy[str]:
    """Order numbers like ``A1234``, ``SO20240518001`` or ``JD8812345``: an upper-case prefix and digits."""
    return st.builds(
        lambda prefix, digits: prefix + digits,
        st.sampled_from(_ORDER_PREFIXES),
        st.text(string.digits, min_size=4, max_size=12),
    )


def mixed_text(min_size: int = 1, max_size: int = 60) -> SearchStrategy[str]:
    """Chinese with embedded English words, product names, numbers and order ids (``我的订单 A1234 还没到``).

    Always starts with a Chinese segment; Latin tokens are separated by single spaces, as people type them.
    """
    _check_sizes(min_size, max_size)
    token = st.one_of(
        order_ids(),
        st.sampled_from(_ENGLISH_WORDS),
        st.sampled_from(_PRODUCTS),
        st.integers(1, 99999).map(str),
    )

    @st.composite
    def build(draw: st.DrawFn) -> str:
        pieces = [draw(chinese_text(1, 12))]
        for _ in range(draw(st.integers(1, 4))):
            pieces.append(draw(token))
            pieces.append(draw(chinese_text(1, 12)))
        text = _fill(pieces, " ", 0, max_size, "")
        if not text:  # max_size smaller than the first Chinese segment
            text = pieces[0][:max_size]
        return _fill([text], "", min_size, max_size, "的")

    return build()


# -- width ----------------------------------------------------------------------------------------
def to_full_width(text: str, *, space: bool = True) -> str:
    """Printable ASCII to its full-width form (``A`` → ``Ａ``, ``,`` → ``，``).

    With ``space``, a space becomes U+3000. Only ASCII changes; NFKC undoes exactly this transformation.
    """
    out = []
    for char in text:
        code = ord(char)
        if 0x21 <= code <= 0x7E:
            out.append(chr(code + FULL_WIDTH_OFFSET))
        elif char == " " and space:
            out.append(IDEOGRAPHIC_SPACE)
        else:
            out.append(char)
    return "".join(out)


# The Chinese marks the width variants switch with their ASCII counterparts (a subset of the package's
# folding table: the ones an answer written in half width would really replace).
_CJK_TO_ASCII = {mark: CJK_PUNCTUATION[mark] for mark in "。“”‘’【】"}


# Half-width punctuation that :func:`swap_punctuation_width` widens next to Chinese text.
# Each its full-width form, but the full stop, whose Chinese form is 。 rather than ．.
_SWAP_TO_FULL = {char: "。" if char == "." else to_full_width(char) for char in ",.?!:;()"}
_SWAP_TO_HALF = {
    **{to_full_width(c): c for c in ",.?!:;()[]\"'"},
    **_CJK_TO_ASCII,
}


def swap_punctuation_width(text: str) -> str:
    """Swap the width of punctuation, deterministically (a metamorphic relation for Chinese prompts).

    Full-width and CJK punctuation (``，。？！：；（）“”‘’【】``) becomes ASCII; ASCII punctuation
    ``,.?!:;()`` becomes full-width only when a neighbour is a Chinese character, so decimals (``3.5``),
    thousands (``1,000``), URLs and English sentences keep their meaning.
    """
    out = []
    for index, char in enumerate(text):
        if char in _SWAP_TO_HALF:
            out.append(_SWAP_TO_HALF[char])
        elif char in _SWAP_TO_FULL and (
            (index > 0 and is_cjk(text[index - 1])) or (index + 1 < len(text) and is_cjk(text[index + 1]))
        ):
            out.append(_SWAP_TO_FULL[char])
        else:
            out.append(char)
    return "".join(out)


def _alternatives(char: str, compatible_only: bool) -> tuple[str, ...]:
    """Spellings of one character that read the same (the character itself first)."""
    base = to_half_width(char)
    if not compatible_only:
        base = _CJK_TO_ASCII.get(base, base)
    if not (base == " " or 0x21 <= ord(base) <= 0x7E):
        return (char,)
    forms = [base, to_full_width(base)]
    if not compatible_only:
        forms.extend(cjk for cjk, ascii_char in _CJK_TO_ASCII.items() if ascii_char == base)
    return tuple(dict.fromkeys([char, *forms]))


def _is_cjk_form(char: str) -> bool:
    return char in _CJK_TO_ASCII


def _is_full_width(char: str) -> bool:
    return char != to_half_width(char)


def punctuation_variants(text: str, *, compatible_only: bool = False) -> SearchStrategy[str]:
    """Variants of ``text`` that switch punctuation, letters and digits between full and half width.

    ``，``/``,`` ``。``/``.`` ``？``/``?`` ``！``/``!`` ``：``/``:`` ``（）``/``()`` ``“”``/``""``
    ``【】``/``[]``, ``Ａ``/``A``, ``１``/``1``, U+3000/space. Whole-text conversions and
    character-by-character mixtures are both drawn; the first (simplest) variant is ``text`` itself.
    Every variant has ``fold_width(variant) == fold_width(text)``; with ``compatible_only`` only
    NFKC-equivalent forms are used, so the NFKC forms of variant and text are equal as well.
    """
    options = [_alternatives(char, compatible_only) for char in text]

    @st.composite
    def build(draw: st.DrawFn) -> str:
        mode = draw(st.sampled_from(("original", "half", "full", "mixed")))
        if mode == "original":
            return text
        if mode == "half":
            return "".join(_pick(alts, str.isascii) for alts in options)
        if mode == "full":  # Chinese conventions first (。“”), else the U+FFxx form
            return "".join(_pick(alts, _is_cjk_form, _is_full_width) for alts in options)
        return "".join(
            alts[draw(st.integers(0, len(alts) - 1))] if len(alts) > 1 else alts[0] for alts in options
        )

    return build().map(_pair_quotes(text))


def _pick(alternatives: tuple[str, ...], *preferences: Callable[[str], bool]) -> str:
    for wanted in preferences:
        for alternative in alternatives:
            if wanted(alternative):
                return alternative
    return alternatives[0]


def _pair_quotes(original: str) -> Callable[[str], str]:
    # A variant may pick “ where the writer meant ” and the reverse; keep curly quotes paired in the order
    # they appear, which still folds to the same text.
    def pair(variant: str) -> str:
        if variant == original:
            return variant
        out, double, single = [], 0, 0
        for char in variant:
            if char in "“”":
                char = "“" if double % 2 == 0 else "”"
                double += 1
            elif char in "‘’":
                char = "‘" if single % 2 == 0 else "’"
                single += 1
            out.append(char)
        return "".join(out)

    return pair


def noise(text: str, *, emoji: bool = True, zero_width: bool = False) -> SearchStrategy[str]:
    """Variants of ``text`` with noise a user adds without changing the meaning.

    Leading and trailing whitespace (spaces, tab, newline, U+3000), doubled spaces, and with ``emoji`` one
    of 😊🙏👍 at the start or the end. With ``zero_width``, zero-width spaces (U+200B) at the ends and after
    existing whitespace, never inside a word, number or order id. The first (simplest) variant is ``text``.
    Removing the emoji and U+200B and collapsing whitespace gives back ``" ".join(text.split())``.
    """
    blanks = st.sampled_from(("", " ", "  ", "\n", "\t", IDEOGRAPHIC_SPACE, " \n"))

    @st.composite
    def build(draw: st.DrawFn) -> str:
        body = text
        if " " in body and draw(st.booleans()):
            body = body.replace(" ", "  ")
        if zero_width and draw(st.booleans()):
            body = re.sub(r"(\s+)", lambda m: m.group(1) + _ZERO_WIDTH_SPACE, body)
            body = _ZERO_WIDTH_SPACE + body + _ZERO_WIDTH_SPACE
        if emoji:
            where = draw(st.sampled_from(("none", "end", "start")))
            if where != "none":
                symbol = draw(st.sampled_from(EMOJI)) * draw(st.integers(1, 2))
                gap = draw(st.sampled_from(("", " ")))
                body = f"{body}{gap}{symbol}" if where == "end" else f"{symbol}{gap}{body}"
        return draw(blanks) + body + draw(blanks)

    return build()


def add_politeness(text: str) -> str:
    """Wrap a prompt in polite phrases, deterministically and idempotently (a metamorphic relation).

    Chinese text (any CJK character) gets ``您好，`` before and ``，谢谢！`` after (``谢谢！`` after a
    sentence-final ``。？！.?!``); other text gets ``Hello, `` and `` Thank you!``. Surrounding whitespace is
    dropped; text that already starts or ends that way is not wrapped twice.
    """
    body = text.strip()
    if not body:
        return "您好，谢谢！"
    chinese = any(is_cjk(char) for char in body)
    greeting, thanks = ("您好，", "谢谢！") if chinese else ("Hello, ", "Thank you!")
    if not body.startswith(greeting.rstrip()):
        body = greeting + body
    if not body.endswith(thanks):
        final = body[-1] in "。？！.?!，,；;"  # already punctuated: no second separator
        separator = ("" if final else "，") if chinese else (" " if final else ". ")
        body = body + separator + thanks
    return body


# -- templates ------------------------------------------------------------------------------------
def templated(template: str, /, **fields: SearchStrategy[str]) -> SearchStrategy[str]:
    """Fill the ``{name}`` slots of ``template`` from strategies (``{{`` and ``}}`` are literal braces).

    ``templated("订单 {order} 已经 {days} 天没发货", order=order_ids(), days=st.integers(1, 30).map(str))``.
    Every slot needs a strategy and every strategy a slot; slot names are identifiers and a slot may
    appear more than once (it gets the same value each time).
    """
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"template slot {{{name}}} must be a plain name, like {{order}}")
        names.append(name)
    missing = sorted(set(names) - set(fields))
    unused = sorted(set(fields) - set(names))
    if missing or unused:
        raise ValueError(f"template slots without a strategy: {missing}; strategies without a slot: {unused}")
    return st.fixed_dictionaries(fields).map(lambda values: template.format_map(values))


# -- JSON -----------------------------------------------------------------------------------------
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


def json_values(max_leaves: int = 10) -> SearchStrategy[Any]:
    """Arbitrary JSON values (``None``, bools, ints, finite floats, strings, lists, string-keyed dicts)."""
    return st.recursive(
        _json_scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=max_leaves,
    )


def from_json_schema(schema: Mapping[str, Any] | bool) -> SearchStrategy[Any]:
    """JSON values that validate against ``schema`` (JSON Schema, drafts 4 to 2020-12, as pydantic writes).

    Generation understands ``type``, ``enum``, ``const``, string lengths, ``pattern`` and common
    ``format`` s, numeric bounds and ``multipleOf``, ``items``/``prefixItems`` and list sizes,
    ``uniqueItems``, ``properties``/``required``/``additionalProperties``, local ``$ref`` (``$defs``,
    ``definitions``, recursion included), ``allOf``, ``anyOf``, ``oneOf`` and ``nullable``. Whatever it
    does not (``not``, ``if``, ``dependentRequired`` ...) is enforced by validating each value with
    ``jsonschema`` and rejecting the invalid ones, so every value drawn is valid. An invalid schema raises
    ``jsonschema.SchemaError`` here, not during the test.
    """
    validators: Any = importlib.import_module("jsonschema.validators")  # no type stubs installed
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    builder = _SchemaStrategies(schema)
    return builder.build(schema).filter(validator.is_valid)


# Keywords that describe a value without constraining it; a $ref beside them stays a (lazy) reference.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
        "$schema",
    }
)


# Not hypothesis-jsonschema (measured: 0.23.1, its latest, with hypothesis 6.170.17): every object schema
# with properties fails ("AttributeError: 'many' object has no attribute 'more'", it drives hypothesis'
# private conjecture utils), a recursive $ref (pydantic writes one for a self-referencing model) raises
# HypothesisRefResolutionError, and 2020-12 prefixItems yield invalid values (None for an integer item).
class _SchemaStrategies:
    """Turns one (sub)schema into a strategy; refs resolve against the root document."""

    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        self.root = root
        self.refs: dict[str, SearchStrategy[Any]] = {}

    def build(self, schema: Any) -> SearchStrategy[Any]:
        if isinstance(schema, Mapping):
            schema = {key: value for key, value in schema.items() if key not in _ANNOTATIONS}
        if schema is True or schema == {}:
            return json_values()
        if schema is False:
            return st.nothing()
        if not isinstance(schema, Mapping):
            raise TypeError(f"not a JSON schema: {schema!r}")
        if "$ref" in schema:
            target = self.ref(schema["$ref"])
            rest = {key: value for key, value in schema.items() if key != "$ref"}
            return target if not rest else self.build(_merge(self.resolve(schema["$ref"]), rest))
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(list(schema["enum"]))
        if "allOf" in schema:
            merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolve(part["$ref"]) if "$ref" in part else part)
            return self.build(merged)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {name: value for name, value in schema.items() if name != key}
                return st.one_of([self.build(_merge(rest, branch)) for branch in schema[key]])
        types = schema.get("type")
        if types is None:
            types = _implied_types(schema)
        if isinstance(types, str):
            types = [types]
        if schema.get("nullable") and "null" not in types:
            types = [*types, "null"]
        return st.one_of([self.of_type(kind, schema) for kind in types])

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def ref(self, ref: str) -> SearchStrategy[Any]:
        if ref not in self.refs:
            self.refs[ref] = st.deferred(lambda: self.build(self.resolve(ref)))
        return self.refs[ref]

    def of_type(self, kind: str, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind in ("integer", "number"):
            return _numbers(kind, schema)
        if kind == "string":
            return _strings(schema)
        if kind == "array":
            return self.array(schema)
        if kind == "object":
            return self.object(schema)
        raise ValueError(f"unknown JSON schema type {kind!r}")

    def array(self, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", True)
        if isinstance(items, list):  # drafts before 2020-12: a tuple of schemas
            prefix, items = items, schema.get("additionalItems", True)
        min_items = int(schema.get("minItems", 0))
        max_items = schema.get("maxItems")
        if max_items is None:
            max_items = max(min_items, len(prefix)) + 3
        rest_min = max(0, min_items - len(prefix))
        rest_max = max(0, int(max_items) - len(prefix))
        unique = bool(schema.get("uniqueItems"))
        rest = st.lists(
            self.build(items),
            min_size=rest_min,
            max_size=rest_max,
            unique_by=_canonical if unique else None,
        )
        if not prefix:
            return rest
        return st.tuples(*(self.build(part) for part in prefix), rest).map(
            lambda drawn: [*drawn[:-1], *drawn[-1]]
        )

    def object(self, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        fixed = {name: self.build(properties.get(name, True)) for name in required}
        optional = {name: self.build(sub) for name, sub in properties.items() if name not in fixed}
        base = st.fixed_dictionaries(fixed, optional=optional)
        additional = schema.get("additionalProperties", True)
        min_properties = int(schema.get("minProperties", 0))
        if isinstance(additional, Mapping) or min_properties > len(fixed):
            extra_schema = additional if isinstance(additional, Mapping) else {}
            names = st.text(min_size=1, max_size=12).filter(lambda name: name not in properties)
            extras = st.dictionaries(
                names, self.build(extra_schema), min_size=0, max_size=max(3, min_properties)
            )

            def combine(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
                return {**parts[1], **parts[0]}

            return st.tuples(base, extras).map(combine)
        return base


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for key, value in b.items():
        if key == "properties" and key in merged:
            merged[key] = {**merged[key], **value}
        elif key == "required" and key in merged:
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        else:
            merged[key] = value
    return merged


_TYPE_HINTS = {
    "string": ("minLength", "maxLength", "pattern", "format"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "array": ("items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"),
    "object": ("properties", "required", "additionalProperties", "minProperties", "patternProperties"),
}


def _implied_types(schema: Mapping[str, Any]) -> list[str]:
    implied = [kind for kind, keys in _TYPE_HINTS.items() if any(key in schema for key in keys)]
    return implied or ["null", "boolean", "integer", "number", "string", "array", "object"]


# This name and _canonical_json's are in the strategies' repr, which the cassette's fingerprint of a recorded
# @given test hashes: merging or renaming them would make every such cassette ask to be recorded again.
def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _numbers(kind: str, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    exclude_low = exclude_high = False
    if isinstance(exclusive_low, bool):  # draft 4
        exclude_low = exclusive_low
    elif exclusive_low is not None:
        low, exclude_low = exclusive_low if low is None else max(low, exclusive_low), True
    if isinstance(exclusive_high, bool):
        exclude_high = exclusive_high
    elif exclusive_high is not None:
        high, exclude_high = exclusive_high if high is None else min(high, exclusive_high), True
    multiple = schema.get("multipleOf")
    if kind == "integer" or multiple is not None:
        step = multiple if multiple is not None else 1
        lo = None if low is None else math.ceil(low / step) + (1 if exclude_low and low % step == 0 else 0)
        hi = (
            None
            if high is None
            else math.floor(high / step) - (1 if exclude_high and high % step == 0 else 0)
        )
        factors = st.integers(lo, hi) if lo is not None or hi is not None else st.integers(-(2**31), 2**31)
        if kind == "integer" and isinstance(step, int):
            return factors.map(lambda k: k * step)
        return factors.map(lambda k: k * step).map(lambda v: int(v) if kind == "integer" else v)
    return st.floats(
        min_value=low,
        max_value=high,
        exclude_min=exclude_low and low is not None,
        exclude_max=exclude_high and high is not None,
        allow_nan=False,
        allow_infinity=False,
    )


_FORMATS: dict[str, SearchStrategy[str]] = {
    "date": st.dates().map(lambda d: d.isoformat()),
    "time": st.times().map(lambda t: t.isoformat() + "Z"),
    "date-time": st.datetimes(timezones=st.just(_dt.timezone.utc)).map(lambda d: d.isoformat()),
    "email": st.from_regex(r"[a-z][a-z0-9._]{0,10}@[a-z]{2,10}\.(com|cn|org)", fullmatch=True),
    "uuid": st.uuids().map(str),
    "uri": st.from_regex(r"https://[a-z]{3,10}\.(com|cn)/[a-z0-9/]{0,16}", fullmatch=True),
    "ipv4": st.ip_addresses(v=4).map(str),
    "ipv6": st.ip_addresses(v=6).map(str),
}
_FORMATS["hostname"] = st.from_regex(r"[a-z]{3,10}\.(com|cn|org)", fullmatch=True)


def _strings(schema: Mapping[str, Any]) -> SearchStrategy[str]:
    min_length = int(schema.get("minLength", 0))
    max_length = schema.get("maxLength")
    max_length = int(max_length) if max_length is not None else max(min_length, 30)

    def fits(text: str) -> bool:
        return min_length <= len(text) <= max_length

    if "pattern" in schema:
        return st.from_regex(schema["pattern"]).filter(fits)
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]].filter(fits)
    return st.one_of(
        st.text(min_size=min_length, max_size=max_length),
        chinese_text(min_length, max_length),
        english_text(max(1, min_length), max_length) if max_length >= 1 else st.just(""),
    )


# -- models ---------------------------------------------------------------------------------------
def from_model(model: Any) -> SearchStrategy[Any]:
    """JSON payloads (dicts of JSON values) for a pydantic model class, a dataclass or a ``TypedDict``.

    Pydantic models go through ``model.model_json_schema()`` and :func:`from_json_schema`, and each payload
    is also accepted by ``model.model_validate``. Dataclasses and ``TypedDict`` are built field by field
    (``st.builds`` / ``st.fixed_dictionaries``, with JSON-friendly strategies for ``float`` (finite),
    ``str``, containers, ``Optional``, ``Literal``, enums and nested models, ``st.from_type`` for the rest)
    and converted to JSON: dataclasses to dicts, tuples and sets to lists, enums to their values, dates and
    times to ISO strings, ``UUID``/``Decimal``/paths to strings, bytes to base64.
    """
    validate = getattr(model, "model_validate", None)
    if isinstance(model, type) and callable(getattr(model, "model_json_schema", None)) and validate:

        def accepted(payload: Any) -> bool:
            try:
                validate(payload)
            except ValueError:  # pydantic.ValidationError is a ValueError
                return False
            return True

        schema: Mapping[str, Any] = getattr(model, "model_json_schema")()  # noqa: B009 - any pydantic
        return from_json_schema(schema).filter(accepted)
    if (isinstance(model, type) and dataclasses.is_dataclass(model)) or is_typeddict(model):
        return _for_type(model).map(to_json)
    raise TypeError(f"from_model() takes a pydantic model class, a dataclass or a TypedDict, not {model!r}")


def _hints(tp: Any) -> dict[str, Any]:
    module = sys.modules.get(getattr(tp, "__module__", ""), None)
    # typing_extensions' version also strips its own NotRequired/Required on Python 3.10, where typing's
    # does not know them; typing_extensions is there whenever a TypedDict uses them.
    get_hints = getattr(sys.modules.get("typing_extensions"), "get_type_hints", typing.get_type_hints)
    hints: dict[str, Any] = get_hints(tp, globalns=vars(module) if module else None, include_extras=False)
    return hints


def _for_type(tp: Any) -> SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return json_values(4)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is str:
        return st.one_of(st.text(max_size=20), chinese_text(0, 20))
    if tp is bool or tp is int or tp is type(None):
        return st.from_type(tp)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([_for_type(arg) for arg in args])
    if origin in (
        list,
        set,
        frozenset,
        tuple,
        cabc.Sequence,
        cabc.MutableSequence,
        cabc.Set,
        cabc.MutableSet,
    ):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return st.tuples(*(_for_type(arg) for arg in args))
        item = _for_type(args[0]) if args else json_values(4)
        if origin in (set, frozenset, cabc.Set, cabc.MutableSet):
            return st.lists(item, max_size=4, unique_by=_canonical_json)
        return st.lists(item, max_size=4)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        key = _for_type(args[0]) if args else st.text(max_size=10)
        return st.dictionaries(key, _for_type(args[1]) if args else json_values(4), max_size=4)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = {
            field.name: _for_type(hints.get(field.name, Any))
            for field in dataclasses.fields(tp)
            if field.init
        }
        return st.builds(tp, **fields)
    if is_typeddict(tp):
        hints = _hints(tp)
        required: frozenset[str] = getattr(tp, "__required_keys__", frozenset())
        return st.fixed_dictionaries(
            {name: _for_type(hint) for name, hint in hints.items() if name in required},
            optional={name: _for_type(hint) for name, hint in hints.items() if name not in required},
        )
    if isinstance(tp, type) and callable(getattr(tp, "model_json_schema", None)):
        return from_model(tp)
    return st.from_type(tp)


def _canonical_json(value: Any) -> str:
    return json.dumps(to_json(value), sort_keys=True)
