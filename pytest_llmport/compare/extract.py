"""The package's one fence/JSON extractor: a model's raw text to a JSON value, and how it was wrapped.

Strict mode wants bare JSON; lenient mode also digs it out of Markdown code fences or surrounding prose
(Chinese included), skipping ``<think>`` blocks, and says how it was wrapped, because "this provider wraps
its JSON" is a portability finding in itself. ``ChatResult.json()``, ``llm_equiv.schema`` and the
similarity metrics' JSON handling all go through :func:`extract_json`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Final, Literal

from ..jsonvalue import type_label
from .messages import SchemaError, short

__all__ = ["Extracted", "Wrapper", "extract_json"]

Wrapper = Literal["code_fence", "prose_before", "prose_after", "prose_around"]


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
        + f"; output starts: {short(text)}"
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
        f"output starts: {short(text)}"
    )
