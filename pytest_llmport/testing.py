"""A fake OpenAI-compatible LLM provider served over real HTTP on ``127.0.0.1``.

:class:`FakeProvider` runs a threaded HTTP/1.1 server (real sockets, keep-alive, an ephemeral port) that
answers the OpenAI chat-completions protocol, streaming included, with deterministic replies. It is meant
for recording cassettes without a network and for testing code that talks to any OpenAI-compatible
provider::

    with FakeProvider({"天气": "今天晴天。"}, api_key="sk-test") as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test")
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "天气怎么样"}])

Routes (any path prefix is accepted, so ``/api/paas/v4`` or ``/compatible-mode/v1`` base URLs work):

* ``POST …/chat/completions``: ``chat.completion`` or, with ``"stream": true``, an SSE stream of
  ``chat.completion.chunk`` events sent with chunked transfer encoding, one flushed chunk per event.
* ``POST …/embeddings``: deterministic vectors, see :func:`embed_text`; ``encoding_format`` ``float``
  (default) and ``base64`` (little-endian float32, what the openai SDK asks for by default).
* ``GET …/models`` and ``GET …/models/<id>``: the configured ``model``.
* anything else: 404 in the OpenAI error envelope.

Determinism: ``created`` is always :data:`CREATED`; no ``Date`` header is sent; the completion id is
``chatcmpl-fake-<h>-<n>`` and tool-call ids are ``call_fake_<i>_<h>_<n>``, where ``<h>`` is the first 16
hex digits of the SHA-256 of the request JSON (canonical form: sorted keys, compact) and ``<n>`` counts how
many times this server has seen that same request (1 for the first time), ``<i>`` is the tool call's index.
Token usage is :func:`count_tokens` (one token per two characters, rounded up) applied to each message's
text (prompt) and to the reply text or the tool calls' names plus arguments (completion).

Other dialects and provider families: ``FakeProvider(dialect="dashscope" | "ernie" | "anthropic" |
"gemini")`` serves that provider's native API on its real paths, and ``FakeProvider(quirks={"zhipu"})``
(or ``deepseek``, ``moonshot``, ``minimax``, ``spark``, ``hunyuan``, ``qwen-compat``) keeps the OpenAI
protocol with that family's deviations: stream framing, usage placement, error envelopes, moderation.
Reply directives such as ``{"content_filter": True}`` and ``{"error": "rate_limit"}`` and the canned errors
of :meth:`FakeProvider.error_body` are described in :mod:`pytest_llmport.fake_dialects`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CREATED",
    "EMBEDDING_DIMENSIONS",
    "FakeProvider",
    "ReceivedRequest",
    "Replies",
    "Reply",
    "count_tokens",
    "embed_text",
]

CREATED: Final = 1_700_000_000
"""The ``created`` timestamp of every response: fixed so that recordings do not change between runs."""

EMBEDDING_DIMENSIONS: Final = 64
"""Length of the vectors returned by ``/embeddings`` unless the request asks for ``dimensions``."""

Reply: TypeAlias = str | dict[str, Any]
"""A reply is message text, or a dict: ``{"tool_call": {"name": …, "arguments": {…}}}`` (or
``{"tool_calls": [...]}``) becomes a tool call when the request has ``tools``; any other dict (or a tool
call requested without ``tools``) is sent as its JSON text."""

Replies: TypeAlias = Mapping[str, Reply] | Callable[[dict[str, Any]], Reply]

_MAX_EMBEDDING_DIMENSIONS: Final = 4096
_STOP_JOIN_TIMEOUT: Final = 1.0
_JSON: Final = "application/json; charset=utf-8"


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as the fake provider received it (recorded before any handling)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header names in lower case; repeated headers are joined with ``", "``."""
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (raises :class:`ValueError` if it is not JSON)."""
        return json.loads(self.body)


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per two characters, rounded up (``""`` is 0, ``"你好"`` is 1)."""
    return (len(text) + 1) // 2


def embed_text(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The deterministic unit-length embedding of ``text``.

    Character bigrams (with start and end markers, so one-character and empty texts have features) are
    hashed with CRC-32 into ``dimensions`` buckets with a hash-derived sign. Texts sharing many bigrams,
    such as two Chinese sentences differing by a word, get a high cosine similarity; unrelated texts get
    one near zero, because the signs cancel instead of every vector sitting in the positive orthant.
    """
    if dimensions < 1:
        raise ValueError("dimensions must be at least 1")
    vector = [0.0] * dimensions
    padded = f"\x02{text}\x03"
    for start in range(len(padded) - 1):
        digest = zlib.crc32(padded[start : start + 2].encode("utf-8", "surrogatepass"))
        vector[(digest & 0x7FFF_FFFF) % dimensions] += 1.0 if digest & 0x8000_0000 else -1.0
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        # Signed buckets can cancel out exactly; any fixed unit vector keeps the result deterministic.
        vector[0] = 1.0
        return vector
    return [value / norm for value in vector]


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes = b""
    content_type: str = _JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    events: list[bytes] | None = None
    delay: float = 0.0


class _BadRequest(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _error(
    status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None
) -> _Response:
    envelope = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _Response(status, _encode(envelope))


def _pieces(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise _BadRequest(
            "We could not parse the JSON body of your request. The request body must be valid JSON.",
            "invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise _BadRequest("The request body must be a JSON object.", "invalid_type")
    return payload


def _require_model(payload: Mapping[str, Any]) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("you must provide a model parameter", "missing_required_parameter")
    return model


def _tool_calls(reply: Mapping[str, Any], tag: str) -> list[dict[str, Any]] | None:
    if "tool_call" in reply:
        specs: object = [reply["tool_call"]]
    elif "tool_calls" in reply:
        specs = reply["tool_calls"]
    else:
        return None
    if not isinstance(specs, list) or not specs:
        raise TypeError(f"tool calls must be a non-empty list, got {specs!r}")
    calls: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise TypeError(f"a tool call needs a string 'name', got {spec!r}")
        arguments = spec.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(
            {
                "id": f"call_fake_{index}_{tag}",
                "type": "function",
                "function": {"name": spec["name"], "arguments": arguments},
            }
        )
    return calls


class FakeProvider:
    """A deterministic OpenAI-compatible provider on ``127.0.0.1`` (see the module documentation).

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
        self._failures: deque[_Response] = deque()
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
        """The OpenAI-compatible provider family emulated (at most one of ``fake_dialects.QUIRKS``)."""
        return self._quirks

    def set_dialect(self, dialect: str, quirks: Collection[str] = ()) -> None:
        """Switch the protocol (and family quirks) served from the next request on; validated first."""
        from pytest_llmport import fake_dialects  # deferred: fake_dialects imports this module

        if isinstance(quirks, str):
            quirks = (quirks,)
        chosen = frozenset(quirks)
        fake_dialects.validate(dialect, chosen)
        self._dialect, self._quirks = dialect, chosen

    @property
    def family(self) -> str:
        """The quirk in use, or else the dialect: the key of the canned errors in :meth:`error_body`."""
        from pytest_llmport import fake_dialects  # deferred: fake_dialects imports this module

        return fake_dialects.family(self._dialect, self._quirks)

    def error_body(self, kind: str) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of this family's realistic error of ``kind``.

        ``kind`` is one of ``auth``, ``rate_limit``, ``quota``, ``content_filter``, ``server`` and
        ``bad_request``. Some families answer with HTTP 200 (MiniMax ``base_resp``, ERNIE ``error_code``,
        Spark moderation) and some have no moderation *error* at all, so ``content_filter`` is their
        normal-looking filtered answer (ERNIE ``need_clear_history``, Anthropic ``refusal``, Gemini
        ``promptFeedback.blockReason``).
        """
        from pytest_llmport import fake_dialects  # deferred: fake_dialects imports this module

        return fake_dialects.error_body(self.family, kind)

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
                content_type = _JSON
            except ValueError:
                content_type = "text/plain; charset=utf-8"
            encoded = body.encode("utf-8")
        else:
            encoded, content_type = _encode(dict(body)), _JSON
        failure = _Response(status, encoded, content_type, dict(headers or {}))
        with self._lock:
            self._failures.extend([failure] * times)

    def reset(self) -> None:
        """Forget received requests, queued failures and the per-request occurrence counts used in ids."""
        with self._lock:
            self.requests.clear()
            self._failures.clear()
            self._seen.clear()

    def _handle(self, request: ReceivedRequest) -> _Response:
        with self._lock:
            self.requests.append(request)
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return failure
        from pytest_llmport import fake_dialects  # deferred: fake_dialects imports this module

        if fake_dialects.doubled_version(request.path):
            # /v1/v1/chat/completions: a base URL that already ends in the version, plus an SDK adding it.
            if self._dialect != "openai":
                return fake_dialects.not_found(self._dialect, request)
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        if self._dialect != "openai":
            return fake_dialects.handle(self, request)
        path = request.path.rstrip("/")
        if request.method == "POST" and path.endswith("/chat/completions"):
            route: Callable[[ReceivedRequest], _Response] = partial(fake_dialects.openai_chat, self)
        elif request.method == "POST" and path.endswith("/embeddings"):
            route = self._embeddings
        elif request.method == "GET" and (path.endswith("/models") or "/models/" in path):
            route = self._models
        else:
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        if not self._authorized(request.headers):
            if self._quirks:
                return fake_dialects.openai_unauthorized(fake_dialects.family("openai", self._quirks))
            return _error(401, "Incorrect API key provided", code="invalid_api_key")
        try:
            return route(request)
        except _BadRequest as exc:
            return _error(400, exc.message, code=exc.code)
        except Exception as exc:
            # A broken reply callable must surface to the client as a 500, not as a dead connection.
            return _error(500, f"the fake provider failed: {exc!r}", kind="server_error")

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if self.api_key is None:
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.api_key:
            return True
        return headers.get("api-key") == self.api_key

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

    def _embeddings(self, request: ReceivedRequest) -> _Response:
        payload = _parse_json_object(request.body)
        model = _require_model(payload)
        texts = _embedding_inputs(payload.get("input"))
        dimensions = payload.get("dimensions", EMBEDDING_DIMENSIONS)
        if (
            not isinstance(dimensions, int)
            or isinstance(dimensions, bool)
            or not 1 <= dimensions <= _MAX_EMBEDDING_DIMENSIONS
        ):
            raise _BadRequest(f"'dimensions' must be an integer from 1 to {_MAX_EMBEDDING_DIMENSIONS}")
        encoding = payload.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise _BadRequest("'encoding_format' must be 'float' or 'base64'")
        data: list[dict[str, Any]] = []
        for index, text in enumerate(texts):
            vector = embed_text(text, dimensions)
            embedding: list[float] | str = vector
            if encoding == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(count_tokens(text) for text in texts)
        body = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _Response(200, _encode(body))

    def _models(self, request: ReceivedRequest) -> _Response:
        card = {"id": self.model, "object": "model", "created": CREATED, "owned_by": self.name}
        path = request.path.rstrip("/")
        if path.endswith("/models"):
            return _Response(200, _encode({"object": "list", "data": [card]}))
        wanted = path.partition("/models/")[2]
        if wanted != self.model:
            return _error(404, f"The model '{wanted}' does not exist", code="model_not_found")
        return _Response(200, _encode(card))


def _embedding_inputs(value: object) -> list[str]:
    def is_tokens(item: object) -> bool:
        return (
            isinstance(item, list)
            and bool(item)
            and all(isinstance(token, int) and not isinstance(token, bool) for token in item)
        )

    # Token arrays have no text; their decimal spelling still gives stable, distinct vectors.
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return cast("list[str]", value)
        if is_tokens(value):
            return [" ".join(map(str, value))]
        if all(is_tokens(item) for item in value):
            return [" ".join(map(str, item)) for item in value]
    raise _BadRequest(
        "'input' must be a string, an array of strings or an array of token arrays",
        "missing_required_parameter" if value is None else "invalid_type",
    )


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
            self._send(_error(400, str(exc), code="invalid_body"), server.stopping)
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

    def _send(self, response: _Response, stopping: threading.Event) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        # Headers are written by hand: send_response() would add a Date header and break recordings.
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if response.events is None:
            lines.append(f"Content-Length: {len(response.body)}")
            if self.close_connection:
                lines.append("Connection: close")
            self.wfile.write(_head(lines) + response.body)
            return
        chunked = self.request_version == "HTTP/1.1"
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            # An HTTP/1.0 client cannot read chunks: the end of the stream is the end of the connection.
            self.close_connection = True
            lines.append("Connection: close")
        self.wfile.write(_head(lines))
        for number, event in enumerate(response.events):
            if number and response.delay and stopping.wait(response.delay):
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def _head(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
