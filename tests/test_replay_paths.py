"""The replay path's own parts: the environment reader, the cassette and vcrpy's names we rely on.

vcrpy stays for recording and replaying through the libraries we have no stub of (``http.client``,
``boto3``, ``tornado``, ``httplib2``): its patchers talk to our cassette through the Router. Each vcrpy
name :mod:`pytest_llmport.recording` touches is checked here, so a vcrpy release that renames one fails
this file rather than a user's suite.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import vcr.patch
from vcr.patch import CassettePatcherBuilder
from vcr.request import Request as VcrRequest

from pytest_llmport.cassettes import HttpRequest
from pytest_llmport.recording import (
    _VCRPY8_PATCHER_GROUPS,
    ItemRecording,
    Patches,
    Router,
    open_cassette,
    vcrpy_patchers,
)
from pytest_llmport.run import environment_reader
from pytest_llmport.scrub import Scrubber

NAMES = ["LLMPORT_TEST_KEY_A", "LLMPORT_TEST_KEY_B", "LLMPORT_TEST_KEY_C"]


def test_the_environment_reader_sees_what_os_environ_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    read = environment_reader(NAMES)
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    assert read() == {}
    monkeypatch.setenv("LLMPORT_TEST_KEY_A", "sk-中文-0123456789")
    monkeypatch.setenv("LLMPORT_TEST_KEY_B", "")  # set but empty: not a key
    os.environ["LLMPORT_TEST_KEY_C"] = "c-0123456789"
    assert read() == {"LLMPORT_TEST_KEY_A": "sk-中文-0123456789", "LLMPORT_TEST_KEY_C": "c-0123456789"}
    os.environ.pop("LLMPORT_TEST_KEY_C")
    del os.environ["LLMPORT_TEST_KEY_A"]
    assert read() == {}


# -- vcrpy names ------------------------------------------------------------------------------------
def test_vcrpy_builds_each_patcher_group_we_name() -> None:
    builder = CassettePatcherBuilder(Router())
    names = getattr(vcr.patch, "PATCHER_NAMES", _VCRPY8_PATCHER_GROUPS)
    assert set(names) >= {"httplib", "boto3", "httplib2", "tornado"}
    for name in names:
        assert callable(getattr(builder, f"_{name}")), name
    assert vcrpy_patchers(Router())  # at least http.client's


def test_a_vcrpy_request_is_read_as_ours() -> None:
    request = VcrRequest(
        "POST", "https://a.example/v1?x=1", b'{"a": 1}', {"Content-Type": "application/json"}
    )
    ours = HttpRequest.of(request)
    assert (ours.method, ours.uri, ours.body) == ("POST", "https://a.example/v1?x=1", b'{"a": 1}')
    assert ours.headers == {"Content-Type": "application/json"}


class _Handler(BaseHTTPRequestHandler):
    served = 0

    def do_POST(self) -> None:
        type(self).served += 1
        length = int(self.headers.get("content-length", 0))
        body = b'{"echo": ' + (self.rfile.read(length) or b"null") + b"}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _exchange(host: str) -> tuple[int, object]:
    connection = http.client.HTTPConnection(host, timeout=5)
    try:
        connection.request("POST", "/v1/echo", body=b'{"q": "\xe4\xb8\xad"}', headers={"Content-Type": "x"})
        response = connection.getresponse()
        # Compared as JSON: the cassette keeps JSON bodies pretty-printed.
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _run(path: Path, mode: str, host: str) -> tuple[ItemRecording, tuple[int, object] | BaseException]:
    router = Router()
    item = ItemRecording(
        "t", "fake", path, mode, "hint", mode == "none", open_cassette(path, mode, Scrubber({}))
    )
    router.item = item
    patches = Patches(router)
    patches.start()
    try:
        result: tuple[int, object] | BaseException = _exchange(host)
    except Exception as exc:
        result = exc
    finally:
        patches.stop()
    if item.cassette.dirty:
        item.cassette.save()
    return item, result


def test_vcrpy_http_client_stub_records_and_replays_through_our_cassette(server: str, tmp_path: Path) -> None:
    path = tmp_path / "echo.yaml"
    item, recorded = _run(path, "once", server)
    assert recorded == (200, {"echo": {"q": "中"}})
    assert path.is_file() and len(item.cassette.data) == 1
    served = _Handler.served
    item, replayed = _run(path, "none", server)
    assert replayed == recorded and _Handler.served == served  # answered from the cassette
    assert item.cassette.play_counts[0] == 1 and not item.unmatched
    item, again = _run(path, "none", server)
    assert again == recorded and _Handler.served == served
    # Sent twice in one test, recorded once: the second is refused, with the closest-request message.
    router = Router()
    item = ItemRecording("t", "fake", path, "none", "hint", True, open_cassette(path, "none", Scrubber({})))
    router.item = item
    patches = Patches(router)
    patches.start()
    try:
        assert _exchange(server) == recorded
        with pytest.raises(ConnectionError):
            _exchange(server)
    finally:
        patches.stop()
    assert _Handler.served == served
    assert "already played" in item.unmatched[0]
