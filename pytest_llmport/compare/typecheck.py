"""JSON data checked against Python type annotations (dataclasses, TypedDicts and what they hold).

Also the one test for "is this a TypedDict / a pydantic model class", used by the schema checks and by
:mod:`pytest_llmport.strategies`.

Why not pydantic's ``TypeAdapter`` (measured with pydantic 2.14.4): it accepts ``true`` and ``1.0`` for
``Literal[1]`` even in strict mode (and converts them, hiding the difference: a false "ok"), it refuses a
``typing.TypedDict`` on Python < 3.12 (this package supports 3.10), and pydantic is not a dependency.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, Union

from ..jsonvalue import PathElement, format_path
from .messages import InvalidSchemaError, is_number, short

__all__ = ["TypeChecker", "is_pydantic_model_class", "is_typeddict", "pydantic_error_line", "pydantic_module"]


def pydantic_module() -> Any:
    """The pydantic module if something imported it already, else None (never imports it)."""
    # A pydantic model can only exist if pydantic was imported already, so never import it ourselves.
    return sys.modules.get("pydantic")


def is_pydantic_model_class(candidate: Any) -> bool:
    """Whether ``candidate`` is a pydantic ``BaseModel`` subclass."""
    pydantic = pydantic_module()
    return pydantic is not None and isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel)


def is_typeddict(candidate: Any) -> bool:
    """Whether ``candidate`` is a TypedDict class (``typing``'s or ``typing_extensions``')."""
    # Duck-typed so typing_extensions.TypedDict classes count too.
    return (
        isinstance(candidate, type)
        and issubclass(candidate, dict)
        and hasattr(candidate, "__required_keys__")
        and hasattr(candidate, "__optional_keys__")
    )


def pydantic_error_line(error: Mapping[str, Any], prefix: Sequence[PathElement]) -> str:
    """One pydantic validation error as a ``$.path: ...`` line, below the path ``prefix``."""
    path = format_path([*prefix, *error.get("loc", ())])
    message = error.get("msg", "invalid")
    kind = error.get("type")
    if kind == "missing":
        return f"{path}: missing; {message}"
    if kind == "extra_forbidden":
        return f"{path}: unexpected key; {message}"
    return f"{path}: got {short(error.get('input'))}; {message}"


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


class TypeChecker:
    """Checks JSON data against Python type annotations, building dataclass instances on the way."""

    def __init__(self, hints_cache: dict[type, dict[str, Any]] | None = None) -> None:
        self.errors: list[str] = []
        self._hints = hints_cache if hints_cache is not None else {}

    def fail(self, path: Sequence[PathElement], message: str) -> Any:
        self.errors.append(f"{format_path(path)}: {message}")
        return _INVALID

    def mismatch(self, value: Any, expected: str, path: Sequence[PathElement]) -> Any:
        return self.fail(path, f"got {short(value)}; expected {expected}")

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
            return self.mismatch(value, f"one of {short(list(args))}", path)
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
            trial = TypeChecker(self._hints)
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
            return value if is_number(value) and isinstance(value, int) else self.mismatch(value, "int", path)
        if cls is float:
            # PEP 484 lets an int stand for a float, and JSON "10" for 10.0 is common.
            return float(value) if is_number(value) else self.mismatch(value, "float", path)
        if cls is str:
            return value if isinstance(value, str) else self.mismatch(value, "str", path)
        if issubclass(cls, enum.Enum):
            try:
                return cls(value)
            except ValueError:
                return self.mismatch(value, f"one of {short([member.value for member in cls])}", path)
        if dataclasses.is_dataclass(cls):
            return self._check_dataclass(value, cls, path)
        if is_typeddict(cls):
            return self._check_typeddict(value, cls, path)
        if is_pydantic_model_class(cls):
            try:
                return typing.cast(Any, cls).model_validate(value)
            except pydantic_module().ValidationError as exc:
                self.errors.extend(
                    pydantic_error_line(error, path) for error in exc.errors(include_url=False)
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
