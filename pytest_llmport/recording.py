"""All vcrpy use: one cassette per test and provider, HTTP clients patched once per run of marked tests.

Speed comes from not re-patching: vcrpy's patchers (``http.client``, ``boto3``, ``httplib2``, ``tornado``)
and our own stubs (httpx/httpx2 here, aiohttp and urllib3/requests in :mod:`pytest_llmport.transports`) are
installed when the first marked test starts and removed when the next test is not marked. They talk to
a :class:`Router`, which forwards to the current test's cassette. Per test only the cassette itself is
loaded; :class:`Recorder` holds that run-wide part (parsed-cassette cache, patches, routing) for the run.

vcrpy is used here only, for its patchers and the cassette protocol its stubs speak; the cassette
itself (:class:`LlmportCassette`) and the replay lookup (:mod:`pytest_llmport.index`) are our own.

httpx and httpx2 (the transport of the ``openai`` and ``zhipuai`` SDKs) get stubs of our own instead of
vcrpy's, because vcrpy's read a streamed response to the end before the application sees its first byte,
and replay it as one piece. Ours pass chunks through as they arrive while recording, and replay a
Server-Sent Events body one event at a time.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import errno
import sys
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from unittest import mock

import vcr.patch
from vcr.patch import CassettePatcherBuilder

from .cassettes import AtomicPersister, HttpRequest, WithHeader, explain_mismatch
from .errors import (
    ForeignRequestError,
    LazyText,
    NoRecordedResponseError,
    UnrecordedExampleError,
    UnrecordedRequestRefused,
)
from .guard import Threads, background_hint
from .identity import ProviderIdentity
from .index import RequestIndex
from .scrub import Scrubber, blank_body, blank_query
from .transports import Capture, replay_chunks
from .transports import patchers as transport_patchers

if TYPE_CHECKING:
    from .config import RecordingOptions


@dataclass
class ItemRecording:
    """What happens to one test on one provider."""

    nodeid: str
    provider: str
    path: Path
    record_mode: str
    record_hint: str | LazyText  # built only when a message shows it
    replaying: bool
    cassette: LlmportCassette
    property_based: bool = False
    unmatched: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    #: Scrubs a message the plugin builds before anyone sees it.
    scrub: Callable[[str], str] = str
    identity: ProviderIdentity | None = None
    # Threads running when the test started; requests from them are background traffic, not the test's.
    threads: Threads | None = None
    background: list[dict[str, str]] = field(default_factory=list)

    def note_background(self, method: str, url: str, thread: threading.Thread) -> None:
        scrubbed = self.cassette.filter_request(HttpRequest(method, url, b"", {})).uri
        entry = {"url": scrubbed, "method": method, "thread": thread.name, "hint": background_hint(url)}
        if entry not in self.background:
            self.background.append(entry)

    @property
    def pending(self) -> dict[int, HttpRequest]:
        """Requests sent to the provider whose exchange is not in the cassette (yet)."""
        return self.cassette.pending


class LlmportCassette:
    """One test's cassette on one provider: the interactions loaded from its file, then those recorded.

    vcrpy's patchers (``http.client``, ``boto3``, ``tornado``, ``httplib2``) talk to it through the
    :class:`Router` in vcrpy's cassette protocol (``can_play_response_for``, ``play_response``,
    ``write_protected``, ``filter_request``, ``append``); our own stubs call :meth:`replay` instead, one
    index lookup per request (:class:`~pytest_llmport.index.RequestIndex`) and no vcrpy object built.

    What it loads is trusted: the persister verified each body against its seal, and the file was
    scrubbed when it was recorded, so loading neither scrubs nor copies. Matching scrubs nothing either:
    a recorded ``<REDACTED:...>`` matches any value (see cassettes.py). Only :meth:`append` (what is
    recorded) and :meth:`filter_request` (what messages show) scrub.
    """

    allow_playback_repeats = False  # vcrpy's option: a recorded interaction answers once per test

    def __init__(
        self,
        path: Path,
        record_mode: str,
        scrub_request: Callable[[Any], HttpRequest],
        scrub_response: Callable[[dict[str, Any]], dict[str, Any]],
        persister: AtomicPersister,
    ) -> None:
        self.path = path
        self.record_mode = record_mode
        self.scrub_request = scrub_request
        self._scrub_response = scrub_response
        self.persister = persister
        self.data: list[tuple[HttpRequest, dict[str, Any]]] = []
        self.play_counts: collections.Counter[int] = collections.Counter()
        #: How many entries at the start of :attr:`data` came from the file.
        self.loaded_count = 0
        self.metadata: dict[str, Any] = {}
        #: The cassette's top-level ``llmport:`` mapping (provider, base URL ... it was recorded against).
        self.llmport: dict[str, Any] = {}
        self.dirty = False
        #: Loaded from a file: it can answer requests (vcrpy's name for it).
        self.rewound = False
        #: Requests sent for real and not recorded yet, by ``id``: every stub registers one it sends.
        self.pending: dict[int, Any] = {}
        self._index = RequestIndex()

    def load(self) -> None:
        """Read the file (not in record mode ``all``, which replaces it unread, even when damaged)."""
        if self.record_mode == "all":
            return
        try:
            requests, responses, metadata, header = self.persister.load_cassette(
                self.path, serializer=WithHeader(self.llmport)
            )
        except FileNotFoundError:
            return
        self.data = list(zip(requests, responses, strict=True))
        worked_out = [self._index.add(request) for request in requests]
        if any(worked_out):
            self.persister.mark_changed()  # the cache keeps the index's memo for the next run
        self.loaded_count = len(self.data)
        self.metadata = metadata
        self.llmport.update(header)
        self.dirty = False
        self.rewound = True

    @property
    def requests(self) -> list[HttpRequest]:
        return [request for request, _ in self.data]

    @property
    def write_protected(self) -> bool:
        return (self.rewound and self.record_mode == "once") or self.record_mode == "none"

    @property
    def answers(self) -> bool:
        """Recorded interactions may answer requests now (not while recording it whole)."""
        return self.record_mode != "all" and (self.rewound or self.allow_playback_repeats)

    def _available(self, position: int) -> bool:
        return self.allow_playback_repeats or self.play_counts[position] == 0

    def find(self, request: Any) -> int | None:
        """The position of the interaction that answers ``request`` (first in the file, not yet played)."""
        position = self._index.find(request, self._available)
        if self._index.learned:
            self._index.learned = False
            self.persister.mark_changed()  # the cache keeps the request's spelling for the next run
        return position

    def replay(self, method: str, uri: str, body: Any) -> dict[str, Any] | None:
        """The recorded response to play for this request, marked played; None when none answers."""
        if not self.answers:
            return None
        position = self.find(HttpRequest(method, uri, body, {}))
        if position is None:
            return None
        self.play_counts[position] += 1
        return without_retry_wait(self.data[position][1])

    # -- vcrpy's cassette protocol, for its patchers (through the Router) --------------------------
    def can_play_response_for(self, request: Any) -> bool:
        return self.answers and self.find(request) is not None

    def play_response(self, request: Any) -> dict[str, Any]:
        position = self.find(request)
        if position is None:
            raise LookupError(f"{self.path}: no recorded response for {request.method} {request.uri}")
        self.play_counts[position] += 1
        return without_retry_wait(self.data[position][1])

    def filter_request(self, request: Any) -> HttpRequest:
        return self.scrub_request(request)

    def append(self, request: Any, response: dict[str, Any]) -> None:
        """Record one exchange: the request and a copy of the response, both scrubbed."""
        self.pending.pop(id(request), None)
        scrubbed = self.scrub_request(request)
        self.data.append((scrubbed, self._scrub_response(copy.deepcopy(response))))
        self._index.add(scrubbed)
        self.dirty = True

    def mark_changed(self) -> None:
        """A summary was memoised on a loaded response: the parsed-cassette cache is written again."""
        self.persister.mark_changed()

    def save(self) -> None:
        """Write the cassette (whole, atomically): every interaction loaded and recorded."""
        requests = [request for request, _ in self.data]
        responses = [response for _, response in self.data]
        self.persister.save_cassette(
            self.path,
            {"requests": requests, "responses": responses, "metadata": self.metadata},
            serializer=WithHeader(self.llmport),
        )
        self.dirty = False


# SDKs sleep as long as a recorded answer asked before retrying (the openai SDK up to 60 s); a replay
# must not. Only delays an SDK would wait are shortened, so the retry decision itself stays the same.
_RETRY_HEADERS = ("retry-after", "retry-after-ms")
_MAX_HONOURED_WAIT = 60.0


def without_retry_wait(response: dict[str, Any]) -> dict[str, Any]:
    """The recorded response, with a numeric ``Retry-After`` of at most 60 s made "retry at once"."""
    headers = response.get("headers") or {}
    names = [name for name in headers if name.lower() in _RETRY_HEADERS]
    if not names:
        return response
    for name in names:
        values = headers[name]
        try:
            seconds = float(values[0] if isinstance(values, list) else values)
        except (TypeError, ValueError, IndexError):
            return response  # an HTTP date, or nothing an SDK reads as a delay
        if name.lower() == "retry-after-ms":
            seconds /= 1000
        if not 0 < seconds <= _MAX_HONOURED_WAIT:
            return response
    kept = {name: value for name, value in headers.items() if name.lower() not in _RETRY_HEADERS}
    # 0 for clients that read Retry-After (urllib3); 1 ms for the openai/anthropic SDKs, which treat 0 as
    # "no hint" and back off for half a second instead.
    kept.update({"Retry-After": ["0"], "retry-after-ms": ["1"]})
    return {**response, "headers": kept}


def open_cassette(
    path: Path,
    record_mode: str,
    scrubber: Scrubber,
    persister: AtomicPersister | None = None,
    options: RecordingOptions | None = None,
) -> LlmportCassette:
    """Load (or start) the cassette at ``path``; a corrupt file raises ``CorruptCassetteError``.

    ``options``: what configure_recording hooks asked for (fields recorded as placeholders).
    """
    ignore_query = frozenset(options.ignore_query) if options else frozenset()
    ignore_body = frozenset(options.ignore_body) if options else frozenset()

    def scrub_request(request: Any) -> HttpRequest:
        request = HttpRequest.of(request)
        uri, body = scrubber.uri(request.uri), scrubber.body(request.body)
        return HttpRequest(
            request.method,
            blank_query(uri, ignore_query) if ignore_query else uri,
            blank_body(body, ignore_body) if ignore_body else body,
            scrubber.request_headers(request.headers),
        )

    cassette = LlmportCassette(
        path, record_mode, scrub_request, scrubber.response, persister or AtomicPersister()
    )
    cassette.load()
    return cassette


_NO_REQUEST = HttpRequest("", "", None, {})  # what a replayed request leaves to record: nothing


class Router:
    """Stands in for a vcrpy ``Cassette`` inside every patched client and forwards to the current one."""

    # Our own stubs replace vcrpy's for these (see :mod:`pytest_llmport.transports`).
    skip_patchers = ("httpx", "httpx2", "aiohttp", "requests", "urllib3")

    def __init__(self) -> None:
        self.item: ItemRecording | None = None

    @property
    def current(self) -> LlmportCassette | None:
        item = self.item
        if item is None or (item.threads is not None and item.threads.is_background()):
            return None
        return item.cassette

    def current_for(self, method: str, url: str) -> LlmportCassette | None:
        """The cassette that answers this request, or None: no test runs, or it is background traffic.

        Background traffic (a request from a thread that was running before the test started) goes to
        the real transport unrecorded; while replaying, the network guard refuses it there.
        """
        item = self.item
        if item is None:
            return None
        thread = threading.current_thread()
        if item.threads is not None and item.threads.is_background(thread):
            item.note_background(method, url, thread)
            return None
        return item.cassette

    @property
    def _path(self) -> str:
        # vcrpy names the connection classes it builds after the cassette's path.
        return str(self.item.cassette.path) if self.item else "llmport"

    def can_play_response_for(self, request: Any) -> bool:
        cassette = self.current_for(request.method, request.uri)
        if cassette is None:
            return False
        if cassette.can_play_response_for(request):
            return True
        self.admit(request)
        if cassette.write_protected:
            # Raised here, before vcrpy builds its own error (which needs a real cassette).
            raise self.refusal(request)
        # vcrpy's stubs now send it; append() takes it off once its response is recorded.
        cassette.pending[id(request)] = request
        return False

    def refusal(self, request: Any) -> BaseException:
        """What a client stub raises for a request the cassette cannot answer while replaying.

        A connection error the client understands, so the application's ``except`` clauses run; the
        test still fails with the :meth:`no_match` message (noted here) when it ends.
        """
        error = self.no_match(request)
        if isinstance(error, UnrecordedExampleError):
            return error  # stops hypothesis at once, see UnrecordedExampleError
        return refused(str(error))

    def play_response(self, request: Any) -> Any:
        assert self.item is not None
        return self.item.cassette.play_response(request)

    @property
    def write_protected(self) -> bool:
        cassette = self.current
        return bool(cassette is not None and cassette.write_protected)

    def filter_request(self, request: Any) -> Any:
        cassette = self.current
        return cassette.filter_request(request) if cassette is not None else request

    def append(self, request: Any, response: Any) -> None:
        cassette = self.current
        if cassette is not None:
            cassette.append(request, response)

    def __getattr__(self, name: str) -> Any:
        # find_requests_with_most_matches, record_mode ... as vcrpy's own stubs and errors ask for them.
        item = self.__dict__.get("item")
        if item is None:
            raise AttributeError(name)
        return getattr(item.cassette, name)

    def admit(self, request: Any) -> None:
        """Refuse, before it leaves, a request the cassette does not answer that is not the provider's."""
        item = self.item
        if item is None or item.identity is None or item.identity.admits(request.uri):
            return
        scrubbed = item.cassette.filter_request(request)
        message = item.identity.refusal(item.nodeid, request.method, scrubbed.uri)
        item.blocked.append(message)
        raise ForeignRequestError(message)

    def no_match(self, request: Any) -> NoRecordedResponseError | UnrecordedExampleError:
        """Note a request the cassette cannot answer, and build the error that says why."""
        assert self.item is not None
        item = self.item
        cassette = item.cassette
        scrubbed = cassette.filter_request(request)
        message = (
            f"{item.nodeid}: no recorded response for {request.method} {scrubbed.uri} on provider "
            f"{item.provider!r}\n  cassette: {item.path} (record mode: {item.record_mode})\n"
            + "\n".join("  " + line for line in explain_mismatch(scrubbed, cassette.requests).splitlines())
            + f"\n  {item.record_hint}"
        )
        message = item.scrub(message)
        if item.property_based:
            message += (
                "\n  This is a property-based test: hypothesis generated an input that was never recorded, "
                "so its strategy, its settings or the hypothesis version changed since recording. "
                "Re-record the test whole with --llmport-record-mode=all."
            )
        item.unmatched.append(message)
        if item.property_based and item.replaying:
            return UnrecordedExampleError(message)
        return NoRecordedResponseError(message)


_refused_types: dict[tuple[int, ...], type[UnrecordedRequestRefused]] = {}


def refused(message: str) -> UnrecordedRequestRefused:
    """The connection error for an unanswerable request, of a type every patched client understands.

    The aiohttp and urllib3 stubs replace the whole request, so the library cannot wrap the error
    itself: it is also the library's own connection error (aiohttp's ``ClientOSError``, urllib3's
    ``ProtocolError``, which requests turns into ``ConnectionError``), for whichever are loaded.
    """
    bases: list[type] = [UnrecordedRequestRefused]
    aiohttp, urllib3 = sys.modules.get("aiohttp"), sys.modules.get("urllib3.exceptions")
    if aiohttp is not None:
        bases.append(aiohttp.ClientOSError)
    if urllib3 is not None:
        bases.append(urllib3.ProtocolError)
    key = tuple(id(base) for base in bases)
    error_type = _refused_types.get(key)
    if error_type is None:
        error_type = _refused_types[key] = type("UnrecordedRequestRefused", tuple(bases), {})
    return error_type(errno.ECONNREFUSED, message)


# -- httpx / httpx2 stubs -------------------------------------------------------------------------
def _headers_dict(items: Any) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for name, value in items:
        result.setdefault(name, []).append(value)
    return result


def _decode_body(content: bytes, headers: dict[str, list[str]]) -> bytes:
    # Store what the application reads, not the wire encoding, so cassettes stay readable.
    encoding = ",".join(headers.get("content-encoding", headers.get("Content-Encoding", []))).strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            content = _decompress(content, encoding)
        except zlib.error:
            # Not what the header says: keep the bytes and the header, so replay gives the client the
            # same decoding error it had (and the application handled) while recording.
            return content
        for name in ("content-encoding", "Content-Encoding"):
            headers.pop(name, None)
    return content


def _decode_partial(content: bytes, headers: dict[str, list[str]]) -> bytes:
    """What a client would have decoded of a compressed body cut short: everything that arrived."""
    encoding = ",".join(headers.get("content-encoding", headers.get("Content-Encoding", []))).strip().lower()
    if encoding in ("gzip", "deflate"):
        content = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(content)
        for name in ("content-encoding", "Content-Encoding"):
            headers.pop(name, None)
    return content


# Cut-short kinds (SHARED cassette field ``llmport.incomplete.error``) and, per kind, the httpx exception;
# the last two only arise here: a request that got no answer at all (recorded with status 0).
INCOMPLETE_ERRORS = {
    "remote-protocol": "RemoteProtocolError",
    "read-timeout": "ReadTimeout",
    "connection-reset": "ReadError",
    "connect-error": "ConnectError",
    "connect-timeout": "ConnectTimeout",
}


def incomplete_kind(httpx: ModuleType, exc: BaseException) -> str:
    """The cassette's name for the way a transfer broke off."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect-timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "read-timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect-error"
    if isinstance(exc, httpx.NetworkError):
        return "connection-reset"
    return "remote-protocol"


def incomplete_error(httpx: ModuleType, incomplete: Any) -> Exception:
    """The exception the client raised while recording, rebuilt from the cassette's ``incomplete``."""
    kind = incomplete.get("error") if isinstance(incomplete, dict) else None
    name = INCOMPLETE_ERRORS.get(str(kind), "RemoteProtocolError")
    error: Exception = getattr(httpx, name)(str(incomplete.get("message") or kind))
    return error


def _decompress(content: bytes, encoding: str) -> bytes:
    try:
        return zlib.decompress(content, zlib.MAX_WBITS | 32)  # gzip or zlib-wrapped deflate
    except zlib.error:
        if encoding != "deflate":
            raise
        return zlib.decompress(content, -zlib.MAX_WBITS)  # raw deflate, which httpx accepts too


@dataclass
class _Capture(Capture):
    """One httpx response being recorded: its chunks, and what happens when the transfer ends."""

    on_done: Callable[[_Capture], None] | None = None
    error: BaseException | None = None
    real: Any = None  # the response, once its headers arrived

    def complete(self, error: BaseException | None = None) -> None:
        """The transfer ended (cut short by ``error``): record it, once."""
        if not self.done:
            self.done, self.error = True, error
            if self.on_done is not None:
                self.on_done(self)

    def record(self, httpx: ModuleType) -> dict[str, Any]:
        real = self.real
        headers = _headers_dict(real.headers.multi_items()) if real is not None else {}
        cut = (incomplete_kind(httpx, self.error), str(self.error)) if self.error is not None else None
        encoded = any(k.lower() == "content-encoding" for k in headers)  # httpx decodes above the transport
        # Status 0: the request got no answer at all (refused, reset or timed out before the headers).
        status, reason = (real.status_code, real.reason_phrase) if real is not None else (0, "")
        return self.response(status, reason, headers, cut, encoded=encoded)


@contextlib.contextmanager
def _feeding(capture: _Capture, errors: type[BaseException], swallow: bool = False) -> Iterator[None]:
    """Around reading a recorded stream: the capture ends when it does, cut short by a transport error.

    ``swallow``: the app closed the stream early and never sees the rest, so an error there raises nothing.
    """
    try:
        yield
    except errors as exc:
        # Cut short: the cassette keeps what arrived and how it broke off, so replay raises too.
        capture.complete(exc)
        if not swallow:
            raise
    capture.complete()


def _stream_classes(httpx: ModuleType) -> tuple[type, type, type]:
    """Stream classes for one httpx flavour (httpx or httpx2 each check their own base classes)."""
    errors = httpx.TransportError

    class RecordingStream(httpx.SyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, capture: _Capture) -> None:
            self._inner, self._capture = inner, capture
            self._iterator: Iterator[bytes] | None = None

        def _source(self) -> Iterator[bytes]:
            # Made on first read, as the app's own reading would make it.
            if self._iterator is None:
                self._iterator = iter(self._inner)
            return self._iterator

        def __iter__(self) -> Iterator[bytes]:
            with _feeding(self._capture, errors):
                for chunk in self._source():
                    self._capture.add(chunk)
                    yield chunk

        def close(self) -> None:
            try:
                if not self._capture.done:
                    # The app stopped reading early; the cassette still needs the whole response.
                    with _feeding(self._capture, errors, swallow=True):
                        for chunk in self._source():
                            self._capture.add(chunk)
            finally:
                self._inner.close()

    class AsyncRecordingStream(httpx.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, capture: _Capture) -> None:
            self._inner, self._capture = inner, capture
            self._iterator: AsyncIterator[bytes] | None = None

        def _source(self) -> AsyncIterator[bytes]:
            if self._iterator is None:
                self._iterator = self._inner.__aiter__()
            return self._iterator

        async def __aiter__(self) -> AsyncIterator[bytes]:
            with _feeding(self._capture, errors):
                async for chunk in self._source():
                    self._capture.add(chunk)
                    yield chunk

        async def aclose(self) -> None:
            try:
                if not self._capture.done:
                    with _feeding(self._capture, errors, swallow=True):
                        async for chunk in self._source():
                            self._capture.add(chunk)
            finally:
                await self._inner.aclose()

    class ReplayStream(httpx.SyncByteStream, httpx.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
            self._chunks, self._error = chunks, error

        def __iter__(self) -> Iterator[bytes]:
            yield from self._chunks
            if self._error is not None:
                raise self._error

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in self._chunks:
                yield chunk
            if self._error is not None:
                raise self._error

    return RecordingStream, AsyncRecordingStream, ReplayStream


def _replay(httpx: ModuleType, replay_stream: type, recorded: dict[str, Any]) -> Any:
    headers = recorded.get("headers", {})
    meta = recorded.get("llmport") or {}
    incomplete = meta.get("incomplete")
    if incomplete is not None and recorded["status"]["code"] == 0:
        raise incomplete_error(httpx, incomplete)  # no answer at all: the request itself failed
    chunks = replay_chunks(recorded)  # llmport.chunks, else SSE events, else one piece
    error = incomplete_error(httpx, incomplete) if incomplete is not None else None
    message = recorded["status"].get("message") or ""
    return httpx.Response(
        recorded["status"]["code"],
        headers=[(name, value) for name, values in headers.items() for value in values],
        stream=replay_stream(chunks, error),
        extensions={"reason_phrase": message.encode("ascii", "replace")} if message else {},
    )


def httpx_patchers(router: Router, httpx: ModuleType) -> list[Any]:
    """``mock.patch`` objects for one httpx flavour's network transports."""
    recording_stream, async_recording_stream, replay_stream = _stream_classes(httpx)
    real_sync = httpx.HTTPTransport.handle_request
    real_async = httpx.AsyncHTTPTransport.handle_async_request

    def prepare(request: Any, body: bytes) -> tuple[HttpRequest, Any]:
        cassette = router.current
        assert cassette is not None
        # A loaded cassette: one lookup that plays or fails. Matching ignores headers, so they are only
        # copied when the request may be recorded.
        recorded = cassette.replay(request.method, str(request.url), body)
        if recorded is not None:
            return _NO_REQUEST, _replay(httpx, replay_stream, recorded)
        sent = HttpRequest(request.method, str(request.url), body, dict(request.headers))
        router.admit(sent)
        if cassette.write_protected:
            raise router.no_match(sent)
        cassette.pending[id(sent)] = sent
        return sent, None

    def capture(sent: HttpRequest) -> _Capture:
        cassette = router.current
        assert cassette is not None

        def finish(capture: _Capture) -> None:
            # The test's own recording, even when the stream is read to its end after the test.
            cassette.append(sent, capture.record(httpx))

        return _Capture(on_done=finish)

    def handle_request(self: Any, request: Any) -> Any:
        if router.current_for(request.method, str(request.url)) is None:
            return real_sync(self, request)
        sent, replayed = prepare(request, request.read())
        if replayed is not None:
            return replayed
        recording = capture(sent)
        try:
            real = real_sync(self, request)
        except httpx.TransportError as exc:
            recording.complete(exc)  # no answer at all
            raise
        recording.real = real
        real.stream = recording_stream(real.stream, recording)
        return real

    async def handle_async_request(self: Any, request: Any) -> Any:
        if router.current_for(request.method, str(request.url)) is None:
            return await real_async(self, request)
        sent, replayed = prepare(request, await request.aread())
        if replayed is not None:
            return replayed
        recording = capture(sent)
        try:
            real = await real_async(self, request)
        except httpx.TransportError as exc:
            recording.complete(exc)
            raise
        recording.real = real
        real.stream = async_recording_stream(real.stream, recording)
        return real

    return [
        mock.patch.object(httpx.HTTPTransport, "handle_request", handle_request),
        mock.patch.object(httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request),
    ]


# vcrpy 8 (the one on Python 3.10) builds these groups and has no ``skip_patchers``.
_VCRPY8_PATCHER_GROUPS = (
    "httplib",
    "requests",
    "boto3",
    "urllib3",
    "httplib2",
    "tornado",
    "aiohttp",
    "httpx",
    "httpx2",
)


def vcrpy_patchers(router: Router) -> list[Any]:
    """vcrpy's patchers for every library we have no stub of our own for (``Router.skip_patchers``).

    vcrpy 8 ignores ``skip_patchers``: left to its ``build()`` it would also swap urllib3's connection
    classes under our urllib3 stub, and put its httpx and aiohttp stubs in place. So the groups are built
    one by one here, with the group names vcrpy 9 publishes, or vcrpy 8's.
    """
    builder = CassettePatcherBuilder(router)
    names = getattr(vcr.patch, "PATCHER_NAMES", _VCRPY8_PATCHER_GROUPS)
    return [
        patcher
        for name in names
        if name not in router.skip_patchers
        for patcher in getattr(builder, f"_{name}")()
    ]


class Patches:
    """Installs every patcher once and keeps them until :meth:`stop`."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._stack: contextlib.ExitStack | None = None

    @property
    def active(self) -> bool:
        return self._stack is not None

    def start(self) -> None:
        if self._stack is not None:
            return
        stack = contextlib.ExitStack()
        patchers = vcrpy_patchers(self._router)
        for name in ("httpx", "httpx2"):
            with contextlib.suppress(ImportError):
                patchers.extend(httpx_patchers(self._router, __import__(name)))
        patchers.extend(transport_patchers(self._router))
        try:
            for patcher in patchers:
                stack.enter_context(patcher)
        except BaseException:
            stack.close()
            raise
        self._stack = stack

    def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()


class Recorder:
    """The recording layer's run-wide part: the parsed-cassette cache, the client patches, the current test.

    Per test: :meth:`open` loads its cassette, :meth:`begin` routes every patched client to it (patching
    on the first marked test), :meth:`end` stops routing (and unpatches before a test that is not
    marked); :meth:`close` at the end of the run writes the parsed-cassette cache and unpatches.
    """

    def __init__(self, cache_dir: Path | None = None, worker: str = "main") -> None:
        self.persister = AtomicPersister(cache_dir, worker)
        self.router = Router()
        self.patches = Patches(self.router)

    @property
    def current(self) -> ItemRecording | None:
        """The recording of the test running now, if any."""
        return self.router.item

    def open(
        self, path: Path, record_mode: str, scrubber: Scrubber, options: RecordingOptions | None = None
    ) -> LlmportCassette:
        """The cassette of one test on one provider; a corrupt file raises ``CorruptCassetteError``."""
        return open_cassette(path, record_mode, scrubber, self.persister, options)

    def begin(self, recording: ItemRecording) -> None:
        self.patches.start()
        self.router.item = recording

    def end(self, keep_patches: bool) -> None:
        self.router.item = None
        if not keep_patches:
            self.patches.stop()

    def close(self) -> None:
        self.persister.flush()
        self.patches.stop()
