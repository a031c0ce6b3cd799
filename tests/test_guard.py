"""The network guard, through real sockets: nothing leaves the machine while a run replays.

No test here sends a packet off the machine. Peers are TEST-NET addresses (192.0.2.0/24, 2001:db8::/32):
a real connect there would hang until its timeout or fail with the kernel's own error, so getting the
guard's own exception type at once proves it refused before the socket call was made.
"""

from __future__ import annotations

import _socket
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmport import NetworkBlockedError
from pytest_llmport.errors import LookupBlockedError
from pytest_llmport.guard import Attempt, ChildGuard, Guard, is_local_ip
from pytest_llmport.testing import FakeProvider

from .conftest import RunModes, cassettes, lines_in_any_order


@pytest.fixture
def refused() -> Iterator[list[Attempt]]:
    attempts: list[Attempt] = []

    def on_refusal(attempt: Attempt) -> str:
        attempts.append(attempt)
        return f"refused by the test guard: {attempt.describe()}"

    guard = Guard(on_refusal)
    guard.install()
    try:
        yield attempts
    finally:
        guard.uninstall()


def udp(action: Callable[[Any], object], family: int = socket.AF_INET, c_level: bool = False) -> object:
    return _use(action, family, socket.SOCK_DGRAM, c_level)


def tcp(action: Callable[[Any], object], family: int = socket.AF_INET, c_level: bool = False) -> object:
    return _use(action, family, socket.SOCK_STREAM, c_level)


def _use(action: Callable[[Any], object], family: int, kind: int, c_level: bool) -> object:
    sock = _socket.socket(family, kind) if c_level else socket.socket(family, kind)
    sock.settimeout(5)
    try:
        return action(sock)
    finally:
        sock.close()


CALLS: dict[str, tuple[Callable[[], object], str]] = {
    "connect bytes host": (
        lambda: tcp(lambda s: s.connect((b"192.0.2.1", 9))),
        "a connection to 192.0.2.1:9",
    ),
    "connect_ex": (lambda: tcp(lambda s: s.connect_ex(("192.0.2.1", 9))), "a connection to 192.0.2.1:9"),
    "C-level _socket.socket": (
        lambda: tcp(lambda s: s.connect(("192.0.2.1", 9)), c_level=True),
        "192.0.2.1:9",
    ),
    "IPv6": (lambda: tcp(lambda s: s.connect(("2001:db8::1", 9, 0, 0)), socket.AF_INET6), "2001:db8::1:9"),
    "IPv4-mapped IPv6": (
        lambda: tcp(lambda s: s.connect(("::ffff:192.0.2.1", 9)), socket.AF_INET6),
        "192.0.2.1:9",
    ),
    "a name in connect": (lambda: tcp(lambda s: s.connect(("example.com", 80))), "example.com:80"),
    # Not an address: the C socket module hands it to glibc, which asks DNS; it is a name, not loopback.
    "a scope suffix on IPv4 loopback": (
        lambda: tcp(lambda s: s.connect(("127.0.0.1%x", 9))),
        "a connection to 127.0.0.1%x:9",
    ),
    "getaddrinfo of IPv4 loopback with a scope": (
        lambda: socket.getaddrinfo("127.0.0.1%x", 80),
        "a name lookup of 127.0.0.1%x (getaddrinfo)",
    ),
    "legacy IPv4 form": (lambda: tcp(lambda s: s.connect(("3221225985", 9))), "3221225985:9"),  # 192.0.2.1
    "broadcast": (lambda: udp(lambda s: s.sendto(b"x", ("<broadcast>", 9))), "<broadcast>:9"),
    "UDP sendto": (
        lambda: udp(lambda s: s.sendto(b"x", ("192.0.2.1", 53))),
        "a packet to 192.0.2.1:53 (sendto)",
    ),
    "UDP sendto flags": (
        lambda: udp(lambda s: s.sendto(b"x", 0, ("192.0.2.1", 53))),
        "192.0.2.1:53 (sendto)",
    ),
    "UDP sendmsg": (lambda: udp(lambda s: s.sendmsg([b"x"], [], 0, ("192.0.2.1", 53))), "(sendmsg)"),
    "C-level sendto": (
        lambda: udp(lambda s: s.sendto(b"x", ("192.0.2.1", 9)), c_level=True),
        "sendto",
    ),
    "create_connection": (lambda: socket.create_connection(("192.0.2.1", 9), timeout=5), "192.0.2.1"),
    "getaddrinfo": (
        lambda: socket.getaddrinfo("example.com", 443),
        "a name lookup of example.com (getaddrinfo)",
    ),
    "C-level getaddrinfo": (lambda: _socket.getaddrinfo("example.com", 443), "example.com (getaddrinfo)"),
    "gethostbyname": (lambda: socket.gethostbyname("example.com"), "example.com (gethostbyname)"),
    "gethostbyname_ex": (lambda: socket.gethostbyname_ex("example.com"), "(gethostbyname_ex)"),
    "gethostbyaddr": (lambda: socket.gethostbyaddr("192.0.2.1"), "192.0.2.1 (gethostbyaddr)"),
    "getnameinfo": (lambda: socket.getnameinfo(("192.0.2.1", 80), 0), "192.0.2.1 (getnameinfo)"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_call_is_refused_before_it_reaches_the_network(refused: list[Attempt], name: str) -> None:
    call, described = CALLS[name]
    with pytest.raises(NetworkBlockedError) as excinfo:
        call()
    # Only the guard raises this type, before the socket call: the kernel would have raised its own
    # error or timed out (no clock here: a loaded machine must not fail this test).
    assert described in str(excinfo.value) and refused and described in refused[-1].describe()
    # Clients translate the OSError flavour into their own connection errors.
    expected = LookupBlockedError if "get" in name else ConnectionRefusedError
    assert isinstance(excinfo.value, expected) and isinstance(excinfo.value, OSError)


def test_other_families_than_ip_are_refused_unless_local(refused: list[Attempt], tmp_path: Path) -> None:
    if not hasattr(socket, "AF_PACKET"):
        pytest.skip("no AF_PACKET here")
    try:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    except PermissionError:
        pytest.skip("AF_PACKET needs CAP_NET_RAW")
    with raw, pytest.raises(NetworkBlockedError, match="AF_PACKET"):
        raw.sendto(b"x" * 20, ("lo", 0))
    # A Unix socket never leaves the machine.
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "s"))
    server.listen()
    with server, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(tmp_path / "s"))


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(self.request.recv(16))


@pytest.fixture
def loopback_server() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address[1]
        server.shutdown()


def test_loopback_passes_and_localhost_names_are_answered_without_resolving(
    loopback_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[object] = []
    real = _socket.getaddrinfo

    def recording_resolver(host: object, *args: Any) -> Any:
        asked.append(host)
        return real(host, *args)

    # The resolver the guard wraps (it wraps what is installed when it starts): it records each lookup.
    monkeypatch.setattr(_socket, "getaddrinfo", recording_resolver)
    guard = Guard(lambda attempt: "refused")
    guard.install()
    try:
        for host in ("127.0.0.1", "localhost", "api.localhost", "x.y.localhost.", socket.gethostname()):
            with socket.create_connection((host, loopback_server), timeout=5) as conn:
                conn.sendall(b"ping")
                assert conn.recv(16) == b"ping"
        tcp(lambda s: s.connect((b"127.0.0.1", loopback_server)))  # a bytes host that is loopback
        # A scoped IPv6 loopback is still loopback (this machine may have no IPv6 to connect with).
        assert is_local_ip("::1%lo") and is_local_ip("::ffff:127.0.0.1%lo") and not is_local_ip("127.0.0.1%x")
        addresses = {info[4][0] for info in socket.getaddrinfo("x.localhost", 80)}
        assert addresses <= {"127.0.0.1", "::1"} and "127.0.0.1" in addresses
        assert socket.gethostbyname("x.localhost") == "127.0.0.1"
        assert socket.gethostbyaddr("127.0.0.1")[2] == ["127.0.0.1"]
        assert socket.getfqdn()  # the own host name is answered here, not looked up
    finally:
        guard.uninstall()
    assert all(host in ("127.0.0.1", "::1") for host in asked), f"names reached the resolver: {asked}"


def test_uninstall_restores_the_socket_module_and_an_idle_guard_passes_through() -> None:
    # Compared with what was there before: under CI the suite's own run may have installed its guard.
    before = (_socket.socket, socket.SocketType, socket.getaddrinfo, _socket.gethostbyname)
    connect = socket.socket.__dict__.get("connect")
    guard = Guard(lambda attempt: "refused", blocking=lambda: False)
    guard.install()
    with socket.socket() as sock:
        assert _socket.socket.__module__ == "pytest_llmport.guard" and isinstance(sock, _socket.socket)
    assert socket.getaddrinfo("127.0.0.1", 80)  # not blocking: nothing refused
    guard.uninstall()
    assert (_socket.socket, socket.SocketType, socket.getaddrinfo, _socket.gethostbyname) == before
    assert socket.socket.__dict__.get("connect") is connect


def test_child_python_runs_the_same_guard_and_reports_back() -> None:
    children = ChildGuard()
    try:
        env = {**os.environ, **children.environment(os.environ, proxies=True)}
        code = (
            "import socket, os\n"
            "try:\n"
            "    socket.create_connection(('192.0.2.1', 9), timeout=5)\n"
            "except ConnectionRefusedError as exc:\n"
            "    print('refused:', exc)\n"
            "print('proxy:', os.environ['HTTPS_PROXY'], os.environ['NO_PROXY'])\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        assert (
            "refused: [Errno -2] pytest-llmport: blocked a connection to 192.0.2.1:9 in a child"
            in result.stdout
        )
        assert f"proxy: http://127.0.0.1:{children.proxy_port} localhost,127.0.0.1,::1" in result.stdout
        (entry,) = children.collect()
        assert entry["what"] == "a connection to 192.0.2.1:9" and "-c" in entry["command"]
        assert children.collect() == []
        # The proxy port is closed: programs that honour the variables are refused at once, locally.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", children.proxy_port), timeout=5)
    finally:
        children.close()


def test_a_child_pytest_takes_over_from_the_inherited_guard(tmp_path: Path) -> None:
    """An xdist worker inherits the child guard; its own plugin replaces it (and runs its own)."""
    children = ChildGuard()
    try:
        env = {**os.environ, **children.environment(os.environ, proxies=False)}
        code = (
            "import socket, sys\n"
            "assert '_llmport_child_guard' in sys.modules, 'the child guard was not installed'\n"
            "import pytest_llmport.guard\n"
            "assert 'connect' not in socket.socket.__dict__, 'the inherited guard is still installed'\n"
        )
        subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=True, cwd=tmp_path)
    finally:
        children.close()


def test_closing_removes_what_child_pythons_wrote_in_the_guard_folder(tmp_path: Path) -> None:
    """A child Python that writes bytecode (xdist workers do, without PYTHONDONTWRITEBYTECODE) leaves
    __pycache__ beside the sitecustomize: closing removes it too, instead of failing the run's unconfigure."""
    children = ChildGuard()
    env = {**os.environ, **children.environment(os.environ, proxies=False)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    folder = Path(env["PYTHONPATH"].split(os.pathsep)[0])
    try:
        subprocess.run([sys.executable, "-c", "pass"], env=env, timeout=60, check=True, cwd=tmp_path)
        assert (folder / "__pycache__").is_dir()
    finally:
        children.close()
    assert not folder.exists()


# -- through pytest: a run that only replays ------------------------------------------------------------
REPLAY_RUN = {
    "conftest": """
import socket
import pytest

@pytest.fixture(scope="session")
def warm_cache():
    try:
        socket.gethostbyname("example.com")
    except OSError:
        pass  # best effort, as a cache warmer would be
""",
    "test_import_time": """
import socket
try:
    socket.create_connection(("192.0.2.1", 443), timeout=5)  # a library phoning home at import
except OSError:
    pass

def test_never_runs():
    pass
""",
    "test_unmarked": """
import socket
import socketserver
import threading

import httpx

def test_raw_socket_caught():
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=5)
    except ConnectionRefusedError:
        print("APP SAW ConnectionRefusedError")

def test_httpx_caught():
    try:
        httpx.get("http://192.0.2.1:9/", timeout=5)
    except httpx.ConnectError:
        print("APP SAW httpx.ConnectError")

def test_session_fixture(warm_cache):
    pass

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(self.request.recv(16))

def test_loopback_server_works():
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, server.server_address[1]), timeout=5) as conn:
                conn.sendall(b"hi")
                assert conn.recv(16) == b"hi"
        server.shutdown()
""",
}


def test_a_replaying_run_guards_imports_session_fixtures_and_unmarked_tests(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    pytester.makeconftest(REPLAY_RUN["conftest"])
    pytester.makepyfile(
        test_import_time=REPLAY_RUN["test_import_time"], test_unmarked=REPLAY_RUN["test_unmarked"]
    )
    result = pytester.runpytest(
        "--llmport-record-mode=none", "-s", "--continue-on-collection-errors", *xdist_args
    )
    result.assert_outcomes(passed=1, failed=2, errors=2)
    text = result.stdout.str()
    lines_in_any_order(
        result,
        [
            "*test_import_time.py: blocked a connection to 192.0.2.1:443: the run replays (record mode: none)*",
            "*test_session_fixture: blocked a name lookup of example.com (gethostbyname)*",
            "*test_raw_socket_caught: blocked a connection to 192.0.2.1:9: the run replays*",
            # httpx reads HTTP_PROXY, which the guard pointed at a closed port for child processes.
            "*test_httpx_caught: blocked a request for a non-loopback host through the proxy variables*",
        ],
    )
    if not xdist_args:  # -s output of workers is not shown
        assert "APP SAW ConnectionRefusedError" in text and "APP SAW httpx.ConnectError" in text
    assert "--llmport-allow-network" in text

    # The switch turns it all off (checked without sending anything: the socket module is left alone).
    pytester.makepyfile(
        test_import_time="def test_nothing(): pass",
        test_unmarked="""
from pytest_llmport.plugin import RUN_KEY

def test_unguarded(request):
    assert request.config.stash[RUN_KEY].guard is None
""",
    )
    pytester.runpytest("--llmport-record-mode=none", "--llmport-allow-network", *xdist_args).assert_outcomes(
        passed=2
    )


CHILDREN = """
import os
import shutil
import subprocess
import sys

import pytest


def say(line):
    # Into a file, not -s output: xdist workers' output never reaches the terminal.
    with open("children.log", "a", encoding="utf-8") as log:
        log.write(line + "\\n")


PYTHON_CHILD = (
    "import socket\\n"
    "try:\\n"
    "    socket.create_connection(('192.0.2.1', 9), timeout=5)\\n"
    "except OSError as exc:\\n"
    "    print(type(exc).__name__, exc)\\n"
)

@pytest.mark.llm_portable
@pytest.mark.parametrize("own_env", [False, True])
def test_python_child(llm_provider, own_env):
    if not llm_provider.replaying:
        return  # recording is not guarded: this would really try 192.0.2.1
    # An environment of the app's own (no PYTHONPATH, no proxies) must not let the child out either.
    env = {"PATH": os.environ.get("PATH", "")} if own_env else None
    result = subprocess.run(
        [sys.executable, "-c", PYTHON_CHILD], capture_output=True, text=True, timeout=60, env=env
    )
    say("CHILD SAID " + result.stdout.strip())

@pytest.mark.llm_portable
def test_curl_child(llm_provider):
    if not shutil.which("curl"):
        pytest.skip("no curl")
    if not llm_provider.replaying:
        return
    result = subprocess.run(
        ["curl", "-sS", "-m", "5", "http://192.0.2.1:9/"], capture_output=True, text=True, timeout=60
    )
    say(f"CURL EXIT {result.returncode} {result.stderr.strip()}")
"""


def test_child_processes_of_a_replaying_run_are_guarded(
    pytester: pytest.Pytester, llm_env: FakeProvider, run_modes: RunModes
) -> None:
    # Under xdist the tests run in workers, themselves children of the run: each must guard its own.
    pytester.makepyfile(test_children=CHILDREN)
    run_modes("--providers=deepseek").assert_outcomes(passed=3)  # recorded: nothing guarded
    result = run_modes("--providers=deepseek", "--llmport-record-mode=none", "-p", "no:randomly")
    text = (pytester.path / "children.log").read_text("utf-8")
    # The Python child ran the same guard: its app got a connection error, the test fails with the message.
    assert (
        text.count(
            "CHILD SAID LookupBlockedError [Errno -2] pytest-llmport: blocked a connection to 192.0.2.1:9"
        )
        == 2
    )
    for own_env in ("False", "True"):
        result.stdout.fnmatch_lines(
            [
                f"*test_python_child[[]deepseek-{own_env}[]]: a child process (pid *-c*) was refused a "
                "connection to 192.0.2.1:9*"
            ]
        )
    if shutil.which("curl"):
        # curl honours the proxy variables: it was refused by the closed loopback port, not by 192.0.2.1.
        assert "CURL EXIT 7" in text and "127.0.0.1" in text.split("CURL EXIT 7", 1)[1].splitlines()[0]
        result.assert_outcomes(failed=2, passed=1)  # what curl tried is invisible to the plugin
    else:
        result.assert_outcomes(failed=2, skipped=1)
    # Replay in record mode once: child Pythons are guarded too (without the proxy variables).
    result = run_modes("--providers=deepseek", "-k", "python_child")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*a child process (pid *) was refused a connection to 192.0.2.1:9*"])


# -- background traffic ------------------------------------------------------------------------------------
BACKGROUND = """
import os
import threading

import httpx
import pytest

go = threading.Event()
done = threading.Event()
seen = []


def refresh_cost_map():
    # Like litellm: a thread started at import fetches a price list when it gets round to it.
    go.wait()
    try:
        httpx.get(os.environ["BG_URL"] + "/model_prices_and_context_window.json", timeout=5)
        seen.append("answered")
    except httpx.ConnectError:
        seen.append("ConnectError")
    done.set()


threading.Thread(target=refresh_cost_map, name="cost-map-refresher", daemon=True).start()


@pytest.mark.llm_portable
def test_app(llm_provider):
    go.set()
    assert done.wait(30)
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "你好"}]
    )
    assert reply.choices[0].message.content
    assert seen == [os.environ["EXPECT"]]
"""


def test_background_requests_are_not_the_tests(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    pytester.makepyfile(test_bg=BACKGROUND)
    monkeypatch.setenv("BG_URL", llm_env.url)
    monkeypatch.setenv("EXPECT", "answered")
    report = pytester.path / "report.json"
    result = pytester.runpytest("--providers=deepseek", f"--llmport-report={report}", *xdist_args)
    result.assert_outcomes(passed=1)
    (text,) = cassettes(pytester.path).values()
    assert "chat/completions" in text and "model_prices" not in text, "background traffic was recorded"
    assert any(r.path.endswith("model_prices_and_context_window.json") for r in llm_env.requests)
    result.stdout.fnmatch_lines(
        [
            "*llmport: background traffic*",
            "*test_bg.py::test_app[[]deepseek[]]: http://127.0.0.1:*/model_prices_and_context_window.json "
            "from thread 'cost-map-refresher': litellm refreshes its cost map*LITELLM_LOCAL_MODEL_COST_MAP*",
        ]
    )
    data = json.loads(report.read_text(encoding="utf-8"))
    assert "model_prices_and_context_window.json" in json.dumps(data)

    # Replay: the refresher gets its client's own connection error; the test is not failed by it.
    monkeypatch.setenv("BG_URL", "http://192.0.2.1:9")
    monkeypatch.setenv("EXPECT", "ConnectError")
    result = pytester.runpytest("--providers=deepseek", "--llmport-record-mode=none", *xdist_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_app[[]deepseek[]]: http://192.0.2.1:9/model_prices_and_context_window.json from thread "
            "'cost-map-refresher'*"
        ]
    )


# -- an unrecorded request gets the client's own connection error ---------------------------------------------
UNRECORDED = """
import asyncio
import http.client
import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import aiohttp
import pytest
import requests
import urllib3


def request(llm_provider):
    body = {"model": llm_provider.model, "messages": [{"role": "user", "content": os.environ["QUESTION"]}]}
    headers = {**llm_provider.headers, "Content-Type": "application/json"}
    return llm_provider.base_url + "/chat/completions", json.dumps(body).encode(), headers


@pytest.mark.llm_portable
def test_requests(llm_provider):
    url, body, headers = request(llm_provider)
    try:
        requests.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    except requests.ConnectionError:
        print("EXCEPT RAN: requests")


@pytest.mark.llm_portable
def test_urllib3(llm_provider):
    url, body, headers = request(llm_provider)
    try:
        urllib3.PoolManager(retries=False).request("POST", url, body=body, headers=headers)
    except urllib3.exceptions.ProtocolError:
        print("EXCEPT RAN: urllib3")


@pytest.mark.llm_portable
def test_http_client(llm_provider):
    url, body, headers = request(llm_provider)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        connection.getresponse().read()
    except ConnectionError:
        print("EXCEPT RAN: http.client")
    finally:
        connection.close()


@pytest.mark.llm_portable
def test_urllib(llm_provider):
    url, body, headers = request(llm_provider)
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10).read()
    except urllib.error.URLError:
        print("EXCEPT RAN: urllib")


@pytest.mark.llm_portable
def test_aiohttp(llm_provider):
    url, body, headers = request(llm_provider)

    async def main():
        async with aiohttp.ClientSession(headers=headers) as session:
            try:
                async with session.post(url, data=body) as response:
                    await response.read()
            except aiohttp.ClientConnectionError:
                print("EXCEPT RAN: aiohttp")

    asyncio.run(main())
"""


def test_an_unrecorded_request_raises_the_clients_connection_error(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_clients=UNRECORDED)
    monkeypatch.setenv("QUESTION", "订单在哪")
    pytester.runpytest("--providers=deepseek", "-p", "no:randomly").assert_outcomes(passed=5)
    monkeypatch.setenv("QUESTION", "退款多久")  # not what was recorded
    result = pytester.runpytest(
        "--providers=deepseek", "--llmport-record-mode=none", "-s", "-p", "no:randomly"
    )
    result.assert_outcomes(failed=5)
    text = result.stdout.str()
    for client in ("requests", "urllib3", "http.client", "urllib", "aiohttp"):
        assert f"EXCEPT RAN: {client}" in text, f"the app's except clause for {client} did not run"
    assert "TypeError" not in text and "has no len()" not in text
    assert text.count("no recorded response for POST http://127.0.0.1:") >= 5


OUTSIDE_TESTS = {
    # The root conftest.py is imported before pytest_configure (an app, a litellm import, a warm-up).
    "conftest import": (
        """
import socket
try:
    socket.getaddrinfo("api.deepseek.com", 443)
except OSError:
    pass
""",
        "pytest-llmport, while importing conftest.py: blocked a name lookup of api.deepseek.com "
        "(getaddrinfo): the run replays (record mode: none)*",
    ),
    # Between tests, no test's report can carry it: under xdist the worker must hand it over.
    "between tests": (
        """
import socket

def pytest_collection_finish(session):
    try:
        socket.getaddrinfo("telemetry.example.com", 443)
    except OSError:
        pass
""",
        "pytest-llmport, outside any test: blocked a name lookup of telemetry.example.com (getaddrinfo)*",
    ),
}


@pytest.mark.parametrize("where", list(OUTSIDE_TESTS))
def test_what_is_blocked_outside_any_test_fails_the_run(
    pytester: pytest.Pytester, run_modes: RunModes, where: str
) -> None:
    conftest, line = OUTSIDE_TESTS[where]
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_x="def test_x(): pass")
    result = run_modes("--llmport-record-mode=none")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*llmport: network blocked outside tests*", line])
    assert result.stdout.str().count(line.split(": ", 1)[1][:40]) == 1, "each attempt is listed once"
