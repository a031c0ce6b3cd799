"""aiohttp and requests/urllib3 stubs: streams live while recording, replayed chunk by chunk, cut-short too.

A loopback server sends the first SSE event, then holds the rest back until the test has seen that
event (a gate). Were a stub to buffer the stream, the client would see nothing before the server gives
up waiting and sends the rest; the test then sees the gate unopened and the last event already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import urllib3
import yaml

from pytest_llmport.recording import ItemRecording, Patches, Router, open_cassette
from pytest_llmport.scrub import Scrubber

EVENTS = [b'data: {"n": 1}\n\n', b'data: {"n": 2, "t": "\xe4\xbd\xa0"}\n\n', b"data: [DONE]\n\n"]
GATE_TIMEOUT = 5.0


class GatedServer:
    """Streams :data:`EVENTS` with chunked encoding; waits for :attr:`gate` after the first one.

    ``cut=True`` closes the connection after the second event, without the final chunk.
    """

    def __init__(self, cut: bool = False) -> None:
        self.gate = threading.Event()
        self.last_sent = threading.Event()
        self.cut = cut
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                for number, event in enumerate(EVENTS):
                    if number == 1:
                        outer.gate.wait(GATE_TIMEOUT)
                    if outer.cut and number == 2:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                outer.last_sent.set()
                self.wfile.write(b"0\r\n\r\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/chat/completions"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GatedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def cassette(path: Path, mode: str) -> Iterator[ItemRecording]:
    """The plugin's recorder around a block, as for one marked test (mode ``once`` records, ``none`` replays)."""
    router = Router()
    patches = Patches(router)  # the network guard lives in guard.py, installed by the run
    replaying = mode == "none"
    item = ItemRecording(
        "test_x", "fake", path, mode, "re-record it", replaying, open_cassette(path, mode, Scrubber({}))
    )
    router.item = item
    patches.start()
    try:
        yield item
    finally:
        patches.stop()
        router.item = None
        if item.cassette.dirty:
            item.cassette.save()


def recorded_response(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    (interaction,) = data["interactions"]
    response: dict[str, Any] = interaction["response"]
    return response


# -- requests / urllib3 ------------------------------------------------------------------------------
def requests_pieces(url: str, gate: threading.Event | None, last_sent: threading.Event | None) -> list[Any]:
    """Stream with ``requests``; the first piece is paired with whether the server had sent the last event."""
    pieces: list[Any] = []
    with requests.post(url, json={"stream": True}, stream=True, timeout=10) as response:
        for piece in response.iter_content(chunk_size=None):
            if not pieces and gate is not None and last_sent is not None:
                pieces.append(("first-before-last", not last_sent.is_set()))
                gate.set()
            pieces.append(piece)
    return pieces


def test_requests_stream_is_live_while_recording_and_chunked_on_replay(tmp_path: Path) -> None:
    path = tmp_path / "requests.yaml"
    with GatedServer() as server, cassette(path, "once"):
        recorded = requests_pieces(server.url, server.gate, server.last_sent)
    assert recorded[0] == ("first-before-last", True), (
        "the first event reached the app before the last was sent"
    )
    assert recorded[1:] == EVENTS
    response = recorded_response(path)
    assert response["llmport"]["chunks"] == [len(e) for e in EVENTS]
    assert response["body"]["string"].encode() == b"".join(EVENTS)
    with cassette(path, "none"):
        replayed = requests_pieces(server.url, None, None)
    assert replayed == EVENTS, "replay hands over the recorded chunks one by one"


def test_requests_iter_lines_and_plain_content_replay(tmp_path: Path) -> None:
    path = tmp_path / "requests.yaml"

    def both() -> tuple[requests.Response, list[bytes]]:
        plain = requests.post(server.url, json={}, timeout=10)
        with requests.post(server.url, json={}, stream=True, timeout=10) as streamed:
            lines = [line for line in streamed.iter_lines() if line]
        return plain, lines

    with GatedServer() as server:
        server.gate.set()
        with cassette(path, "once"):
            live, live_lines = both()
        with cassette(path, "none"):
            again, lines = both()
    assert again.content == live.content == b"".join(EVENTS)
    assert again.status_code == 200 and again.headers["Content-Type"] == "text/event-stream"
    assert lines == live_lines == [e.strip() for e in EVENTS]


def test_urllib3_stream_without_requests(tmp_path: Path) -> None:
    path = tmp_path / "urllib3.yaml"
    with GatedServer() as server:
        pool = urllib3.PoolManager()
        with cassette(path, "once"):
            response = pool.request("POST", server.url, body=b"{}", preload_content=False)
            first = next(response.stream(2**16))
            sent_before_first = server.last_sent.is_set()
            server.gate.set()
            rest = list(response.stream(2**16))
            assert pool.request("POST", server.url, body=b"{}").data == b"".join(EVENTS)
        assert not sent_before_first and [first, *rest] == EVENTS
        with cassette(path, "none"):
            streamed = pool.request("POST", server.url, body=b"{}", preload_content=False)
            assert list(streamed.stream(2**16)) == EVENTS
            assert pool.request("POST", server.url, body=b"{}").data == b"".join(EVENTS)


def test_requests_cut_short_replays_as_chunked_encoding_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.yaml"
    with GatedServer(cut=True) as server:
        server.gate.set()
        got: list[bytes] = []
        with (
            cassette(path, "once"),
            pytest.raises(requests.exceptions.ChunkedEncodingError),
            requests.post(server.url, json={}, stream=True, timeout=10) as response,
        ):
            got.extend(response.iter_content(chunk_size=None))
    assert got == EVENTS[:2]
    stored = recorded_response(path)
    assert stored["llmport"]["incomplete"]["error"] == "remote-protocol"
    assert stored["body"]["string"].encode() == b"".join(EVENTS[:2])
    replayed: list[bytes] = []
    with (
        cassette(path, "none"),
        pytest.raises(requests.exceptions.ChunkedEncodingError),
        requests.post(server.url, json={}, stream=True, timeout=10) as response,
    ):
        replayed.extend(response.iter_content(chunk_size=None))
    assert replayed == EVENTS[:2], "the bytes that arrived, then the client's own error"


def test_requests_early_close_still_records_the_whole_response(tmp_path: Path) -> None:
    path = tmp_path / "early.yaml"
    with GatedServer() as server:
        server.gate.set()
        with cassette(path, "once"), requests.post(server.url, json={}, stream=True, timeout=10) as response:
            next(response.iter_content(chunk_size=None))  # the app stops after one event
    assert recorded_response(path)["body"]["string"].encode() == b"".join(EVENTS)


# -- aiohttp --------------------------------------------------------------------------------------------
async def aiohttp_pieces(
    url: str, gate: threading.Event | None, last_sent: threading.Event | None
) -> list[Any]:
    pieces: list[Any] = []
    async with aiohttp.ClientSession() as session, session.post(url, json={"stream": True}) as response:
        async for piece in response.content.iter_any():
            if not pieces and gate is not None and last_sent is not None:
                pieces.append(("first-before-last", not last_sent.is_set()))
                gate.set()
            pieces.append(piece)
    return pieces


def test_aiohttp_stream_is_live_while_recording_and_chunked_on_replay(tmp_path: Path) -> None:
    path = tmp_path / "aiohttp.yaml"
    with GatedServer() as server, cassette(path, "once"):
        recorded = asyncio.run(aiohttp_pieces(server.url, server.gate, server.last_sent))
    assert recorded[0] == ("first-before-last", True), (
        "the first event reached the app before the last was sent"
    )
    # iter_any() hands over what has arrived, so later events may come joined; the cassette keeps the
    # server's HTTP chunks.
    assert recorded[1] == EVENTS[0] and b"".join(recorded[1:]) == b"".join(EVENTS)
    assert recorded_response(path)["llmport"]["chunks"] == [len(e) for e in EVENTS]
    with cassette(path, "none"):
        replayed = asyncio.run(aiohttp_pieces(server.url, None, None))
    assert replayed == EVENTS


def test_aiohttp_replay_read_text_json_lines_and_chunks(tmp_path: Path) -> None:
    path = tmp_path / "aiohttp.yaml"

    async def everything() -> tuple[Any, ...]:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url, json={}) as response:
                text = await response.text()
                status, ctype = response.status, response.headers["Content-Type"]
            async with session.post(server.url, json={}) as response:
                lines = [line async for line in response.content]
            async with session.post(server.url, json={}) as response:
                chunks = [chunk async for chunk in response.content.iter_chunks()]
        return text, status, ctype, lines, chunks

    with GatedServer() as server:
        server.gate.set()
        with cassette(path, "once"):
            live = asyncio.run(everything())
        with cassette(path, "none"):
            replayed = asyncio.run(everything())
    assert live[0] == b"".join(EVENTS).decode() and live[1:3] == (200, "text/event-stream")
    assert replayed == live


def test_aiohttp_cut_short_replays_as_client_payload_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.yaml"

    async def read(got: list[bytes]) -> None:
        async with aiohttp.ClientSession() as session, session.post(server.url, json={}) as response:
            async for piece in response.content.iter_any():
                got.append(piece)

    with GatedServer(cut=True) as server:
        server.gate.set()
        live: list[bytes] = []
        with cassette(path, "once"), pytest.raises(aiohttp.ClientPayloadError):
            asyncio.run(read(live))
    assert b"".join(live) == b"".join(EVENTS[:2])
    assert recorded_response(path)["llmport"]["incomplete"]["error"] == "remote-protocol"
    replayed: list[bytes] = []
    with cassette(path, "none"), pytest.raises(aiohttp.ClientPayloadError):
        asyncio.run(read(replayed))
    assert replayed == EVENTS[:2]


def test_aiohttp_raise_for_status_records_the_error_first(tmp_path: Path) -> None:
    from pytest_llmport.testing import FakeProvider

    path = tmp_path / "status.yaml"

    async def call(url: str) -> int:
        async with aiohttp.ClientSession(raise_for_status=True) as session:
            try:
                async with session.post(url + "/chat/completions", json={"model": "m"}) as response:
                    return response.status
            except aiohttp.ClientResponseError as exc:
                return exc.status

    with FakeProvider(api_key="sk-right") as fake:
        with cassette(path, "once"):
            assert asyncio.run(call(fake.base_url)) == 401
        fake.stop()
        with cassette(path, "none"):
            assert asyncio.run(call(fake.base_url)) == 401


# -- which patchers are in place -----------------------------------------------------------------------
def test_vcrpy_stubs_stay_out_from_under_ours(tmp_path: Path) -> None:
    """vcrpy 8 (Python 3.10) ignores ``skip_patchers``; its stubs must not sit under ours all the same."""
    import http.client

    import httpx
    import urllib3.connectionpool

    pool_connection = urllib3.connectionpool.HTTPConnectionPool.ConnectionCls
    mock_transport = httpx.MockTransport.handle_request
    plain_http = http.client.HTTPConnection
    with cassette(tmp_path / "none.yaml", "once"):
        assert urllib3.connectionpool.HTTPConnectionPool.ConnectionCls is pool_connection
        assert httpx.MockTransport.handle_request is mock_transport
        assert aiohttp.ClientSession._request.__module__ == "pytest_llmport.transports.aiohttp"
        # A test's own mock transport is no HTTP exchange: it answers, nothing is recorded.
        with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))) as client:
            assert client.get("http://127.0.0.1:9/x").status_code == 204
        # vcrpy still stands in for the libraries we have no stub of our own for.
        assert http.client.HTTPConnection is not plain_http
    assert http.client.HTTPConnection is plain_http
    assert not (tmp_path / "none.yaml").exists()
