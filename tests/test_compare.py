from __future__ import annotations

import ast
import copy
import dataclasses
import datetime
import decimal
import enum
import json
import pickle
import subprocess
import sys
import types
import uuid
from pathlib import Path
from typing import Any, Literal, Optional, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmport import compare
from pytest_llmport.compare import (
    MAX_DIFF_LINES,
    Comparison,
    Extracted,
    InvalidSchemaError,
    NotSerializableError,
    SchemaError,
    StringNormalization,
    check_schema,
    compare_structures,
    ensure_jsonable,
    extract_json,
    format_comparison,
    format_path,
)

# --------------------------------------------------------------------------------------------------
# Schemas used across the tests (module level so string annotations resolve)
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Item:
    name: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Order:
    id: int
    status: Literal["open", "closed"]
    items: list[Item]
    note: Optional[str] = None  # noqa: UP045 - the typing.Optional spelling is what is under test
    meta: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Positive:
    amount: float

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError("amount must be positive")


@dataclasses.dataclass
class Flags:
    enabled: bool
    level: int | str
    pair: tuple[int, str] | None = None


@dataclasses.dataclass
class Unsupported:
    when: datetime.datetime


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Painted:
    color: Color


class _ItemDictRequired(TypedDict):
    name: str
    price: float


class ItemDict(_ItemDictRequired, total=False):
    tags: list[str]


class OrderDict(TypedDict):
    id: int
    items: list[ItemDict]


class LooseDict(TypedDict, total=False):
    a: int
    b: str


ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status", "items"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["open", "closed"]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "price"],
                "properties": {"name": {"type": "string"}, "price": {"type": "number", "minimum": 0}},
            },
        },
    },
}

GOOD_ORDER: dict[str, Any] = {
    "id": 7,
    "status": "open",
    "items": [{"name": "pen", "price": 1.5}, {"name": "ink", "price": 2}, {"name": "pad", "price": 3.0}],
}


def bad_price_order() -> dict[str, Any]:
    order = copy.deepcopy(GOOD_ORDER)
    order["items"][2]["price"] = "abc"
    return order


# --------------------------------------------------------------------------------------------------
# format_path
# --------------------------------------------------------------------------------------------------


def test_format_path_styles() -> None:
    assert format_path([]) == "$"
    assert format_path(["items", 2, "price"]) == "$.items[2].price"
    assert format_path(["分类", 0]) == "$.分类[0]"
    assert format_path(["a b", "0", "it's"]) == "$['a b']['0']['it\\'s']"


# --------------------------------------------------------------------------------------------------
# extract_json
# --------------------------------------------------------------------------------------------------


def test_strict_accepts_bare_json_with_whitespace_and_bom() -> None:
    assert extract_json('  \n{"a": [1, 2]}\n ') == Extracted({"a": [1, 2]}, True, None)
    assert extract_json('\ufeff["x"]').value == ["x"]
    assert extract_json("42").value == 42


def test_strict_rejects_fenced_json_and_hints_at_lenient() -> None:
    raw = '```json\n{"a": 1}\n```'
    with pytest.raises(SchemaError, match=r"pass lenient=True") as info:
        extract_json(raw)
    assert "code_fence" in str(info.value)


def test_strict_rejects_prose_without_hint_when_nothing_extractable() -> None:
    with pytest.raises(SchemaError) as info:
        extract_json("Sorry, I cannot help with that.")
    message = str(info.value)
    assert "expected bare JSON" in message
    assert "lenient" not in message
    assert "Sorry, I cannot" in message


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ("```\n[1, 2]\n```", [1, 2]),
        ('Here you go:\n\n```JSON\r\n{"a": {"b": "}"}}\r\n```\nAnything else?', {"a": {"b": "}"}}),
        ('```json {"a": 1}```', {"a": 1}),
        ('```json\n{"a": 1}\n', {"a": 1}),  # closing fence cut off
        ('~~~json\n{"a": 1}\n~~~', {"a": 1}),
        ('```python\nprint("x")\n```\n```json\n{"b": 2}\n```', {"b": 2}),
    ],
)
def test_lenient_code_fences(raw: str, value: Any) -> None:
    extracted = extract_json(raw, lenient=True)
    assert extracted == Extracted(value, False, "code_fence")


@pytest.mark.parametrize(
    ("raw", "value", "wrapper"),
    [
        ('根据您的描述，分类结果如下：{"分类": "物流", "标签": ["快递", "延误"]}。', None, "prose_around"),
        ('好的！\n{"answer": "是的（大概）"}', {"answer": "是的（大概）"}, "prose_before"),
        ('[{"id": 1}, {"id": 2}]\n以上是全部结果。', [{"id": 1}, {"id": 2}], "prose_after"),
        ('Result: {"text": "use {braces} and [brackets] and \\"quotes\\""} done', None, "prose_around"),
    ],
)
def test_lenient_prose(raw: str, value: Any, wrapper: str) -> None:
    extracted = extract_json(raw, lenient=True)
    assert extracted.bare is False
    assert extracted.wrapper == wrapper
    if value is not None:
        assert extracted.value == value
    else:
        assert isinstance(extracted.value, dict)


def test_lenient_chinese_prose_values() -> None:
    extracted = extract_json('结果：{“不是JSON”} 实际：{"分类": "物流"}。', lenient=True)
    assert extracted.value == {"分类": "物流"}


def test_lenient_nested_braces_inside_strings() -> None:
    raw = 'answer: {"template": "Hello {name}, see [1] }{", "n": [{"x": "]"}]}'
    assert extract_json(raw, lenient=True).value == {
        "template": "Hello {name}, see [1] }{",
        "n": [{"x": "]"}],
    }


def test_lenient_bare_json_is_reported_bare() -> None:
    assert extract_json('{"a": 1}', lenient=True) == Extracted({"a": 1}, True, None)


def test_lenient_skips_malformed_region_instead_of_returning_a_fragment() -> None:
    raw = 'draft {"a": {"b": 1}, oops} final {"ok": true}'
    assert extract_json(raw, lenient=True).value == {"ok": True}


@pytest.mark.parametrize("raw", ['Here: {"a": {"b": 1}, "c": [1, 2', '{"a": {"b": 1}, "c": "unterminated'])
def test_lenient_truncated_output_fails_instead_of_returning_a_fragment(raw: str) -> None:
    with pytest.raises(SchemaError, match=r"never closed"):
        extract_json(raw, lenient=True)


def test_lenient_stray_bracket_in_prose_does_not_hide_later_json() -> None:
    assert extract_json('Oops :{ here it is {"a": 1}', lenient=True).value == {"a": 1}
    assert extract_json('{"a": {"b": 1}, oops {"c": 2}', lenient=True).value == {"c": 2}


def test_lenient_skips_think_blocks() -> None:
    raw = '<think>Maybe {"label": "draft"} works.</think>\n{"label": "final"}'
    extracted = extract_json(raw, lenient=True)
    assert extracted.value == {"label": "final"}
    assert extracted.wrapper == "prose_before"


def test_lenient_json_holding_markdown_is_not_mistaken_for_a_fence() -> None:
    inner = {"answer": "Run:\n```json\n{}\n```"}
    raw = "结果：" + json.dumps(inner, ensure_ascii=False)
    assert extract_json(raw, lenient=True).value == inner


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("no json here", "no JSON object or array found"),
        ('```json\n{"a": 1,}\n```', "code fence (json) was found but its content is not valid JSON"),
        ("", "no JSON object or array found"),
    ],
)
def test_lenient_invalid_json(raw: str, fragment: str) -> None:
    with pytest.raises(SchemaError, match=r".") as info:
        extract_json(raw, lenient=True)
    assert fragment in str(info.value)


def test_nan_is_not_json() -> None:
    with pytest.raises(SchemaError):
        extract_json('{"a": NaN}')
    with pytest.raises(SchemaError):
        extract_json('x {"a": Infinity}', lenient=True)


def test_extract_json_rejects_non_str() -> None:
    with pytest.raises(TypeError, match=r"got dict"):
        extract_json({"a": 1})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# check_schema: JSON Schema
# --------------------------------------------------------------------------------------------------


def test_json_schema_passes() -> None:
    result = check_schema(GOOD_ORDER, ORDER_SCHEMA)
    assert result.value == GOOD_ORDER
    assert (result.bare, result.wrapper, result.schema_kind) == (True, None, "json_schema")


def test_json_schema_failure_lists_each_path() -> None:
    bad = bad_price_order()
    bad["status"] = "pending"
    bad["extra"] = True
    del bad["id"]
    with pytest.raises(SchemaError) as info:
        check_schema(bad, ORDER_SCHEMA)
    message = str(info.value)
    assert message.startswith("value does not match the JSON Schema (4 errors):")
    assert "$.items[2].price: got 'abc'; expected type 'number'" in message
    assert "$.status: got 'pending'; expected one of ['open', 'closed']" in message
    assert "$.id: missing; required by the schema" in message
    assert "$.extra: unexpected key; the schema forbids additional properties" in message
    assert len(info.value.errors) == 4


def test_json_schema_from_raw_text_lenient() -> None:
    raw = "好的，结果如下：\n```json\n" + json.dumps(GOOD_ORDER) + "\n```"
    result = check_schema(raw, ORDER_SCHEMA, lenient=True)
    assert result.value == GOOD_ORDER
    assert (result.bare, result.wrapper) == (False, "code_fence")
    with pytest.raises(SchemaError, match=r"expected bare JSON"):
        check_schema(raw, ORDER_SCHEMA)


def test_json_schema_bytes_input() -> None:
    assert check_schema(json.dumps(GOOD_ORDER).encode(), ORDER_SCHEMA).value == GOOD_ORDER


def test_json_schema_format_is_checked() -> None:
    with pytest.raises(SchemaError, match=r"\$\.email: got 'nope'; expected format 'email'"):
        check_schema({"email": "nope"}, {"properties": {"email": {"type": "string", "format": "email"}}})


def test_json_schema_errors_are_capped() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    with pytest.raises(SchemaError) as info:
        check_schema(["x"] * 15, schema)
    message = str(info.value)
    assert "(15 errors)" in message
    assert "$.items" not in message
    assert "$[9]: got 'x'; expected type 'integer'" in message
    assert "$[10]" not in message
    assert message.endswith("... and 5 more")


def test_long_values_are_truncated() -> None:
    with pytest.raises(SchemaError) as info:
        check_schema({"a": "x" * 500}, {"properties": {"a": {"type": "integer"}}})
    line = info.value.errors[0]
    assert line.startswith("$.a: got 'xxx")
    assert "..." in line
    assert len(line) < 140


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "objekt"}, "not a valid JSON Schema"),
        ({"properties": {"a": {"minLength": "3"}}}, "$.properties.a.minLength"),
        ({"$schema": "https://example.invalid/schema", "type": "object"}, "unknown $schema"),
    ],
)
def test_invalid_json_schema(schema: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        check_schema({}, schema)
    assert fragment in str(info.value)


def test_invalid_schema_is_reported_before_bad_output() -> None:
    with pytest.raises(InvalidSchemaError):
        check_schema("not json at all", {"type": "objekt"})


# --------------------------------------------------------------------------------------------------
# check_schema: dataclass
# --------------------------------------------------------------------------------------------------


def test_dataclass_passes_and_builds_nested_instances() -> None:
    result = check_schema(json.dumps(GOOD_ORDER), Order)
    assert result.schema_kind == "dataclass"
    order = result.value
    assert isinstance(order, Order)
    assert order.items[1] == Item(name="ink", price=2.0, tags=[])
    assert isinstance(order.items[1].price, float)
    assert order.note is None


def test_dataclass_failure_paths() -> None:
    bad = bad_price_order()
    bad["status"] = "pending"
    bad["items"][0]["surprise"] = 1
    bad["note"] = 5
    bad["meta"] = {"k": "v"}
    del bad["id"]
    with pytest.raises(SchemaError) as info:
        check_schema(bad, Order)
    errors = info.value.errors
    assert str(info.value).startswith("value does not match dataclass Order (6 errors):")
    assert "$.items[2].price: got 'abc'; expected float" in errors
    assert "$.items[0].surprise: unexpected key; not a field of dataclass Item" in errors
    assert "$.status: got 'pending'; expected one of ['open', 'closed']" in errors
    assert "$.note: got 5; expected str" in errors
    assert "$.meta.k: got 'v'; expected int" in errors
    assert "$.id: missing; required by dataclass Order (int)" in errors


@dataclasses.dataclass
class Flag:
    on: Literal[0, 1]


def test_literal_numbers_take_neither_booleans_nor_floats() -> None:
    # pydantic's TypeAdapter accepts (and converts) both even in strict mode: why compare/typecheck.py stays.
    assert check_schema({"on": 1}, Flag).value == Flag(1)
    for wrong in (True, 1.0):
        with pytest.raises(SchemaError) as info:
            check_schema({"on": wrong}, Flag)
        assert info.value.errors == (f"$.on: got {wrong!r}; expected one of [0, 1]",)


def test_dataclass_bool_is_not_an_int_and_unions() -> None:
    assert check_schema({"enabled": True, "level": 3}, Flags).value == Flags(True, 3)
    assert check_schema({"enabled": False, "level": "high", "pair": [1, "a"]}, Flags).value == Flags(
        False, "high", (1, "a")
    )
    with pytest.raises(SchemaError) as info:
        check_schema({"enabled": 1, "level": True, "pair": [1]}, Flags)
    assert info.value.errors == (
        "$.enabled: got 1; expected bool",
        "$.level: got True; expected int | str",
        "$.pair: got [1]; expected tuple[int, str] (2 items)",
    )


def test_dataclass_post_init_rejection_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"\$: dataclass Positive rejected the data: ValueError"):
        check_schema({"amount": -1}, Positive)


def test_dataclass_enum_field() -> None:
    assert check_schema({"color": "red"}, Painted).value == Painted(Color.RED)
    with pytest.raises(SchemaError, match=r"\$\.color: got 'green'; expected one of \['red', 'blue'\]"):
        check_schema({"color": "green"}, Painted)


def test_dataclass_top_level_not_an_object() -> None:
    with pytest.raises(SchemaError, match=r"\$: got \[1, 2\]; expected an object for dataclass Order"):
        check_schema([1, 2], Order)


def test_dataclass_with_unsupported_annotation() -> None:
    with pytest.raises(InvalidSchemaError, match=r"unsupported annotation datetime at \$\.when"):
        check_schema({"when": "2024-01-01"}, Unsupported)


# --------------------------------------------------------------------------------------------------
# check_schema: TypedDict
# --------------------------------------------------------------------------------------------------


def test_typeddict_passes() -> None:
    result = check_schema({"id": 1, "items": [{"name": "a", "price": 1, "tags": ["x"]}]}, OrderDict)
    assert result.schema_kind == "typeddict"
    assert result.value == {"id": 1, "items": [{"name": "a", "price": 1.0, "tags": ["x"]}]}
    assert check_schema({}, LooseDict).value == {}


def test_typeddict_failure_paths() -> None:
    bad = {"items": [{"name": "a", "price": 1}, {"name": 2, "price": 1, "tags": "x", "more": 0}]}
    with pytest.raises(SchemaError) as info:
        check_schema(bad, OrderDict)
    assert info.value.errors == (
        "$.id: missing; required by TypedDict OrderDict (int)",
        "$.items[1].name: got 2; expected str",
        "$.items[1].tags: got 'x'; expected list[str]",
        "$.items[1].more: unexpected key; not a key of TypedDict ItemDict",
    )


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.NotRequired needs Python 3.11")
def test_typeddict_not_required_under_postponed_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under `from __future__ import annotations` the class itself files `tags` as required. A real
    # module is needed because type hints are resolved in the defining module's namespace.
    module = types.ModuleType("llmport_typeddict_fixture")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    exec(
        "from __future__ import annotations\n"
        "from typing import NotRequired, Required, TypedDict\n"
        "class Entry(TypedDict):\n"
        "    name: str\n"
        "    tags: NotRequired[list[str]]\n"
        "class Partial(TypedDict, total=False):\n"
        "    key: Required[int]\n"
        "    note: str\n",
        namespace,
    )
    assert check_schema({"name": "a"}, namespace["Entry"]).value == {"name": "a"}
    with pytest.raises(SchemaError, match=r"\$\.tags\[0\]: got 1; expected str"):
        check_schema({"name": "a", "tags": [1]}, namespace["Entry"])
    with pytest.raises(SchemaError, match=r"\$\.key: missing; required by TypedDict Partial \(int\)"):
        check_schema({"note": "n"}, namespace["Partial"])


def test_typeddict_total_false() -> None:
    with pytest.raises(SchemaError, match=r"\$\.a: got '1'; expected int"):
        check_schema({"a": "1"}, LooseDict)


# --------------------------------------------------------------------------------------------------
# check_schema: pydantic
# --------------------------------------------------------------------------------------------------


def test_pydantic_passes_and_fails_with_paths() -> None:
    pydantic = pytest.importorskip("pydantic")

    class PItem(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        name: str
        price: float

    class POrder(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        model_config = pydantic.ConfigDict(extra="forbid")
        id: int
        items: list[PItem]

    good = {"id": 1, "items": [{"name": "a", "price": 2}]}
    result = check_schema(good, POrder)
    assert result.schema_kind == "pydantic"
    assert isinstance(result.value, POrder)
    assert result.value.items[0].price == 2.0

    bad = {
        "items": [{"name": "a", "price": 1}, {"name": "b", "price": 1}, {"name": "c", "price": "abc"}],
        "x": 1,
    }
    with pytest.raises(SchemaError) as info:
        check_schema(bad, POrder)
    message = str(info.value)
    assert message.startswith("value does not match pydantic model POrder (3 errors):")
    assert "$.items[2].price: got 'abc'; Input should be a valid number" in message
    assert "$.id: missing; Field required" in message
    assert "$.x: unexpected key; Extra inputs are not permitted" in message


def test_pydantic_model_nested_in_a_dataclass() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Inner(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        n: int

    @dataclasses.dataclass
    class Outer:
        inner: Any

    Outer.__annotations__["inner"] = Inner  # resolve without a module-level pydantic import
    with pytest.raises(SchemaError, match=r"\$\.inner\.n: got 'x'"):
        check_schema({"inner": {"n": "x"}}, Outer)


def test_pydantic_is_not_imported_for_other_schemas() -> None:
    # deepdiff itself imports pydantic when it is installed, so compare_structures is left out.
    code = (
        "import sys\n"
        "from pytest_llmport import compare\n"
        "assert 'deepdiff' not in sys.modules and 'jsonschema' not in sys.modules\n"
        "import dataclasses\n"
        "@dataclasses.dataclass\n"
        "class A:\n"
        "    x: int\n"
        "compare.check_schema({'x': 1}, A)\n"
        "compare.check_schema('{\"x\": 1}', {'type': 'object'})\n"
        "compare.ensure_jsonable({'x': (1,)}, where='x')\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)


@pytest.mark.parametrize(
    "module", sorted(Path(compare.__file__).parent.glob("*.py")), ids=lambda path: path.name
)
def test_module_is_pure(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    top_level: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module.split(".")[0])
    assert not top_level & {"pytest", "vcr", "deepdiff", "jsonschema", "pydantic", "_pytest"}
    all_imports = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert not all_imports & {"pytest", "vcr", "_pytest"}


# --------------------------------------------------------------------------------------------------
# check_schema: unsupported schema kinds
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ('{"type": "object"}', "parsed with json.loads first"),
        (Item("a", 1.0), "pass the class Item itself"),
        (int, "class int"),
        ([{"type": "object"}], "[{'type': 'object'}] of type list"),
        (None, "None of type NoneType"),
    ],
)
def test_unsupported_schema_kinds(schema: Any, fragment: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        check_schema({}, schema)
    message = str(info.value)
    assert fragment in message
    assert (
        "a JSON Schema dict, a pydantic BaseModel subclass, a dataclass type or a TypedDict type" in message
    )


def test_schema_errors_are_assertion_errors_and_picklable() -> None:
    assert issubclass(SchemaError, AssertionError)
    assert issubclass(InvalidSchemaError, TypeError)
    assert issubclass(NotSerializableError, TypeError)
    error = pickle.loads(pickle.dumps(NotSerializableError("boom", path="$.a", where="x")))
    assert str(error) == "boom"


# --------------------------------------------------------------------------------------------------
# compare_structures
# --------------------------------------------------------------------------------------------------


def test_equal_structures() -> None:
    comparison = compare_structures({"a": [1, {"b": None}], "c": "x"}, {"c": "x", "a": [1, {"b": None}]})
    assert comparison == Comparison(True, (), comparison.raw)
    assert comparison.raw["equal"] is True
    assert comparison.raw["differences"] == []


def test_diff_line_formats() -> None:
    expected = {"category": "shipping", "tags": ["a", "b"], "price": 10.0, "ok": True, "n": 10}
    actual = {"category": "logistics", "tags": ["a"], "price": 12.5, "ok": 1, "n": 10.0, "extra": "x"}
    comparison = compare_structures(expected, actual, tolerance=0.1)
    assert not comparison.equal
    assert comparison.diff_lines == (
        "$.category: 'shipping' != 'logistics'",
        "$.extra: unexpected key in actual (got 'x')",
        "$.ok: True != 1 (boolean vs number)",
        "$.price: 10.0 != 12.5 (beyond tolerance 0.1)",
        "$.tags[1]: missing in actual (expected 'b')",
    )
    json.dumps(comparison.raw)
    assert comparison.raw["total"] == 5
    assert {"path": "$.price", "kind": "changed", "expected": 10.0, "actual": 12.5} in comparison.raw[
        "differences"
    ]


def test_missing_key_and_unexpected_item_and_type_change() -> None:
    comparison = compare_structures({"a": 1, "b": [1]}, {"b": [1, 2], "a": "1"})
    assert comparison.diff_lines == (
        "$.a: 1 != '1' (number vs string)",
        "$.b[1]: unexpected item in actual (got 2)",
    )
    comparison = compare_structures({"a": 1, "z": {"q": 1}}, {"a": 1})
    assert comparison.diff_lines == ("$.z: missing in actual (expected {'q': 1})",)


def test_root_level_difference() -> None:
    assert compare_structures([1, 2], {"a": 1}).diff_lines == ("$: [1, 2] != {'a': 1} (array vs object)",)


def test_disjoint_dicts_are_reported_key_by_key() -> None:
    comparison = compare_structures({"a": 1}, {"b": 1})
    assert comparison.diff_lines == (
        "$.a: missing in actual (expected 1)",
        "$.b: unexpected key in actual (got 1)",
    )


def test_bools_never_equal_numbers_even_inside_lists() -> None:
    assert not compare_structures([True, 0], [1, False]).equal
    assert not compare_structures({"x": [True]}, {"x": [1.0]}, ignore_order=True).equal
    assert compare_structures([1, 2.0], [1.0, 2]).equal


def test_ignore_order() -> None:
    expected = {"tags": ["a", "b", "c"], "rows": [{"id": 1}, {"id": 2}]}
    actual = {"tags": ["c", "a", "b"], "rows": [{"id": 2}, {"id": 1}]}
    assert not compare_structures(expected, actual).equal
    assert compare_structures(expected, actual, ignore_order=True).equal


def test_ignore_order_still_counts_duplicates() -> None:
    comparison = compare_structures(["a", "b", "b"], ["b", "a", "a"], ignore_order=True)
    assert comparison.diff_lines == (
        "$[0]: 'a' occurs 1 time(s) in expected but 2 in actual",
        "$[1]: 'b' occurs 2 time(s) in expected but 1 in actual",
    )


def test_ignore_order_reports_missing_and_unexpected() -> None:
    comparison = compare_structures(["a", "b", "c"], ["d", "a", "b"], ignore_order=True)
    assert comparison.diff_lines == (
        "$[0]: unexpected item in actual (got 'd')",
        "$[2]: missing in actual (expected 'c')",
    )


def test_relative_tolerance() -> None:
    assert compare_structures({"p": 100.0}, {"p": 104.0}, tolerance=0.05).equal
    comparison = compare_structures({"p": 100.0}, {"p": 110.0}, tolerance=0.05)
    assert comparison.diff_lines == ("$.p: 100.0 != 110.0 (beyond tolerance 0.05)",)
    assert not compare_structures({"p": 100.0}, {"p": 100.5}).equal


def test_absolute_tolerance_and_both() -> None:
    assert compare_structures([0.0], [0.001], abs_tolerance=0.01).equal
    assert not compare_structures([0.0], [0.001], tolerance=0.5).equal
    comparison = compare_structures([1.0], [1.5], tolerance=0.1, abs_tolerance=0.2)
    assert comparison.diff_lines == ("$[0]: 1.0 != 1.5 (beyond tolerance 0.1 / abs tolerance 0.2)",)


def test_tolerance_with_ignore_order() -> None:
    expected = {"prices": [10.0, 20.0, 30.0], "rows": [{"n": "a", "v": 1.0}, {"n": "b", "v": 2.0}]}
    actual: dict[str, Any] = {
        "prices": [30.5, 10.4, 20.2],
        "rows": [{"n": "b", "v": 2.1}, {"n": "a", "v": 0.95}],
    }
    assert compare_structures(expected, actual, ignore_order=True, tolerance=0.1).equal
    actual["prices"][0] = 50.0
    comparison = compare_structures(expected, actual, ignore_order=True, tolerance=0.1)
    assert not comparison.equal
    assert all("$.prices" in line for line in comparison.diff_lines)


def test_tolerance_does_not_touch_booleans() -> None:
    assert not compare_structures([True], [1], tolerance=1.0).equal


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1"])
def test_invalid_tolerance(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"finite number"):
        compare_structures(1, 1, tolerance=bad)


def test_exclude_paths() -> None:
    expected = {"id": "req-1", "items": [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}], "meta": {"ts": 1}}
    actual = {"id": "req-2", "items": [{"id": 9, "v": "x"}, {"id": 8, "v": "y"}], "meta": {"ts": 2}}
    assert not compare_structures(expected, actual).equal
    assert compare_structures(expected, actual, exclude_paths=["$.id", "$.items[*].id", "$.meta"]).equal
    assert compare_structures(expected, actual, exclude_paths=["$..id", "$['meta'].ts"]).equal
    assert compare_structures(
        expected, actual, exclude_paths=["root['id']", "root[**]['id']", "$.meta"]
    ).equal
    partial = compare_structures(expected, actual, exclude_paths=["$.items[0].id", "$.id", "$.meta"])
    assert partial.diff_lines == ("$.items[1].id: 2 != 8",)


def test_exclude_paths_cover_added_and_removed_keys() -> None:
    assert compare_structures(
        {"a": 1, "usage": {}}, {"a": 1, "debug": 1}, exclude_paths=["$.usage", "$.debug"]
    ).equal


def test_exclude_paths_with_ignore_order() -> None:
    expected = {"items": [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}]}
    actual = {"items": [{"id": 7, "v": "y"}, {"id": 8, "v": "x"}]}
    assert compare_structures(expected, actual, ignore_order=True, exclude_paths=["$.items[*].id"]).equal


def test_exclude_regex_paths_match_dollar_paths() -> None:
    expected = {"items": [{"id": 1, "v": "x"}], "request_id": "a", "name": "n"}
    actual = {"items": [{"id": 2, "v": "x"}], "request_id": "b", "trace_id": "t", "name": "m"}
    comparison = compare_structures(
        expected, actual, exclude_regex_paths=[r"\.\w+_id$", r"^\$\.items\[\d+\]\.id$"]
    )
    assert comparison.diff_lines == ("$.name: 'n' != 'm'",)


@pytest.mark.parametrize("bad", ["items.id", "$.a[", "$.a b"])
def test_invalid_exclude_path(bad: str) -> None:
    with pytest.raises(ValueError, match=r"invalid path"):
        compare_structures({}, {}, exclude_paths=[bad])


def test_exclude_arguments_must_be_sequences_not_strings() -> None:
    with pytest.raises(TypeError, match=r"not a single str"):
        compare_structures({}, {}, exclude_paths="$.a")
    with pytest.raises(ValueError, match=r"invalid regex"):
        compare_structures({}, {}, exclude_regex_paths=["("])


def test_normalize_casefold() -> None:
    assert not compare_structures({"c": "Shipping"}, {"c": "SHIPPING"}).equal
    assert compare_structures(
        {"c": "Shipping"}, {"c": "SHIPPING"}, normalize=StringNormalization(casefold=True)
    ).equal
    assert compare_structures(["Straße"], ["STRASSE"], normalize=StringNormalization(casefold=True)).equal


def test_normalize_whitespace() -> None:
    norm = StringNormalization(whitespace=True)
    assert compare_structures({"t": "  a \n\t b  "}, {"t": "a b"}, normalize=norm).equal
    assert compare_structures(["北京\u3000天气"], ["北京 天气"], normalize=norm).equal
    assert not compare_structures(["ab"], ["a b"], normalize=norm).equal


def test_normalize_width_chinese_punctuation() -> None:
    norm = StringNormalization(width=True)
    full = "你好，世界。问题：是否；是！为什么？（备注）【重要】“引用”‘单’、列举 ＡＢＣ１２３"
    half = "你好,世界.问题:是否;是!为什么?(备注)[重要]\"引用\"'单',列举 ABC123"
    assert not compare_structures([full], [half]).equal
    assert compare_structures([full], [half], normalize=norm).equal
    assert norm.apply(full) == half


def test_normalize_custom_hook_for_script_conversion() -> None:
    table = str.maketrans({"臺": "台", "灣": "湾", "體": "体"})

    def to_simplified(text: str) -> str:
        return text.translate(table)

    norm = StringNormalization(custom=to_simplified, casefold=True)
    assert compare_structures({"地区": "臺灣"}, {"地区": "台湾"}, normalize=norm).equal
    assert not compare_structures({"地区": "臺灣"}, {"地区": "台湾"}).equal
    describe = compare_structures(1, 1, normalize=norm).raw["options"]["normalize"]
    assert describe["custom"].endswith("to_simplified")
    json.dumps(describe)


def test_normalize_custom_hook_must_return_str() -> None:
    norm = StringNormalization(custom=lambda text: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"returned NoneType"):
        compare_structures(["a"], ["a"], normalize=norm)


def test_normalize_values_not_keys_unless_asked() -> None:
    expected, actual = {"Name": "A"}, {"name": "a"}
    assert not compare_structures(expected, actual, normalize=StringNormalization(casefold=True)).equal
    assert compare_structures(expected, actual, normalize=StringNormalization(casefold=True, keys=True)).equal


def test_key_normalisation_collision_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"merges 'A' and 'a' into 'a' at \$\.x"):
        compare_structures(
            {"x": {"A": 1, "a": 2}}, {}, normalize=StringNormalization(casefold=True, keys=True)
        )


def test_diff_lines_are_capped() -> None:
    comparison = compare_structures(list(range(30)), [n + 100 for n in range(30)])
    assert len(comparison.diff_lines) == MAX_DIFF_LINES + 1
    assert comparison.diff_lines[-1] == f"... and {30 - MAX_DIFF_LINES} more"
    assert comparison.raw["total"] == 30
    assert comparison.diff_lines[2] == "$[2]: 2 != 102"
    assert comparison.diff_lines[10] == "$[10]: 10 != 110"


def test_raw_is_json_serialisable() -> None:
    comparison = compare_structures(
        {"a": [1, {"b": True}], "c": None},
        {"a": [2], "d": "é中"},
        ignore_order=True,
        tolerance=0.1,
        exclude_paths=["$.z"],
        normalize=StringNormalization(width=True),
    )
    decoded = json.loads(json.dumps(comparison.raw, ensure_ascii=False))
    assert decoded["options"]["exclude_paths"] == ["$.z"]
    assert decoded["total"] == len(decoded["differences"]) == len(comparison.diff_lines)


def test_format_comparison() -> None:
    comparison = compare_structures({"category": "shipping"}, {"category": "logistics"})
    assert format_comparison("fields", comparison, "openai", "zhipu") == (
        "'fields' on zhipu differs from baseline openai:\n  $.category: 'shipping' != 'logistics'"
    )
    same = compare_structures(1, 1)
    assert format_comparison("fields", same, "openai", "qwen") == "'fields' on qwen matches baseline openai"


def test_compare_accepts_dataclasses_tuples_and_sets() -> None:
    assert compare_structures(Item("a", 1.0, ["x"]), {"name": "a", "price": 1.0, "tags": ["x"]}).equal
    assert compare_structures((1, 2), [1, 2]).equal
    assert compare_structures({"s": {3, 1, 2}}, {"s": [1, 2, 3]}).equal


# --------------------------------------------------------------------------------------------------
# ensure_jsonable
# --------------------------------------------------------------------------------------------------


def test_ensure_jsonable_conversions() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Label(str, enum.Enum):
        SPAM = "spam"

    value = {"t": (1, 2), "s": {"b", "a"}, "d": Item("x", 1.0), "e": [Level.HIGH, Label.SPAM]}
    converted = ensure_jsonable(value, where="obs")
    assert converted == {
        "t": [1, 2],
        "s": ["a", "b"],
        "d": {"name": "x", "price": 1.0, "tags": []},
        "e": [3, "spam"],
    }
    assert type(converted["e"][0]) is int
    assert type(converted["e"][1]) is str
    assert json.loads(json.dumps(converted)) == converted


def test_ensure_jsonable_is_the_converter_strategies_use() -> None:
    # One converter: what a strategy generates and what an observation stores agree (they once did not).
    from pytest_llmport.strategies import to_json

    value = {
        1: datetime.datetime(2024, 1, 1, 8, 30),
        "c": Color.RED,
        "u": uuid.UUID(int=1),
        "b": b"\x00\xff",
        "n": decimal.Decimal("9.90"),
    }
    expected = {
        "1": "2024-01-01T08:30:00",
        "c": Color.RED.value,
        "u": "00000000-0000-0000-0000-000000000001",
        "b": "AP8=",
        "n": "9.90",
    }
    assert ensure_jsonable(value, where="obs") == expected
    assert to_json(value) == expected


def test_ensure_jsonable_pydantic_model() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Event(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        when: datetime.date
        tags: tuple[str, ...]

    converted = ensure_jsonable([Event(when=datetime.date(2024, 5, 1), tags=("a",))], where="obs")
    assert converted == [{"when": "2024-05-01", "tags": ["a"]}]


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ({"a": [1, {"when": complex(1, 2)}]}, "$.a[1].when", "complex is not JSON-serialisable"),
        ({"a": {1: "x", "1": "y"}}, "$.a['1']", "two keys become '1'"),
        ({"x": float("nan")}, "$.x", "nan is not valid JSON"),
        ({"k": object()}, "$.k", "object is not JSON-serialisable"),
    ],
)
def test_ensure_jsonable_rejects_with_path(value: Any, path: str, fragment: str) -> None:
    with pytest.raises(NotSerializableError) as info:
        ensure_jsonable(value, where="observation 'fields' on zhipu")
    error = info.value
    assert error.path == path
    assert error.where == "observation 'fields' on zhipu"
    assert str(error).startswith(f"observation 'fields' on zhipu at {path}: ")
    assert fragment in str(error)


def test_ensure_jsonable_detects_cycles() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(NotSerializableError, match=r"at \$\[1\]: circular reference"):
        ensure_jsonable(loop, where="x")


def test_shared_subvalues_are_not_cycles() -> None:
    shared = [1]
    assert ensure_jsonable({"a": shared, "b": shared}, where="x") == {"a": [1], "b": [1]}


def test_compare_structures_names_the_side_that_is_not_serialisable() -> None:
    with pytest.raises(NotSerializableError, match=r"^actual at \$\.when: "):
        compare_structures({"when": "2024"}, {"when": object()})


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

# deepdiff's first call is slow enough to trip the default deadline, and the example database would
# write into the repository.
_PROPERTY = settings(deadline=None, database=None)

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
json_containers = st.lists(json_values, max_size=4) | st.dictionaries(
    st.text(max_size=8), json_values, max_size=4
)


@_PROPERTY
@given(json_values, st.booleans(), st.sampled_from([None, 0.0, 0.1]))
def test_property_value_equals_its_copy(value: Any, ignore_order: bool, tolerance: float | None) -> None:
    comparison = compare_structures(
        value, copy.deepcopy(value), ignore_order=ignore_order, tolerance=tolerance
    )
    assert comparison.equal, comparison.diff_lines
    assert comparison.diff_lines == ()


@_PROPERTY
@given(json_values)
def test_property_value_equals_its_json_round_trip(value: Any) -> None:
    assert compare_structures(value, json.loads(json.dumps(value))).equal


@_PROPERTY
@given(json_values, json_values)
def test_property_equal_means_no_diff_lines(a: Any, b: Any) -> None:
    comparison = compare_structures(a, b)
    assert comparison.equal == (comparison.diff_lines == ())
    assert comparison.equal == (comparison.raw["total"] == 0)
    json.dumps(comparison.raw)


@_PROPERTY
@given(st.text(), st.booleans(), st.booleans(), st.booleans())
def test_property_normalisation_is_idempotent(
    text: str, casefold: bool, whitespace: bool, width: bool
) -> None:
    norm = StringNormalization(casefold=casefold, whitespace=whitespace, width=width)
    once = norm.apply(text)
    assert norm.apply(once) == once


@_PROPERTY
@given(
    json_containers,
    st.sampled_from(["结果如下：", "Sure! Here it is:\n", "好的，"]),
    st.sampled_from(["。", "", "\n希望有帮助！"]),
)
def test_property_lenient_extraction_from_prose(value: Any, before: str, after: str) -> None:
    raw = before + json.dumps(value, ensure_ascii=False) + after
    extracted = extract_json(raw, lenient=True)
    assert extracted.value == value
    assert extracted.bare is False


@_PROPERTY
@given(json_values)
def test_property_strict_extraction_round_trip(value: Any) -> None:
    assert extract_json(json.dumps(value, indent=2)) == Extracted(value, True, None)
