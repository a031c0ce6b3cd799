"""What every transport stub shares: cassette lookup, recorded chunks, cut-short responses.

The stubs of :mod:`.aiohttp` and :mod:`.urllib3` (which also carries ``requests``) replace vcrpy's own
patchers for those libraries, because vcrpy reads a response to the end before the application sees its
first byte and replays it as one piece. Ours hand each chunk on as it arrives while recording and note
the chunk lengths in the response's ``llmport.chunks``; replay hands the recorded chunks over one by one.

A response that was cut short (the peer closed mid-body, a read timed out, the connection was reset) is
kept with exactly the bytes that arrived and ``llmport.incomplete`` = ``{"error": kind, "message": ...}``;
replay delivers those bytes and then makes the client raise its own error of that kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cassettes import HttpRequest
from ..sse import split_events

if TYPE_CHECKING:
    from ..recording import Router

INCOMPLETE_KINDS = ("remote-protocol", "read-timeout", "connection-reset")


def lookup(
    router: Router, method: str, uri: str, body: bytes | None, headers: Callable[[], Mapping[str, str]]
) -> tuple[HttpRequest | None, dict[str, Any] | None]:
    """``(None, recorded response)`` to replay, or ``(request, None)`` to record; raises if neither may."""
    cassette = router.current
    assert cassette is not None
    # A loaded cassette: one lookup that plays or fails; matching ignores headers, so they are only
    # copied when the request may be recorded.
    recorded = cassette.replay(method, uri, body)
    if recorded is not None:
        return None, recorded
    request = HttpRequest(method, uri, body, dict(headers()))
    router.admit(request)  # another host than the provider's: refused before it leaves
    if cassette.write_protected:
        raise router.refusal(request)
    # Sent for real from here; appending its response takes it off (a failed transfer stays: broken).
    cassette.pending[id(request)] = request
    return request, None


def patchers(router: Router) -> list[Any]:
    """``mock.patch`` objects for every installed library among aiohttp and urllib3 (requests)."""
    result: list[Any] = []
    try:
        from .aiohttp import aiohttp_patchers
    except ImportError:
        pass
    else:
        result.extend(aiohttp_patchers(router))
    try:
        from .urllib3 import urllib3_patchers
    except ImportError:
        pass
    else:
        result.extend(urllib3_patchers(router))
    return result


def header_values(headers: Mapping[str, list[str]], name: str) -> str:
    lowered = name.lower()
    return ",".join(v for k, values in headers.items() if k.lower() == lowered for v in values)


def is_sse(headers: Mapping[str, list[str]]) -> bool:
    return "text/event-stream" in header_values(headers, "content-type").lower()


def recorded_body(recorded: Mapping[str, Any]) -> bytes:
    body = (recorded.get("body") or {}).get("string", b"")
    return body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")


def replay_chunks(recorded: Mapping[str, Any]) -> list[bytes]:
    """The body in the pieces the server sent it (``llmport.chunks``); else SSE events; else one piece."""
    body = recorded_body(recorded)
    lengths = (recorded.get("llmport") or {}).get("chunks")
    # Scrubbing may have changed the body's length since recording: then the lengths no longer apply.
    if (
        isinstance(lengths, list)
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in lengths)
        and sum(lengths) == len(body)
    ):
        chunks, start = [], 0
        for length in lengths:
            chunks.append(body[start : start + length])
            start += length
        return chunks
    if is_sse(recorded.get("headers") or {}):
        return split_events(body)
    return [body] if body else []


def incomplete(recorded: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(kind, message)`` when the recorded response was cut short."""
    value = (recorded.get("llmport") or {}).get("incomplete")
    if not isinstance(value, Mapping):
        return None
    kind = value.get("error")
    if kind not in INCOMPLETE_KINDS:
        kind = "remote-protocol"
    return str(kind), str(value.get("message") or "the response was cut short while it was recorded")


@dataclass
class Capture:
    """The chunks of one response as they arrive, and when."""

    started: float = field(default_factory=time.perf_counter)
    chunks: list[bytes] = field(default_factory=list)
    first: float | None = None
    done: bool = False

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.first is None:
            self.first = time.perf_counter()
        self.chunks.append(chunk)

    def response(
        self,
        status: int,
        reason: str,
        headers: dict[str, list[str]],
        cut_short: tuple[str, str] | None = None,
        encoded: bool = False,
    ) -> dict[str, Any]:
        """The cassette's response: the body decoded, and the lengths of the chunks the application got.

        ``encoded`` says the application read the body still compressed (aiohttp's
        ``auto_decompress=False``): it is stored decompressed, without chunk lengths.
        """
        now = time.perf_counter()
        first = self.first if self.first is not None else now
        body = b"".join(self.chunks)
        chunks = self.chunks
        if encoded:
            from ..recording import _decode_body, _decode_partial

            headers = dict(headers)
            # A compressed body cut short decodes as far as it arrived.
            body = (_decode_body if cut_short is None else _decode_partial)(body, headers)
            chunks = []  # compressed pieces say nothing about the decoded body's: replay splits by events
        else:
            # The application got decoded bytes, so the stored headers must not claim an encoding.
            headers = {k: v for k, v in headers.items() if k.lower() != "content-encoding"}
        response: dict[str, Any] = {
            "status": {"code": status, "message": reason},
            "headers": headers,
            "body": {"string": body},
            "timing": {
                "first_byte_ms": round((first - self.started) * 1000, 1),
                "total_ms": round((now - self.started) * 1000, 1),
            },
        }
        meta: dict[str, Any] = {}
        if chunks and (len(chunks) > 1 or is_sse(headers)):
            meta["chunks"] = [len(chunk) for chunk in chunks]
        if cut_short is not None:
            meta["incomplete"] = {"error": cut_short[0], "message": cut_short[1]}
        if meta:
            response["llmport"] = meta
        return response


def multi_headers(items: Any) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for name, value in items:
        result.setdefault(str(name), []).append(str(value))
    return result
