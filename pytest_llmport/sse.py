"""Server-Sent Events framing: the one place that knows where an SSE line and an SSE event end.

Pure module (standard library only). Per the WHATWG HTML spec a line ends with CRLF, LF or CR, and an
event ends at an empty line, that is at two line ends in a row: ``\\n\\n``, ``\\r\\n\\r\\n``, ``\\r\\r``
and the mixed ``\\n\\r\\n``, ``\\r\\n\\n``, ``\\r\\r\\n``. The recorder splits bodies into events with
:func:`split_events`, the chat helper finds complete events in a growing buffer with
:func:`complete_prefix`, and the normaliser parses them with :func:`iter_events`; all three read line ends
the same way, so an event boundary one of them sees is one the others see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SSEEvent", "complete_prefix", "iter_events", "split_events"]

_LINE_END = re.compile(r"\r\n|\r|\n")
# A CR directly followed by LF is one line end (CRLF), never a CR line end and then an LF one.
_EVENT_END = re.compile(rb"(?:\r\n|\n|\r(?!\n))(?:\r\n|\n|\r)")


@dataclass(frozen=True)
class SSEEvent:
    event: str | None
    data: str | None
    id: str | None
    comments: tuple[str, ...] = ()


def split_events(body: bytes) -> list[bytes]:
    """Split an SSE body into its events, delimiters kept; an unterminated tail is the last piece."""
    pieces, start = [], 0
    for match in _EVENT_END.finditer(body):
        pieces.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        pieces.append(body[start:])
    return pieces


def complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of ``data`` made of whole events (0 when no event is complete yet)."""
    end = 0
    for match in _EVENT_END.finditer(data):
        end = match.end()
    return end


def iter_events(text: str) -> list[SSEEvent]:
    """Parse an SSE body into events.

    Tolerant on purpose: ``data:`` with or without a space, CR/LF/CRLF line ends, comment lines, a missing
    final blank line. One deviation from the spec: an ``id:``/``event:`` line arriving after the current
    event already has data starts a new event, because some captures (hand-edited DashScope fixtures) drop
    the blank separator and no real server sends those fields after ``data:``.
    """
    events: list[SSEEvent] = []
    name: str | None = None
    ident: str | None = None
    data: list[str] = []
    comments: list[str] = []

    def flush() -> None:
        nonlocal name, ident, data, comments
        if name is not None or ident is not None or data or comments:
            events.append(SSEEvent(name, "\n".join(data) if data else None, ident, tuple(comments)))
        name, ident, data, comments = None, None, [], []

    # splitlines() is not used: it also breaks on U+2028 and friends, which JSON may carry raw.
    for line in _LINE_END.split(text.lstrip("\ufeff")):
        if not line:
            flush()
            continue
        if line.startswith(":"):
            comments.append(line[1:].lstrip(" "))
            continue
        key, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        key = key.strip()
        if key in ("event", "id") and data:
            flush()
        if key == "data":
            data.append(value)
        elif key == "event":
            name = value
        elif key == "id":
            ident = value
    flush()
    return events
