"""Record through real sockets against the fake provider, then replay with it stopped."""

from __future__ import annotations

import ast
import re

import pytest

from pytest_llmport.__main__ import main as cli
from pytest_llmport.testing import FakeProvider

from .conftest import KEY, RunModes, cassettes

CLIENTS = """
import asyncio

import aiohttp
import openai
import pytest
import requests

PROMPT = [{"role": "user", "content": "我的订单三天了还没发货"}]


@pytest.mark.llm_portable
def test_openai_sync(llm_provider):
    reply = llm_provider.openai_client().chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert reply.choices[0].message.content.endswith("我的订单三天了还没发货")


@pytest.mark.llm_portable
def test_openai_from_environment(llm_provider):
    reply = openai.OpenAI().chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert "订单" in reply.choices[0].message.content


@pytest.mark.llm_portable
def test_openai_stream(llm_provider):
    stream = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=PROMPT, stream=True
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3 and "".join(pieces).endswith("还没发货")


@pytest.mark.llm_portable
def test_openai_async_stream(llm_provider):
    async def main():
        client = llm_provider.async_openai_client()
        async with client:
            stream = await client.chat.completions.create(model=llm_provider.model, messages=PROMPT, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(main()).endswith("还没发货")


@pytest.mark.llm_portable
def test_httpx(llm_provider):
    response = llm_provider.httpx_client().post(
        "chat/completions", json={"model": llm_provider.model, "messages": PROMPT}
    )
    assert response.status_code == 200 and response.json()["model"] == llm_provider.model


@pytest.mark.llm_portable
def test_requests(llm_provider):
    response = requests.post(
        llm_provider.base_url + "/chat/completions",
        json={"model": llm_provider.model, "messages": PROMPT},
        headers=llm_provider.headers,
        timeout=10,
    )
    assert response.status_code == 200 and "订单" in response.json()["choices"][0]["message"]["content"]


@pytest.mark.llm_portable
def test_aiohttp(llm_provider):
    async def main():
        async with aiohttp.ClientSession(headers=llm_provider.headers) as session:
            url = llm_provider.base_url + "/chat/completions"
            async with session.post(url, json={"model": llm_provider.model, "messages": PROMPT}) as response:
                return response.status, await response.json()

    status, body = asyncio.run(main())
    assert status == 200 and body["choices"][0]["message"]["content"].endswith("还没发货")
"""


def test_record_then_replay_offline(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    pytester.makepyfile(test_app=CLIENTS)
    recorded = pytester.runpytest("--providers=zhipu,qwen", *xdist_args)
    recorded.assert_outcomes(passed=14)
    assert len(llm_env.requests) == 14
    files = cassettes(pytester.path)
    assert sorted(files) == sorted(
        f"cassettes/test_app/{test}/{provider}.yaml"
        for test in (
            "test_openai_sync",
            "test_openai_from_environment",
            "test_openai_stream",
            "test_openai_async_stream",
            "test_httpx",
            "test_requests",
            "test_aiohttp",
        )
        for provider in ("zhipu", "qwen")
    )

    llm_env.stop()
    monkeypatch.setenv("CI", "true")  # the CI default: record mode none
    replayed = pytester.runpytest("--providers=zhipu,qwen", *xdist_args)
    replayed.assert_outcomes(passed=14)
    assert cassettes(pytester.path) == files, "replay must not rewrite cassettes"


def test_ids_are_provider_names(pytester: pytest.Pytester, llm_env: FakeProvider) -> None:
    pytester.makepyfile(test_app=CLIENTS)
    result = pytester.runpytest("--providers=zhipu,qwen", "--collect-only", "-q", "-k", "sync")
    result.stdout.fnmatch_lines(
        ["test_app.py::test_openai_sync[[]zhipu[]]", "test_app.py::test_openai_sync[[]qwen[]]"]
    )


STREAM_TIMING = """
import time

import pytest


@pytest.mark.llm_portable
def test_stream_arrives_in_pieces(llm_provider):
    body = {"model": llm_provider.model, "stream": True,
            "messages": [{"role": "user", "content": "一二三四五六七八九十"}]}
    start = time.perf_counter()
    arrivals = []
    with llm_provider.httpx_client().stream("POST", "chat/completions", json=body) as response:
        for chunk in response.iter_raw():
            arrivals.append((time.perf_counter() - start, chunk))
    events = b"".join(chunk for _, chunk in arrivals).count(b"data: ")
    assert events > 4
    if llm_provider.replaying:
        assert len(arrivals) == events, "replay yields one SSE event per chunk"
    else:
        first, last = arrivals[0][0], arrivals[-1][0]
        assert last - first > 0.2, "the stream was delivered as it arrived, not buffered"
"""


def test_streams_pass_through_while_recording_and_replay_event_by_event(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProvider(api_key=KEY, chunk_delay=0.06) as slow:
        monkeypatch.setenv("LLMPORT_DEEPSEEK_BASE_URL", slow.base_url)
        pytester.makepyfile(test_stream=STREAM_TIMING)
        pytester.runpytest("--providers=deepseek").assert_outcomes(passed=1)
    text = cassettes(pytester.path)["cassettes/test_stream/test_stream_arrives_in_pieces/deepseek.yaml"]
    assert "data: [DONE]" in text and "first_byte_ms" in text
    monkeypatch.setenv("CI", "1")
    pytester.runpytest("--providers=deepseek").assert_outcomes(passed=1)


CHANGED = """
import pytest

@pytest.mark.llm_portable
def test_ask(llm_provider):
    messages = [{"role": "user", "content": "QUESTION"}]
    try:
        llm_provider.openai_client().chat.completions.create(model=llm_provider.model, messages=messages)
    except Exception:
        pass  # an app that swallows errors must not hide a missing recording
"""


def test_unrecorded_request_fails_naming_test_provider_and_difference(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    pytester.makepyfile(test_ask=CHANGED.replace("QUESTION", "订单三天了"))
    pytester.runpytest("--providers=moonshot").assert_outcomes(passed=1)
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_ask=CHANGED.replace("QUESTION", "订单五天了"))
    result = pytester.runpytest("--providers=moonshot", *xdist_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*test_ask.py::test_ask[[]moonshot[]]: no recorded response for POST {llm_env.base_url}/chat/completions "
            "on provider 'moonshot'",
            "*cassette: *cassettes/test_ask/test_ask/moonshot.yaml (record mode: none)",
            "*closest recorded request (#1 of 1): POST *",
            "*$.messages[[]0[]].content: recorded '订单三天了', now '订单五天了'",
            "*To record it: MOONSHOT_API_KEY=... pytest 'test_ask.py::test_ask[[]moonshot[]]' --providers=moonshot "
            "--llmport-record-mode=all",
        ]
    )


def test_json_key_order_does_not_matter(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """
import pytest

@pytest.mark.llm_portable
def test_post(llm_provider):
    body = BODY
    assert llm_provider.httpx_client().post("chat/completions", json=body).status_code == 200
"""
    first = (
        '{"model": llm_provider.model, "temperature": 0, "messages": [{"role": "user", "content": "你好"}]}'
    )
    second = (
        '{"messages": [{"content": "你好", "role": "user"}], "temperature": 0, "model": llm_provider.model}'
    )
    pytester.makepyfile(test_order=source.replace("BODY", first))
    pytester.runpytest("--providers=yi").assert_outcomes(passed=1)
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_order=source.replace("BODY", second))
    pytester.runpytest("--providers=yi").assert_outcomes(passed=1)


def test_missing_cassette_in_replay_names_path_and_command(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_ask=CHANGED)
    result = run_modes("--providers=zhipu")  # the message comes from the worker, whole
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_ask.py::test_ask[[]zhipu[]]: no cassette for provider 'zhipu' at "
            "*cassettes/test_ask/test_ask/zhipu.yaml (record mode: none).",
            "*To record it: ZHIPUAI_API_KEY=... pytest 'test_ask.py::test_ask[[]zhipu[]]' --providers=zhipu "
            "--llmport-record-mode=once",
        ]
    )


def test_recording_without_key_skips_naming_the_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    pytester.makepyfile(test_ask=CHANGED)
    result = pytester.runpytest("--providers=qwen", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*DASHSCOPE_API_KEY is not set: cannot record 'qwen' (no cassette at *qwen.yaml)"]
    )


def test_local_provider_records_without_a_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LOCAL_LLM_API_KEY", raising=False)
    with FakeProvider() as server:
        monkeypatch.setenv("LLMPORT_LOCAL_BASE_URL", server.base_url)
        pytester.makepyfile(test_ask=CHANGED.replace("pass  #", "raise  #"))
        pytester.runpytest("--providers=local").assert_outcomes(passed=1)
        assert len(server.requests) == 1


FAILING = """
import pytest

@pytest.mark.llm_portable
def test_fails(llm_provider):
    llm_provider.httpx_client().post("chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert False, "the app misbehaved"
"""


def test_failed_test_keeps_its_cassette_and_replays_the_failure(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_fail=FAILING)
    result = run_modes("--providers=baichuan")
    result.assert_outcomes(failed=1)
    assert list(cassettes(pytester.path)) == ["cassettes/test_fail/test_fails/baichuan.yaml"]
    assert "cassettes not saved" not in result.stdout.str()
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    replayed = run_modes("--providers=baichuan")
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["*AssertionError: the app misbehaved*"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "version: 1\ninteractions:\n- request: {method: POST, uri: 'http://x\n",
            "not valid YAML at line 4, column 1 (while scanning a quoted scalar at line 3, column 32): "
            "found unexpected end of stream.*",
        ),
        ("version: 1\n", "the file has no 'interactions' list*"),
        (
            "version: 1\ninteractions:\n- request: {method: POST, uri: 'http://x', body: null, headers: {}}\n",
            "interactions[[]0[]] has no 'response' mapping (was the file cut short?)*",
        ),
        ("", "the file is empty; delete it and re-record"),
    ],
)
def test_corrupt_cassette_names_the_file_and_where(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, content: str, expected: str
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_ask=CHANGED)
    path = pytester.path / "cassettes" / "test_ask" / "test_ask" / "doubao.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    result = pytester.runpytest("--providers=doubao")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_ask.py::test_ask[[]doubao[]]: cassette of provider 'doubao' is unusable:",
            f"  {path}: {expected}",
        ]
    )


def test_record_modes(pytester: pytest.Pytester, llm_env: FakeProvider, run_modes: RunModes) -> None:
    two_calls = """
import pytest

@pytest.mark.llm_portable
def test_two(llm_provider):
    client = llm_provider.httpx_client()
    for text in TEXTS:
        client.post("chat/completions", json={"model": "m", "messages": [{"role": "user", "content": text}]})
"""
    path = pytester.path / "cassettes" / "test_modes" / "test_two" / "hunyuan.yaml"
    pytester.makepyfile(test_modes=two_calls.replace("TEXTS", '["一"]'))
    run_modes("--providers=hunyuan").assert_outcomes(passed=1)
    assert path.read_text(encoding="utf-8").count("- request:") == 1
    # once: an existing cassette is never extended, the new request fails and says how to add it.
    pytester.makepyfile(test_modes=two_calls.replace("TEXTS", '["一", "二"]'))
    result = pytester.runpytest("--providers=hunyuan")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*(record mode: once)*", "*--llmport-record-mode=all"])
    # new_episodes: the new request is appended.
    run_modes("--providers=hunyuan", "--llmport-record-mode=new_episodes").assert_outcomes(passed=1)
    assert path.read_text(encoding="utf-8").count("- request:") == 2
    # all: everything is recorded again, nothing duplicated.
    before = len(llm_env.requests)
    run_modes("--providers=hunyuan", "--llmport-record-mode=all").assert_outcomes(passed=1)
    assert len(llm_env.requests) == before + 2
    assert path.read_text(encoding="utf-8").count("- request:") == 2


def test_exports_environment_only_during_the_test(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://original.invalid/v1")
    pytester.makepyfile(
        test_env="""
import os
import pytest

@pytest.mark.llm_portable
def test_inside(llm_provider):
    assert os.environ["OPENAI_BASE_URL"] == llm_provider.base_url
    assert os.environ["LLMPORT_MODEL"] == llm_provider.model == "deepseek-chat"
    assert os.environ["LLMPORT_PROVIDER"] == "deepseek"

def test_after():
    assert os.environ["OPENAI_BASE_URL"] == "http://original.invalid/v1"
    assert "LLMPORT_PROVIDER" not in os.environ
"""
    )
    run_modes("--providers=deepseek", "-p", "no:randomly").assert_outcomes(passed=2)
    pytester.makepyfile(
        test_env="""
import os
import pytest

@pytest.mark.llm_portable
def test_inside(llm_provider):
    assert os.environ["OPENAI_BASE_URL"] == "http://original.invalid/v1"
"""
    )
    run_modes("--providers=deepseek", "--llmport-no-export-env").assert_outcomes(passed=1)


def test_replay_blocks_connections_that_bypass_patched_clients(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    pytester.makepyfile(
        test_raw="""
import socket
import pytest

@pytest.mark.llm_portable
def test_raw(llm_provider):
    if llm_provider.replaying:
        socket.getaddrinfo("api.minimaxi.com", 443)
"""
    )
    pytester.runpytest("--providers=minimax").assert_outcomes(passed=1)
    assert list(cassettes(pytester.path)) == ["cassettes/test_raw/test_raw/minimax.yaml"], (
        "empty, but recorded"
    )

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the guard let a lookup through")

    # The guard wraps whatever socket.getaddrinfo is when it starts: this stand-in proves no lookup leaves.
    monkeypatch.setattr(socket, "getaddrinfo", must_not_run)
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("--providers=minimax")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_raw.py::test_raw[[]minimax[]]: blocked a name lookup of api.minimaxi.com (getaddrinfo) "
            "on provider 'minimax'*"
        ]
    )
    allowed = pytester.runpytest("--providers=minimax", "--llmport-allow-network")
    allowed.assert_outcomes(failed=1)
    allowed.stdout.fnmatch_lines(["*the guard let a lookup through*"])


def test_parsed_cassettes_are_cached_and_a_changed_file_is_read_again(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_ask=CHANGED.replace("QUESTION", "缓存").replace("pass  #", "raise  #"))
    run_modes("--providers=zhipu", "-p", "cacheprovider").assert_outcomes(passed=1)
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    run_modes("--providers=zhipu", "-p", "cacheprovider").assert_outcomes(passed=1)
    cached = list((pytester.path / ".pytest_cache").rglob("parsed-*.marshal"))
    assert len(cached) == 1
    # Edit the cassette so it answers something else: the cache must not hide the edit.
    path = pytester.path / "cassettes/test_ask/test_ask/zhipu.yaml"
    path.write_text(path.read_text("utf-8").replace('"content": "缓存"', '"content": "改了"'), "utf-8")
    result = run_modes("--providers=zhipu", "-p", "cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*$.messages[[]0[]].content: recorded '改了', now '缓存'"])


RETRIED = """
import time

import pytest


@pytest.mark.llm_portable
def test_retried(llm_provider, monkeypatch):
    # What the SDK asks to sleep before its retry (counted, not timed: a loaded machine is slow).
    asked = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: (asked.append(seconds), real_sleep(min(seconds, 0.1))))
    client = llm_provider.openai_client(max_retries=2)
    reply = client.chat.completions.create(model=llm_provider.model, messages=[{"role": "user", "content": "你好"}])
    print(f"SLEEPS ASKED {asked}")
    assert reply.choices[0].message.content
"""


def test_a_recorded_retry_after_is_not_slept_on_replay(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_retry=RETRIED)
    llm_env.fail_next_with(
        "rate_limit", headers={"Retry-After": "0.05"}
    )  # the SDK waits that long, then retries
    pytester.runpytest("--providers=deepseek").assert_outcomes(passed=1)
    ((path, text),) = cassettes(pytester.path).items()
    assert text.count("code: 429") == 1 and text.count("code: 200") == 1
    # As if the provider had asked for 30 s: the openai SDK honours up to 60 s before retrying.
    assert "- '0.05'" in text
    (pytester.path / path).write_text(text.replace("- '0.05'", "- '30'"), encoding="utf-8")
    # A header edited by hand breaks the response's head seal; resealing is the documented way.
    assert cli(["reseal", str(pytester.path / path)]) == 0
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("--providers=deepseek", "-s")
    result.assert_outcomes(passed=1)
    (asked,) = re.findall(r"SLEEPS ASKED (\[.*\])", result.stdout.str())
    sleeps = ast.literal_eval(asked)
    assert len(sleeps) == 1 and sleeps[0] < 1.0, (
        f"replaying a 429 with Retry-After: 30 asked to sleep {sleeps}"
    )


def test_a_bad_content_encoding_the_app_handled_is_recorded_and_replayed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Liar(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"not gzip at all"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    pytester.makepyfile(
        test_liar="""
import httpx
import pytest

@pytest.mark.llm_portable
def test_models(llm_provider):
    try:
        llm_provider.httpx_client().get("models").json()
    except httpx.DecodingError:
        print("APP HANDLED the bad encoding")
"""
    )
    with ThreadingHTTPServer(("127.0.0.1", 0), Liar) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
        monkeypatch.setenv("LLMPORT_DEEPSEEK_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
        result = pytester.runpytest("--providers=deepseek", "-s")
        server.shutdown()
    result.assert_outcomes(passed=1)
    assert "APP HANDLED the bad encoding" in result.stdout.str()
    ((_, text),) = cassettes(pytester.path).items()
    assert "content-encoding" in text.lower(), "the header stays, so replay fails to decode the same way"
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("--providers=deepseek", "-s")
    result.assert_outcomes(passed=1)
    assert "APP HANDLED the bad encoding" in result.stdout.str()
