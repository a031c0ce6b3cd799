"""The provider registry: built-ins, pyproject overrides, environment overrides, the hook."""

from __future__ import annotations

import pytest

from pytest_llmport.errors import ConfigError
from pytest_llmport.providers import BUILTIN_PROVIDERS, Provider, apply_overrides

REQUIRED = {
    "openai", "azure-openai", "zhipu", "qwen", "deepseek", "moonshot", "baichuan", "ernie", "hunyuan",
    "doubao", "minimax", "yi", "spark", "local", "qwen-native", "ernie-native", "anthropic", "gemini",
}  # fmt: skip


def test_every_required_builtin_is_complete() -> None:
    by_name = {p.name: p for p in BUILTIN_PROVIDERS}
    assert set(by_name) == REQUIRED
    for provider in BUILTIN_PROVIDERS:
        assert provider.base_url.startswith("https://") or provider.name == "local"
        assert provider.dialect in ("openai", "dashscope", "ernie", "anthropic", "gemini")
        assert provider.model and provider.api_key_env.isupper()
    assert by_name["zhipu"].base_url == "https://open.bigmodel.cn/api/paas/v4"
    assert by_name["qwen"].base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    assert by_name["ernie"].base_url == "https://qianfan.baidubce.com/v2"
    assert by_name["azure-openai"].auth_headers("k") == {"api-key": "k"}
    assert by_name["deepseek"].auth_headers("k") == {"Authorization": "Bearer k"}
    assert not by_name["local"].key_required
    assert by_name["anthropic"].auth_headers("k") == {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    assert by_name["gemini"].auth_headers("k") == {"x-goog-api-key": "k"}
    assert by_name["ernie-native"].auth_headers("k") == {}, "the OAuth token travels in the query string"
    assert "vision" in by_name["openai"].capabilities and "json_mode" not in by_name["minimax"].capabilities


def test_overrides_from_table_and_environment() -> None:
    base = {p.name: p for p in BUILTIN_PROVIDERS}
    table = {
        "zhipu": {"model": "glm-4-plus"},
        "gateway": {"base_url": "https://gw.example/v1", "model": "qwen-max", "api_key_env": "GW_KEY"},
    }
    result = apply_overrides(
        base, table, {"LLMPORT_ZHIPU_BASE_URL": "http://127.0.0.1:9/v4", "LLMPORT_GATEWAY_MODEL": "m2"}
    )
    assert (result["zhipu"].model, result["zhipu"].base_url) == ("glm-4-plus", "http://127.0.0.1:9/v4")
    assert result["gateway"] == Provider("gateway", "https://gw.example/v1", "m2", "GW_KEY")
    assert Provider("azure-openai", "u", "m", "K").env_prefix == "LLMPORT_AZURE_OPENAI"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"zhipu": "glm"}, "[tool.llmport.providers.zhipu] must be a table"),
        (
            {"zhipu": {"modle": "x"}},
            "[tool.llmport.providers.zhipu] has unknown key(s) modle; known keys: base_url",
        ),
        ({"zhipu": {"model": 4}}, "[tool.llmport.providers.zhipu] model = 4 is not a str"),
        ({"zhipu": {"key_required": "no"}}, "key_required = 'no' is not a bool"),
        ({"zhipu": {"headers": {"a": 1}}}, "headers = {'a': 1} is not a table of strings"),
        ({"new": {"model": "m"}}, "defines a new provider but lacks base_url, api_key_env"),
        (
            {"Bad Name": {"base_url": "u", "model": "m", "api_key_env": "K"}},
            "provider name 'Bad Name' is not valid",
        ),
        ({"zhipu": {"auth": "magic"}}, "auth 'magic' is not one of bearer, api-key"),
        (
            {"zhipu": {"capabilities": "tools"}},
            "capabilities = 'tools' is not a list of strings; known capabilities: tools",
        ),
        (
            {"zhipu": {"capabilities": ["telepathy"]}},
            "unknown capabilities telepathy; known: tools, json_mode",
        ),
        ({"zhipu": {"dialect": "klingon"}}, "dialect = 'klingon' is not one of openai, dashscope"),
    ],
)
def test_malformed_entries_are_explained(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        apply_overrides({p.name: p for p in BUILTIN_PROVIDERS}, table, {})
    assert message in str(excinfo.value)


def test_pyproject_entries_and_hook_providers_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
[tool.llmport.providers.zhipu]
model = "glm-4-air"

[tool.llmport.providers.gateway]
base_url = "https://gateway.example/v1"
model = "qwen-max"
api_key_env = "GATEWAY_KEY"
"""
    )
    pytester.makeconftest(
        """
from pytest_llmport import Provider

def pytest_llmport_add_providers(config):
    return [Provider("inhouse", "https://llm.example.internal/v1", "own-1", "INHOUSE_KEY"),
            Provider("qwen", "https://qwen.example/v1", "qwen-own", "DASHSCOPE_API_KEY")]
"""
    )
    pytester.makepyfile(
        test_p="""
import pytest

@pytest.mark.llm_portable
def test_it(llm_provider):
    print("SEEN", llm_provider.name, llm_provider.model, llm_provider.base_url)
"""
    )
    result = pytester.runpytest("--providers=zhipu,gateway,inhouse,qwen", "-s", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["*test_it[[]zhipu[]]", "*test_it[[]gateway[]]", "*test_it[[]inhouse[]]", "*test_it[[]qwen[]]"]
    )
    assert result.ret == 0


def test_malformed_pyproject_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.llmport]\nprovider = "typo"\n')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*[[]tool.llmport[]] has unknown key(s) provider; known: providers, prices"])
    pytester.makepyprojecttoml("[tool.llmport.providers.zhipu]\nmodel = \n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pyproject.toml*Invalid value*"])


@pytest.mark.parametrize(
    "url", ["open.bigmodel.cn/api/paas/v4", "ftp://example.com/v1", "https:///v1", "http://h:x/"]
)
def test_invalid_base_url_names_its_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("LLMPORT_ZHIPU_BASE_URL", url)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*LLMPORT_ZHIPU_BASE_URL={url!r} is not a valid base URL: it needs http:// or https://*"]
    )


def test_every_builtin_passes_its_url_check_so_start_up_may_skip_it() -> None:
    """build_registry checks only added or changed providers against their dialect's URL traps."""
    from pytest_llmport.providers import build_registry, check_dialect_url

    for provider in BUILTIN_PROVIDERS:
        check_dialect_url(provider)  # raises ConfigError naming the trap
    trapped = Provider(
        name="qwen",
        base_url="https://dashscope.aliyuncs.com/api/v1",  # the native API, not the compatible mode
        model="qwen-plus",
        api_key_env="DASHSCOPE_API_KEY",
    )
    with pytest.raises(ConfigError, match=r"dialect 'openai' but .* native DashScope API"):
        build_registry([BUILTIN_PROVIDERS], {}, {"LLMPORT_QWEN_BASE_URL": trapped.base_url})
    with pytest.raises(ConfigError, match=r"dialect 'openai' but .* native DashScope API"):
        build_registry([[trapped], BUILTIN_PROVIDERS], {}, {})  # a plugin's provider replacing a built-in
    assert build_registry([BUILTIN_PROVIDERS], {}, {}) == {p.name: p for p in BUILTIN_PROVIDERS}
