"""What each supported SDK reads to find a provider: environment variables, module globals, URL shapes.

During an ``llm_portable`` test the plugin exports, for the provider under test, what every SDK that
speaks that provider's wire protocol reads (so ``openai.OpenAI()``, ``ZhipuAI()``, ``anthropic.Anthropic()``,
``genai.Client()``, ``dashscope.Generation.call`` and litellm's ``<prefix>/<model>`` land on it), and sets
the module globals of SDKs that read their configuration once (dashscope, qianfan); everything is
restored when the test ends. In a pure replay (record mode ``none``) the key variables get placeholders
from the start of the session, so clients built at import time construct.

Each SDK wants the base URL in its own shape: the openai SDK takes ``.../v1``, the anthropic SDK the host
without ``/v1`` (it adds ``/v1/messages``), google-genai the host without ``/v1beta`` (it adds the API
version), dashscope the ``.../api/v1`` base, qianfan the host.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .environ import restore_variables, set_variables
from .providers import Provider

_VERSION = re.compile(r"/(v\d+(?:alpha\d*|beta\d*)?)/*$")


def split_version(url: str) -> tuple[str, str]:
    """``("https://host", "v1beta")`` for ``https://host/v1beta``; ``(url, "")`` without a version."""
    found = _VERSION.search(url)
    if found is None:
        return url.rstrip("/"), ""
    return url[: found.start()], found.group(1)


@dataclass(frozen=True)
class LitellmRoute:
    """How litellm reaches one provider natively: ``<prefix>/<model>``, and the variables it reads."""

    prefix: str
    key_env: str
    base_env: str
    strip_version: bool = False

    def api_base(self, spec: Provider) -> str:
        return split_version(spec.base_url)[0] if self.strip_version else spec.base_url


# litellm's native prefixes for the built-in providers (checked against litellm's own provider modules).
# Any other OpenAI-compatible provider goes through litellm's ``openai/`` route with ``api_base``.
LITELLM_ROUTES: dict[str, LitellmRoute] = {
    "openai": LitellmRoute("openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "deepseek": LitellmRoute("deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_API_BASE"),
    "moonshot": LitellmRoute("moonshot", "MOONSHOT_API_KEY", "MOONSHOT_API_BASE"),
    "qwen": LitellmRoute("dashscope", "DASHSCOPE_API_KEY", "DASHSCOPE_API_BASE"),
    "zhipu": LitellmRoute("bigmodel", "BIGMODEL_API_KEY", "BIGMODEL_API_BASE"),
    "doubao": LitellmRoute("volcengine", "VOLCENGINE_API_KEY", "VOLCENGINE_API_BASE"),
    "minimax": LitellmRoute("minimax", "MINIMAX_API_KEY", "MINIMAX_API_BASE"),
    "anthropic": LitellmRoute("anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_API_BASE", strip_version=True),
    "gemini": LitellmRoute("gemini", "GEMINI_API_KEY", "GEMINI_API_BASE", strip_version=True),
}
_LITELLM_OPENAI = LitellmRoute("openai", "OPENAI_API_KEY", "OPENAI_BASE_URL")


def litellm_route(spec: Provider) -> LitellmRoute | None:
    """litellm's route to ``spec``; None for native dialects litellm has no route for (DashScope, ERNIE)."""
    route = LITELLM_ROUTES.get(spec.name)
    if route is not None:
        return route
    return _LITELLM_OPENAI if spec.dialect == "openai" else None


def environment(spec: Provider, api_key: str, secret_key: str = "") -> dict[str, str]:
    """Every variable exported while a test runs on ``spec`` (names an SDK reads, values in its shape)."""
    return dict(_exports(spec, api_key, secret_key))


# Every test on one provider exports the same variables: worked out once per provider, key and secret.
# Read-only, and never handed out as it is (environment() copies): no caller changes what a test exports.
_EXPORTS: dict[tuple[str, ...], Mapping[str, str]] = {}


def _exports(spec: Provider, api_key: str, secret_key: str) -> Mapping[str, str]:
    # Every field of the provider that _environment reads (a Provider holds a dict: it is not hashable).
    fields = (spec.name, spec.base_url, spec.model, spec.dialect, spec.api_key_env, spec.secret_key_env)
    key = (*fields, api_key, secret_key)
    env = _EXPORTS.get(key)
    if env is None:
        if len(_EXPORTS) >= 64:
            _EXPORTS.clear()
        env = _EXPORTS[key] = types.MappingProxyType(_environment(spec, api_key, secret_key))
    return env


def _environment(spec: Provider, api_key: str, secret_key: str) -> dict[str, str]:
    env = {
        "OPENAI_BASE_URL": spec.base_url,
        "OPENAI_API_KEY": api_key,
        "LLMPORT_PROVIDER": spec.name,
        "LLMPORT_MODEL": spec.model,
    }
    root, version = split_version(spec.base_url)
    if spec.dialect == "openai":
        # zhipuai and Volcengine Ark speak the OpenAI paths, so they can reach any OpenAI-compatible provider.
        env.update(ZHIPUAI_BASE_URL=spec.base_url, ZHIPUAI_API_KEY=api_key)
        env.update(ARK_BASE_URL=spec.base_url, ARK_API_KEY=api_key)
    elif spec.dialect == "anthropic":
        env.update(ANTHROPIC_BASE_URL=root, ANTHROPIC_API_KEY=api_key)
    elif spec.dialect == "gemini":
        env.update(GOOGLE_GEMINI_BASE_URL=root, GEMINI_API_KEY=api_key, GOOGLE_API_KEY=api_key)
        if version:
            env["GOOGLE_GENAI_API_VERSION"] = version
    elif spec.dialect == "dashscope":
        env.update(DASHSCOPE_HTTP_BASE_URL=spec.base_url, DASHSCOPE_API_KEY=api_key)
    elif spec.dialect == "ernie":
        env.update(QIANFAN_BASE_URL=spec.base_url, QIANFAN_AK=api_key, QIANFAN_SK=secret_key)
    route = litellm_route(spec)
    if route is not None:
        env.setdefault(route.base_env, route.api_base(spec))
        env.setdefault(route.key_env, api_key)
    env[spec.api_key_env] = api_key
    if spec.secret_key_env:
        env[spec.secret_key_env] = secret_key
    return env


def key_variables(spec: Provider) -> list[str]:
    """The variables of :func:`environment` that hold a key (what a client checks when it is built)."""
    marker = "\0llmport-key\0"
    return [name for name, value in environment(spec, marker, marker).items() if value == marker]


@dataclass(frozen=True)
class ModuleGlobal:
    """A setting an SDK reads from a module attribute rather than from the environment each time."""

    module: str
    dialect: str
    get_target: Callable[[Any], Any]
    values: Callable[[Provider, str, str], dict[str, str]]


def _qianfan_config(module: Any) -> Any:
    return module.get_config()


MODULE_GLOBALS = (
    # dashscope reads DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY once, at import.
    ModuleGlobal(
        "dashscope",
        "dashscope",
        lambda module: module,
        lambda spec, key, secret: {"base_http_api_url": spec.base_url, "api_key": key},
    ),
    # qianfan reads QIANFAN_* into one config object, the first time it is asked for.
    ModuleGlobal(
        "qianfan",
        "ernie",
        _qianfan_config,
        lambda spec, key, secret: {"BASE_URL": spec.base_url, "AK": key, "SK": secret},
    ),
)


_GLOBAL_DIALECTS = frozenset(setting.dialect for setting in MODULE_GLOBALS)


def apply(spec: Provider, api_key: str, secret_key: str = "") -> Callable[[], None]:
    """Export :func:`environment` and set the SDKs' module globals; returns what undoes both."""
    undo: list[Callable[[], None]] = [_set_environ(_exports(spec, api_key, secret_key))]
    if spec.dialect not in _GLOBAL_DIALECTS:
        return undo[0]
    for setting in MODULE_GLOBALS:
        module = sys.modules.get(setting.module)
        if module is None or setting.dialect != spec.dialect:
            continue  # not imported yet: it will read the exported variables when it is
        target = setting.get_target(module)
        undo.append(_set_attributes(target, setting.values(spec, api_key, secret_key)))

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


def _set_environ(values: Mapping[str, str]) -> Callable[[], None]:
    saved: dict[str, str | None] = {}
    set_variables(values, saved)
    return functools.partial(restore_variables, saved)


def _set_attributes(target: Any, values: Mapping[str, str]) -> Callable[[], None]:
    missing = object()
    saved = {name: getattr(target, name, missing) for name in values}
    for name, value in values.items():
        setattr(target, name, value)

    def restore() -> None:
        for name, old in saved.items():
            if old is missing:
                delattr(target, name)
            else:
                setattr(target, name, old)

    return restore


def session_environment(
    specs: Iterable[Provider], placeholder: Callable[[str], str] | None
) -> Callable[[], None]:
    """What holds from the start of the session; returns what undoes it.

    With ``placeholder`` (variable name -> placeholder key shaped as that SDK demands; given in a pure
    replay, where nothing is recorded, so no request carries it to a provider), the key variables nobody
    set get one, so clients built at import time (a module-level ``AsyncOpenAI()``) construct.
    (``LITELLM_LOCAL_MODEL_COST_MAP`` is set earlier still, by the plugin's
    ``pytest_load_initial_conftests``.)
    """
    values: dict[str, str] = {}
    if placeholder is not None:
        for spec in specs:
            values.update(
                {name: placeholder(name) for name in key_variables(spec) if not os.environ.get(name)}
            )
    return _set_environ(values)
