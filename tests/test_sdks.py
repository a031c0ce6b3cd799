"""What each SDK is given: variables in its URL shape, module globals set and restored, client helpers."""

from __future__ import annotations

import dataclasses
import os
import sys
import types
from pathlib import Path

import pytest

from pytest_llmport.handle import ClientCache, LLMProvider
from pytest_llmport.placeholders import REPLAY_KEY, replay_key
from pytest_llmport.providers import BUILTIN_PROVIDERS, Provider
from pytest_llmport.sdks import apply, environment, key_variables, session_environment, split_version
from pytest_llmport.testing import FakeProvider

from .conftest import KEY

SPECS = {spec.name: spec for spec in BUILTIN_PROVIDERS}


def handle(name: str, base_url: str | None = None) -> LLMProvider:
    spec = SPECS[name] if base_url is None else dataclasses.replace(SPECS[name], base_url=base_url)
    return LLMProvider(spec, KEY, Path("unused.yaml"), "once", False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.anthropic.com/v1", ("https://api.anthropic.com", "v1")),
        (
            "https://generativelanguage.googleapis.com/v1beta/",
            ("https://generativelanguage.googleapis.com", "v1beta"),
        ),
        ("https://api.deepseek.com", ("https://api.deepseek.com", "")),
        ("https://open.bigmodel.cn/api/paas/v4", ("https://open.bigmodel.cn/api/paas", "v4")),
    ],
)
def test_split_version(url: str, expected: tuple[str, str]) -> None:
    assert split_version(url) == expected


def test_each_sdk_gets_the_url_in_its_own_shape() -> None:
    anthropic = environment(SPECS["anthropic"], KEY)
    assert anthropic["ANTHROPIC_BASE_URL"] == "https://api.anthropic.com"  # the SDK adds /v1/messages
    assert (
        anthropic["ANTHROPIC_API_KEY"] == KEY
        and anthropic["ANTHROPIC_API_BASE"] == "https://api.anthropic.com"
    )
    gemini = environment(SPECS["gemini"], KEY)
    assert gemini["GOOGLE_GEMINI_BASE_URL"] == "https://generativelanguage.googleapis.com"
    assert gemini["GOOGLE_GENAI_API_VERSION"] == "v1beta" and gemini["GOOGLE_API_KEY"] == KEY
    native = environment(SPECS["qwen-native"], KEY)
    assert native["DASHSCOPE_HTTP_BASE_URL"] == "https://dashscope.aliyuncs.com/api/v1"
    ernie = environment(SPECS["ernie-native"], KEY, "the-secret")
    assert (ernie["QIANFAN_BASE_URL"], ernie["QIANFAN_AK"], ernie["QIANFAN_SK"]) == (
        "https://aip.baidubce.com",
        KEY,
        "the-secret",
    )


@pytest.mark.parametrize(
    ("name", "variable", "prefix"),
    [
        ("deepseek", "DEEPSEEK_API_BASE", "deepseek"),
        ("moonshot", "MOONSHOT_API_BASE", "moonshot"),
        ("qwen", "DASHSCOPE_API_BASE", "dashscope"),
        ("zhipu", "BIGMODEL_API_BASE", "bigmodel"),
        ("doubao", "VOLCENGINE_API_BASE", "volcengine"),
        ("minimax", "MINIMAX_API_BASE", "minimax"),
        ("baichuan", "OPENAI_BASE_URL", "openai"),
    ],
)
def test_litellm_route_of_each_openai_compatible_provider(name: str, variable: str, prefix: str) -> None:
    env = environment(SPECS[name], KEY)
    assert env[variable] == SPECS[name].base_url
    provider = handle(name)
    assert provider.model_id == f"{prefix}/{SPECS[name].model}"
    kwargs = provider.litellm_kwargs(messages=[])
    assert (
        kwargs["api_base"] == SPECS[name].base_url and kwargs["api_key"] == KEY and kwargs["messages"] == []
    )


def test_openai_compatible_providers_also_feed_zhipuai_and_ark() -> None:
    env = environment(SPECS["moonshot"], KEY)
    assert env["ZHIPUAI_BASE_URL"] == env["ARK_BASE_URL"] == "https://api.moonshot.cn/v1"
    assert env["ZHIPUAI_API_KEY"] == env["ARK_API_KEY"] == env["MOONSHOT_API_KEY"] == KEY
    assert "ANTHROPIC_BASE_URL" not in env, "the anthropic SDK cannot speak to an OpenAI-compatible API"


def test_native_dialects_without_a_litellm_route_say_so() -> None:
    with pytest.raises(ValueError, match=r"'qwen-native' .*no litellm route"):
        _ = handle("qwen-native").model_id


def test_apply_sets_and_restores_environment_and_module_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("dashscope")
    module.base_http_api_url = "https://dashscope.aliyuncs.com/api/v1"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dashscope", module)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "the-users-own")
    monkeypatch.delenv("DASHSCOPE_HTTP_BASE_URL", raising=False)
    spec = dataclasses.replace(SPECS["qwen-native"], base_url="http://127.0.0.1:9/api/v1")
    restore = apply(spec, KEY)
    assert module.base_http_api_url == "http://127.0.0.1:9/api/v1"  # type: ignore[attr-defined]
    assert module.api_key == KEY  # type: ignore[attr-defined]
    assert os.environ["DASHSCOPE_HTTP_BASE_URL"] == "http://127.0.0.1:9/api/v1"
    restore()
    assert module.base_http_api_url == "https://dashscope.aliyuncs.com/api/v1"  # type: ignore[attr-defined]
    assert not hasattr(module, "api_key")
    assert os.environ["DASHSCOPE_API_KEY"] == "the-users-own" and "DASHSCOPE_HTTP_BASE_URL" not in os.environ


def test_session_placeholders_fill_only_unset_key_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in key_variables(SPECS["deepseek"]) + key_variables(SPECS["anthropic"]):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "set-by-the-user")
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    restore = session_environment([SPECS["deepseek"], SPECS["anthropic"], SPECS["zhipu"]], replay_key)
    try:
        assert os.environ["DEEPSEEK_API_KEY"] == "set-by-the-user"
        assert os.environ["OPENAI_API_KEY"] == os.environ["ANTHROPIC_API_KEY"] == REPLAY_KEY
        # zhipuai signs a JWT from an id.secret key before it sends anything: the placeholder has that shape.
        assert os.environ["ZHIPUAI_API_KEY"] == replay_key("ZHIPUAI_API_KEY") and "." in replay_key(
            "ZHIPUAI_API_KEY"
        )
        assert "OPENAI_BASE_URL" not in os.environ, "only keys: a module-level client keeps its own host"
    finally:
        restore()
    assert "ANTHROPIC_API_KEY" not in os.environ and os.environ["DEEPSEEK_API_KEY"] == "set-by-the-user"


def test_helpers_refuse_a_provider_of_another_protocol() -> None:
    with pytest.raises(
        ValueError, match=r"anthropic_client\(\) on provider 'deepseek'.*providers=\[\.\.\.\]"
    ):
        handle("deepseek").anthropic_client()
    with pytest.raises(ValueError, match=r"langchain_chat\(\) on provider 'anthropic'"):
        handle("anthropic").langchain_chat()


def test_a_missing_optional_sdk_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if it were not installed
    with pytest.raises(ImportError, match="needs the anthropic package: pip install anthropic"):
        handle("anthropic").anthropic_client()


def test_anthropic_and_genai_helpers_reach_the_fake_without_a_doubled_version() -> None:
    pytest.importorskip("anthropic")
    pytest.importorskip("google.genai")
    with FakeProvider(api_key=KEY, dialect="anthropic") as fake:
        message = (
            handle("anthropic", fake.url + "/v1")
            .anthropic_client(max_retries=0)
            .messages.create(model="c", max_tokens=50, messages=[{"role": "user", "content": "你好"}])
        )
        assert message.content[0].text == "[fake] 你好" and fake.requests[-1].path == "/v1/messages"
    with FakeProvider(api_key=KEY, dialect="gemini") as fake:
        client = handle("gemini", fake.url + "/v1beta").genai_client()  # kept: a Client closes when collected
        reply = client.models.generate_content(model="g", contents="你好")
        assert reply.text == "[fake] 你好" and fake.requests[-1].path == "/v1beta/models/g:generateContent"


def test_langchain_chat_reaches_the_provider() -> None:
    pytest.importorskip("langchain_openai")
    with FakeProvider(api_key=KEY) as fake:
        chat = handle("deepseek", fake.base_url).langchain_chat(max_retries=0)
        assert chat.invoke("你好").content == "[fake] 你好"
        assert fake.requests[-1].path == "/v1/chat/completions"


def test_custom_provider_headers_travel_with_every_helper() -> None:
    spec = Provider("gw", "http://127.0.0.1:9/v1", "m", "GW_KEY", headers={"X-Tenant": "t1"})
    provider = LLMProvider(spec, KEY, Path("unused.yaml"), "once", False)
    assert provider.litellm_kwargs()["extra_headers"] == {"X-Tenant": "t1"}
    assert provider.model_id == "openai/m"


def test_the_exported_variables_are_worked_out_once_and_cannot_be_changed_by_a_caller() -> None:
    spec = SPECS["deepseek"]
    first = environment(spec, KEY)
    first["OPENAI_BASE_URL"] = "http://changed.invalid"  # a copy: the next test exports the real one
    assert environment(spec, KEY)["OPENAI_BASE_URL"] == spec.base_url
    other = dataclasses.replace(spec, base_url="http://127.0.0.1:9/v1")
    assert environment(other, KEY)["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert environment(spec, "another-key-0123456789")["DEEPSEEK_API_KEY"] == "another-key-0123456789"


def test_openai_client_is_shared_per_key_and_arguments() -> None:
    cache = ClientCache()
    spec = Provider("gw", "http://127.0.0.1:9/v1", "m", "GW_KEY", headers={"X-Tenant": "t1"})
    one = LLMProvider(spec, KEY, Path("a.yaml"), "once", False, cache)
    two = LLMProvider(spec, KEY, Path("b.yaml"), "once", False, cache)
    try:
        client = one.openai_client()
        assert two.openai_client() is client and one.openai_client() is client
        assert client.default_headers["X-Tenant"] == "t1"
        assert one.openai_client(max_retries=0) is not client
        assert two.openai_client(max_retries=0) is one.openai_client(max_retries=0)
        other_key = LLMProvider(spec, "sk-other-0123456789abcdef", Path("a.yaml"), "once", False, cache)
        assert other_key.openai_client() is not client
        assert other_key.openai_client().api_key == "sk-other-0123456789abcdef"
        tenant = dataclasses.replace(spec, headers={"X-Tenant": "t2"})
        assert LLMProvider(tenant, KEY, Path("a.yaml"), "once", False, cache).openai_client() is not client
    finally:
        cache.close()


def test_a_run_that_only_replays_gives_clients_a_tls_context_that_trusts_nothing() -> None:
    import ssl

    offline = ClientCache(offline=True).ssl_context()
    assert offline.verify_mode == ssl.CERT_REQUIRED and offline.check_hostname
    assert offline.get_ca_certs() == [] and offline.cert_store_stats()["x509_ca"] == 0
    recording = ClientCache().ssl_context()
    assert recording.verify_mode == ssl.CERT_REQUIRED and recording.cert_store_stats()["x509_ca"] > 0
