"""A secret never reaches disk or a log: every leak an attack on the plugin found, through real sockets.

Each recording goes through :class:`tests.hostile.HostileServer`, a loopback server that echoes the key
back in every way a server can; every file the run leaves (cassettes, pytest's cache, the JSON report,
observation files, JUnit XML) and its terminal output are then read with decoders of their own
(:func:`tests.hostile.leaks`), not with the plugin's scrubber.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from . import hostile
from .conftest import RunModes
from .hostile import SPELLINGS, HostileServer, files_left, leaks

KEY = "sk-hostile/0123+456789=abcdefXYZ"
ZHIPU_KEY = "0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp"
PLUGIN_FILES = ("test_app.py", "hostile.py", "conftest.py", "pytest.ini")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(hostile=Path(hostile.__file__).read_text(encoding="utf-8"))
    return monkeypatch


def record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    source: str,
    *args: str,
    run: RunModes | None = None,
) -> tuple[pytest.RunResult, dict[str, str]]:
    """Record ``source`` on provider openai against a hostile server echoing ``key``; what the run left.
    Through ``run`` (plainly and under xdist) where given."""
    with HostileServer(key, ZHIPU_KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("ZHIPUAI_API_KEY", ZHIPU_KEY)
        monkeypatch.setenv("LLMPORT_OPENAI_BASE_URL", server.base_url)
        pytester.makepyfile(test_app=source)
        result = (run or pytester.runpytest)(
            "--providers=openai", "--llmport-report=report.json", "--junitxml=junit.xml", *args
        )
    left = {name: text for name, text in files_left(pytester.path).items() if name not in PLUGIN_FILES}
    left["<terminal output>"] = "\n".join(result.outlines + result.errlines)
    return result, left


def assert_clean(left: dict[str, str], *keys: str) -> None:
    found = {(name, key): found for name, text in left.items() for key in keys if (found := leaks(text, key))}
    assert not found, f"a key is left in: {found}"


def cassette(left: dict[str, str]) -> str:
    texts = [text for name, text in left.items() if name.endswith("openai.yaml")]
    assert len(texts) == 1, sorted(left)
    return texts[0]


# -- each leak the attack found ---------------------------------------------------------------------
ECHO = """
import pytest

@pytest.mark.llm_portable
def test_echo(llm_provider, llm_equiv):
    response = llm_provider.httpx_client().post("{route}", params={{"s": "{spelling}"}}, json={{"hello": 1}})
    llm_equiv.observe("echo", response.text)
    {check}
"""


@pytest.mark.parametrize(
    ("leak", "route", "spelling", "key", "check"),
    [
        ("a key with / echoed as \\/ in JSON", "json", "json-slash", KEY, "assert response.json()['echo']"),
        (
            "a key with a quote, echoed JSON-escaped twice",
            "json",
            "json-twice",
            'sk-quote"d-0123456789',
            "pass",
        ),
        ("a key in \\uXXXX escapes", "json", "json-u", KEY, "assert response.json()['echo']"),
        ("a key split across two stream events", "sse", "raw", KEY, "assert 'ok' in response.text"),
        (
            "an OAuth form answer (access_token=)",
            "form",
            "raw",
            KEY,
            "assert 'access_token=' in response.text",
        ),
        ("access_token in a body that is not JSON", "junk", "raw", KEY, "assert '<html>' in response.text"),
        (
            "a Zhipu JWT made from id.secret, echoed back",
            "jwt",
            "raw",
            KEY,
            "assert response.json()['token']",
        ),
        (
            "a Location header and a Basic user:key header",
            "json",
            "raw",
            KEY,
            "assert response.headers['location']",
        ),
    ],
    ids=lambda value: value if " " in str(value) else "",
)
def test_leak_is_closed(
    pytester: pytest.Pytester,
    env: pytest.MonkeyPatch,
    leak: str,
    route: str,
    spelling: str,
    key: str,
    check: str,
) -> None:
    result, left = record(pytester, env, key, ECHO.format(route=route, spelling=spelling, check=check))
    result.assert_outcomes(passed=1)
    assert_clean(left, key, ZHIPU_KEY)
    text = cassette(left)
    assert "<REDACTED" in text or "REDACTED" in text
    assert "observations.json" in " ".join(left), "the baseline's observations were written (and scanned)"


def test_form_request_and_answer_lose_their_credentials(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    source = """
import pytest

@pytest.mark.llm_portable
def test_token(llm_provider):
    client = llm_provider.httpx_client()
    answer = client.post("form", data={"grant_type": "client_credentials", "client_secret": "cs-7f3a9c2e51d4", "id": "7"})
    assert answer.text.startswith("access_token=tok")
"""
    result, left = record(pytester, env, KEY, source)
    result.assert_outcomes(passed=1)
    text = cassette(left)
    assert "cs-7f3a9c2e51d4" not in text and "client_secret=REDACTED" in text and "id=7" in text
    assert "access_token=REDACTED&expires_in=3600" in text
    assert_clean(left, KEY)


def test_failure_text_observations_report_and_junit_hold_no_key(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    """The server answers "Incorrect API key provided: sk-..."; the app prints it and fails with it."""
    source = """
import pytest

@pytest.mark.llm_portable
def test_reports_the_key(llm_provider, llm_equiv):
    response = llm_provider.httpx_client().post("error", json={})
    llm_equiv.observe("error", response.json())
    print("server said:", response.text)
    assert response.status_code == 200, response.text

@pytest.mark.llm_portable
def test_observes_the_key(llm_provider, llm_equiv):
    llm_equiv.observe("error", llm_provider.httpx_client().post("error", json={}).json())
"""
    result, left = record(pytester, env, KEY, source, "-rA", *xdist_args)
    result.assert_outcomes(passed=1, failed=1)
    assert_clean(left, KEY)
    junit = left["junit.xml"]
    assert "Incorrect API key provided: &lt;REDACTED:OPENAI_API_KEY&gt;" in junit or (
        "Incorrect API key provided: <REDACTED:OPENAI_API_KEY>" in junit
    )
    assert "server said:" in left["<terminal output>"]
    report = left["report.json"]
    assert "Incorrect API key provided: <REDACTED:OPENAI_API_KEY>" in report
    observations = next(text for name, text in left.items() if name.endswith("openai.observations.json"))
    assert "<REDACTED:OPENAI_API_KEY>" in observations


def test_a_gateway_password_in_a_base_url_is_a_secret(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    """A gateway's ``user:password@`` in ``LLMPORT_<NAME>_BASE_URL``: the app prints its base URL."""
    password = "gw-pass/" + "7f3a9c2e51d4b6a8"  # "/" is written %2F in the URL
    source = """
import pytest

@pytest.mark.llm_portable
def test_prints_its_url(llm_provider, llm_equiv):
    llm_equiv.observe("url", llm_provider.base_url)
    print("talking to", llm_provider.base_url)
    assert False, llm_provider.base_url
"""
    with HostileServer(KEY, ZHIPU_KEY) as server:
        env.setenv("OPENAI_API_KEY", KEY)
        url = server.base_url.replace("://", f"://gateway:{password.replace('/', '%2F')}@", 1)
        env.setenv("LLMPORT_OPENAI_BASE_URL", url)
        pytester.makepyfile(test_app=source)
        result = pytester.runpytest(
            "--providers=openai", "--llmport-report=report.json", "--junitxml=junit.xml", "-rA", *xdist_args
        )
    result.assert_outcomes(failed=1)
    left = {name: text for name, text in files_left(pytester.path).items() if name not in PLUGIN_FILES}
    left["<terminal output>"] = "\n".join(result.outlines + result.errlines)
    assert "talking to" in left["<terminal output>"]
    assert "gateway:<REDACTED:LLMPORT_OPENAI_BASE_URL>@" in left["<terminal output>"]
    assert_clean(left, password)


def test_a_key_as_a_parameter_never_names_a_folder(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    env.setenv("TENANT_TOKEN", "tenant-7f3a9c2e51d4")
    pytester.makeini("[pytest]\nllmport_secret_env =\n    TENANT_TOKEN\n")
    source = """
import os
import pytest

@pytest.mark.llm_portable
@pytest.mark.parametrize("tenant", [os.environ["TENANT_TOKEN"], "sk-" + "a1b2c3d4e5" * 3, "plain"], ids=["t", "k", "p"])
def test_tenant(llm_provider, tenant):
    pass

@pytest.mark.llm_portable
@pytest.mark.parametrize("token", [os.environ["TENANT_TOKEN"]])
def test_no_ids(llm_provider, token):
    pass
"""
    result, left = record(pytester, env, KEY, source, run=run_modes)
    result.assert_outcomes(passed=4)
    folders = sorted(name.split("/")[-2] for name in left if name.endswith("openai.yaml"))
    assert folders == ["tenant0", "tenant1", "tenant=plain", "token0"]
    # Without ids= pytest would name the test after the value: the plugin gives it the marker instead.
    assert "test_no_ids[<REDACTED:TENANT_TOKEN>]" in left["report.json"]
    assert_clean(left, "tenant-7f3a9c2e51d4", "sk-" + "a1b2c3d4e5" * 3)


TEST_IDS = """
import os
import pytest

SHAPED = "sk-" + "a1b2c3d4e5" * 3

@pytest.mark.llm_portable
@pytest.mark.parametrize("token", [os.environ["TENANT_TOKEN"], "Bearer " + os.environ["TENANT_TOKEN"]])
def test_marked(llm_provider, token):
    raise AssertionError("fails, so pytest's last-failed cache records the id")

@pytest.mark.parametrize("token", [os.environ["TENANT_TOKEN"].encode(), SHAPED, "plain"])
@pytest.mark.parametrize("other", [os.environ["OPENAI_API_KEY"]])
def test_unmarked(token, other):
    pass
"""


def test_a_secret_parameter_never_reaches_pytests_test_ids(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    """JUnit XML, pytest's node id and last-failed caches and its terminal hold ids, never the value."""
    token = "tenant-7f3a9c2e51d4"
    env.setenv("TENANT_TOKEN", token)
    pytester.makeini("[pytest]\nllmport_secret_env =\n    TENANT_TOKEN\n")
    result, left = record(pytester, env, KEY, TEST_IDS, "-v", "-p", "no:randomly", *xdist_args)
    result.assert_outcomes(passed=3, failed=2)
    ids = "\n".join(left["<terminal output>"].splitlines())
    for expected in (
        "test_marked[openai-<REDACTED:TENANT_TOKEN>]",
        "test_marked[openai-Bearer <REDACTED:TENANT_TOKEN>]",
        "test_unmarked[<REDACTED:OPENAI_API_KEY>-<REDACTED:TENANT_TOKEN>]",  # bytes too
        "test_unmarked[<REDACTED:OPENAI_API_KEY>-plain]",
        "test_unmarked[<REDACTED:OPENAI_API_KEY>-<REDACTED>]",  # credential-shaped, no variable known
    ):
        assert expected in ids, expected
    assert {".pytest_cache/v/cache/nodeids", ".pytest_cache/v/cache/lastfailed", "junit.xml"} <= set(left)
    assert_clean(left, token, KEY, "sk-" + "a1b2c3d4e5" * 3)
    # The scanner, as CI runs it, on pytest's own files (it knows the provider keys and --env ones).
    scanned = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_llmport",
            "scan",
            "--env",
            "TENANT_TOKEN",
            "junit.xml",
            ".pytest_cache",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    assert "no secret found" in scanned.stdout


def test_an_id_the_user_wrote_with_a_secret_is_warned_about_by_its_scrubbed_id(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    """ids= and pytest.param(id=) never reach pytest_make_parametrize_id: the warning names the test."""
    token = "tenant-7f3a9c2e51d4"
    env.setenv("TENANT_TOKEN", token)
    pytester.makeini("[pytest]\nllmport_secret_env =\n    TENANT_TOKEN\n")
    source = """
import os
import pytest

@pytest.mark.parametrize("token", [os.environ["TENANT_TOKEN"]], ids=str)
def test_ids_function(token):
    pass

@pytest.mark.parametrize("token", [pytest.param(1, id="t-" + os.environ["TENANT_TOKEN"]), 2])
def test_param_id(token):
    pass
"""
    always = "always::pytest_llmport.testids.SecretInTestIdWarning"
    result, left = record(pytester, env, KEY, source, "-W", always, run=run_modes)
    # Once each, under xdist too: the controller checks the ids its workers collected (each worker would
    # warn again, and an error raised in a worker's collection made xdist print the raw id).
    result.assert_outcomes(passed=3, warnings=2)
    out = result.stdout.str()
    assert (
        "SecretInTestIdWarning: test_app.py::test_ids_function[<REDACTED:TENANT_TOKEN>]: this test's id "
        "holds a secret (the id comes from ids= or pytest.param(id=))"
    ) in out
    assert "SecretInTestIdWarning: test_app.py::test_param_id[t-<REDACTED:TENANT_TOKEN>]: " in out
    assert not leaks(left["<terminal output>"], token), "the warning itself names the test by its scrubbed id"
    assert leaks(left["junit.xml"], token), "the route that stays open, as docs/limitations.md says"

    shutil.rmtree(pytester.path / ".pytest_cache")
    (pytester.path / "junit.xml").unlink()
    errors = "error::pytest_llmport.testids.SecretInTestIdWarning"
    result, left = record(pytester, env, KEY, source, "-W", errors, run=run_modes)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: test_app.py::test_ids_function[<REDACTED:TENANT_TOKEN>]: this test's id"
        in result.stderr.str()
    )
    assert_clean(left, token)  # stopped before pytest printed or wrote any id


# -- replay needs no key ------------------------------------------------------------------------------
LEAKY = """
import pytest

@pytest.mark.llm_portable
def test_leaky(llm_provider):
    key = llm_provider.api_key
    client = llm_provider.httpx_client()
    response = client.post(
        f"echo/{key}/json",
        params={"unlisted": key, "access_token": key},
        json={"messages": [{"role": "user", "content": "my key is " + key}], "key_field": key},
    )
    assert response.status_code == 200
    form = client.post("form", data={"client_secret": key, "note": "key=" + key})
    assert form.status_code == 200
"""


def test_a_key_recorded_in_body_query_and_path_replays_with_no_key(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    result, left = record(pytester, env, KEY, LEAKY)
    result.assert_outcomes(passed=1)
    text = cassette(left)
    assert "/echo/<REDACTED:OPENAI_API_KEY>/json" in text and "unlisted=<REDACTED:OPENAI_API_KEY>" in text
    env.delenv("OPENAI_API_KEY")
    env.delenv("ZHIPUAI_API_KEY")
    env.setenv("CI", "true")
    replay = run_modes("--providers=openai")  # the server is gone: offline
    replay.assert_outcomes(passed=1)


def test_a_placeholder_matches_only_where_it_stands(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    """Everything around a placeholder must still match: a changed prompt fails the replay."""
    result, _ = record(pytester, env, KEY, LEAKY)
    result.assert_outcomes(passed=1)
    pytester.makepyfile(test_app=LEAKY.replace('"my key is "', '"my key was "'))
    env.delenv("OPENAI_API_KEY")
    env.setenv("CI", "true")
    replay = pytester.runpytest("--providers=openai")
    replay.assert_outcomes(failed=1)
    replay.stdout.fnmatch_lines(
        ["*$.messages?0?.content: recorded 'my key is <REDACTED:OPENAI_API_KEY>', now 'my key was *"]
    )


# -- the proof: every position, every spelling --------------------------------------------------------
EVERYWHERE = """
import base64
import json
import os

import pytest
from hostile import SPELLINGS

AT = os.environ["HOSTILE_AT"]


@pytest.mark.llm_portable
@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_everywhere(llm_provider, llm_equiv, spelling):
    key = llm_provider.api_key
    spelled = SPELLINGS[spelling](key)
    client = llm_provider.httpx_client()
    basic = "Basic " + base64.b64encode(("user:" + key).encode()).decode()
    seen = []
    for route in ("json", "sse", "junk", "jwt", "form"):
        response = client.post(
            f"echo/{spelled}/{route}",
            params={"s": spelling, "at": AT, "q": spelled},
            headers={"X-Debug": spelled, "X-Auth": basic},
            json={"messages": [{"role": "user", "content": "key " + spelled}], "k": spelled},
        )
        seen.append([response.text, dict(response.headers)])
    form = client.post("form", params={"s": spelling}, data={"client_secret": key, "note": spelled})
    seen.append(form.text)
    llm_equiv.observe("echo", seen)


@pytest.mark.llm_portable
def test_fails_with_the_key(llm_provider):
    response = llm_provider.httpx_client().post("error", json={})
    print("server said:", response.text)
    assert response.status_code == 200, response.text
"""
keys = st.text(alphabet='abcdefXYZ0123456789-_./+="', min_size=14, max_size=30).map(lambda s: "sk-" + s)


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=keys, at=st.integers(1, 40))
@example(key='sk-ev/il"KEY+0123=456/789', at=5)
def test_no_spelling_of_a_key_survives_a_hostile_server(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, key: str, at: int
) -> None:
    for old in ("cassettes", ".pytest_cache", "report.json", "junit.xml"):
        path = pytester.path / old
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    env.setenv("HOSTILE_AT", str(at))
    result, left = record(pytester, env, key, EVERYWHERE, "-rA")
    result.assert_outcomes(passed=len(SPELLINGS), failed=1)
    assert_clean(left, key, ZHIPU_KEY)
    # Replayed offline with no key: every placeholder matches what the app now sends.
    env.delenv("OPENAI_API_KEY")
    env.delenv("ZHIPUAI_API_KEY")
    env.setenv("CI", "true")
    replay = pytester.runpytest("--providers=openai", "-k", "everywhere", "--llmport-report=report.json")
    replay.assert_outcomes(passed=len(SPELLINGS))
    left = {name: text for name, text in files_left(pytester.path).items() if name not in PLUGIN_FILES}
    assert any(".pytest_cache" in name and "llmport" in name for name in left), "the parsed-cassette cache"
    assert_clean(left, key, ZHIPU_KEY)
    env.delenv("CI")


SDKS = """
import pytest
from zhipuai import ZhipuAI

MESSAGES = [{"role": "user", "content": "我的订单还没发货"}]


@pytest.mark.llm_portable
@pytest.mark.parametrize("jwt_mode", [False, True])
def test_zhipuai(llm_provider, jwt_mode):
    client = ZhipuAI(api_key=llm_provider.api_key, base_url=llm_provider.base_url, disable_token_cache=not jwt_mode)
    reply = client.chat.completions.create(model=llm_provider.model, messages=MESSAGES)
    assert reply.choices[0].message.content


@pytest.mark.llm_portable
def test_openai(llm_provider):
    reply = llm_provider.openai_client().chat.completions.create(model=llm_provider.model, messages=MESSAGES)
    assert reply.choices[0].message.content
"""


def test_every_sdk_builds_and_replays_with_no_key(pytester: pytest.Pytester, env: pytest.MonkeyPatch) -> None:
    """zhipuai in JWT mode signs a token from an ``id.secret`` key: the replay key has that shape."""
    from pytest_llmport.testing import FakeProvider

    pytester.makepyfile(test_app=SDKS)
    with FakeProvider() as fake:  # accepts any key: the JWT the SDK signs is not the key itself
        env.setenv("LLMPORT_ZHIPU_BASE_URL", fake.base_url)
        env.setenv("ZHIPUAI_API_KEY", ZHIPU_KEY)
        pytester.runpytest("--providers=zhipu").assert_outcomes(passed=3)
        assert any(r.headers.get("authorization", "").startswith("Bearer eyJ") for r in fake.requests)
    text = "\n".join(files_left(pytester.path / "cassettes").values())
    assert "eyJ" not in text and "AbCdEfGhIjKlMnOp" not in text, "neither the JWT nor the key is recorded"
    env.delenv("ZHIPUAI_API_KEY")
    env.setenv("CI", "true")
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=3)


def test_a_warning_that_echoes_a_key_is_scrubbed_in_the_warnings_summary(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    """pytest prints each warning's text in its summary; an app warns with the server's error message."""
    source = """
import warnings

import pytest

@pytest.mark.llm_portable
def test_warns(llm_provider):
    text = llm_provider.httpx_client().post("error", json={}).text
    warnings.warn("the provider said: " + text)
    warnings.warn(RuntimeWarning("again: " + text, 401))  # a warning with more than its text

def test_unmarked():
    import os
    warnings.warn("configured with " + os.environ["OPENAI_API_KEY"])
"""
    result, left = record(pytester, env, KEY, source, "-W", "always", *xdist_args)
    result.assert_outcomes(passed=2)
    terminal = left["<terminal output>"]
    assert "the provider said:" in terminal and "again:" in terminal and "configured with" in terminal
    assert "<REDACTED:OPENAI_API_KEY>" in terminal
    assert_clean(left, KEY)
