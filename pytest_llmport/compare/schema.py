"""Schema checks: an output against a JSON Schema dict, a pydantic model, a dataclass or a TypedDict.

:func:`check_schema` reports every violation with its ``$.path``; jsonschema is imported only for a JSON
Schema dict, and pydantic is never imported here (a pydantic model exists only if the app imported it).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from ..jsonvalue import PathElement, format_path, type_label
from .extract import Extracted, extract_json
from .messages import InvalidSchemaError, SchemaError, path_sort_key, render_errors, short
from .typecheck import (
    TypeChecker,
    is_pydantic_model_class,
    is_typeddict,
    pydantic_error_line,
    pydantic_module,
)

__all__ = ["SchemaKind", "SchemaResult", "check_schema"]

SchemaKind = Literal["json_schema", "pydantic", "dataclass", "typeddict"]


@dataclasses.dataclass(frozen=True)
class SchemaResult(Extracted):
    """A value that passed :func:`check_schema`; for pydantic and dataclass schemas, the built instance."""

    schema_kind: SchemaKind


_ACCEPTED_SCHEMAS: Final = (
    "a JSON Schema dict, a pydantic BaseModel subclass, a dataclass type or a TypedDict type"
)


def _schema_kind(schema: Any) -> SchemaKind:
    if isinstance(schema, dict):
        return "json_schema"
    if isinstance(schema, type):
        if is_pydantic_model_class(schema):
            return "pydantic"
        if dataclasses.is_dataclass(schema):
            return "dataclass"
        if is_typeddict(schema):
            return "typeddict"
        raise InvalidSchemaError(
            f"unsupported schema: class {type_label(schema)}; expected {_ACCEPTED_SCHEMAS}"
        )
    hint = ""
    if isinstance(schema, str):
        hint = " (a JSON Schema document must be parsed with json.loads first)"
    elif dataclasses.is_dataclass(schema) or is_pydantic_model_class(type(schema)):
        hint = f" (pass the class {type(schema).__name__} itself, not an instance)"
    raise InvalidSchemaError(
        f"unsupported schema: {short(schema)} of type {type_label(type(schema))}{hint}; "
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
                f"the dict is not a usable JSON Schema: unknown $schema {short(schema['$schema'])}"
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
        errors = sorted(validator.iter_errors(value), key=lambda e: path_sort_key(list(e.absolute_path)))
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
            expectation = f"one of {short(error.validator_value)}"
        elif keyword == "const":
            expectation = f"exactly {short(error.validator_value)}"
        else:
            expectation = f"{keyword} {short(error.validator_value)}"
            if keyword not in _SELF_EXPLAINING_KEYWORDS:
                expectation += f" ({short(error.message, 120)[1:-1]})"
        add(f"{format_path(path)}: got {short(instance)}; expected {expectation}")
    return lines


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
        pydantic = pydantic_module()
        try:
            value = schema.model_validate(value)
        except pydantic.ValidationError as exc:
            errors = [pydantic_error_line(error, ()) for error in exc.errors(include_url=False)]
        else:
            errors = []
        description = f"pydantic model {schema.__name__}"
    else:
        checker = TypeChecker()
        value = checker.check(value, schema, [])
        errors = checker.errors
        description = f"{'dataclass' if kind == 'dataclass' else 'TypedDict'} {schema.__name__}"
    if errors:
        raise SchemaError(render_errors(f"value does not match {description}", errors), errors)
    return SchemaResult(value=value, bare=bare, wrapper=wrapper, schema_kind=kind)
