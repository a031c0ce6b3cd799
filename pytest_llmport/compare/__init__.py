"""Schema checks and structural equivalence of LLM app outputs (pure core of the equivalence feature).

Three layers, each usable on its own, each in its own module:

* :func:`extract_json` (:mod:`.extract`) turns a model's raw text into a JSON value. Strict mode wants
  bare JSON; lenient mode also digs it out of Markdown code fences or surrounding prose (Chinese
  included) and says how it was wrapped, because "this provider wraps its JSON" is a portability finding
  in itself.
* :func:`check_schema` (:mod:`.schema`, :mod:`.typecheck`) validates a value (or raw text) against a JSON
  Schema dict, a pydantic model, a dataclass or a TypedDict, and reports every violation with its
  ``$.path``.
* :func:`compare_structures` (:mod:`.diff`, :mod:`.matching`, :mod:`.normalization`) decides whether a
  provider's output is structurally equivalent to the baseline's, with optional order-insensitivity,
  numeric tolerance, path exclusions and string normalisation, and renders a short ``$.path``-style diff.

:mod:`.messages` holds the two exceptions (:class:`SchemaError`, :class:`InvalidSchemaError`) and how values
appear in their messages.

Nothing here imports pytest or vcrpy, and the heavy dependencies (deepdiff, jsonschema, pydantic) are
only imported when a call needs them, so importing the package stays cheap. Every name stays importable
from ``pytest_llmport.compare``, where it lived when this was one module.
"""

from __future__ import annotations

from ..jsonvalue import NotSerializableError, format_path
from .diff import (
    MAX_DIFF_LINES,
    Comparison,
    check_options,
    compare_structures,
    ensure_jsonable,
    format_comparison,
)
from .extract import Extracted, Wrapper, extract_json
from .matching import Closeness
from .messages import MAX_SCHEMA_ERRORS, InvalidSchemaError, SchemaError
from .normalization import StringNormalization
from .schema import SchemaKind, SchemaResult, check_schema

__all__ = [
    "MAX_DIFF_LINES",
    "MAX_SCHEMA_ERRORS",
    "Closeness",
    "Comparison",
    "Extracted",
    "InvalidSchemaError",
    "NotSerializableError",
    "SchemaError",
    "SchemaKind",
    "SchemaResult",
    "StringNormalization",
    "Wrapper",
    "check_options",
    "check_schema",
    "compare_structures",
    "ensure_jsonable",
    "extract_json",
    "format_comparison",
    "format_path",
]
