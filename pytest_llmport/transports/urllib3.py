"""urllib3 stub (and so ``requests``): ``HTTPConnectionPool.urlopen`` answered from the cassette or recorded.

The application always gets a :class:`_Response` (a ``urllib3.HTTPResponse``) reading from a chunk
source. While recording the source pulls the server's response one HTTP chunk (or one socket read) at a
time, only when the application asks for more, so ``requests``' ``iter_content``/``iter_lines`` with
``stream=True`` see the first event when the server sends it; closing or releasing the response early
reads the rest, so the cassette holds it whole. On replay the source hands out the recorded chunks, and
``stream()`` (what ``requests`` iterates) yields them with their recorded boundaries.

The body is handed over decoded, without a ``Content-Encoding`` header, recording and replay alike.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, cast
from unittest import mock

from urllib3._collections import HTTPHeaderDict
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.response import HTTPResponse

from . import Capture, incomplete, lookup, multi_headers, replay_chunks

if TYPE_CHECKING:
    from ..recording import Router

_READ = 2**16


class _Source:
    """A file-like body that yields one chunk at a time; ``read(n)`` never joins two chunks."""

    def __init__(self, next_chunk: Callable[[], bytes | None], finish_early: Callable[[], None]) -> None:
        self._next = next_chunk
        self._finish_early = finish_early
        self._current = b""
        self._done = False

    def read_piece(self, amt: int | None) -> bytes:
        """Up to ``amt`` bytes of the current chunk, taking the next chunk when it is used up."""
        while not self._current:
            if self._done:
                return b""
            chunk = self._next()
            if chunk is None:
                self._done = True
                return b""
            self._current = chunk
        if amt is None or amt < 0:
            piece, self._current = self._current, b""
        else:
            piece, self._current = self._current[:amt], self._current[amt:]
        return piece

    def read(self, amt: int | None = None) -> bytes:
        if amt is None or amt < 0:
            return b"".join(iter(lambda: self.read_piece(None), b""))
        return self.read_piece(amt)

    read1 = read_piece

    def isclosed(self) -> bool:
        return self._done and not self._current

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._finish_early()


class _Response(HTTPResponse):
    """A ``urllib3.HTTPResponse`` over a :class:`_Source`, streaming chunk by chunk."""

    _fp: Any

    def stream(self, amt: int | None = _READ, decode_content: bool | None = None) -> Generator[bytes]:
        # urllib3's own stream() joins chunks until ``amt`` bytes; a socket hands over what has arrived.
        if amt == 0:
            return
        buffered = self._decoded_buffer.get_all() if len(self._decoded_buffer) else b""
        if buffered:
            yield buffered
        while True:
            piece = self._fp.read_piece(amt)
            if not piece:
                return
            yield piece

    def release_conn(self) -> None:
        self._fp.close()

    def drain_conn(self) -> None:
        self._fp.close()


def _error(kind: str, message: str, url: str) -> Exception:
    """The exception urllib3 raises for a response cut short this way (requests wraps it as usual)."""
    if kind == "read-timeout":
        return ReadTimeoutError(None, url, message)  # type: ignore[arg-type]
    if kind == "connection-reset":
        return ProtocolError(f"Connection broken: {message}", ConnectionResetError(104, message))
    return ProtocolError(message)


def _kind(exc: BaseException) -> str | None:
    if isinstance(exc, ReadTimeoutError):
        return "read-timeout"
    if isinstance(exc, ProtocolError):
        return (
            "connection-reset"
            if any(isinstance(a, ConnectionResetError) for a in exc.args)
            else "remote-protocol"
        )
    return None


def _full_url(pool: HTTPConnectionPool, url: str) -> str:
    if "://" in url:
        return url
    host = pool.host or ""
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    default = {"http": 80, "https": 443}.get(pool.scheme or "http")
    port = "" if pool.port in (None, default) else f":{pool.port}"
    return f"{pool.scheme}://{host}{port}{url}"


def _body(body: Any) -> tuple[bytes | None, Any]:
    """``(bytes for the cassette, body to send)``: a file or an iterator is read once and sent as bytes."""
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode("utf-8"), body
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), body
    if hasattr(body, "read"):
        data = body.read()
        data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return data, data
    data = b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in body)
    return data, data


def _live(real: Any) -> Callable[[], bytes | None]:
    """The next piece of the real response as the server sends it (one HTTP chunk, or one read)."""
    pieces: Iterator[bytes] | None = None
    if real.chunked and real.supports_chunked_reads():
        pieces = real.read_chunked(None, decode_content=True)

    def next_chunk() -> bytes | None:
        if pieces is not None:
            return next(pieces, None)
        read1 = getattr(real, "read1", None)
        data = (
            read1(_READ, decode_content=True) if read1 is not None else real.read(_READ, decode_content=True)
        )
        return data or None

    return next_chunk


def urllib3_patchers(router: Router) -> list[Any]:
    """``mock.patch`` objects replacing vcrpy's urllib3 and requests stubs."""
    real_urlopen = HTTPConnectionPool.urlopen

    def build(
        source: _Source,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        method: str,
        url: str,
        preload: bool,
        retries: Any,
    ) -> _Response:
        response = _Response(
            body=cast(Any, source),
            headers=HTTPHeaderDict([(k, v) for k, v in headers if k.lower() != "content-encoding"]),
            status=status,
            version=11,
            reason=reason,
            preload_content=False,
            decode_content=False,
            enforce_content_length=False,
            request_method=method,
            request_url=url,
            retries=retries,
        )
        if preload:
            response._body = response.read()
        return response

    def replayed(found: dict[str, Any], method: str, url: str, preload: bool, retries: Any) -> _Response:
        chunks = deque(replay_chunks(found))
        cut = incomplete(found)

        def next_chunk() -> bytes | None:
            if chunks:
                return chunks.popleft()
            if cut is not None:
                raise _error(*cut, url)
            return None

        headers = [(k, v) for k, values in (found.get("headers") or {}).items() for v in values]
        status = found["status"]
        return build(
            _Source(next_chunk, lambda: None),
            status["code"],
            status.get("message") or "",
            headers,
            method,
            url,
            preload,
            retries,
        )

    def urlopen(
        self: HTTPConnectionPool, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        full = _full_url(self, url)
        if router.current_for(method.upper(), full) is None:
            return real_urlopen(self, method, url, body, headers, **kwargs)
        started = time.perf_counter()
        recorded_body, body = _body(body)
        sent_headers = self.headers if headers is None else headers
        sent, found = lookup(
            router,
            method.upper(),
            full,
            recorded_body,
            lambda: {str(k): str(v) for k, v in dict(sent_headers).items()},
        )
        preload = kwargs.pop("preload_content", True)
        if found is not None:
            return replayed(found, method.upper(), full, preload, kwargs.get("retries"))
        cassette = router.current
        assert cassette is not None  # checked by current_for above
        real = real_urlopen(self, method, url, body, headers, preload_content=False, **kwargs)
        if isinstance(real, _Response):
            return real  # a retry or redirect urllib3 made itself, recorded by that nested call
        capture = Capture(started)
        pull = _live(real)

        def finish(cut: tuple[str, str] | None) -> None:
            if not capture.done:
                capture.done = True
                response = capture.response(
                    real.status, real.reason or "", multi_headers(real.headers.items()), cut
                )
                cassette.append(sent, response)

        def next_chunk() -> bytes | None:
            try:
                chunk = pull()
            except Exception as exc:
                kind = _kind(exc)
                if kind is not None:
                    finish((kind, str(exc) or type(exc).__name__))
                real.release_conn()
                raise
            if chunk is None:
                finish(None)
                real.release_conn()
                return None
            capture.add(chunk)
            return chunk

        def finish_early() -> None:
            # The application stopped reading; the cassette still needs the whole response.
            try:
                while next_chunk() is not None:
                    pass
            except Exception:  # noqa: S110 - already recorded as cut short; nobody is reading any more
                pass

        return build(
            _Source(next_chunk, finish_early),
            real.status,
            real.reason or "",
            list(real.headers.items()),
            method.upper(),
            full,
            preload,
            real.retries,
        )

    return [mock.patch.object(HTTPConnectionPool, "urlopen", urlopen)]
