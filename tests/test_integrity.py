"""Findings survive, failures replay as failures, damaged cassettes are detected (issue 8, points 3-5).

Every recording goes through real sockets to the fake provider, which drops connections mid-body and
mid-stream or stalls (``FakeProvider.cut_next``); every replay runs with the provider stopped.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_llmport.cassettes import AtomicPersister, ReadableYamlSerializer
from pytest_llmport.errors import CorruptCassetteError
from pytest_llmport.testing import FakeProvider

from .conftest import RunModes, cassettes, lines_in_any_order

CUTS = """
import asyncio

import httpx
import openai
import pytest

def ask(text):
    return [{"role": "user", "content": text}]


@pytest.mark.llm_portable
def test_body_cut(llm_provider):
    client = llm_provider.openai_client(max_retries=0)
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model=llm_provider.model, messages=ask("CUT-BODY"))
    assert type(info.value.__cause__) is httpx2.RemoteProtocolError
    assert "received" in str(info.value.__cause__)


@pytest.mark.llm_portable
def test_stream_cut(llm_provider):
    stream = llm_provider.openai_client(max_retries=0).chat.completions.create(
        model=llm_provider.model, messages=ask("CUT-STREAM"), stream=True
    )
    pieces = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            pieces.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    # Events up to the cut, then the error: half of this answer's events.
    assert "".join(pieces) == "[fake] CUT"


@pytest.mark.llm_portable
def test_async_stream_reset(llm_provider):
    async def main():
        client = llm_provider.async_openai_client(max_retries=0)
        async with client:
            stream = await client.chat.completions.create(
                model=llm_provider.model, messages=ask("RESET-STREAM"), stream=True
            )
            return [c async for c in stream]

    with pytest.raises(openai.APIConnectionError) as info:
        asyncio.run(main())
    assert type(info.value.__cause__) is httpx2.ReadError


@pytest.mark.llm_portable
def test_stall_times_out(llm_provider):
    client = llm_provider.openai_client(max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=llm_provider.model, messages=ask("STALL"))


@pytest.mark.llm_portable
def test_httpx_stream_cut(llm_provider):
    body = {"model": llm_provider.model, "messages": ask("HTTPX-STREAM"), "stream": True}
    seen = []
    with pytest.raises(httpx.RemoteProtocolError):
        with llm_provider.httpx_client().stream("POST", "chat/completions", json=body) as response:
            for line in response.iter_lines():
                seen.append(line)
    assert any(line.startswith("data: ") for line in seen) and "data: [DONE]" not in seen


@pytest.mark.llm_portable
def test_no_answer_at_all(llm_provider):
    # A provider that never answers: the request is recorded with status 0 and its timeout.
    with pytest.raises(httpx.ReadTimeout):
        llm_provider.httpx_client(timeout=0.3).post("chat/completions", json={"model": "m", "messages": ask("HANG")})


@pytest.mark.llm_portable
def test_retry_after_a_cut(llm_provider):
    # The SDK retries a dropped connection; replay serves the same two attempts in the same order.
    client = llm_provider.openai_client(max_retries=1)
    reply = client.chat.completions.create(model=llm_provider.model, messages=ask("RETRY-ME"))
    assert reply.choices[0].message.content == "[fake] RETRY-ME"
""".replace("import httpx\n", "import httpx\nimport httpx2\n", 1)


def queue_cuts(fake: FakeProvider) -> None:
    fake.cut_next(matching="CUT-BODY")
    fake.cut_next(matching="CUT-STREAM")
    fake.cut_next(how="reset", matching="RESET-STREAM", events=2)
    fake.cut_next(how="stall", stall=2.0, matching="STALL", body_bytes=0)
    fake.cut_next(matching="HTTPX-STREAM")
    fake.cut_next(matching="RETRY-ME")
    fake.cut_next(how="hang", stall=2.0, matching="HANG")


def test_cut_short_responses_replay_as_the_same_errors(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    llm_env.chunk_chars = 2
    queue_cuts(llm_env)
    pytester.makepyfile(test_cuts=CUTS)
    recorded = pytester.runpytest("--providers=zhipu", *xdist_args)
    recorded.assert_outcomes(passed=7)
    files = cassettes(pytester.path)
    assert len(files) == 7, "a test that expected the cut keeps its recording"
    body = yaml.safe_load(files["cassettes/test_cuts/test_body_cut/zhipu.yaml"])
    response = body["interactions"][0]["response"]
    assert response["status"]["code"] == 200
    assert response["llmport"]["incomplete"]["error"] == "remote-protocol"
    with pytest.raises(ValueError):
        json.loads(response["body"]["string"])  # exactly what arrived: half a JSON body
    stall = yaml.safe_load(files["cassettes/test_cuts/test_stall_times_out/zhipu.yaml"])
    assert stall["interactions"][0]["response"]["llmport"]["incomplete"]["error"] == "read-timeout"
    reset = yaml.safe_load(files["cassettes/test_cuts/test_async_stream_reset/zhipu.yaml"])
    assert reset["interactions"][0]["response"]["llmport"]["incomplete"]["error"] == "connection-reset"
    retry = yaml.safe_load(files["cassettes/test_cuts/test_retry_after_a_cut/zhipu.yaml"])
    assert [("incomplete" in i["response"].get("llmport", {})) for i in retry["interactions"]] == [
        True,
        False,
    ]
    hang = yaml.safe_load(files["cassettes/test_cuts/test_no_answer_at_all/zhipu.yaml"])["interactions"][0]
    assert hang["response"]["status"]["code"] == 0
    assert hang["response"]["llmport"]["incomplete"]["error"] == "read-timeout"

    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest("--providers=zhipu", *xdist_args)
    replayed.assert_outcomes(passed=7)
    assert cassettes(pytester.path) == files


FINDINGS = """
import json

import openai
import pytest


@pytest.mark.llm_portable
def test_parses_json(llm_provider):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "JSON please"}]
    )
    return_value = json.loads(reply.choices[0].message.content)


@pytest.mark.llm_portable
def test_filtered(llm_provider):
    llm_provider.openai_client(max_retries=0).chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "FILTER ME"}]
    )


@pytest.mark.llm_portable
def test_expected_cut_missed(llm_provider):
    # The app does not expect the provider to drop it: the network's failure, not a finding.
    llm_provider.openai_client(max_retries=0).chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "DROP-ME"}]
    )
"""


def test_failing_tests_keep_their_findings_and_replay_them(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    # qwen's fenced JSON breaks the app's json.loads; zhipu's content filter answers HTTP 400.
    llm_env.set_dialect("openai", {"zhipu"})
    llm_env.replies = {"JSON please": '```json\n{"a": 1}\n```', "FILTER ME": {"error": "content_filter"}}
    llm_env.cut_next(matching="DROP-ME")
    pytester.makepyfile(test_findings=FINDINGS)
    report = pytester.path / "report.json"
    result = pytester.runpytest("--providers=zhipu", f"--llmport-report={report}", *xdist_args)
    result.assert_outcomes(failed=3)
    saved = sorted(cassettes(pytester.path))
    assert saved == [
        "cassettes/test_findings/test_filtered/zhipu.yaml",
        "cassettes/test_findings/test_parses_json/zhipu.yaml",
    ]
    result.stdout.fnmatch_lines(
        [
            "*llmport: cassettes not saved*",
            "  test_findings.py::test_expected_cut_missed[[]zhipu[]]: *zhipu.yaml: the test failed after "
            "exchange #1 POST */chat/completions was cut short (HTTP 200): remote-protocol: peer closed*",
            "    To record it: ZHIPUAI_API_KEY=... pytest 'test_findings.py::test_expected_cut_missed[[]zhipu[]]' "
            "--providers=zhipu --llmport-record-mode=once",
        ]
    )
    cells = json.loads(report.read_text("utf-8"))["tests"]
    kinds = {label.split("::")[1]: cell["zhipu"] for label, cell in cells.items()}
    assert kinds["test_parses_json"]["kind"] == "app-failure"
    assert kinds["test_parses_json"]["exception"].startswith("JSONDecodeError: Expecting value")
    assert kinds["test_filtered"]["kind"] == "provider-error"
    assert kinds["test_filtered"]["category"] == "content_filter"
    assert kinds["test_expected_cut_missed"]["kind"] == "recording-problem"
    result.stdout.fnmatch_lines(["*test_findings.py::test_parses_json*app:JSONDecodeError*"])

    # The suggested command works: it records the test (the provider no longer drops it), and saves it.
    recorded = pytester.runpytest("--providers=zhipu", "-k", "cut_missed", *xdist_args)
    recorded.assert_outcomes(passed=1)
    assert len(cassettes(pytester.path)) == 3

    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest("--providers=zhipu", *xdist_args)
    replayed.assert_outcomes(failed=2, passed=1)
    lines_in_any_order(replayed, ["*JSONDecodeError: Expecting value*", "*BadRequestError*"])


VCRPY_CLIENTS = """
import asyncio

import aiohttp
import pytest
import requests

BODY = {"model": "m", "messages": [{"role": "user", "content": "DROP-VCRPY"}]}


@pytest.mark.llm_portable
def test_requests(llm_provider):
    with pytest.raises(requests.exceptions.RequestException):
        requests.post(llm_provider.base_url + "/chat/completions", json=BODY, headers=llm_provider.headers, timeout=5)


@pytest.mark.llm_portable
def test_aiohttp(llm_provider):
    async def main():
        async with aiohttp.ClientSession(headers=llm_provider.headers) as session:
            async with session.post(llm_provider.base_url + "/chat/completions", json=BODY) as response:
                return await response.read()

    with pytest.raises(aiohttp.ClientError):
        asyncio.run(main())
"""


def test_requests_and_aiohttp_cuts_replay_as_the_same_errors(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    llm_env.cut_next(matching="DROP-VCRPY", times=2)
    pytester.makepyfile(test_vcrpy=VCRPY_CLIENTS)
    result = pytester.runpytest("--providers=qwen", *xdist_args)
    result.assert_outcomes(passed=2)
    files = cassettes(pytester.path)
    assert len(files) == 2
    for text in files.values():
        assert yaml.safe_load(text)["interactions"][0]["response"]["llmport"]["incomplete"]
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    pytester.runpytest("--providers=qwen", *xdist_args).assert_outcomes(passed=2)


NEVER_READ = """
import pytest


@pytest.mark.llm_portable
def test_never_read(llm_provider):
    client = llm_provider.httpx_client()
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    response = client.send(client.build_request("POST", "chat/completions", json=body), stream=True)
    assert response.status_code == 200  # and the stream is left open, unread
"""


def test_a_response_never_recorded_is_never_saved_as_success(
    pytester: pytest.Pytester, llm_env: FakeProvider, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_open=NEVER_READ)
    report = pytester.path / "report.json"
    result = run_modes("--providers=qwen", f"--llmport-report={report}")
    result.assert_outcomes(passed=1)
    assert cassettes(pytester.path) == {}
    result.stdout.fnmatch_lines(["*test_never_read*: POST */chat/completions: no response was recorded*"])
    cells = json.loads(report.read_text("utf-8"))["tests"]
    assert [cell["qwen"]["kind"] for cell in cells.values()] == ["recording-problem"]
    result.stdout.fnmatch_lines(["*test_open.py::test_never_read*recording-problem*"])


DOWN = """
import httpx
import httpx2
import openai
import pytest


@pytest.mark.llm_portable
def test_openai_down(llm_provider):
    client = llm_provider.openai_client(max_retries=0)
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model=llm_provider.model, messages=[{"role": "user", "content": "hi"}])
    assert type(info.value.__cause__) is httpx2.ConnectError


@pytest.mark.llm_portable
def test_httpx_down(llm_provider):
    with pytest.raises(httpx.ConnectError):
        llm_provider.httpx_client().post("chat/completions", json={"model": llm_provider.model})
"""


def test_a_provider_that_refuses_the_connection_replays_as_the_same_error(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    # A port bound and never listened on: the connection is refused at once, on every run.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("LLMPORT_DEEPSEEK_BASE_URL", f"http://127.0.0.1:{closed.getsockname()[1]}/v1")
        pytester.makepyfile(test_down=DOWN)
        pytester.runpytest("--providers=deepseek", *xdist_args).assert_outcomes(passed=2)
    files = cassettes(pytester.path)
    assert len(files) == 2, "a test that expected the refusal keeps its recording"
    for text in files.values():
        response = yaml.safe_load(text)["interactions"][0]["response"]
        assert response["status"]["code"] == 0
        assert response["llmport"]["incomplete"]["error"] == "connect-error"
    monkeypatch.delenv("LLMPORT_DEEPSEEK_BASE_URL")
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    monkeypatch.setenv("CI", "true")
    pytester.runpytest("--providers=deepseek", *xdist_args).assert_outcomes(passed=2)
    assert cassettes(pytester.path) == files


ONE = """
import pytest


@pytest.mark.llm_portable
def test_one(llm_provider):
    client = llm_provider.openai_client()
    reply = client.chat.completions.create(model=llm_provider.model, messages=[{"role": "user", "content": "订单三天没发货"}])
    assert reply.choices[0].message.content == "[fake] 订单三天没发货"


@pytest.mark.llm_portable
def test_streamed(llm_provider):
    stream = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "请礼貌地回复这位顾客"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "[fake] 请礼貌地回复这位顾客"
"""


@pytest.fixture
def recorded(pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A one-exchange and a streamed cassette recorded through the openai SDK; then the provider is gone."""
    pytester.makepyfile(test_one=ONE)
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=2)
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    return pytester.path / "cassettes" / "test_one"


@pytest.mark.parametrize("test", ["test_one", "test_streamed"])
def test_a_cassette_cut_at_any_line_end_never_loads(recorded: Path, test: str) -> None:
    path = recorded / test / "zhipu.yaml"
    text = path.read_text("utf-8")
    ends = [i + 1 for i, char in enumerate(text) if char == "\n"]
    assert len(ends) > 30
    target = path.with_name("cut.yaml")

    def load(content: str) -> list[tuple[str, str, bytes]]:
        target.write_text(content, "utf-8")
        requests, responses, *_ = AtomicPersister().load_cassette(target, ReadableYamlSerializer)
        return [(r.uri, r.body, s["body"]["string"]) for r, s in zip(requests, responses, strict=True)]

    whole = load(text)
    assert len(whole) == 1 and whole[0][2]
    damaged = []
    for end in ends[:-1]:
        try:
            usable = load(text[:end])
        except CorruptCassetteError:
            continue
        # Only the YAML document-end line may go: what loads must be the whole recording.
        if usable != whole:
            damaged.append(end)
    assert damaged == [], f"{len(damaged)} of {len(ends) - 1} cut points load a broken or shorter body"


def test_a_cut_cassette_fails_naming_test_provider_cassette_and_fix(
    pytester: pytest.Pytester, recorded: Path, xdist_args: list[str]
) -> None:
    path = recorded / "test_streamed" / "zhipu.yaml"
    text = path.read_text("utf-8")
    path.write_text(text[: text.index("data: [DONE]")], "utf-8")
    result = pytester.runpytest("--providers=zhipu", "-p", "cacheprovider", *xdist_args)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_one.py::test_streamed[[]zhipu[]]: cassette of provider 'zhipu' is unusable:",
            f"  {path}: interactions[[]0[]].response.llmport has no sha256/length seal (was the file cut "
            "short?). If you edited it on purpose, re-seal it: python -m pytest_llmport reseal *zhipu.yaml; "
            "otherwise delete it and re-record.",
            "  To record it: ZHIPUAI_API_KEY=... pytest 'test_one.py::test_streamed[[]zhipu[]]' --providers=zhipu "
            "--llmport-record-mode=all",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_the_parsed_cache_never_hides_damage(pytester: pytest.Pytester, recorded: Path) -> None:
    for _ in range(2):  # the second run is served from the cache
        pytester.runpytest("--providers=zhipu", "-p", "cacheprovider").assert_outcomes(passed=2)
    assert list((pytester.path / ".pytest_cache").rglob("parsed-*.marshal"))
    path = recorded / "test_one" / "zhipu.yaml"
    text = path.read_text("utf-8")
    path.write_text(text.replace("订单三天没发货", "订单五天没发货", 2), "utf-8")
    result = pytester.runpytest("--providers=zhipu", "-p", "cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*response.body does not match its sha256 seal (edited by hand?)*"])


def _failed_exchange() -> str:
    """A cassette holding one provider error and one stream cut short, as the serializer writes them."""
    error = {
        "status": {"code": 429, "message": "Too Many Requests"},
        "headers": {"content-type": ["application/json"], "retry-after": ["1"]},
        "body": {"string": '{"error": {"message": "rate limited"}}'},
    }
    cut = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["text/event-stream"]},
        "body": {"string": 'data: {"choices": []}\n\n'},
        "llmport": {"incomplete": {"error": "remote-protocol", "message": "peer closed connection"}},
    }
    request = {"method": "POST", "uri": "http://127.0.0.1:9/v1/chat/completions", "body": None, "headers": {}}
    data = {"interactions": [{"request": request, "response": error}, {"request": request, "response": cut}]}
    return ReadableYamlSerializer.serialize(data)


@pytest.mark.parametrize(
    ("edit", "old", "new"),
    [
        ("a provider error made a success", "code: 429", "code: 200"),
        ("a header changed", "- text/event-stream", "- application/json"),
        ("a cut-short stream made whole", "      incomplete:\n", "      x-incomplete:\n"),
    ],
)
def test_an_edited_status_header_or_incomplete_mark_never_loads(edit: str, old: str, new: str) -> None:
    text = _failed_exchange()
    assert ReadableYamlSerializer.deserialize(text)["interactions"][0]["response"]["status"]["code"] == 429
    assert text.count(old) == 1, text
    edited = text.replace(old, new)
    with pytest.raises(ValueError, match="do not match their head seal"):
        ReadableYamlSerializer.deserialize(edited)
    # Dropping the whole incomplete block (every line of it) is caught the same way.
    if "incomplete" in old:
        lines = [line for line in text.splitlines(keepends=True) if "incomplete" not in line]
        lines = [line for line in lines if not line.lstrip().startswith(("error: remote", "message: peer"))]
        with pytest.raises(ValueError, match="do not match their head seal"):
            ReadableYamlSerializer.deserialize("".join(lines))


def test_a_deliberate_edit_is_resealed(pytester: pytest.Pytester, recorded: Path) -> None:
    path = recorded / "test_one" / "zhipu.yaml"
    text = path.read_text("utf-8")
    edited = text.replace('"content": "[fake] 订单三天没发货"', '"content": "已发货"')
    assert edited != text
    path.write_text(edited, "utf-8")
    pytester.makepyfile(test_one=ONE.replace('== "[fake] 订单三天没发货"', '== "已发货"'))
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=1, errors=1)
    tool = subprocess.run(
        [sys.executable, "-m", "pytest_llmport", "reseal", str(recorded)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tool.returncode == 0, tool.stderr
    assert f"resealed {path} (1 interaction)" in tool.stdout
    assert "已发货" in path.read_text("utf-8")
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=2)
    # Nothing else changed: a second reseal writes the same bytes.
    before = path.read_bytes()
    subprocess.run(
        [sys.executable, "-m", "pytest_llmport", "reseal", str(path)], check=True, capture_output=True
    )
    assert path.read_bytes() == before


def test_reseal_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ninteractions:\n- request: {method: POST, uri: 'http://x\n", "utf-8")
    tool = subprocess.run(
        [sys.executable, "-m", "pytest_llmport", "reseal", str(bad), str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tool.returncode == 1
    assert f"{bad}: not valid YAML at line 4" in tool.stderr
    assert "missing.yaml: no such file" in tool.stderr
    assert bad.read_text("utf-8").endswith("'http://x\n"), "a file it cannot read is left as it is"


def test_a_newer_format_is_refused_with_the_version_that_reads_it(
    pytester: pytest.Pytester, recorded: Path
) -> None:
    path = recorded / "test_one" / "zhipu.yaml"
    text = path.read_text("utf-8")
    path.write_text(
        text.replace("  format: 3\n  plugin: 0.1.0\n", "  format: 7\n  plugin: 3.2.0\n", 1), "utf-8"
    )
    result = pytester.runpytest("--providers=zhipu")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_one.py::test_one[[]zhipu[]]: cassette of provider 'zhipu' is unusable:",
            f"  {path}: cassette format 7 (written by pytest-llmport 3.2.0); this pytest-llmport * reads "
            "formats 1 to 3. Upgrade pytest-llmport to 3.2.0 or later.",
        ]
    )


def test_unsealed_cassettes_still_load(pytester: pytest.Pytester, recorded: Path) -> None:
    # Format 1: what every cassette committed before sealing is (no llmport block, no seals).
    path = recorded / "test_one" / "zhipu.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    del data["llmport"]
    for item in data["interactions"]:
        del item["response"]["llmport"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=2)


def test_leftover_temp_files_are_ignored_and_cleaned(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_one=ONE)
    folder = pytester.path / "cassettes" / "test_one" / "test_one"
    folder.mkdir(parents=True)
    leftover = folder / ".zhipu.yaml.k1ll3d.tmp"
    leftover.write_text("version: 1\ninteractions:\n- request:\n", "utf-8")
    run_modes("--providers=zhipu", "-k", "test_one and not streamed").assert_outcomes(passed=1)
    assert not leftover.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["zhipu.yaml"]
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    leftover.write_text("garbage", "utf-8")
    pytester.runpytest("--providers=zhipu", "-k", "test_one and not streamed").assert_outcomes(passed=1)


# Files may not grow past 1 KiB, as on a full disk: every cassette or report write fails (pipes, such as
# the run's output, are not files). An ignored SIGXFSZ stays ignored across exec.
SMALL_DISK = ["sh", "-c", 'trap "" XFSZ; ulimit -f 1; exec "$0" "$@"']


def test_a_full_disk_gives_one_clean_error_naming_the_file(
    pytester: pytest.Pytester, llm_env: FakeProvider
) -> None:
    pytester.makepyfile(test_one=ONE)
    report = pytester.path / "out" / "report.json"
    options = ["--providers=zhipu", "-k", "test_one and not streamed", f"--llmport-report={report}"]
    run = subprocess.run(
        [
            *SMALL_DISK,
            sys.executable,
            "-m",
            "pytest",
            *options,
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = run.stdout
    path = pytester.path / "cassettes" / "test_one" / "test_one" / "zhipu.yaml"
    assert run.returncode == 1, output + run.stderr
    assert "1 passed, 1 deselected, 1 error" in output
    assert f"test_one.py::test_one[zhipu]: could not write the cassette {path}: File too large" in output
    assert f"could not write the JSON report {report}: File too large" in output, output
    assert "Traceback" not in output and "INTERNALERROR" not in output
    assert not path.exists() and not report.exists()
    assert list(path.parent.iterdir()) == [] and list(report.parent.iterdir()) == []


def test_an_interrupted_run_lists_the_recording_it_did_not_save(
    pytester: pytest.Pytester, llm_env: FakeProvider, xdist_args: list[str]
) -> None:
    pytester.makepyfile(
        test_stop="""
import pytest

@pytest.mark.llm_portable
def test_stop(llm_provider):
    llm_provider.httpx_client().post("chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    raise KeyboardInterrupt
"""
    )
    result = pytester.runpytest_inprocess("--providers=zhipu", *xdist_args, no_reraise_ctrlc=True)
    assert cassettes(pytester.path) == {}
    result.stdout.fnmatch_lines(
        [
            "*llmport: cassettes not saved*",
            "  test_stop.py::test_stop[[]zhipu[]]: *: the run was interrupted*",
        ]
    )


OWN_VERDICTS = """
import pytest


@pytest.mark.llm_portable
def test_fails_itself(llm_provider):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "hello"}]
    )
    pytest.fail(f"the app rejects {reply.choices[0].message.content!r}")


@pytest.mark.llm_portable
def test_skips_itself(llm_provider):
    llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "hello"}]
    )
    pytest.skip("not on this provider")
"""


def test_pytest_fail_and_skip_in_a_test_keep_its_recording(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    # pytest.fail() and pytest.skip() raise BaseExceptions; they are the test's verdict, not an
    # interrupted run, so the finding must reach CI with its cassette.
    pytester.makepyfile(test_own=OWN_VERDICTS)
    report = pytester.path / "report.json"
    result = pytester.runpytest("--providers=zhipu", f"--llmport-report={report}", *xdist_args)
    result.assert_outcomes(failed=1, skipped=1)
    assert sorted(cassettes(pytester.path)) == [
        "cassettes/test_own/test_fails_itself/zhipu.yaml",
        "cassettes/test_own/test_skips_itself/zhipu.yaml",
    ]
    assert "interrupted" not in result.stdout.str()
    cells = json.loads(report.read_text("utf-8"))["tests"]
    assert cells["test_own.py::test_fails_itself"]["zhipu"]["kind"] == "app-failure"

    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest("--providers=zhipu", *xdist_args)
    replayed.assert_outcomes(failed=1, skipped=1)
    replayed.stdout.fnmatch_lines(["*the app rejects*"])
