"""Provider and model identity: through real sockets, against two loopback fake providers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmport.identity import ProviderIdentity, as_recorded, request_model, response_model
from pytest_llmport.providers import BUILTIN_PROVIDERS, Provider
from pytest_llmport.testing import FakeProvider

from .conftest import KEY, cassettes

BUILTIN = {p.name: p for p in BUILTIN_PROVIDERS}

FOREIGN = """
import os

import httpx
import openai
import pytest
import requests

PROMPT = [{"role": "user", "content": "我的订单三天了还没发货"}]
# Built at import, before any test: it points wherever OTHER_URL said then.
MODULE_CLIENT = openai.OpenAI(base_url=os.environ["OTHER_URL"], api_key="sk-other")


@pytest.mark.llm_portable
def test_module_level_client(llm_provider):
    MODULE_CLIENT.chat.completions.create(model=llm_provider.model, messages=PROMPT)


@pytest.mark.llm_portable
def test_hard_coded_url_with_requests(llm_provider):
    body = {"model": llm_provider.model, "messages": PROMPT}
    requests.post(os.environ["OTHER_URL"] + "/chat/completions", json=body, timeout=5)


@pytest.mark.llm_portable
def test_aiohttp_session_from_a_fixture(llm_provider, other_session_url):
    import asyncio

    import aiohttp

    async def main():
        async with aiohttp.ClientSession() as session:
            async with session.post(other_session_url, json={"model": llm_provider.model}) as response:
                return response.status

    asyncio.run(main())


@pytest.fixture
def other_session_url():
    return os.environ["OTHER_URL"] + "/chat/completions"


@pytest.mark.llm_portable
def test_swallowed_by_the_app(llm_provider):
    try:
        httpx.post(os.environ["OTHER_URL"] + "/chat/completions", json={"model": "x"})
    except Exception:
        pass  # the app hides errors; the plugin still fails the test


@pytest.mark.llm_portable
def test_fixture_client(llm_provider):
    reply = llm_provider.openai_client().chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert "订单" in reply.choices[0].message.content
"""


@pytest.fixture
def other() -> Iterator[FakeProvider]:
    with FakeProvider(api_key=KEY) as server:
        yield server


def test_requests_to_another_host_are_refused_before_leaving(
    pytester: pytest.Pytester,
    llm_env: FakeProvider,
    other: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    monkeypatch.setenv("OTHER_URL", other.base_url)
    pytester.makepyfile(test_app=FOREIGN)
    result = pytester.runpytest("--providers=zhipu", *xdist_args)
    result.assert_outcomes(passed=1, failed=4)
    assert other.requests == [], "a refused request must not reach the other server"
    result.stdout.fnmatch_lines(
        [
            f"*test_module_level_client[[]zhipu[]]: refused POST {other.base_url}/chat/completions on "
            f"provider 'zhipu': it does not go to zhipu (base URL {llm_env.base_url}), so it was not sent*",
            "*Likely cause: a client created before this test (at import, in a module-level variable, cached "
            "with functools.cache*",
            "*Fix: build the client inside the test from the llm_provider fixture*",
            "*[[]tool.llmport.providers.zhipu[]]",
            f'*extra_hosts = [[]"{other.base_url}/chat/completions"[]]',
        ]
    )
    for test in (
        "test_hard_coded_url_with_requests",
        "test_aiohttp_session_from_a_fixture",
        "test_swallowed_by_the_app",
    ):
        result.stdout.fnmatch_lines([f"*{test}[[]zhipu[]]: refused POST {other.base_url}/chat/completions*"])
    for path, text in cassettes(pytester.path).items():
        assert str(other.port) not in text, f"{path} holds the other server's traffic"


CACHED = """
import functools

import openai
import pytest


@functools.cache
def client():
    return openai.OpenAI()  # from OPENAI_BASE_URL, exported for whichever test calls it first


@pytest.mark.llm_portable
def test_cached_client(llm_provider):
    client().chat.completions.create(model=llm_provider.model, messages=[{"role": "user", "content": "hi"}])
"""


def test_a_cached_client_names_the_provider_it_belongs_to(
    pytester: pytest.Pytester,
    llm_env: FakeProvider,
    other: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    monkeypatch.setenv("LLMPORT_OPENAI_BASE_URL", other.base_url)
    pytester.makepyfile(test_app=CACHED)
    # loadfile: both items on one worker, in order, as a cached client lives in one process.
    args = [*xdist_args, "--dist=loadfile"] if xdist_args else []
    result = pytester.runpytest("--providers=openai,zhipu", *args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*test_cached_client[[]zhipu[]]: refused POST {other.base_url}/chat/completions on provider "
            "'zhipu'*",
            "*That URL is provider openai's.",
        ]
    )
    assert len(llm_env.requests) == 0 and len(other.requests) == 1
    zhipu = pytester.path / "cassettes/test_app/test_cached_client/zhipu.yaml"
    assert not zhipu.exists() or str(other.port) not in zhipu.read_text("utf-8")


EXTRA = """
import pytest


@pytest.mark.llm_portable
def test_token_then_chat(llm_provider, token_url):
    http = llm_provider.httpx_client()
    assert http.post(token_url).status_code == 404  # the second host answers; what matters is it is allowed
    reply = http.post("chat/completions", json={"model": llm_provider.model, "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200
"""


def test_declared_extra_hosts_are_recorded_and_replayed(
    pytester: pytest.Pytester,
    llm_env: FakeProvider,
    other: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    pytester.makepyprojecttoml(f'[tool.llmport.providers.zhipu]\nextra_hosts = ["{other.url}/oauth"]\n')
    pytester.makeconftest(
        f"import pytest\n\n@pytest.fixture\ndef token_url():\n    return '{other.url}/oauth/2.0/token'\n"
    )
    pytester.makepyfile(test_app=EXTRA)
    result = pytester.runpytest("--providers=zhipu", *xdist_args)
    result.assert_outcomes(passed=1)
    assert len(other.requests) == 1
    other.stop()
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    pytester.runpytest("--providers=zhipu", *xdist_args).assert_outcomes(passed=1)
    # Without the declaration the same cassette is refused on load, naming the exchange.
    (pytester.path / "pyproject.toml").unlink()
    result = pytester.runpytest("--providers=zhipu", *xdist_args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_token_then_chat[[]zhipu[]]: cassette * of provider 'zhipu' holds exchange #1, "
            f"POST {other.url}/oauth/2.0/token, which does not go to zhipu*",
            "*To record it: * pytest 'test_app.py::test_token_then_chat[[]zhipu[]]' --providers=zhipu "
            "--llmport-record-mode=all",
        ]
    )


OLD_CASSETTE = """\
interactions:
- request:
    method: POST
    uri: https://api.openai.com/v1/chat/completions
    body:
      json: |-
        {"model": "glm-4-flash", "messages": [{"role": "user", "content": "hi"}]}
    headers: {}
  response:
    status: {code: 200, message: OK}
    headers: {}
    body:
      json: |-
        {"model": "gpt-4o-mini", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
version: 1
"""


def test_an_old_cassette_holding_another_providers_traffic_is_reported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(
        test_app="""
import openai, pytest

CLIENT = openai.OpenAI(api_key="k")  # api.openai.com, whatever the provider

@pytest.mark.llm_portable
def test_old(llm_provider):
    CLIENT.chat.completions.create(model=llm_provider.model, messages=[{"role": "user", "content": "hi"}])
"""
    )
    path = pytester.path / "cassettes/test_app/test_old/zhipu.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(OLD_CASSETTE, encoding="utf-8")
    result = pytester.runpytest("--providers=zhipu", *xdist_args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_old[[]zhipu[]]: cassette * of provider 'zhipu' holds exchange #1, POST "
            "https://api.openai.com/v1/chat/completions (provider openai's), which does not go to zhipu "
            "(base URL https://open.bigmodel.cn/api/paas/v4)*",
            "*Fix: build the client from the llm_provider fixture, then re-record.*",
        ]
    )


def test_a_cassette_of_another_provider_is_refused(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    pytester.makepyfile(
        test_app="""
import pytest

@pytest.mark.llm_portable
def test_it(llm_provider):
    llm_provider.httpx_client().get("models")
"""
    )
    pytester.runpytest("--providers=qwen").assert_outcomes(passed=1)
    folder = pytester.path / "cassettes/test_app/test_it"
    (folder / "qwen.yaml").rename(folder / "zhipu.yaml")
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("--providers=zhipu", *xdist_args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cassette * was recorded for provider 'qwen', not 'zhipu'*"])


# -- identity rules, one by one ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "uri", "admitted"),
    [
        ("zhipu", "https://open.bigmodel.cn/api/paas/v4/chat/completions", True),
        ("zhipu", "https://OPEN.bigmodel.cn:443/api/paas/v4/embeddings?x=1", True),
        ("zhipu", "http://open.bigmodel.cn/api/paas/v4/chat/completions", False),  # scheme
        ("zhipu", "https://open.bigmodel.cn/api/paas/v3/model-api", False),  # path prefix
        ("zhipu", "https://open.bigmodel.cn/api/paas/v4x/chat", False),  # a prefix of a segment is not one
        ("zhipu", "https://api.openai.com/v1/chat/completions", False),
        ("deepseek", "https://api.deepseek.com/v1/chat/completions", True),  # base URL without a path
        ("ernie-native", "https://aip.baidubce.com/oauth/2.0/token?grant_type=client_credentials", True),
        ("ernie-native", "https://aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/x", True),
        ("ernie-native", "https://aip.baidubce.com/other/api", False),  # native: the dialect's own paths
        ("gemini", "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent", True),
        ("local", "http://127.0.0.1:8001/v1/chat/completions", False),  # another port
    ],
)
def test_which_requests_belong_to_a_provider(provider: str, uri: str, admitted: bool) -> None:
    assert ProviderIdentity(BUILTIN[provider]).admits(uri) is admitted


def test_extra_hosts_widen_the_identity_and_are_validated(pytester: pytest.Pytester) -> None:
    spec = Provider("p", "https://a.example/v1", "m", "K", extra_hosts=("https://b.example/token",))
    assert ProviderIdentity(spec).admits("https://b.example/token?x=1")
    assert not ProviderIdentity(spec).admits("https://b.example/v1/chat/completions")
    pytester.makepyprojecttoml('[tool.llmport.providers.zhipu]\nextra_hosts = "aip.baidubce.com"\n')
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*extra_hosts = 'aip.baidubce.com' is not a list of URL prefixes*"])


@pytest.mark.parametrize(
    ("dialect", "uri", "body", "model"),
    [
        ("openai", "https://h/v1/chat/completions", b'{"model": "gpt-4o-mini"}', "gpt-4o-mini"),
        (
            "dashscope",
            "https://h/api/v1/services/aigc/text-generation/generation",
            '{"model": "qwen"}',
            "qwen",
        ),
        ("anthropic", "https://h/v1/messages", b'{"model": "claude"}', "claude"),
        (
            "gemini",
            "https://h/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            b"{}",
            "gemini-2.5-flash",
        ),
        (
            "ernie",
            "https://h/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro?access_token=t",
            b"{}",
            "completions_pro",
        ),
        ("ernie", "https://h/oauth/2.0/token?grant_type=client_credentials", b"", None),
        ("openai", "https://h/v1/models", None, None),
    ],
)
def test_request_model_per_dialect(dialect: str, uri: str, body: object, model: str | None) -> None:
    assert request_model(dialect, uri, body) == model


@pytest.mark.parametrize(
    ("body", "model"),
    [
        (b'{"model": "glm-4-flash-250414", "choices": []}', "glm-4-flash-250414"),
        (b'{"modelVersion": "gemini-2.5-flash-001"}', "gemini-2.5-flash-001"),
        ('data: {"id": 1, "model": "qwen-plus"}\n\ndata: [DONE]\n\n', "qwen-plus"),
        (
            b'event: message_start\ndata: {"type": "message_start", "message": {"model": "claude-x"}}\n\n',
            "claude-x",
        ),
        (b'{"result": "hi"}', None),  # ERNIE native does not say
        (b"not json", None),
    ],
)
def test_response_model(body: object, model: str | None) -> None:
    assert response_model(body) == model


# -- model identity through the plugin ------------------------------------------------------------
HARD_CODED_MODEL = """
import pytest


def ask(llm_provider, model):
    reply = llm_provider.openai_client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "你好"}]
    )
    return reply.choices[0].message.content


@pytest.mark.llm_portable
def test_hard_coded_model(llm_provider):
    ask(llm_provider, "gpt-4o-mini")


@pytest.mark.llm_portable
def test_provider_model(llm_provider):
    ask(llm_provider, llm_provider.model)


@pytest.mark.llm_portable(models=["glm-4-plus"])
def test_declared_models(llm_provider):
    ask(llm_provider, llm_provider.model)
    ask(llm_provider, "glm-4-plus")
"""


def test_a_request_model_other_than_the_providers_is_a_finding(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    pytester.makepyfile(test_app=HARD_CODED_MODEL)
    report = pytester.path / "r.json"
    result = pytester.runpytest("--providers=zhipu", f"--llmport-report={report}", *xdist_args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "test_app.py::test_declared_models   ok",
            "test_app.py::test_hard_coded_model  ok wrong-model",
            "test_app.py::test_provider_model    ok",
            "*test_app.py::test_hard_coded_model [[]zhipu[]]: model gpt-4o-mini sent to zhipu "
            "(llm_provider.model is glm-4-flash)",
        ]
    )
    tests = json.loads(report.read_text("utf-8"))["tests"]
    model = tests["test_app.py::test_hard_coded_model"]["zhipu"]["model"]
    # The fake answers with the model it was asked for.
    assert model == {
        "expected": "glm-4-flash",
        "sent": ["gpt-4o-mini"],
        "served": ["gpt-4o-mini"],
        "mismatch": True,
        "allowed": ["glm-4-flash"],
    }
    declared = tests["test_app.py::test_declared_models"]["zhipu"]["model"]
    assert declared["sent"] == ["glm-4-flash", "glm-4-plus"] and declared["mismatch"] is False

    # Strict: the same replay fails the test that sent the wrong model, with the fix.
    monkeypatch.setenv("CI", "true")
    llm_env.stop()
    result = pytester.runpytest("--providers=zhipu", "--llmport-strict-model", *xdist_args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_hard_coded_model[[]zhipu[]]: model gpt-4o-mini sent to zhipu (llm_provider.model is "
            "glm-4-flash).",
            "*Fix: pass model=llm_provider.model; or, if the test uses several models on purpose, declare "
            "them: @pytest.mark.llm_portable(models=[[]...[]])*",
        ]
    )
    pytester.makeini("[pytest]\nllmport_strict_model = true\n")
    pytester.runpytest("--providers=zhipu", *xdist_args).assert_outcomes(passed=2, failed=1)


@pytest.mark.parametrize("value", ['"glm-4-plus"', "[1]", '[""]'])
def test_bad_models_argument_is_a_collection_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(
        test_bad=f"import pytest\n\n@pytest.mark.llm_portable(models={value})\ndef test_it():\n    pass\n"
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*test_it: @pytest.mark.llm_portable(models=*): models must be a list*"])


# -- replay does not depend on this machine's settings ------------------------------------------------
GATEWAY = """
import openai
import pytest
import requests

PROMPT = [{"role": "user", "content": "我的订单三天了还没发货"}]


@pytest.mark.llm_portable
def test_fixture_clients(llm_provider):
    assert llm_provider.base_url.startswith("http://127.0.0.1:"), "the recorded gateway"
    reply = llm_provider.openai_client().chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert reply.model == llm_provider.model == "glm-4-plus"
    via_env = openai.OpenAI().chat.completions.create(model=llm_provider.model, messages=PROMPT)
    assert via_env.choices[0].message.content == reply.choices[0].message.content
    raw = requests.post(
        llm_provider.base_url + "/chat/completions",
        json={"model": llm_provider.model, "messages": PROMPT},
        headers=llm_provider.headers,
        timeout=5,
    )
    assert raw.status_code == 200
"""


def test_a_cassette_recorded_through_a_gateway_replays_without_its_settings(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    monkeypatch.setenv("LLMPORT_ZHIPU_MODEL", "glm-4-plus")
    pytester.makepyfile(test_app=GATEWAY)
    pytester.runpytest("--providers=zhipu", *xdist_args).assert_outcomes(passed=1)
    files = cassettes(pytester.path)
    text = files["cassettes/test_app/test_fixture_clients/zhipu.yaml"]
    assert text.startswith("version: 1\nllmport:\n  format: 3\n")
    assert f"\n  provider: zhipu\n  base_url: {llm_env.base_url}\n  model: glm-4-plus\n" in text
    llm_env.stop()
    for name in ("LLMPORT_ZHIPU_BASE_URL", "LLMPORT_ZHIPU_MODEL", "ZHIPUAI_API_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("CI", "true")
    pytester.runpytest("--providers=zhipu", *xdist_args).assert_outcomes(passed=1)
    # Another gateway configured in CI changes nothing either.
    monkeypatch.setenv("LLMPORT_ZHIPU_BASE_URL", "https://gateway.example/zhipu/v4")
    pytester.runpytest("--providers=zhipu", *xdist_args).assert_outcomes(passed=1)
    assert cassettes(pytester.path) == files


def test_new_episodes_refuses_to_mix_two_base_urls(
    pytester: pytest.Pytester,
    llm_env: FakeProvider,
    other: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    xdist_args: list[str],
) -> None:
    pytester.makepyfile(test_app=GATEWAY.replace("glm-4-plus", "glm-4-flash"))
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=1)
    monkeypatch.setenv("LLMPORT_ZHIPU_BASE_URL", other.base_url)
    result = pytester.runpytest("--providers=zhipu", "--llmport-record-mode=new_episodes", *xdist_args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*cassette * was recorded against {llm_env.base_url}, provider 'zhipu' is now at "
            f"{other.base_url}; record mode new_episodes would mix the two in one cassette.",
            "*Fix: re-record the test whole. To record it: * --llmport-record-mode=all",
        ]
    )


EQUIV = """
import pytest


@pytest.mark.llm_portable
def test_category(llm_provider, llm_equiv):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "订单还没发货"}]
    )
    llm_equiv.same("category", reply.choices[0].message.content)
"""


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".pytest_cache" not in p.parts and "__pycache__" not in p.parts
    }


def test_a_replay_writes_nothing_into_the_source_tree_unless_asked(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, xdist_args: list[str]
) -> None:
    pytester.makepyfile(test_app=EQUIV)
    # The baseline first: under xdist, zhipu could otherwise run before openai's observations exist.
    pytester.runpytest("--providers=openai", *xdist_args).assert_outcomes(passed=1)
    pytester.runpytest("--providers=zhipu", *xdist_args).assert_outcomes(passed=1)
    observations = pytester.path / "cassettes/test_app/test_category/openai.observations.json"
    assert observations.is_file()
    observations.unlink()
    before = _tree(pytester.path)
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    pytester.runpytest("--providers=openai", "--llmport-baseline=openai", *xdist_args).assert_outcomes(
        passed=1
    )
    assert _tree(pytester.path) == before, "a replay must not write into the source tree"
    pytester.runpytest("--providers=openai", "--llmport-write-observations", *xdist_args).assert_outcomes(
        passed=1
    )
    assert json.loads(observations.read_text("utf-8"))["observations"] == {"category": "[fake] 订单还没发货"}


def test_replay_serves_the_recorded_base_url_and_model_however_often_it_is_asked() -> None:
    spec = Provider("gw", "http://127.0.0.1:9/v1", "m", "GW_KEY")
    recorded = {"base_url": "http://127.0.0.1:7/v1", "model": "m-2"}
    first = as_recorded(spec, recorded)
    assert (first.base_url, first.model) == ("http://127.0.0.1:7/v1", "m-2")
    assert as_recorded(spec, recorded) is first  # built once
    assert as_recorded(spec, {"base_url": "http://127.0.0.1:8/v1"}).base_url == "http://127.0.0.1:8/v1"
    assert as_recorded(spec, {}) is spec and as_recorded(spec, {"model": "m"}) is spec
    other = Provider("gw", "http://127.0.0.1:9/v1", "m", "GW_KEY", headers={"X": "1"})
    assert as_recorded(other, recorded).headers == {"X": "1"}, "a spec equal in name is not taken for another"


def test_an_identity_answers_the_same_for_a_url_it_has_seen() -> None:
    identity = ProviderIdentity(Provider("gw", "http://127.0.0.1:9/v1", "m", "GW_KEY"))
    for _ in range(2):
        assert identity.admits("http://127.0.0.1:9/v1/chat/completions")
        assert not identity.admits("http://127.0.0.1:9/v2/chat/completions")
        assert not identity.admits("http://127.0.0.1:99999/v1")  # an invalid port: refused, not cached wrong
