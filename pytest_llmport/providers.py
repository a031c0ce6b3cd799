"""The provider registry: what each provider is called, where it lives and how it authenticates.

Built-in providers are contributed through the same ``pytest_llmport_add_providers`` hook that users
implement (the plugin's implementation returns :data:`BUILTIN_PROVIDERS`), so a private gateway is a
first-class citizen. Overrides from ``[tool.llmport.providers.<name>]`` and from ``LLMPORT_<NAME>_BASE_URL``
/ ``LLMPORT_<NAME>_MODEL`` are applied once, in :func:`build_registry`. No pytest here: the registry is
plain data, importable wherever the package is.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .deprecation import moved
from .errors import ConfigError

AUTH_SCHEMES = ("bearer", "api-key", "x-api-key", "x-goog-api-key", "query-access-token", "none")
CAPABILITIES = (
    "tools",
    "json_mode",
    "streaming",
    "system_role",
    "vision",
    "seed",
    "parallel_tool_calls",
    # Not in the default set: each is declared only where the provider documents it.
    "json_schema",  # response_format {"type": "json_schema"} (structured outputs)
    "stream_options",  # stream_options {"include_usage": true}: usage in the last stream event
)
DEFAULT_CAPABILITIES = frozenset(
    {"tools", "json_mode", "streaming", "system_role", "seed", "parallel_tool_calls"}
)


def caps(
    *names: str, base: frozenset[str] = DEFAULT_CAPABILITIES, drop: tuple[str, ...] = ()
) -> frozenset[str]:
    return frozenset((set(base) | set(names)) - set(drop))


@dataclass(frozen=True)
class Provider:
    """One LLM provider as the plugin sees it.

    ``auth`` says how the key travels: ``bearer`` (``Authorization: Bearer <key>``), ``api-key`` (Azure),
    ``x-api-key`` (Anthropic), ``x-goog-api-key`` (Gemini), ``query-access-token`` (ERNIE native: an
    OAuth token in the URL, obtained with the key and ``secret_key_env``) or ``none`` (a local server).
    ``key_required`` is false for servers that accept any key, so recording needs no key variable.
    """

    name: str
    base_url: str
    model: str
    api_key_env: str
    auth: str = "bearer"
    dialect: str = "openai"
    key_required: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    # A second secret some native APIs need (ERNIE's OAuth client secret); scrubbed like the key.
    secret_key_env: str = ""
    capabilities: frozenset[str] = field(default_factory=lambda: DEFAULT_CAPABILITIES)
    # URL prefixes besides base_url that belong to this provider (an OAuth token endpoint on another
    # host); requests anywhere else are refused while recording (see pytest_llmport.identity).
    extra_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.name):
            raise ConfigError(
                f"provider name {self.name!r} is not valid: use lower-case letters, digits, '-' and '_'"
            )
        unknown = sorted(set(self.capabilities) - set(CAPABILITIES))
        if unknown:
            raise ConfigError(
                f"provider {self.name!r}: unknown capabilities {', '.join(unknown)}; "
                f"known: {', '.join(CAPABILITIES)}"
            )
        if isinstance(self.extra_hosts, str) or not all("://" in str(url) for url in self.extra_hosts):
            raise ConfigError(
                f"provider {self.name!r}: extra_hosts={self.extra_hosts!r} must be a tuple of URL prefixes, "
                f'e.g. ("https://aip.baidubce.com/oauth/2.0/token",)'
            )
        if self.auth not in AUTH_SCHEMES:
            raise ConfigError(
                f"provider {self.name!r}: auth {self.auth!r} is not one of {', '.join(AUTH_SCHEMES)}"
            )

    @property
    def env_prefix(self) -> str:
        """``LLMPORT_ZHIPU`` for ``zhipu``, ``LLMPORT_AZURE_OPENAI`` for ``azure-openai``."""
        return "LLMPORT_" + re.sub(r"[^A-Z0-9]", "_", self.name.upper())

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Headers that carry ``api_key`` the way this provider expects it."""
        headers = dict(self.headers)
        if self.auth == "bearer":
            headers["Authorization"] = f"Bearer {api_key}"
        elif self.auth not in ("none", "query-access-token"):
            headers[self.auth] = api_key
        return headers


# Mainland defaults, as documented by each provider (see docs/providers.md for the sources).
BUILTIN_PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "openai",
        "https://api.openai.com/v1",
        "gpt-4o-mini",
        "OPENAI_API_KEY",
        description="OpenAI",
        capabilities=caps("vision", "json_schema", "stream_options"),
    ),
    Provider(
        "azure-openai",
        "https://<resource>.openai.azure.com/openai/v1",
        "gpt-4o-mini",
        "AZURE_OPENAI_API_KEY",
        auth="api-key",
        description="Azure OpenAI (v1 API; the model is your deployment name)",
        capabilities=caps("json_schema", "stream_options"),
    ),
    Provider(
        "zhipu",
        "https://open.bigmodel.cn/api/paas/v4",
        "glm-4-flash",
        "ZHIPUAI_API_KEY",
        description="Zhipu GLM (BigModel open platform, API v4)",
        capabilities=caps(drop=("parallel_tool_calls",)),
    ),
    Provider(
        "qwen",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "qwen-plus",
        "DASHSCOPE_API_KEY",
        description="Alibaba Qwen via DashScope OpenAI-compatible mode",
        capabilities=caps("stream_options"),
    ),
    Provider(
        "deepseek",
        "https://api.deepseek.com",
        "deepseek-chat",
        "DEEPSEEK_API_KEY",
        description="DeepSeek",
        capabilities=caps("stream_options"),
    ),
    Provider(
        "moonshot",
        "https://api.moonshot.cn/v1",
        "moonshot-v1-8k",
        "MOONSHOT_API_KEY",
        description="Moonshot Kimi",
    ),
    Provider(
        "baichuan",
        "https://api.baichuan-ai.com/v1",
        "Baichuan4-Turbo",
        "BAICHUAN_API_KEY",
        description="Baichuan",
    ),
    Provider(
        "ernie",
        "https://qianfan.baidubce.com/v2",
        "ernie-4.0-8k",
        "QIANFAN_API_KEY",
        description="Baidu ERNIE via Qianfan v2 (OpenAI-compatible; bearer bce-v3 key)",
    ),
    Provider(
        "hunyuan",
        "https://api.hunyuan.cloud.tencent.com/v1",
        "hunyuan-turbos-latest",
        "HUNYUAN_API_KEY",
        description="Tencent Hunyuan (OpenAI-compatible endpoint)",
    ),
    Provider(
        "doubao",
        "https://ark.cn-beijing.volces.com/api/v3",
        "doubao-seed-1-6-251015",
        "ARK_API_KEY",
        description="ByteDance Doubao via Volcengine Ark (model id or ep-... endpoint id)",
    ),
    Provider(
        "minimax",
        "https://api.minimaxi.com/v1",
        "MiniMax-M2",
        "MINIMAX_API_KEY",
        description="MiniMax",
        capabilities=caps(drop=("json_mode", "seed", "parallel_tool_calls")),
    ),
    Provider("yi", "https://api.lingyiwanwu.com/v1", "yi-lightning", "YI_API_KEY", description="01.AI Yi"),
    Provider(
        "spark",
        "https://spark-api-open.xf-yun.com/v1",
        "generalv3.5",
        "SPARK_API_PASSWORD",
        description="iFlytek Spark HTTP API (the key is the console's APIPassword)",
        capabilities=frozenset({"tools", "streaming", "system_role"}),
    ),
    Provider(
        "qwen-native",
        "https://dashscope.aliyuncs.com/api/v1",
        "qwen-plus",
        "DASHSCOPE_API_KEY",
        dialect="dashscope",
        description="Alibaba Qwen via the native DashScope text-generation API",
    ),
    Provider(
        "ernie-native",
        "https://aip.baidubce.com",
        "completions_pro",
        "QIANFAN_AK",
        auth="query-access-token",
        dialect="ernie",
        secret_key_env="QIANFAN_SK",  # noqa: S106 - the variable's name, not a secret
        description="Baidu ERNIE via the native wenxinworkshop API (model = the endpoint path, OAuth AK/SK)",
        capabilities=frozenset({"tools", "streaming", "system_role", "json_mode"}),
    ),
    Provider(
        "anthropic",
        "https://api.anthropic.com/v1",
        "claude-sonnet-4-5",
        "ANTHROPIC_API_KEY",
        auth="x-api-key",
        dialect="anthropic",
        headers={"anthropic-version": "2023-06-01"},
        description="Anthropic Messages API",
        capabilities=frozenset({"tools", "streaming", "system_role", "vision", "parallel_tool_calls"}),
    ),
    Provider(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta",
        "gemini-2.5-flash",
        "GEMINI_API_KEY",
        auth="x-goog-api-key",
        dialect="gemini",
        description="Google Gemini generateContent API",
        capabilities=caps("vision", "json_schema"),
    ),
    Provider(
        "local",
        "http://127.0.0.1:8000/v1",
        "qwen2.5-7b-instruct",
        "LOCAL_LLM_API_KEY",
        key_required=False,
        description="A self-hosted OpenAI-compatible server (vLLM; Ollama serves http://127.0.0.1:11434/v1)",
    ),
)


_moved = moved(
    __name__, {"pytest_llmport_add_providers": "pytest_llmport.plugin:pytest_llmport_add_providers"}
)


def __getattr__(name: str) -> object:
    if name == "DIALECTS":  # the dialect names, served from dialects/ (imported on first use)
        from .dialects import DIALECTS

        return DIALECTS
    return _moved(name)


_FIELDS = {f.name: f for f in dataclasses.fields(Provider)}
_OVERRIDABLE = tuple(name for name in _FIELDS if name != "name")


def check_base_url(url: str, source: str) -> None:
    """A base URL must be absolute http(s) with a host; say which variable or entry holds a bad one."""
    try:
        parts = urlsplit(url)
        valid = (
            parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)
        )
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            f"{source}={url!r} is not a valid base URL: it needs http:// or https://, a host and an "
            f"optional path, e.g. https://api.example.com/v1"
        )


def _coerce(provider: str, key: str, value: object) -> object:
    if key == "capabilities":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"[tool.llmport.providers.{provider}] capabilities = {value!r} is not a list of strings; "
                f"known capabilities: {', '.join(CAPABILITIES)}"
            )
        return frozenset(value)
    if key == "extra_hosts":
        if not isinstance(value, list) or not all(isinstance(v, str) and "://" in v for v in value):
            raise ConfigError(
                f"[tool.llmport.providers.{provider}] extra_hosts = {value!r} is not a list of URL "
                f'prefixes; write for example extra_hosts = ["https://aip.baidubce.com/oauth/2.0/token"]'
            )
        return tuple(value)
    if key == "dialect":
        from .dialects import DIALECTS

        if value not in DIALECTS:
            raise ConfigError(
                f"[tool.llmport.providers.{provider}] dialect = {value!r} is not one of {', '.join(DIALECTS)}"
            )
    expected: type = bool if key == "key_required" else dict if key == "headers" else str
    if not isinstance(value, expected) or (
        expected is dict
        and not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in value.items()  # type: ignore[attr-defined]
        )
    ):
        shape = "a table of strings" if expected is dict else f"a {expected.__name__}"
        raise ConfigError(
            f"[tool.llmport.providers.{provider}] {key} = {value!r} is not {shape}. "
            f"Fix the entry in pyproject.toml."
        )
    return value


def apply_overrides(
    providers: Mapping[str, Provider],
    table: Mapping[str, Any],
    environ: Mapping[str, str],
) -> dict[str, Provider]:
    """Apply ``[tool.llmport.providers]`` then ``LLMPORT_<NAME>_*`` variables; return the final registry."""
    result = dict(providers)
    for name, entry in table.items():
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"[tool.llmport.providers.{name}] must be a table, got {entry!r}. "
                f'Write for example:\n  [tool.llmport.providers.{name}]\n  base_url = "https://..."'
            )
        unknown = sorted(set(entry) - set(_OVERRIDABLE))
        if unknown:
            raise ConfigError(
                f"[tool.llmport.providers.{name}] has unknown key(s) {', '.join(unknown)}; "
                f"known keys: {', '.join(_OVERRIDABLE)}"
            )
        values = {key: _coerce(name, key, value) for key, value in entry.items()}
        if name in result:
            result[name] = dataclasses.replace(result[name], **values)  # type: ignore[arg-type]
            continue
        missing = [key for key in ("base_url", "model", "api_key_env") if key not in values]
        if missing:
            raise ConfigError(
                f"[tool.llmport.providers.{name}] defines a new provider but lacks {', '.join(missing)}; "
                f"a new provider needs base_url, model and api_key_env"
            )
        result[name] = Provider(name=name, **values)  # type: ignore[arg-type]
    for name, provider in list(result.items()):
        changes: dict[str, Any] = {
            attr: environ[f"{provider.env_prefix}_{suffix}"]
            for attr, suffix in (("base_url", "BASE_URL"), ("model", "MODEL"))
            if environ.get(f"{provider.env_prefix}_{suffix}")
        }
        if "base_url" in changes:
            check_base_url(changes["base_url"], f"{provider.env_prefix}_BASE_URL")
        if changes:
            result[name] = dataclasses.replace(provider, **changes)
    return result


def check_dialect_url(provider: Provider) -> None:
    """A dialect and a base URL that disagree would fail on the first request; say so at start-up."""
    from .dialects import url_trap

    trap = url_trap(provider.dialect, provider.base_url)
    if trap is not None:
        raise ConfigError(
            f"provider {provider.name!r}: dialect {provider.dialect!r} but {provider.base_url} is "
            f"{trap.what}; use {trap.fix}"
        )


def build_registry(
    contributed: Iterable[Iterable[Provider]],
    table: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Provider]:
    """Merge hook contributions (later plugins win over built-ins) and apply the user's overrides."""
    merged: dict[str, Provider] = {}
    # pluggy returns results newest-registered first; built-ins register first, so reverse to let users win.
    for batch in reversed(list(contributed)):
        if isinstance(batch, Provider) or not isinstance(batch, Iterable):
            raise ConfigError(
                f"pytest_llmport_add_providers returned {batch!r}; it must return a list of "
                f"pytest_llmport.Provider objects"
            )
        for provider in batch:
            if not isinstance(provider, Provider):
                raise ConfigError(
                    f"pytest_llmport_add_providers returned {provider!r}; it must return "
                    f"pytest_llmport.Provider objects"
                )
            merged[provider.name] = provider
    registry = apply_overrides(merged, table, os.environ if environ is None else environ)
    for provider in registry.values():
        # A built-in provider as shipped passes (tests/test_providers.py): the dialect modules load at
        # start-up only to check a provider that was added or changed.
        if provider not in BUILTIN_PROVIDERS:
            check_dialect_url(provider)
    return registry
