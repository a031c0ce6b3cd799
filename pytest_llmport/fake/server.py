"""The fake provider's HTTP server: :class:`FakeProvider` (the public entry point is
:mod:`pytest_llmport.testing`), its threaded keep-alive server on ``127.0.0.1`` and the failure controls
(``fail_next``, ``cut_next``). What each dialect answers lives in that dialect's module of this package."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

from pytest_llmport import fake

from .common import JSON_TYPE, Context, Cut, ReceivedRequest, Replies, Reply, Response, encode
from .openai import error_response

if TYPE_CHECKING:
    from typing_extensions import Self

CUT_HOW: Final = ("close", "reset", "stall", "hang")
_STOP_JOIN_TIMEOUT: Final = 1.0
_DOUBLED_VERSION: Final = re.compile(r"(/v\d+(?:alpha\d*|beta\d*)?)\1(?:/|$)")


def doubled_version(path: str) -> bool:
    """``/v1/v1/messages``, ``/v1beta/v1beta/models/...``: no real API serves a version segment twice."""
    return _DOUBLED_VERSION.search(path) is not None


class FakeProvider:
    """A deterministic OpenAI-compatible provider on ``127.0.0.1`` (see :mod:`pytest_llmport.testing`).

    ``replies`` chooses the assistant reply: a mapping gives the value of the first key (in insertion
    order) that occurs in the text of the last user message; a callable is called with the parsed request
    JSON. Without a match (or with ``None``) the reply is ``f"[{name}] "`` followed by that text.
    ``max_completion_tokens``/``max_tokens`` truncate a text reply to twice that many characters with
    ``finish_reason: "length"``. When ``api_key`` is set, every known route requires
    ``Authorization: Bearer <api_key>`` or ``api-key: <api_key>``. Streams send ``chunk_chars`` characters
    per content event and wait ``chunk_delay`` seconds between events.

    The attributes ``replies``, ``model``, ``api_key``, ``chunk_chars``, ``chunk_delay`` and ``name`` are
    read on every request and may be changed while the server runs.
    """

    def __init__(
        self,
        replies: Replies | None = None,
        *,
        model: str = "fake-model",
        api_key: str | None = None,
        chunk_chars: int = 4,
        chunk_delay: float = 0.0,
        name: str = "fake",
        dialect: str = "openai",
        quirks: Collection[str] = (),
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be at least 1")
        if chunk_delay < 0:
            raise ValueError("chunk_delay must not be negative")
        self.replies = replies
        self.model = model
        self.api_key = api_key
        self.chunk_chars = chunk_chars
        self.chunk_delay = chunk_delay
        self.name = name
        self._dialect = "openai"
        self._quirks: frozenset[str] = frozenset()
        self.set_dialect(dialect, quirks)
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._failures: deque[Response] = deque()
        self._cuts: deque[Cut] = deque()
        self._seen: dict[str, int] = {}
        self._port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        state = "running" if self.running else "stopped"
        return f"<FakeProvider {self.name!r} {where} {state}>"

    @property
    def dialect(self) -> str:
        """The wire protocol spoken: ``openai``, ``dashscope``, ``ernie``, ``anthropic`` or ``gemini``."""
        return self._dialect

    @property
    def quirks(self) -> frozenset[str]:
        """The OpenAI-compatible provider family emulated (at most one of ``pytest_llmport.fake.QUIRKS``)."""
        return self._quirks

    def set_dialect(self, dialect: str, quirks: Collection[str] = ()) -> None:
        """Switch the protocol (and family quirks) served from the next request on; validated first."""
        if isinstance(quirks, str):
            quirks = (quirks,)
        chosen = frozenset(quirks)
        fake.validate(dialect, chosen)
        self._dialect, self._quirks = dialect, chosen

    @property
    def family(self) -> str:
        """The quirk in use, or else the dialect: the key of the canned errors in :meth:`error_body`."""
        return fake.family(self._dialect, self._quirks)

    def error_body(self, kind: str) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of this family's realistic error of ``kind``.

        ``kind`` is one of ``auth``, ``rate_limit``, ``quota``, ``content_filter``, ``server`` and
        ``bad_request``. Some families answer with HTTP 200 (MiniMax ``base_resp``, ERNIE ``error_code``,
        Spark moderation) and some have no moderation *error* at all, so ``content_filter`` is their
        normal-looking filtered answer (ERNIE ``need_clear_history``, Anthropic ``refusal``, Gemini
        ``promptFeedback.blockReason``).
        """
        return fake.error_body(self.family, kind)

    def fail_next_with(self, kind: str, *, times: int = 1, headers: Mapping[str, str] | None = None) -> None:
        """:meth:`fail_next` with this family's canned error of ``kind`` (see :meth:`error_body`)."""
        status, body = self.error_body(kind)
        self.fail_next(status, body, times=times, headers=headers)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the FakeProvider has not been started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``; still available after :meth:`stop` (connections are refused)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> Self:
        """Start serving; after a :meth:`stop`, the previous port is reused when it is still free."""
        if self._server is not None:
            raise RuntimeError("the FakeProvider is already running")
        server: _Server | None = None
        if self._port is not None:
            try:
                server = _Server(self._port, self)
            except OSError:
                server = None
        if server is None:
            server = _Server(0, self)
        wake_reader, wake_writer = socket.socketpair()
        thread = threading.Thread(
            target=server.serve_until_woken,
            args=(wake_reader,),
            name=f"llmport-fake-{self.name}:{server.server_port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread, self._wake = server, thread, (wake_reader, wake_writer)
        self._port = server.server_port
        return self

    def stop(self) -> None:
        """Stop serving: close the listening socket and every open connection (idempotent).

        In-flight requests are cut off, streams included; returns once their threads have ended (waiting
        at most about a second for a reply callable that does not return).
        """
        server, thread, wake = self._server, self._thread, self._wake
        if server is None or thread is None or wake is None:
            return
        self._server = self._thread = self._wake = None
        server.stopping.set()
        # A byte on the socket pair wakes the accept loop at once, so stopping never waits for a poll.
        wake[1].send(b"\0")
        thread.join()
        server.server_close()
        server.close_connections(_STOP_JOIN_TIMEOUT)
        for end in wake:
            end.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(
        self,
        status: int,
        body: Mapping[str, Any] | str,
        *,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests (whatever their path) with ``status`` and ``body``.

        A mapping is sent as JSON; a string is sent as-is, labelled JSON if it parses as JSON and plain
        text otherwise. ``headers`` (such as ``Retry-After``) are added to each of these responses.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"invalid HTTP status {status}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if isinstance(body, str):
            try:
                json.loads(body)
                content_type = JSON_TYPE
            except ValueError:
                content_type = "text/plain; charset=utf-8"
            encoded = body.encode("utf-8")
        else:
            encoded, content_type = encode(dict(body)), JSON_TYPE
        failure = Response(status, encoded, content_type, dict(headers or {}))
        with self._lock:
            self._failures.extend([failure] * times)

    def cut_next(
        self,
        *,
        how: str = "close",
        body_bytes: int | None = None,
        events: int | None = None,
        stall: float = 5.0,
        times: int = 1,
        matching: str | None = None,
    ) -> None:
        """Break the next ``times`` responses part way, as a dropped connection or a stalled server does.

        The status line and headers (with the full ``Content-Length`` of a plain body) are sent, then the
        first ``body_bytes`` bytes of a plain body (default: half) or the first ``events`` events of a
        stream (default: half, never the last), then ``how``: ``"close"`` closes the connection (the
        client sees the peer close mid-body), ``"reset"`` resets it (TCP RST), ``"stall"`` sends nothing
        more for ``stall`` seconds (the client's read timeout fires) and then closes; ``"hang"`` sends
        nothing at all, not even the status line, for ``stall`` seconds, then closes. With ``matching``,
        only responses to requests whose body contains that text are broken (other requests pass by).
        """
        if how not in CUT_HOW:
            raise ValueError(f"how must be one of {', '.join(CUT_HOW)}, not {how!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if (body_bytes is not None and body_bytes < 0) or (events is not None and events < 0):
            raise ValueError("body_bytes and events must not be negative")
        with self._lock:
            self._cuts.extend([Cut(how, body_bytes, events, stall, matching)] * times)

    def reset(self) -> None:
        """Forget received requests, queued failures and cuts, and the per-request occurrence counts."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()
            self._cuts.clear()
            self._seen.clear()

    def _handle(self, request: ReceivedRequest) -> Response:
        response = self._route(request)
        text = request.body.decode("utf-8", "replace")
        with self._lock:
            cut = next((c for c in self._cuts if c.matching is None or c.matching in text), None)
            if cut is not None:
                self._cuts.remove(cut)
        return response if cut is None else dataclasses.replace(response, cut=cut)

    def _route(self, request: ReceivedRequest) -> Response:
        with self._lock:
            self.requests.append(request)
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return failure
        if doubled_version(request.path):
            # /v1/v1/chat/completions: a base URL that already ends in the version, plus an SDK adding it.
            return fake.not_found(self._dialect, request)
        context = Context(self, self.family, self._reply, self._occurrence)
        return fake.REGISTRY[self._dialect].handle(context, request)

    def _reply(self, payload: dict[str, Any], text: str) -> Reply:
        replies = self.replies
        if isinstance(replies, Mapping):
            for key, value in replies.items():
                if key in text:
                    return value
        elif replies is not None:
            reply = replies(payload)
            if not isinstance(reply, (str, dict)):
                raise TypeError(f"the reply callable must return str or dict, not {type(reply).__name__}")
            return reply
        return f"[{self.name}] {text}"

    def _occurrence(self, digest: str) -> int:
        with self._lock:
            occurrence = self._seen[digest] = self._seen.get(digest, 0) + 1
        return occurrence


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() tracks and joins handler threads itself, with a time limit that server_close() lacks.
    block_on_close = False
    request_queue_size = 128
    # handle_request() is only called once select() has reported a pending connection; never block in it.
    timeout = 0

    def __init__(self, port: int, provider: FakeProvider) -> None:
        self.provider = provider
        self.stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with getfqdn(), which can take seconds without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.socket.getsockname()[1]

    def serve_until_woken(self, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self.stopping.is_set():
                ready = selector.select()
                if any(key.fileobj is wake for key, _ in ready):
                    return
                self.handle_request()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"llmport-fake-connection:{self.server_port}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self, timeout: float) -> None:
        with self._connections_lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            # Pooled keep-alive connections would otherwise keep answering after stop(), and a handler
            # blocked reading the next request only wakes up when its socket is shut down.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            # stop() may be called from a reply callable, that is from one of these very threads.
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up and stop() cutting connections are expected; only report real bugs.
        if isinstance(sys.exc_info()[1], OSError) or self.stopping.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llmport-fake"
    # Small SSE writes must leave at once rather than wait for the previous segment's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        server = cast(_Server, self.server)
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(error_response(400, str(exc), code="invalid_body"), server.stopping)
            return
        target = urlsplit(self.path)
        headers: dict[str, str] = {}
        for header, value in self.headers.items():
            key = header.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = ReceivedRequest(self.command, target.path, target.query, headers, body)
        self._send(server.provider._handle(request), server.stopping)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise ValueError(f"invalid Content-Length {length!r}") from None
        if size < 0:
            raise ValueError(f"invalid Content-Length {length!r}")
        body = self.rfile.read(size)
        if len(body) < size:
            raise ConnectionAbortedError("the client closed the connection mid-body")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionAbortedError("the client closed the connection mid-body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ValueError("invalid chunked request body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _send(self, response: Response, stopping: threading.Event) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        # Headers are written by hand: send_response() would add a Date header and break recordings.
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        cut = response.cut
        if cut is not None and cut.how == "hang":
            self._break(cut, stopping)
            return
        if response.events is None:
            lines.append(f"Content-Length: {len(response.body)}")
            if self.close_connection:
                lines.append("Connection: close")
            if cut is None:
                self.wfile.write(_head(lines) + response.body)
                return
            size = len(response.body) // 2 if cut.body_bytes is None else cut.body_bytes
            self.wfile.write(_head(lines) + response.body[: min(size, len(response.body) - 1)])
            self._break(cut, stopping)
            return
        chunked = self.request_version == "HTTP/1.1"
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            # An HTTP/1.0 client cannot read chunks: the end of the stream is the end of the connection.
            self.close_connection = True
            lines.append("Connection: close")
        self.wfile.write(_head(lines))
        events = response.events
        if cut is not None:
            count = len(events) // 2 if cut.events is None else cut.events
            events = events[: min(count, len(events) - 1)]
        for number, event in enumerate(events):
            if number and response.delay and stopping.wait(response.delay):
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
        if cut is not None:
            self._break(cut, stopping)
        elif chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _break(self, cut: Cut, stopping: threading.Event) -> None:
        self.close_connection = True
        self.wfile.flush()
        if cut.how in ("stall", "hang"):
            stopping.wait(cut.stall)
        elif cut.how == "reset":
            # Linger 0: close() sends a reset instead of the orderly end of the stream.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _head(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
