"""Schema checks and structural equivalence of LLM app outputs (pure core of the equivalence feature).

Three layers, each usable on its own:

* :func:`extract_json` turns a model's raw text into a JSON value. Strict mode wants bare JSON; lenient
  mode also digs it out of Markdown code fences or surrounding prose (Chinese included) and says how it
  was wrapped, because "this provider wraps its JSON" is a portability finding in itself.
* :func:`check_schema` validates a value (or raw text) against a JSON Schema dict, a pydantic model, a
  dataclass or a TypedDict, and reports every violation with its ``$.path``.
* :func:`compare_structures` decides whether a provider's output is structurally equivalent to the
  baseline's, with optional order-insensitivity, numeric tolerance, path exclusions and string
  normalisation, and renders a short ``$.path``-style diff.

Nothing here imports pytest or vcrpy, and the heavy dependencies (deepdiff, jsonschema, pydantic) are
only imported when a call needs them, so importing the module stays cheap.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, Union

from .jsonvalue import NotSerializableError, PathElement, format_path, to_json, type_label
from .textfold import fold_width, nfkc

__all__ = [
    "MAX_DIFF_LINES",
    "MAX_SCHEMA_ERRORS",
    "Comparison",
    "Extracted",
    "InvalidSchemaError",
    "NotSerializableError",
    "SchemaError",
    "SchemaKind",
    "SchemaResult",
    "StringNormalization",
    "Wrapper",
    "check_schema",
    "compare_structures",
    "ensure_jsonable",
    "extract_json",
    "format_comparison",
    "format_path",
]

SchemaKind = Literal["json_schema", "pydantic", "dataclass", "typeddict"]
Wrapper = Literal["code_fence", "prose_before", "prose_after", "prose_around"]

MAX_SCHEMA_ERRORS: Final = 10
MAX_DIFF_LINES: Final = 20
# Reports are stored next to every observation, so a pathological diff must not bloat them.
_MAX_RAW_DIFFERENCES: Final = 200
_REPR_LIMIT: Final = 80


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class SchemaError(AssertionError):
    """The output is not (extractable) JSON or does not match the schema; ``errors`` lists each problem.

    An ``AssertionError`` so that pytest reports it as a test failure rather than an error.
    """

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[str, ...] = tuple(errors)


class InvalidSchemaError(TypeError):
    """The schema itself is unusable: an unsupported kind, an invalid JSON Schema or unresolvable hints."""


# --------------------------------------------------------------------------------------------------
# Small helpers shared by every layer
# --------------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = _REPR_LIMIT) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _path_sort_key(elements: Sequence[PathElement]) -> tuple[tuple[int, int, str], ...]:
    # Indices sort numerically and before keys so "$.a[10]" follows "$.a[2]".
    return tuple((0, e, "") if isinstance(e, int) else (1, 0, str(e)) for e in elements)


def _render_errors(header: str, errors: Sequence[str]) -> str:
    count = len(errors)
    lines = [f"{header} ({count} error{'s' if count != 1 else ''}):"]
    lines.extend(f"  {error}" for error in errors[:MAX_SCHEMA_ERRORS])
    if count > MAX_SCHEMA_ERRORS:
        lines.append(f"  ... and {count - MAX_SCHEMA_ERRORS} more")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# JSON extraction
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Extracted:
    """A JSON value taken from raw model text; ``wrapper`` says what surrounded it when not ``bare``."""

    value: Any
    bare: bool
    wrapper: Wrapper | None


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, but they are not JSON and could not be stored as observations.
    raise ValueError(f"{name} is not valid JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
# The info string is lazy and may be followed directly by the JSON, so "```json {...}```" on one line
# works; an unclosed fence (output cut off after the JSON) runs to the end of the text.
_FENCE: Final = re.compile(
    r"(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*?)(?:\r?\n|(?=[\[{]))(?P<body>.*?)(?:(?P=fence)|\Z)", re.DOTALL
)
# Reasoning models (DeepSeek-R1, QwQ, Qwen3) may inline their reasoning, which often drafts JSON.
_THINK: Final = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_OPENERS: Final = re.compile(r"[\[{]")


def _loads(text: str) -> Any:
    value, end = _DECODER.raw_decode(text, _skip_whitespace(text, 0))
    if text[end:].strip(" \t\r\n"):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _skip_whitespace(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _describe_decode_error(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _balanced_end(text: str, start: int) -> int:
    """Index just past the bracket closing the one at ``start`` (JSON strings respected), or -1."""
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def _line_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line} column {column}"


def _extract_wrapped(text: str) -> Extracted:
    think_spans = [match.span() for match in _THINK.finditer(text)]

    def think_end(position: int) -> int | None:
        for span_start, span_end in think_spans:
            if span_start <= position < span_end:
                return span_end
        return None

    problems: list[str] = []
    fenced: Extracted | None = None
    fence_start = len(text)
    for match in _FENCE.finditer(text):
        body = match.group("body")
        if think_end(match.start()) is not None or not body.strip():
            continue
        try:
            value = _loads(body)
        except (ValueError, RecursionError) as exc:
            language = match.group("info").strip() or "plain"
            problems.append(
                f"a code fence ({language}) was found but its content is not valid JSON "
                f"({_describe_decode_error(exc)})"
            )
            continue
        fenced = Extracted(value=value, bare=False, wrapper="code_fence")
        fence_start = match.start()
        break

    # Whichever comes first wins: a JSON value that starts before the fence contains it (a string value
    # holding Markdown), and a fence that starts first wraps the answer.
    position = 0
    while (opener := _OPENERS.search(text, position, fence_start)) is not None:
        start = opener.start()
        skip_to = think_end(start)
        if skip_to is not None:
            position = skip_to
            continue
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:
            close = _balanced_end(text, start)
            if close >= 0:
                # A balanced but malformed region is skipped whole: resuming inside it would return
                # one of its fragments, e.g. a nested object, which is worse than failing.
                position = close
                continue
            failed_at = exc.pos if isinstance(exc, json.JSONDecodeError) else start + 1
            unterminated = isinstance(exc, json.JSONDecodeError) and exc.msg.startswith("Unterminated")
            if unterminated or not text[failed_at:].strip():
                # The value runs to the end of the text: a truncated answer, not stray prose.
                problems.append(f"the {text[start]!r} at {_line_column(text, start)} is never closed")
                break
            # A stray bracket in prose (":{"); only what follows the point of failure can be JSON.
            position = max(failed_at, start + 1)
            continue
        before = bool(text[:start].strip())
        after = bool(text[end:].strip())
        wrapper: Wrapper = "prose_around" if before and after else "prose_before" if before else "prose_after"
        return Extracted(value=value, bare=False, wrapper=wrapper)
    if fenced is not None:
        return fenced

    detail = "; ".join(problems)
    raise SchemaError(
        "no JSON object or array found in the output"
        + (f" ({detail})" if detail else "")
        + f"; output starts: {_short(text)}"
    )


def extract_json(raw: str, *, lenient: bool = False) -> Extracted:
    """Parse ``raw`` as JSON.

    Strict mode accepts only bare JSON (surrounding whitespace and a BOM are fine) and raises
    :class:`SchemaError` otherwise, hinting when lenient mode would have succeeded. Lenient mode also
    accepts JSON wrapped in a Markdown code fence or embedded in prose, skipping ``<think>`` blocks:
    the first fence whose content is JSON, unless a complete JSON object or array starts before it
    (that value then holds the fence in a string). The result has ``bare=False`` and a ``wrapper``.
    A stray bracket in prose is passed over, but a value that is cut off (truncated output) or
    malformed is never mined for a complete nested fragment. NaN and Infinity are rejected in both
    modes.
    """
    if not isinstance(raw, str):
        raise TypeError(f"extract_json expects the raw output as str, got {type_label(type(raw))}")
    text = raw.removeprefix("\ufeff")
    try:
        value = _loads(text)
    except (ValueError, RecursionError) as exc:
        bare_error: BaseException = exc
    else:
        return Extracted(value=value, bare=True, wrapper=None)
    if lenient:
        return _extract_wrapped(text)
    hint = ""
    try:
        found = _extract_wrapped(text)
    except SchemaError:
        pass
    else:
        hint = f"; it does contain JSON ({found.wrapper}), pass lenient=True to accept wrapped JSON"
    raise SchemaError(
        f"expected bare JSON, but the output is not valid JSON ({_describe_decode_error(bare_error)}){hint}; "
        f"output starts: {_short(text)}"
    )


# --------------------------------------------------------------------------------------------------
# Schema checks
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SchemaResult:
    """A value that passed :func:`check_schema`; for pydantic and dataclass schemas, the built instance."""

    value: Any
    bare: bool
    wrapper: Wrapper | None
    schema_kind: SchemaKind


_ACCEPTED_SCHEMAS: Final = (
    "a JSON Schema dict, a pydantic BaseModel subclass, a dataclass type or a TypedDict type"
)


def _pydantic_module() -> Any:
    # A pydantic model can only exist if pydantic was imported already, so never import it ourselves.
    return sys.modules.get("pydantic")


def _is_pydantic_model_class(candidate: Any) -> bool:
    pydantic = _pydantic_module()
    return pydantic is not None and isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel)


def _is_typeddict(candidate: Any) -> bool:
    # Duck-typed so typing_extensions.TypedDict classes count too.
    return (
        isinstance(candidate, type)
        and issubclass(candidate, dict)
        and hasattr(candidate, "__required_keys__")
        and hasattr(candidate, "__optional_keys__")
    )


def _schema_kind(schema: Any) -> SchemaKind:
    if isinstance(schema, dict):
        return "json_schema"
    if isinstance(schema, type):
        if _is_pydantic_model_class(schema):
            return "pydantic"
        if dataclasses.is_dataclass(schema):
            return "dataclass"
        if _is_typeddict(schema):
            return "typeddict"
        raise InvalidSchemaError(
            f"unsupported schema: class {type_label(schema)}; expected {_ACCEPTED_SCHEMAS}"
        )
    hint = ""
    if isinstance(schema, str):
        hint = " (a JSON Schema document must be parsed with json.loads first)"
    elif dataclasses.is_dataclass(schema) or _is_pydantic_model_class(type(schema)):
        hint = f" (pass the class {type(schema).__name__} itself, not an instance)"
    raise InvalidSchemaError(
        f"unsupported schema: {_short(schema)} of type {type_label(type(schema))}{hint}; "
        f"expected {_ACCEPTED_SCHEMAS}"
    )


def _json_schema_validator(schema: Mapping[str, Any]) -> Any:
    try:
        validators = importlib.import_module("jsonschema.validators")
        exceptions = importlib.import_module("jsonschema.exceptions")
    except ModuleNotFoundError as exc:  # pragma: no cover - jsonschema is a dependency
        raise ModuleNotFoundError(
            "validating against a JSON Schema dict needs the 'jsonschema' package"
        ) from exc
    if "$schema" in schema:
        validator_class = validators.validator_for(schema, default=None)
        if validator_class is None:
            raise InvalidSchemaError(
                f"the dict is not a usable JSON Schema: unknown $schema {_short(schema['$schema'])}"
            )
    else:
        validator_class = validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise InvalidSchemaError(
            f"the dict is not a valid JSON Schema ({validator_class.__name__}): "
            f"at {format_path(exc.absolute_path)}: {exc.message}"
        ) from None
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


# Keywords whose own value states the expectation fully; for the rest jsonschema's message says more.
_SELF_EXPLAINING_KEYWORDS: Final = frozenset(
    {
        "type",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "uniqueItems",
    }
)


def _unexpected_keys(instance: Mapping[str, Any], schema: Any) -> list[str] | None:
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    try:
        return [
            key
            for key in instance
            if key not in properties and not any(re.search(pattern, key) for pattern in patterns)
        ]
    except (re.error, TypeError):
        return None


def _json_schema_errors(validator: Any, value: Any) -> list[str]:
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: _path_sort_key(list(e.absolute_path)))
    except Exception as exc:
        # Unresolvable $refs and the like only surface while validating, but are schema problems.
        if type(exc).__module__.split(".")[0] in {"jsonschema", "referencing"}:
            raise InvalidSchemaError(f"the JSON Schema cannot be applied: {exc}") from None
        raise
    lines: list[str] = []
    seen: set[str] = set()

    def add(line: str) -> None:
        if line not in seen:
            seen.add(line)
            lines.append(line)

    for error in errors:
        path: list[PathElement] = list(error.absolute_path)
        keyword = error.validator
        instance = error.instance
        if keyword == "required" and isinstance(instance, dict) and isinstance(error.validator_value, list):
            for key in error.validator_value:
                if isinstance(key, str) and key not in instance:
                    add(f"{format_path([*path, key])}: missing; required by the schema")
            continue
        if (
            keyword == "additionalProperties"
            and error.validator_value is False
            and isinstance(instance, dict)
        ):
            extras = _unexpected_keys(instance, error.schema)
            if extras:
                for key in extras:
                    add(
                        f"{format_path([*path, key])}: unexpected key; "
                        "the schema forbids additional properties"
                    )
                continue
        if keyword == "enum":
            expectation = f"one of {_short(error.validator_value)}"
        elif keyword == "const":
            expectation = f"exactly {_short(error.validator_value)}"
        else:
            expectation = f"{keyword} {_short(error.validator_value)}"
            if keyword not in _SELF_EXPLAINING_KEYWORDS:
                expectation += f" ({_short(error.message, 120)[1:-1]})"
        add(f"{format_path(path)}: got {_short(instance)}; expected {expectation}")
    return lines


def _pydantic_error_line(error: Mapping[str, Any], prefix: Sequence[PathElement]) -> str:
    path = format_path([*prefix, *error.get("loc", ())])
    message = error.get("msg", "invalid")
    kind = error.get("type")
    if kind == "missing":
        return f"{path}: missing; {message}"
    if kind == "extra_forbidden":
        return f"{path}: unexpected key; {message}"
    return f"{path}: got {_short(error.get('input'))}; {message}"


_INVALID: Final[Any] = object()
_ITEM_QUALIFIERS: Final = frozenset({"Required", "NotRequired", "ReadOnly"})


def _special_form_name(origin: Any) -> str:
    # typing and typing_extensions spell these forms differently across versions; the name is stable.
    name = getattr(origin, "_name", None)
    return name if isinstance(name, str) else ""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated or _special_form_name(origin) in _ITEM_QUALIFIERS:
        return _type_name(typing.get_args(annotation)[0])
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


class _TypeChecker:
    """Checks JSON data against Python type annotations, building dataclass instances on the way."""

    def __init__(self, hints_cache: dict[type, dict[str, Any]] | None = None) -> None:
        self.errors: list[str] = []
        self._hints = hints_cache if hints_cache is not None else {}

    def fail(self, path: Sequence[PathElement], message: str) -> Any:
        self.errors.append(f"{format_path(path)}: {message}")
        return _INVALID

    def mismatch(self, value: Any, expected: str, path: Sequence[PathElement]) -> Any:
        return self.fail(path, f"got {_short(value)}; expected {expected}")

    def hints(self, cls: type) -> dict[str, Any]:
        if cls not in self._hints:
            try:
                # Extras are kept so TypedDict items can be read for Required/NotRequired themselves.
                self._hints[cls] = typing.get_type_hints(cls, include_extras=True)
            except Exception as exc:
                raise InvalidSchemaError(
                    f"cannot resolve the type hints of {cls.__name__}: {type(exc).__name__}: {exc}"
                ) from None
        return self._hints[cls]

    def check(self, value: Any, annotation: Any, path: list[PathElement]) -> Any:
        # NewType and `type X = ...` aliases stand for their underlying type.
        while hasattr(annotation, "__supertype__") or type(annotation).__name__ == "TypeAliasType":
            annotation = getattr(annotation, "__supertype__", None) or annotation.__value__
        if annotation is Any or annotation is object:
            return value
        if annotation is None or annotation is type(None):
            return value if value is None else self.mismatch(value, "None", path)
        origin = typing.get_origin(annotation)
        if origin is not None:
            return self._check_generic(value, annotation, origin, typing.get_args(annotation), path)
        if not isinstance(annotation, type):
            raise InvalidSchemaError(f"unsupported annotation {annotation!r} at {format_path(path)}")
        return self._check_class(value, annotation, path)

    def _check_generic(
        self, value: Any, annotation: Any, origin: Any, args: tuple[Any, ...], path: list[PathElement]
    ) -> Any:
        if origin is typing.Annotated or _special_form_name(origin) in _ITEM_QUALIFIERS:
            return self.check(value, args[0], path)
        if origin is Union or origin is types.UnionType:
            return self._check_union(value, args, path)
        if origin is Literal:
            # type() equality keeps Literal[1] from accepting True or 1.0.
            if any(type(option) is type(value) and option == value for option in args):
                return value
            return self.mismatch(value, f"one of {_short(list(args))}", path)
        if origin in (list, tuple, Sequence, typing.Sequence):
            return self._check_sequence(value, annotation, origin, args, path)
        if origin in (dict, Mapping, typing.Mapping):
            key_type, value_type = args if args else (str, Any)
            if key_type not in (str, Any):
                raise InvalidSchemaError(
                    f"unsupported annotation {_type_name(annotation)} at {format_path(path)}: "
                    "JSON keys are strings"
                )
            if not isinstance(value, dict):
                return self.mismatch(value, _type_name(annotation), path)
            result: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.fail([*path, str(key)], f"key {key!r} is not a string")
                    continue
                result[key] = self.check(item, value_type, [*path, key])
            return result
        raise InvalidSchemaError(f"unsupported annotation {_type_name(annotation)} at {format_path(path)}")

    def _check_union(self, value: Any, arms: tuple[Any, ...], path: list[PathElement]) -> Any:
        if value is None:
            if type(None) in arms:
                return None
            return self.mismatch(value, " | ".join(_type_name(arm) for arm in arms), path)
        candidates = [arm for arm in arms if arm is not type(None)]
        if len(candidates) == 1:
            # Optional[X]: check X directly so nested errors keep their precise paths.
            return self.check(value, candidates[0], path)
        # The arm matching the value's exact type goes first, so `float | int` keeps 3 an int.
        candidates.sort(key=lambda arm: 0 if arm is type(value) else 1)
        for arm in candidates:
            trial = _TypeChecker(self._hints)
            result = trial.check(value, arm, path)
            if not trial.errors:
                return result
        return self.mismatch(value, " | ".join(_type_name(arm) for arm in arms), path)

    def _check_sequence(
        self, value: Any, annotation: Any, origin: Any, args: tuple[Any, ...], path: list[PathElement]
    ) -> Any:
        if not isinstance(value, (list, tuple)):
            return self.mismatch(value, _type_name(annotation), path)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return self.mismatch(value, f"{_type_name(annotation)} ({len(args)} items)", path)
            return tuple(
                self.check(item, arg, [*path, index])
                for index, (item, arg) in enumerate(zip(value, args, strict=True))
            )
        item_type = args[0] if args else Any
        items = [self.check(item, item_type, [*path, index]) for index, item in enumerate(value)]
        return tuple(items) if origin is tuple else items

    def _check_class(self, value: Any, cls: type, path: list[PathElement]) -> Any:
        if cls is bool:
            return value if isinstance(value, bool) else self.mismatch(value, "bool", path)
        if cls is int:
            return (
                value if _is_number(value) and isinstance(value, int) else self.mismatch(value, "int", path)
            )
        if cls is float:
            # PEP 484 lets an int stand for a float, and JSON "10" for 10.0 is common.
            return float(value) if _is_number(value) else self.mismatch(value, "float", path)
        if cls is str:
            return value if isinstance(value, str) else self.mismatch(value, "str", path)
        if issubclass(cls, enum.Enum):
            try:
                return cls(value)
            except ValueError:
                return self.mismatch(value, f"one of {_short([member.value for member in cls])}", path)
        if dataclasses.is_dataclass(cls):
            return self._check_dataclass(value, cls, path)
        if _is_typeddict(cls):
            return self._check_typeddict(value, cls, path)
        if _is_pydantic_model_class(cls):
            try:
                return typing.cast(Any, cls).model_validate(value)
            except _pydantic_module().ValidationError as exc:
                self.errors.extend(
                    _pydantic_error_line(error, path) for error in exc.errors(include_url=False)
                )
                return _INVALID
        if cls in (list, tuple):
            return (
                cls(value) if isinstance(value, (list, tuple)) else self.mismatch(value, cls.__name__, path)
            )
        if cls is dict:
            return value if isinstance(value, dict) else self.mismatch(value, "dict", path)
        raise InvalidSchemaError(f"unsupported annotation {_type_name(cls)} at {format_path(path)}")

    def _check_dataclass(self, value: Any, cls: type, path: list[PathElement]) -> Any:
        name = f"dataclass {cls.__name__}"
        if not isinstance(value, dict):
            return self.mismatch(value, f"an object for {name}", path)
        hints = self.hints(cls)
        fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
        errors_before = len(self.errors)
        arguments: dict[str, Any] = {}
        for field_name, field in fields.items():
            annotation = hints.get(field_name, Any)
            if field_name in value:
                arguments[field_name] = self.check(value[field_name], annotation, [*path, field_name])
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                self.fail([*path, field_name], f"missing; required by {name} ({_type_name(annotation)})")
        for key in value:
            if key not in fields:
                self.fail([*path, str(key)], f"unexpected key; not a field of {name}")
        if len(self.errors) > errors_before:
            return _INVALID
        try:
            return cls(**arguments)
        except Exception as exc:
            # __post_init__ validation is part of the contract the app relies on.
            return self.fail(path, f"{name} rejected the data: {type(exc).__name__}: {exc}")

    def _check_typeddict(self, value: Any, cls: type, path: list[PathElement]) -> Any:
        name = f"TypedDict {cls.__name__}"
        if not isinstance(value, dict):
            return self.mismatch(value, f"an object for {name}", path)
        hints = self.hints(cls)
        total_required: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
        result: dict[str, Any] = {}
        for key, annotation in hints.items():
            # Under `from __future__ import annotations` the class sees Required/NotRequired as strings
            # and files every key by `total` alone, so the evaluated qualifier takes precedence.
            qualifier = _special_form_name(typing.get_origin(annotation))
            required = qualifier == "Required" or (qualifier != "NotRequired" and key in total_required)
            if key in value:
                result[key] = self.check(value[key], annotation, [*path, key])
            elif required:
                self.fail([*path, key], f"missing; required by {name} ({_type_name(annotation)})")
        for key in value:
            if key not in hints:
                self.fail([*path, str(key)], f"unexpected key; not a key of {name}")
        return result


def check_schema(value_or_raw: Any, schema: Any, *, lenient: bool = False) -> SchemaResult:
    """Validate an output against ``schema`` and return the (possibly converted) value.

    ``schema`` is a JSON Schema dict, a pydantic ``BaseModel`` subclass (the result holds the validated
    model instance), a dataclass type (the result holds the constructed instance) or a TypedDict type.
    A ``str`` (or ``bytes``) input is parsed with :func:`extract_json` first, so a JSON string cannot be
    checked as a string value. Raises :class:`SchemaError` listing every violation by ``$.path``, or
    :class:`InvalidSchemaError` if the schema itself is unusable (checked before the value is read).
    """
    kind = _schema_kind(schema)
    validator = _json_schema_validator(schema) if kind == "json_schema" else None
    if isinstance(value_or_raw, bytes):
        try:
            value_or_raw = value_or_raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SchemaError(f"the output is not UTF-8 text: {exc}") from None
    if isinstance(value_or_raw, str):
        extracted = extract_json(value_or_raw, lenient=lenient)
        value, bare, wrapper = extracted.value, extracted.bare, extracted.wrapper
    else:
        value, bare, wrapper = value_or_raw, True, None

    if kind == "json_schema":
        errors = _json_schema_errors(validator, value)
        description = "the JSON Schema"
    elif kind == "pydantic":
        pydantic = _pydantic_module()
        try:
            value = schema.model_validate(value)
        except pydantic.ValidationError as exc:
            errors = [_pydantic_error_line(error, ()) for error in exc.errors(include_url=False)]
        else:
            errors = []
        description = f"pydantic model {schema.__name__}"
    else:
        checker = _TypeChecker()
        value = checker.check(value, schema, [])
        errors = checker.errors
        description = f"{'dataclass' if kind == 'dataclass' else 'TypedDict'} {schema.__name__}"
    if errors:
        raise SchemaError(_render_errors(f"value does not match {description}", errors), errors)
    return SchemaResult(value=value, bare=bare, wrapper=wrapper, schema_kind=kind)


# --------------------------------------------------------------------------------------------------
# JSON-serialisability
# --------------------------------------------------------------------------------------------------


def ensure_jsonable(value: Any, *, where: str) -> Any:
    """Return ``value`` as plain JSON data (see :func:`pytest_llmport.jsonvalue.to_json`).

    Raises :class:`NotSerializableError` naming the bad path, prefixed by ``where``.
    """
    return to_json(value, where=where)


# --------------------------------------------------------------------------------------------------
# String normalisation
# --------------------------------------------------------------------------------------------------

_WHITESPACE: Final = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class StringNormalization:
    """How strings are normalised on both sides before comparing.

    Applied in this order: ``custom`` (e.g. a simplified/traditional Chinese converter supplied by the
    user), ``width`` (NFKC plus the Chinese punctuation table), ``casefold``, ``whitespace`` (collapse
    runs to one space, strip the ends). ``keys`` also normalises dict keys, not only string values.
    """

    casefold: bool = False
    whitespace: bool = False
    width: bool = False
    custom: Callable[[str], str] | None = None
    keys: bool = False

    def apply(self, text: str) -> str:
        """Return ``text`` normalised according to this configuration."""
        if self.custom is not None:
            converted = self.custom(text)
            if not isinstance(converted, str):
                raise TypeError(f"the custom normaliser returned {type_label(type(converted))}, not str")
            text = converted
        if self.width:
            text = fold_width(text)
        if self.casefold:
            text = text.casefold()
            if self.width:
                # Casefolding can produce sequences NFKC rewrites; renormalising keeps apply() idempotent.
                text = nfkc(text)
        if self.whitespace:
            text = _WHITESPACE.sub(" ", text).strip()
        return text

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description for reports."""
        custom = None
        if self.custom is not None:
            custom = getattr(self.custom, "__qualname__", None) or type(self.custom).__qualname__
            custom = f"{getattr(self.custom, '__module__', '?')}.{custom}"
        return {
            "casefold": self.casefold,
            "whitespace": self.whitespace,
            "width": self.width,
            "keys": self.keys,
            "custom": custom,
        }


def _normalize_tree(value: Any, normalization: StringNormalization, path: list[PathElement]) -> Any:
    if isinstance(value, str):
        return normalization.apply(value)
    if isinstance(value, list):
        return [_normalize_tree(item, normalization, [*path, index]) for index, item in enumerate(value)]
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for key, item in value.items():
            new_key = normalization.apply(key) if normalization.keys else key
            if new_key in result:
                raise ValueError(
                    f"key normalisation merges {origins[new_key]!r} and {key!r} into {new_key!r} "
                    f"at {format_path(path)}"
                )
            origins[new_key] = key
            result[new_key] = _normalize_tree(item, normalization, [*path, new_key])
        return result
    return value


# --------------------------------------------------------------------------------------------------
# Structural comparison
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Outcome of :func:`compare_structures`; ``raw`` is a JSON-serialisable record for reports."""

    equal: bool
    diff_lines: tuple[str, ...]
    raw: dict[str, Any]


class _JsonBool(enum.Enum):
    """Stand-in for bools while diffing.

    deepdiff short-circuits on Python equality, and ``[True] == [1]``, so without this a boolean that
    became a number would go unreported.
    """

    FALSE = False
    TRUE = True


def _mark_bools(value: Any) -> Any:
    if isinstance(value, bool):
        return _JsonBool.TRUE if value else _JsonBool.FALSE
    if isinstance(value, list):
        return [_mark_bools(item) for item in value]
    if isinstance(value, dict):
        return {key: _mark_bools(item) for key, item in value.items()}
    return value


def _unmark_bools(value: Any) -> Any:
    if isinstance(value, _JsonBool):
        return value.value
    if isinstance(value, list):
        return [_unmark_bools(item) for item in value]
    if isinstance(value, dict):
        return {key: _unmark_bools(item) for key, item in value.items()}
    return value


Closeness = Callable[[float, float], bool]


class _NumericTolerance:
    """deepdiff custom operator treating numbers within tolerance as equal."""

    def __init__(self, close: Closeness) -> None:
        self._close = close

    def match(self, level: Any) -> bool:
        return _is_number(level.t1) and _is_number(level.t2)

    def give_up_diffing(self, level: Any, diff_instance: Any) -> bool:
        return self._close(level.t1, level.t2)

    def normalize_value_for_hashing(self, parent: Any, obj: Any) -> Any:
        return obj


def _equivalent(expected: Any, actual: Any, close: Closeness, ignore_order: bool) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if _is_number(expected) and _is_number(actual):
        return close(expected, actual)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            _equivalent(expected[key], actual[key], close, ignore_order) for key in expected
        )
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return False
        if not ignore_order:
            return all(_equivalent(e, a, close, ignore_order) for e, a in zip(expected, actual, strict=True))
        return _match_unordered(expected, actual, close) is not None
    return type(expected) is type(actual) and expected == actual


def _match_unordered(expected: list[Any], actual: list[Any], close: Closeness) -> list[int | None] | None:
    """Greedily pair each actual item with an unused equivalent expected item (index or None).

    Returns None when the lists are the same length and some item found no partner.
    """
    used = [False] * len(expected)
    partners: list[int | None] = []
    for item in actual:
        partner = None
        for index, candidate in enumerate(expected):
            if not used[index] and _equivalent(candidate, item, close, True):
                used[index] = True
                partner = index
                break
        partners.append(partner)
    if len(expected) == len(actual) and None in partners:
        return None
    return partners


def _snap(expected: Any, actual: Any, close: Closeness, ignore_order: bool) -> Any:
    """Replace parts of ``actual`` that equal their ``expected`` counterpart within tolerance by it.

    deepdiff pairs unordered list items by hash before any custom operator runs, so 10.0 and 10.05 in
    an ignore_order list would be reported as one removal plus one addition. Snapping first leaves
    deepdiff only the genuine differences; the custom operator still covers pairs deepdiff forms itself.
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {
            key: _snap(expected[key], item, close, ignore_order) if key in expected else item
            for key, item in actual.items()
        }
    if isinstance(expected, list) and isinstance(actual, list):
        if not ignore_order:
            return [
                _snap(expected[index], item, close, ignore_order) if index < len(expected) else item
                for index, item in enumerate(actual)
            ]
        used = [False] * len(expected)
        snapped = []
        for item in actual:
            for index, candidate in enumerate(expected):
                if not used[index] and _equivalent(candidate, item, close, True):
                    used[index] = True
                    snapped.append(candidate)
                    break
            else:
                snapped.append(item)
        return snapped
    if _is_number(expected) and _is_number(actual) and close(expected, actual):
        return expected
    return actual


def _closeness(tolerance: float | None, abs_tolerance: float | None) -> Closeness | None:
    for name, bound in (("tolerance", tolerance), ("abs_tolerance", abs_tolerance)):
        if bound is not None and (not _is_number(bound) or not bound >= 0 or math.isinf(bound)):
            raise ValueError(f"{name} must be a finite number >= 0, got {bound!r}")
    if tolerance is None and abs_tolerance is None:
        return None
    relative = float(tolerance or 0.0)
    absolute = float(abs_tolerance or 0.0)

    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=relative, abs_tol=absolute)

    return close


def _tolerance_note(tolerance: float | None, abs_tolerance: float | None) -> str:
    notes = []
    if tolerance is not None:
        notes.append(f"tolerance {tolerance}")
    if abs_tolerance is not None:
        notes.append(f"abs tolerance {abs_tolerance}")
    return " / ".join(notes)


_PATH_NAME: Final = re.compile(r"\*\*|\*|[^\W\d]\w*")
_PATH_BRACKET: Final = re.compile(
    r"""\[\s*(?:'(?P<single>(?:[^'\\]|\\.)*)'|"(?P<double>(?:[^"\\]|\\.)*)"|(?P<index>-?\d+)|(?P<star>\*\*?))\s*\]"""
)


def _deepdiff_key(key: str) -> str:
    return f'["{key}"]' if "'" in key else f"['{key}']"


def _to_deepdiff_path(path: str) -> str:
    """Translate ``$.a[0]['b c'][*]..d`` into deepdiff's ``root['a'][0]['b c'][*][**]['d']``."""
    if not isinstance(path, str):
        raise TypeError(f"paths must be str, got {type_label(type(path))}")
    if path.startswith("root"):
        return path
    if not path.startswith("$"):
        raise ValueError(
            f"invalid path {path!r}: expected a '$.a[0]'-style path (or deepdiff's root['a'][0])"
        )
    parts = ["root"]
    index = 1
    while index < len(path):
        if path.startswith("..", index):
            parts.append("[**]")
            index += 2
            name = _PATH_NAME.match(path, index)
        elif path[index] == ".":
            index += 1
            name = _PATH_NAME.match(path, index)
        elif (bracket := _PATH_BRACKET.match(path, index)) is not None:
            index = bracket.end()
            if bracket.group("index") is not None:
                parts.append(f"[{int(bracket.group('index'))}]")
            elif bracket.group("star") is not None:
                parts.append(f"[{bracket.group('star')}]")
            else:
                quoted = (
                    bracket.group("single")
                    if bracket.group("single") is not None
                    else bracket.group("double")
                )
                parts.append(_deepdiff_key(re.sub(r"\\(.)", r"\1", quoted)))
            continue
        else:
            name = None
        if name is None:
            raise ValueError(f"invalid path {path!r} at position {index}")
        token = name.group()
        parts.append(f"[{token}]" if token.startswith("*") else _deepdiff_key(token))
        index = name.end()
    return "".join(parts)


@dataclasses.dataclass(frozen=True)
class _Difference:
    path: tuple[PathElement, ...]
    kind: str
    expected: Any = None
    actual: Any = None
    expected_count: int = 0
    actual_count: int = 0

    def line(self, tolerance_note: str) -> str:
        where = format_path(self.path)
        expected, actual = _short(self.expected), _short(self.actual)
        if self.kind == "changed":
            suffix = ""
            if tolerance_note and _is_number(self.expected) and _is_number(self.actual):
                suffix = f" (beyond {tolerance_note})"
            return f"{where}: {expected} != {actual}{suffix}"
        if self.kind == "type_changed":
            return (
                f"{where}: {expected} != {actual} ({_json_type(self.expected)} vs {_json_type(self.actual)})"
            )
        if self.kind == "missing":
            return f"{where}: missing in actual (expected {expected})"
        if self.kind == "unexpected":
            what = "key" if self.path and isinstance(self.path[-1], str) else "item"
            return f"{where}: unexpected {what} in actual (got {actual})"
        if self.kind == "repetition":
            return (
                f"{where}: {expected} occurs {self.expected_count} time(s) in expected "
                f"but {self.actual_count} in actual"
            )
        return f"{where}: {self.kind}"

    def record(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": format_path(self.path), "kind": self.kind}
        if self.kind in ("changed", "type_changed", "missing", "repetition"):
            entry["expected"] = self.expected
        if self.kind in ("changed", "type_changed", "unexpected"):
            entry["actual"] = self.actual
        if self.kind == "repetition":
            entry["expected_count"] = self.expected_count
            entry["actual_count"] = self.actual_count
        return entry


_DEEPDIFF_KINDS: Final = {
    "values_changed": "changed",
    "type_changes": "type_changed",
    "dictionary_item_removed": "missing",
    "iterable_item_removed": "missing",
    "dictionary_item_added": "unexpected",
    "iterable_item_added": "unexpected",
    "repetition_change": "repetition",
}


def _deep_differences(
    expected: Any,
    actual: Any,
    *,
    ignore_order: bool,
    close: Closeness | None,
    exclude_paths: list[str],
    exclude_regexes: list[re.Pattern[str]],
) -> list[_Difference]:
    from deepdiff import DeepDiff
    from deepdiff.path import parse_path as _parse_path

    parse_path: Callable[[str], list[PathElement]] = _parse_path  # untyped upstream

    options: dict[str, Any] = {
        "ignore_order": ignore_order,
        # With ignore_order deepdiff defaults to set semantics; a duplicated list item is a difference.
        "report_repetition": ignore_order,
        # JSON has one number type: 10 and 10.0 are the same value.
        "ignore_type_in_groups": [(int, float)],
        # Otherwise dicts sharing few keys are reported as one whole-value change, hiding which keys.
        "threshold_to_diff_deeper": 0,
        "view": "tree",
    }
    if exclude_paths:
        options["exclude_paths"] = exclude_paths
    if exclude_regexes:
        rendered: dict[str, str] = {}

        def excluded(obj: Any, deepdiff_path: str) -> bool:
            if deepdiff_path not in rendered:
                rendered[deepdiff_path] = format_path(parse_path(deepdiff_path))
            return any(regex.search(rendered[deepdiff_path]) for regex in exclude_regexes)

        options["exclude_obj_callback"] = excluded
    if close is not None:
        options["custom_operators"] = [_NumericTolerance(close)]

    tree = DeepDiff(_mark_bools(expected), _mark_bools(actual), **options).tree
    differences: list[_Difference] = []
    for report_type, levels in tree.items():
        kind = _DEEPDIFF_KINDS.get(report_type, report_type)
        for level in levels:
            path = tuple(level.path(output_format="list"))
            t1 = _unmark_bools(level.t1)
            t2 = _unmark_bools(level.t2)
            if kind == "repetition":
                repetition = level.additional.get("repetition", {})
                differences.append(
                    _Difference(
                        path,
                        kind,
                        expected=t1,
                        expected_count=int(repetition.get("old_repeat", 0)),
                        actual_count=int(repetition.get("new_repeat", 0)),
                    )
                )
            else:
                differences.append(
                    _Difference(
                        path,
                        kind,
                        expected=None if kind == "unexpected" else t1,
                        actual=None if kind == "missing" else t2,
                    )
                )
    differences.sort(key=lambda difference: _path_sort_key(difference.path))
    return differences


def check_options(
    tolerance: float | None,
    abs_tolerance: float | None,
    exclude_paths: Sequence[str],
    exclude_regex_paths: Sequence[str],
) -> tuple[Closeness | None, list[Any], list[re.Pattern[str]]]:
    """Validate :func:`compare_structures` options (also on the baseline, which compares nothing)."""
    close = _closeness(tolerance, abs_tolerance)
    for name, paths in (("exclude_paths", exclude_paths), ("exclude_regex_paths", exclude_regex_paths)):
        if isinstance(paths, str):
            raise TypeError(f"{name} must be a sequence of str, not a single str")
    deepdiff_paths = [_to_deepdiff_path(path) for path in exclude_paths]
    regexes: list[re.Pattern[str]] = []
    for pattern in exclude_regex_paths:
        try:
            regexes.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"invalid regex in exclude_regex_paths {pattern!r}: {exc}") from None
    return close, deepdiff_paths, regexes


def compare_structures(
    expected: Any,
    actual: Any,
    *,
    ignore_order: bool = False,
    tolerance: float | None = None,
    abs_tolerance: float | None = None,
    exclude_paths: Sequence[str] = (),
    exclude_regex_paths: Sequence[str] = (),
    normalize: StringNormalization | None = None,
) -> Comparison:
    """Compare two JSON-like values structurally (``expected`` is the baseline provider's).

    * ``ignore_order``: lists are compared as multisets (a duplicated item is still a difference).
    * ``tolerance`` / ``abs_tolerance``: numbers are equal when ``math.isclose`` says so with that
      relative / absolute tolerance; booleans never equal numbers, and ``10 == 10.0``.
    * ``exclude_paths``: ``$.a[0].b``-style paths (``[*]`` matches one segment, ``..`` or ``[**]`` any
      number); deepdiff's own ``root['a']`` syntax is accepted too.
    * ``exclude_regex_paths``: regexes searched in the ``$.a[0].b`` rendering of each path.
    * ``normalize``: strings on both sides are normalised before diffing (the diff shows the normalised
      strings).

    Both values go through :func:`ensure_jsonable` first, so unsupported values raise
    :class:`NotSerializableError` naming ``expected`` or ``actual`` and the path.
    """
    close, deepdiff_paths, regexes = check_options(
        tolerance, abs_tolerance, exclude_paths, exclude_regex_paths
    )
    expected = ensure_jsonable(expected, where="expected")
    actual = ensure_jsonable(actual, where="actual")
    if normalize is not None:
        expected = _normalize_tree(expected, normalize, [])
        actual = _normalize_tree(actual, normalize, [])
    if close is not None:
        actual = _snap(expected, actual, close, ignore_order)

    differences = _deep_differences(
        expected,
        actual,
        ignore_order=ignore_order,
        close=close,
        exclude_paths=deepdiff_paths,
        exclude_regexes=regexes,
    )
    note = _tolerance_note(tolerance, abs_tolerance)
    lines = [difference.line(note) for difference in differences[:MAX_DIFF_LINES]]
    if len(differences) > MAX_DIFF_LINES:
        lines.append(f"... and {len(differences) - MAX_DIFF_LINES} more")
    raw: dict[str, Any] = {
        "equal": not differences,
        "total": len(differences),
        "differences": [difference.record() for difference in differences[:_MAX_RAW_DIFFERENCES]],
        "options": {
            "ignore_order": ignore_order,
            "tolerance": tolerance,
            "abs_tolerance": abs_tolerance,
            "exclude_paths": list(exclude_paths),
            "exclude_regex_paths": list(exclude_regex_paths),
            "normalize": normalize.describe() if normalize is not None else None,
        },
    }
    return Comparison(equal=not differences, diff_lines=tuple(lines), raw=raw)


def format_comparison(key: str, comparison: Comparison, baseline_provider: str, provider: str) -> str:
    """The assertion message for one observed ``key`` of ``provider`` against the baseline provider."""
    if comparison.equal:
        return f"{key!r} on {provider} matches baseline {baseline_provider}"
    body = "\n".join(f"  {line}" for line in comparison.diff_lines)
    return f"{key!r} on {provider} differs from baseline {baseline_provider}:\n{body}"
