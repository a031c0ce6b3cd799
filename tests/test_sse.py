"""The one SSE splitter: event boundaries per the spec, the same for splitting, buffering and parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmport.sse import SSEEvent, complete_prefix, iter_events, split_events


@pytest.mark.parametrize(
    ("body", "pieces"),
    [
        (b"data: a\n\ndata: b\n\n", [b"data: a\n\n", b"data: b\n\n"]),
        (b"data: a\r\n\r\ndata: b\r\n\r\n", [b"data: a\r\n\r\n", b"data: b\r\n\r\n"]),
        (b"data: a\r\rdata: b", [b"data: a\r\r", b"data: b"]),
        # LF then CRLF, CRLF then LF, CR then CRLF: each an empty line, so each ends an event.
        (b"data: a\n\r\ndata: b\n\r\n", [b"data: a\n\r\n", b"data: b\n\r\n"]),
        (b"data: a\r\n\ndata: b", [b"data: a\r\n\n", b"data: b"]),
        (b"data: a\r\r\ndata: b", [b"data: a\r\r\n", b"data: b"]),
        # A CRLF is one line end: two lines, one event.
        (b"id: 1\r\ndata: a\r\n\r\n", [b"id: 1\r\ndata: a\r\n\r\n"]),
        (b"data: unterminated", [b"data: unterminated"]),
        (b"", []),
    ],
)
def test_split_events(body: bytes, pieces: list[bytes]) -> None:
    assert split_events(body) == pieces
    assert b"".join(pieces) == body


def test_mixed_line_ends_parse_as_two_events() -> None:
    assert iter_events("data: a\n\r\ndata: b\n\r\n") == [SSEEvent(None, "a", None), SSEEvent(None, "b", None)]


def test_complete_prefix() -> None:
    assert complete_prefix(b"data: a") == 0
    assert complete_prefix(b"data: a\n\ndata: b") == len(b"data: a\n\n")
    assert complete_prefix(b"data: a\n\r\ndata: b\n") == len(b"data: a\n\r\n")


_LINE = st.sampled_from(["data: x", "data:y", "event: e", "id: 7", ": note", "data: 你好", "", "retry: 1"])
_END = st.sampled_from(["\n", "\r\n", "\r"])


@given(st.lists(st.tuples(_LINE, _END), max_size=12))
def test_splitting_never_moves_an_event_boundary(lines: list[tuple[str, str]]) -> None:
    text = "".join(line + end for line, end in lines)
    body = text.encode()
    pieces = split_events(body)
    assert b"".join(pieces) == body
    # Parsing the pieces one by one gives the events of parsing the whole body.
    assert [event for piece in pieces for event in iter_events(piece.decode())] == iter_events(text)
    # Every piece but the last ends exactly at an event boundary, and holds just one.
    for piece in pieces[:-1]:
        assert complete_prefix(piece) == len(piece)
        assert len(split_events(piece)) == 1
