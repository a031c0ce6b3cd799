"""aiohttp stub: ``ClientSession._request`` answered from the cassette, or recorded chunk by chunk.

The application always gets a :class:`_Response` (an ``aiohttp.ClientResponse``) whose ``content`` is a
real ``aiohttp.StreamReader``. While recording, a task reads the server's response chunk by chunk (HTTP
chunk boundaries kept) and feeds each chunk to that reader as it arrives, so the first one reaches the
application when the server sends it; the task reads to the end even when the application stops early,
so the cassette holds the whole response. On replay the reader is fed one recorded chunk each time the
application waits for data, so ``iter_any()``, ``iter_chunks()`` and ``readline()`` see the recorded
boundaries.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import urlencode

import aiohttp
from aiohttp import ClientResponse, ClientSession, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import Capture, incomplete, is_sse, lookup, multi_headers, replay_chunks

if TYPE_CHECKING:
    from ..recording import Router

_LIMIT = 2**16


class _Protocol:
    """What a ``StreamReader`` asks of its connection, for readers no socket feeds."""

    connected = True
    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        pass


_PROTOCOL = _Protocol()


class _ReplayReader(StreamReader):
    """A ``StreamReader`` that receives the next recorded chunk whenever a read would wait for data."""

    def __init__(
        self, chunks: list[bytes], error: BaseException | None, chunked: bool, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(_PROTOCOL, _LIMIT, loop=loop)  # type: ignore[arg-type]
        self._llmport_pending = deque(chunks)
        self._llmport_error = error
        self._llmport_chunked = chunked
        if chunked:
            self.begin_http_chunk_receiving()

    async def _wait(self, func_name: str) -> None:
        await asyncio.sleep(0)  # one chunk per turn of the event loop, as from a socket
        if self._llmport_pending:
            self.feed_data(self._llmport_pending.popleft())
            if self._llmport_chunked:
                self.end_http_chunk_receiving()
        elif self._llmport_error is not None:
            error, self._llmport_error = self._llmport_error, None
            self.set_exception(error)
            raise error
        elif not self.is_eof():
            self.feed_eof()


class _Response(ClientResponse):
    """A response built from a status line and headers instead of a live connection."""

    def __init__(
        self,
        session: ClientSession,
        method: str,
        url: URL,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        request_headers: Mapping[str, str],
        content: StreamReader,
    ) -> None:
        # ClientResponse.__init__ wants the request's writer task; set only what its methods read.
        self.method = method
        self._real_url = url
        self._url = url.with_fragment(None)
        self._request_info = aiohttp.RequestInfo(
            url, method, CIMultiDictProxy(CIMultiDict(request_headers)), url
        )
        self._cache: dict[str, Any] = {}
        self._traces = []
        self._loop = asyncio.get_running_loop()
        self._session = session
        self._resolve_charset = session._resolve_charset
        self.version = aiohttp.HttpVersion11
        self.status = status
        self.reason = reason
        self._headers = CIMultiDictProxy(CIMultiDict(headers))
        self._raw_headers = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
        self.content = content
        self._closed = False
        self._llmport_pump: asyncio.Task[None] | None = None
        content.on_eof(self._on_eof)

    def _on_eof(self) -> None:
        self._closed = True


def _error(kind: str, message: str) -> BaseException:
    """The exception aiohttp raises for a response cut short this way."""
    if kind == "read-timeout":
        timeout_error = getattr(aiohttp, "SocketTimeoutError", aiohttp.ServerTimeoutError)
        return timeout_error(message)
    if kind == "connection-reset":
        return aiohttp.ServerDisconnectedError(message)
    return aiohttp.ClientPayloadError(message)


def _kind(exc: BaseException) -> str | None:
    """How a response was cut short, from the exception aiohttp raised while it was read."""
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "read-timeout"
    if isinstance(exc, (ConnectionResetError, aiohttp.ServerDisconnectedError)):
        return "connection-reset"
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
        return "remote-protocol"
    return None


def _chunked(headers: Any) -> bool:
    return "chunked" in ",".join(headers.getall("Transfer-Encoding", ())).lower()


async def _request_body(session: ClientSession, kwargs: dict[str, Any]) -> bytes | None:
    """The body aiohttp will send; an async stream is read here and passed on as bytes."""
    if kwargs.get("json") is not None:
        return session._json_serialize(kwargs["json"]).encode("utf-8")
    data = kwargs.get("data")
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (dict, list, tuple)):
        return urlencode(data, doseq=True).encode("utf-8")
    if hasattr(data, "__aiter__"):
        body = b"".join([bytes(part) async for part in data])
        kwargs["data"] = body
        return body
    value = getattr(data, "_value", None)  # aiohttp's BytesPayload and friends
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(
        f"pytest-llmport cannot record an aiohttp request body of type {type(data).__name__}; "
        f"send bytes, str, a dict (form) or json="
    )


def aiohttp_patchers(router: Router) -> list[Any]:
    """``mock.patch`` objects replacing vcrpy's aiohttp stub."""
    real_request = ClientSession._request

    def replayed(session: ClientSession, method: str, url: URL, found: dict[str, Any]) -> _Response:
        headers = [(k, v) for k, values in (found.get("headers") or {}).items() for v in values]
        cut = incomplete(found)
        # Cassettes drop Transfer-Encoding; a body recorded in pieces, or an SSE one, came in HTTP chunks.
        chunked = bool((found.get("llmport") or {}).get("chunks")) or is_sse(found.get("headers") or {})
        reader = _ReplayReader(
            replay_chunks(found), _error(*cut) if cut else None, chunked, asyncio.get_running_loop()
        )
        status = found["status"]
        return _Response(
            session, method, url, status["code"], status.get("message") or "", headers, {}, reader
        )

    def recording(
        session: ClientSession, real: ClientResponse, finish: Callable[[Capture, Any], None]
    ) -> _Response:
        loop = asyncio.get_running_loop()
        reader = StreamReader(_PROTOCOL, _LIMIT, loop=loop)  # type: ignore[arg-type]
        headers = list(real.headers.items())
        response = _Response(
            session, real.method, real.url, real.status, real.reason or "", headers, {}, reader
        )
        capture = Capture()
        chunked = _chunked(real.headers)

        async def pump() -> None:
            if chunked:
                reader.begin_http_chunk_receiving()
            try:
                while True:
                    data, end_of_chunk = await real.content.readchunk()
                    if data:
                        capture.add(data)
                        reader.feed_data(data)
                    if end_of_chunk and chunked:
                        reader.end_http_chunk_receiving()
                    elif not data:
                        break
            except Exception as exc:
                kind = _kind(exc)
                if kind is not None:
                    finish(capture, (kind, str(exc) or type(exc).__name__))
                reader.set_exception(exc)
            else:
                finish(capture, None)
                reader.feed_eof()
            finally:
                real.release()

        response._llmport_pump = loop.create_task(pump())
        return response

    async def _request(self: ClientSession, method: str, str_or_url: Any, **kwargs: Any) -> ClientResponse:
        url = self._build_url(str_or_url)
        if router.current_for(method.upper(), str(url)) is None:
            return await real_request(self, method, str_or_url, **kwargs)
        if kwargs.get("params"):
            url = url.extend_query(kwargs["params"])
        body = await _request_body(self, kwargs)

        def request_headers() -> dict[str, str]:
            # Plain str: multidict's keys are istr, which the YAML serializer refuses.
            merged = {**dict(self.headers), **dict(kwargs.get("headers") or {})}
            return {str(k): str(v) for k, v in merged.items()}

        sent, found = lookup(router, method.upper(), str(url), body, request_headers)
        raise_for_status = kwargs.pop("raise_for_status", None)
        if raise_for_status is None:
            raise_for_status = self._raise_for_status
        if found is not None:
            response = replayed(self, method.upper(), url, found)
        else:
            cassette = router.current
            assert cassette is not None  # checked by current_for above
            real = await real_request(self, method, str_or_url, raise_for_status=False, **kwargs)
            auto_decompress = kwargs.get("auto_decompress")
            # Read still compressed only when the body is compressed: litellm's aiohttp transport turns
            # decompression off on every request and lets httpx decode, and a plain stream keeps its chunks.
            encoded = not (self.auto_decompress if auto_decompress is None else auto_decompress) and (
                real.headers.get("Content-Encoding", "").strip().lower() not in ("", "identity")
            )

            def finish(capture: Capture, cut: Any) -> None:
                headers = multi_headers(real.headers.items())
                cassette.append(sent, capture.response(real.status, real.reason or "", headers, cut, encoded))

            response = recording(self, real, finish)
        await _check_status(response, raise_for_status)
        return response

    return [mock.patch.object(ClientSession, "_request", _request)]


async def _check_status(response: ClientResponse, raise_for_status: Any) -> None:
    # Done here rather than by the real _request, so a recorded error response is stored before it raises.
    if raise_for_status is True:
        response.raise_for_status()
    elif callable(raise_for_status):
        checked: Awaitable[None] = raise_for_status(response)
        await checked
