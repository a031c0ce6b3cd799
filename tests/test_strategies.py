"""The public strategies generate what they promise."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
import string
import unicodedata
from typing import Any, Literal, TypedDict

import jsonschema  # type: ignore[import-untyped]
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typing_extensions import NotRequired

from pytest_llmport.strategies import (
    CHINESE_PUNCTUATION,
    EMOJI,
    add_politeness,
    chinese_text,
    english_text,
    fold_width,
    from_json_schema,
    from_model,
    is_cjk,
    mixed_text,
    noise,
    order_ids,
    punctuation_variants,
    swap_punctuation_width,
    templated,
    to_full_width,
    to_half_width,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ORDER_ID = re.compile(r"[A-Z]{1,3}[0-9]{4,12}")
texts = st.one_of(chinese_text(), english_text(), mixed_text())


@FAST
@given(st.data(), st.integers(0, 20), st.integers(0, 60))
def test_chinese_text_alphabet_and_size(data: st.DataObject, low: int, extra: int) -> None:
    text = data.draw(chinese_text(low, low + extra))
    assert low <= len(text) <= low + extra
    for char in text:
        assert is_cjk(char) or char in CHINESE_PUNCTUATION or char in string.digits, repr(char)


@FAST
@given(st.data(), st.integers(1, 20), st.integers(0, 80))
def test_english_text_is_single_spaced_ascii(data: st.DataObject, low: int, extra: int) -> None:
    text = data.draw(english_text(low, low + extra))
    assert low <= len(text) <= low + extra
    assert text.isascii() and text.isprintable()
    assert text == text.strip() and "  " not in text


@FAST
@given(mixed_text(1, 80))
def test_mixed_text_is_chinese_with_latin_tokens(text: str) -> None:
    assert 1 <= len(text) <= 80
    assert is_cjk(text[0]) or text[0] in CHINESE_PUNCTUATION or text[0].isdigit()
    assert text == text.strip() and "  " not in text


def test_mixed_text_embeds_tokens_when_there_is_room() -> None:
    found = []

    @settings(max_examples=30, derandomize=True, database=None)
    @given(mixed_text(30, 80))
    def collect(text: str) -> None:
        found.append(bool(re.search(r"[A-Za-z0-9]", text)) and any(is_cjk(c) for c in text))

    collect()
    assert sum(found) >= len(found) // 2


@FAST
@given(order_ids())
def test_order_ids(order: str) -> None:
    assert ORDER_ID.fullmatch(order)


# -- width ----------------------------------------------------------------------------------------
def test_width_helpers() -> None:
    assert to_full_width("A1, ok?") == "Ａ１，\u3000ｏｋ？"
    assert to_full_width("a b", space=False) == "ａ ｂ"
    assert to_half_width("Ａ１，\u3000ｏｋ？。") == "A1, ok?。"
    assert fold_width("“你好”。【Ａ】") == '"你好".[A]'
    assert swap_punctuation_width("你好,请问3.5元?") == "你好，请问3.5元？"
    assert swap_punctuation_width("你好，请问（A）“x”。") == '你好,请问(A)"x".'
    assert swap_punctuation_width("Hello, 1,000.5 ok?") == "Hello, 1,000.5 ok?"


@FAST
@given(st.text())
def test_width_round_trip(text: str) -> None:
    assert to_half_width(to_full_width(text)) == to_half_width(text)
    assert unicodedata.normalize("NFKC", to_full_width(text)) == unicodedata.normalize("NFKC", text)


@FAST
@given(st.text(alphabet=st.characters(max_codepoint=0x7E, min_codepoint=0x20)))
def test_full_width_is_undone_exactly_for_ascii(text: str) -> None:
    assert to_half_width(to_full_width(text)) == text


@FAST
@given(texts.flatmap(lambda text: st.tuples(st.just(text), punctuation_variants(text))))
def test_punctuation_variants_fold_back(pair: tuple[str, str]) -> None:
    text, variant = pair
    assert len(variant) == len(text)
    assert fold_width(variant) == fold_width(text)


@FAST
@given(
    st.text().flatmap(lambda text: st.tuples(st.just(text), punctuation_variants(text, compatible_only=True)))
)
def test_compatible_variants_are_nfkc_equal(pair: tuple[str, str]) -> None:
    text, variant = pair
    assert unicodedata.normalize("NFKC", variant) == unicodedata.normalize("NFKC", text)


def test_punctuation_variants_cover_both_widths() -> None:
    text = "你好，请问 A1234 在哪？（急）"
    seen: set[str] = set()

    @settings(max_examples=40, derandomize=True, database=None)
    @given(punctuation_variants(text))
    def collect(variant: str) -> None:
        seen.add(variant)

    collect()
    assert text in seen
    assert "你好,请问 A1234 在哪?(急)" in seen
    assert "你好，请问\u3000Ａ１２３４\u3000在哪？（急）" in seen


def _squash(text: str) -> str:
    for symbol in EMOJI:
        text = text.replace(symbol, " ")
    return " ".join(text.replace("\u200b", "").split())


@FAST
@given(texts.flatmap(lambda text: st.tuples(st.just(text), noise(text, zero_width=True))))
def test_noise_keeps_the_words(pair: tuple[str, str]) -> None:
    text, noisy = pair
    assert _squash(noisy) == " ".join(text.split())
    # Order ids and words are never cut by an inserted zero-width space.
    for token in re.findall(r"[A-Za-z0-9]+", text):
        assert token in noisy


@FAST
@given(texts)
def test_metamorphic_helpers(text: str) -> None:
    polite = add_politeness(text)
    assert add_politeness(polite) == polite
    assert text.strip() in polite
    assert polite.startswith(("您好，", "Hello, "))
    assert polite.endswith(("谢谢！", "Thank you!"))
    assert swap_punctuation_width(text) == swap_punctuation_width(text)
    assert fold_width(swap_punctuation_width(text)) == fold_width(text)


def test_add_politeness_examples() -> None:
    assert add_politeness("退款怎么办") == "您好，退款怎么办，谢谢！"
    assert add_politeness(" 退款怎么办？ ") == "您好，退款怎么办？谢谢！"
    assert add_politeness("where is my order?") == "Hello, where is my order? Thank you!"
    assert add_politeness("") == "您好，谢谢！"


# -- templates ------------------------------------------------------------------------------------
TEMPLATE = "我的订单 {order} 已经 {days} 天没发货，{order} 呢？{{原样}}"


@FAST
@given(templated(TEMPLATE, order=order_ids(), days=st.integers(1, 30).map(str)))
def test_templated_fills_every_slot(prompt: str) -> None:
    match = re.fullmatch(
        r"我的订单 (?P<order>\S+) 已经 (?P<days>\d+) 天没发货，(?P=order) 呢？\{原样\}", prompt
    )
    assert match, prompt
    assert ORDER_ID.fullmatch(match["order"])
    assert 1 <= int(match["days"]) <= 30


def test_templated_rejects_mismatched_fields() -> None:
    with pytest.raises(ValueError, match=r"without a strategy: \['days'\]"):
        templated("{order} {days}", order=order_ids())
    with pytest.raises(ValueError, match=r"without a slot: \['extra'\]"):
        templated("{order}", order=order_ids(), extra=st.just("x"))
    with pytest.raises(ValueError, match="plain name"):
        templated("{order!r}", order=order_ids())
    # A slot may be called "template": the template itself is positional-only.
    assert _examples(templated("{template}", template=st.just("x"))) == ["x"]


# -- JSON -----------------------------------------------------------------------------------------
TOOL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^[A-Z]{1,3}[0-9]{4,10}$"},
        "reason": {"enum": ["damaged", "late", "wrong item"]},
        "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 99, "multipleOf": 1},
        "note": {"type": ["string", "null"], "maxLength": 40},
        "tags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "uniqueItems": True,
            "maxItems": 3,
        },
        "address": {"$ref": "#/$defs/Address"},
        "contact": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
        "when": {"type": "string", "format": "date-time"},
    },
    "required": ["order_id", "reason", "amount"],
    "additionalProperties": False,
    "$defs": {
        "Address": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 1}, "zip": {"type": "string"}},
            "required": ["city"],
        }
    },
}
TREE_SCHEMA: dict[str, Any] = {
    "$ref": "#/definitions/node",
    "definitions": {
        "node": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/definitions/node"}, "maxItems": 2},
            },
            "required": ["label"],
        }
    },
}


@pytest.mark.parametrize(
    "schema",
    [
        TOOL_SCHEMA,
        TREE_SCHEMA,
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "minItems": 2},
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "integer",
            "exclusiveMinimum": True,
            "minimum": 0,
            "maximum": 5,
        },
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"minProperties": 2},
            ]
        },
        {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "integer", "minimum": 10}]},
        {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1},
        {"type": "number", "multipleOf": 0.5, "minimum": -3, "maximum": 3},
        True,
    ],
    ids=["tool", "tree", "tuple", "draft4", "allOf", "oneOf", "additional", "multipleOf", "true"],
)
def test_from_json_schema_values_validate(schema: Any) -> None:
    validator = jsonschema.validators.validator_for(schema)(schema)

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(from_json_schema(schema))
    def check(value: Any) -> None:
        validator.validate(value)
        assert json.loads(json.dumps(value, allow_nan=False)) == value

    check()


def test_from_json_schema_rejects_an_invalid_schema_early() -> None:
    with pytest.raises(jsonschema.SchemaError):
        from_json_schema({"type": "strnig"})


class Reason(enum.Enum):
    DAMAGED = "damaged"
    LATE = "late"


class Address(pydantic.BaseModel):
    city: str = pydantic.Field(min_length=1)
    zip: str | None = None


class Refund(pydantic.BaseModel):
    order_id: str = pydantic.Field(pattern=r"^[A-Z]{1,3}[0-9]{4,10}$")
    amount: float = pydantic.Field(gt=0)
    reason: Reason
    address: Address
    previous: Refund | None = None
    tags: list[str] = []


@dataclasses.dataclass
class Item:
    name: str
    price: float
    kind: Literal["book", "food"]
    labels: tuple[str, ...] = ()


@dataclasses.dataclass
class Cart:
    items: list[Item]
    reason: Reason
    coupon: str | None = None
    counts: dict[str, int] = dataclasses.field(default_factory=dict)


class Message(TypedDict):
    role: Literal["user", "assistant"]
    content: str
    name: NotRequired[str]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(from_model(Refund))
def test_from_model_pydantic(payload: Any) -> None:
    assert json.loads(json.dumps(payload)) == payload
    Refund.model_validate(payload)


@FAST
@given(from_model(Cart))
def test_from_model_dataclass(payload: Any) -> None:
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    assert payload["reason"] in ("damaged", "late")
    assert all(
        item["kind"] in ("book", "food") and isinstance(item["labels"], list) for item in payload["items"]
    )
    pydantic.TypeAdapter(Cart).validate_python(payload)


@FAST
@given(from_model(Message))
def test_from_model_typed_dict(payload: Any) -> None:
    assert json.loads(json.dumps(payload)) == payload
    assert set(payload) <= {"role", "content", "name"} and {"role", "content"} <= set(payload)


def test_from_model_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="pydantic model class, a dataclass or a TypedDict"):
        from_model(int)


# -- determinism ----------------------------------------------------------------------------------
def _examples(strategy: st.SearchStrategy[Any]) -> list[Any]:
    out: list[Any] = []

    @settings(max_examples=15, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: mixed_text(),
        lambda: punctuation_variants("你好，请问 A1234？"),
        lambda: noise("你好 世界", zero_width=True),
        lambda: templated("订单 {order}", order=order_ids()),
        lambda: from_json_schema(TOOL_SCHEMA),
        lambda: from_model(Cart),
    ],
    ids=["mixed", "punctuation", "noise", "templated", "schema", "model"],
)
def test_derandomized_generation_repeats(make: Any) -> None:
    first = _examples(make())
    assert len(first) > 1
    assert _examples(make()) == first


# -- fingerprints -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Basket:
    items: set[str]
    note: str | None = None


class Row(TypedDict):
    n: int


@pytest.mark.parametrize(
    ("make", "digest"),
    [
        (lambda: from_model(Basket), "bd3a562607c6b02e"),
        (lambda: from_model(Row), "e604c63f88c79b9c"),
        (
            lambda: from_json_schema(
                {"type": "array", "items": {"type": "integer"}, "uniqueItems": True, "maxItems": 3}
            ),
            "516f5083aac17073",
        ),
        (lambda: punctuation_variants("你好,世界"), "e6f1041fab170074"),
        (lambda: templated("订单 {o}", o=order_ids()), "a0f4fe88e2230849"),
        (lambda: chinese_text(), "dbfae3e15b725092"),
    ],
    ids=["dataclass", "typeddict", "schema", "punctuation", "templated", "chinese"],
)
def test_a_strategys_repr_survives_refactoring(make: Any, digest: str) -> None:
    # A recorded @given test's cassette keeps a hash of its strategies' repr (properties.strategy_fingerprint),
    # which names our helper functions: renaming one makes every such cassette ask to be recorded again.
    # A deliberate change updates these digests and says so in the changelog.
    assert hashlib.sha256(repr(make()).encode()).hexdigest()[:16] == digest
