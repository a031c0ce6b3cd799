"""``LLMProvider``: what the ``llm_provider`` fixture hands to a test."""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .placeholders import REPLAY_KEY, replay_key
from .providers import Provider
from .sdks import litellm_route, split_version

if TYPE_CHECKING:
    import ssl

    import httpx
    import openai

    from .chat import ChatResult

__all__ = ["REPLAY_KEY", "ClientCache", "LLMProvider"]


# The openai SDK's own HTTP clients are ``DefaultHttpxClient`` / ``DefaultAsyncHttpxClient`` in every
# version this package allows: subclasses of httpx's clients in 1.x and 2.x, of httpx2's in 3.x. (2.x's
# ``DefaultHttpx2Client`` is experimental, absent from 1.x and early 2.x, and not the stack the app's
# ``openai.OpenAI()`` uses there.)
def _httpx_of(client_class: type) -> types.ModuleType:
    """The httpx package (``httpx`` or ``httpx2``) that ``client_class`` is built on."""
    for base in client_class.__mro__:
        package = base.__module__.partition(".")[0]
        if package in ("httpx", "httpx2"):
            return sys.modules[package]
    raise TypeError(f"{client_class!r} is not an httpx client")


class ClientCache:
    """Run-wide cache of SDK clients and the TLS context they share.

    A new ``openai.OpenAI()`` costs about 20 ms, nearly all of it building a TLS context; a test suite that
    builds one per test spends most of its replay time there. vcrpy patches transports at class level, so a
    shared client is recorded and replayed like a fresh one.
    """

    def __init__(self, offline: bool = False) -> None:
        """``offline``: no test of this run can record (record mode none), so no client ever connects."""
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._aliases: dict[tuple[Any, ...], Any] = {}
        self._ssl: ssl.SSLContext | None = None
        self.offline = offline

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import ssl  # deferred: a run without marked tests should not pay for it

            if self.offline:
                # Every request is answered from a cassette and none reaches a socket: loading the CA
                # bundle (about 25 ms per process) is spared. A context that verifies with no CA to trust
                # fails any handshake that did happen, so it can turn nothing into a pass.
                self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            else:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    def find(self, key: tuple[Any, ...]) -> Any:
        """The client :meth:`remember` put under ``key``, or None."""
        return self._aliases.get(key)

    def remember(self, key: tuple[Any, ...], client: Any) -> None:
        """A second, cheaper key for a client :meth:`get` holds (closed with it, not twice)."""
        self._aliases[key] = client

    def get(self, key: tuple[Any, ...], build: Any) -> Any:
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = build()
        return client

    def close(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if callable(close):
                close()
        self._clients.clear()
        self._aliases.clear()


class LLMProvider:
    """The provider a ``llm_portable`` test runs on, and ready-made clients pointed at it.

    ``api_key`` is the real key while recording and a placeholder while replaying, so SDKs that insist on a
    key can be built offline. ``replaying`` is true when no request may reach the network.

    Not a dataclass on purpose: hypothesis prints a failing test's arguments, and it prints a dataclass
    field by field, key included. This class shows only its provider and model.
    """

    def __init__(
        self,
        spec: Provider,
        api_key: str,
        cassette_path: Path,
        record_mode: str,
        replaying: bool,
        cache: ClientCache | None = None,
        *,
        secret_key: str = "",
    ) -> None:
        self.spec = spec
        self.api_key = api_key
        self.cassette_path = cassette_path
        self.record_mode = record_mode
        self.replaying = replaying
        self._cache = cache if cache is not None else ClientCache()
        # ERNIE's OAuth client secret (``spec.secret_key_env``); empty means "read it from the environment".
        self.secret_key = secret_key
        #: Every :meth:`chat` result of this test, in order (timings, finish reasons, usage for reports).
        self.exchanges: list[ChatResult] = []
        # ERNIE access tokens of this test only: each cassette must hold its own token exchange.
        self._tokens: dict[tuple[str, str, str], str] = {}

    def __repr__(self) -> str:
        return f"LLMProvider({self.spec.name!r}, model={self.spec.model!r})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def base_url(self) -> str:
        return self.spec.base_url

    @property
    def headers(self) -> dict[str, str]:
        """The headers that authenticate a request to this provider."""
        return self.spec.auth_headers(self.api_key)

    @property
    def env(self) -> dict[str, str]:
        """Variables exported during the test: SDKs built from the environment land on this provider.

        See :func:`pytest_llmport.sdks.environment` for which variables each SDK gets.
        """
        from .sdks import environment

        return environment(self.spec, self.api_key, self.secret())

    def _openai_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"base_url": self.base_url, "api_key": self.api_key}
        extra = {k: v for k, v in self.headers.items() if k != "Authorization"}
        if extra:
            options["default_headers"] = extra
        options.update(kwargs)
        return options

    def openai_client(self, **kwargs: Any) -> openai.OpenAI:
        """An ``openai.OpenAI`` client for this provider, shared across tests with the same arguments."""
        # Without arguments the options follow from the base URL, the key and the provider's headers and
        # auth scheme alone: the usual call finds its client without working the options out again.
        spec = self.spec
        short = None if kwargs else ("openai", self.base_url, self.api_key, spec.auth, *spec.headers.items())
        if short is not None:
            known: openai.OpenAI | None = self._cache.find(short)
            if known is not None:
                return known
        import openai

        options = self._openai_kwargs(kwargs)
        key = ("openai", *sorted((k, repr(v)) for k, v in options.items()))

        def build() -> openai.OpenAI:
            if "http_client" not in options:
                options["http_client"] = openai.DefaultHttpxClient(verify=self._cache.ssl_context())
            return openai.OpenAI(**options)

        client: openai.OpenAI = self._cache.get(key, build)
        if short is not None:
            self._cache.remember(short, client)
        return client

    def async_openai_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """A new ``openai.AsyncOpenAI`` client (async clients belong to one event loop, so none is shared)."""
        import openai

        options = self._openai_kwargs(kwargs)
        options.setdefault("http_client", openai.DefaultAsyncHttpxClient(verify=self._cache.ssl_context()))
        return openai.AsyncOpenAI(**options)

    def httpx_client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` with this provider's base URL and auth headers, shared across tests."""
        import httpx

        headers = {**self.headers, **kwargs.pop("headers", {})}
        key = (
            "httpx",
            self.base_url,
            *sorted(headers.items()),
            *sorted((k, repr(v)) for k, v in kwargs.items()),
        )

        def build() -> httpx.Client:
            kwargs.setdefault("verify", self._cache.ssl_context())
            kwargs.setdefault("timeout", 60.0)
            return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)

        client: httpx.Client = self._cache.get(key, build)
        return client

    # -- clients of other SDK families -------------------------------------------------------------------
    def _sdk(self, module: str, package: str, helper: str, dialects: tuple[str, ...]) -> Any:
        """Import an optional SDK for ``helper``, after checking the provider speaks its protocol."""
        if self.spec.dialect not in dialects:
            raise ValueError(
                f"llm_provider.{helper}() on provider {self.name!r}: that SDK speaks the {dialects[0]} "
                f"protocol and {self.name!r} the {self.spec.dialect} one. Restrict the test to such "
                f"providers, e.g. @pytest.mark.llm_portable(providers=[...]), or use openai_client()/chat()."
            )
        try:
            return importlib.import_module(module)
        except ImportError:
            raise ImportError(
                f"llm_provider.{helper}() needs the {package} package: pip install {package}"
            ) from None

    def _auth_headers_besides(self, *names: str) -> dict[str, str]:
        skip = {name.lower() for name in names}
        return {k: v for k, v in self.headers.items() if k.lower() not in skip}

    def anthropic_client(self, **kwargs: Any) -> Any:
        """An ``anthropic.Anthropic`` client for this provider (anthropic dialect), shared across tests.

        The SDK adds ``/v1/messages`` itself, so it gets the base URL without its ``/v1``.
        """
        anthropic = self._sdk("anthropic", "anthropic", "anthropic_client", ("anthropic",))
        options = self._anthropic_kwargs(kwargs)
        key = ("anthropic", *sorted((k, repr(v)) for k, v in options.items()))
        return self._cache.get(key, lambda: anthropic.Anthropic(**options))

    def async_anthropic_client(self, **kwargs: Any) -> Any:
        """A new ``anthropic.AsyncAnthropic`` client (async clients belong to one event loop)."""
        anthropic = self._sdk("anthropic", "anthropic", "async_anthropic_client", ("anthropic",))
        return anthropic.AsyncAnthropic(**self._anthropic_kwargs(kwargs))

    def _anthropic_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        root, _ = split_version(self.base_url)
        options: dict[str, Any] = {"base_url": root, "api_key": self.api_key}
        extra = self._auth_headers_besides("x-api-key", "authorization", "anthropic-version")
        if extra:
            options["default_headers"] = extra
        options.update(kwargs)
        return options

    def genai_client(self, **kwargs: Any) -> Any:
        """A ``google.genai.Client`` for this provider (gemini dialect), shared across tests.

        The SDK adds the API version itself: it gets the base URL without it, and the version apart.
        """
        self._sdk("google.genai", "google-genai", "genai_client", ("gemini",))
        from google.genai import Client, types

        root, version = split_version(self.base_url)
        http_options = kwargs.pop("http_options", None) or types.HttpOptions()
        http_options.base_url = http_options.base_url or root
        http_options.api_version = http_options.api_version or version or None
        extra = self._auth_headers_besides("x-goog-api-key", "authorization")
        if extra:
            http_options.headers = {**extra, **(http_options.headers or {})}
        options = {"api_key": self.api_key, "http_options": http_options, **kwargs}
        key = ("genai", *sorted((k, repr(v)) for k, v in options.items()))
        return self._cache.get(key, lambda: Client(**options))

    @property
    def model_id(self) -> str:
        """The model in litellm's ``provider/model`` form (``deepseek/deepseek-chat``, ``openai/<model>``)."""
        route = litellm_route(self.spec)
        if route is None:
            raise ValueError(
                f"provider {self.name!r} ({self.spec.dialect} dialect) has no litellm route; litellm reaches "
                f"OpenAI-compatible, Anthropic and Gemini providers"
            )
        return f"{route.prefix}/{self.model}"

    def litellm_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """``model``, ``api_base``, ``api_key``: ``litellm.completion(**llm_provider.litellm_kwargs())``."""
        route = litellm_route(self.spec)
        options: dict[str, Any] = {"model": self.model_id, "api_key": self.api_key}
        if route is not None:
            options["api_base"] = route.api_base(self.spec)
        extra = self._auth_headers_besides("authorization", "x-api-key", "x-goog-api-key")
        if extra:
            options["extra_headers"] = extra
        options.update(overrides)
        return options

    def langchain_chat(self, **kwargs: Any) -> Any:
        """A ``langchain_openai.ChatOpenAI`` for this provider (OpenAI-compatible ones).

        A new one per call, with its own async HTTP client: langchain-openai otherwise shares one async
        client per base URL across event loops, and a second ``asyncio.run`` finds it on a closed loop.
        That client keeps no idle connection, and the sync one is shared and closed at the end of the
        session: langchain-openai never closes the clients it builds, so their sockets outlived the test
        (and the event loop) and warned in whatever later test the garbage collector found them.
        """
        langchain_openai = self._sdk("langchain_openai", "langchain-openai", "langchain_chat", ("openai",))
        import openai

        options: dict[str, Any] = {"model": self.model, "base_url": self.base_url, "api_key": self.api_key}
        extra = self._auth_headers_besides("authorization")
        if extra:
            options["default_headers"] = extra
        options.update(kwargs)
        verify = self._cache.ssl_context()
        if "http_client" not in options:
            build = functools.partial(openai.DefaultHttpxClient, verify=verify)
            options["http_client"] = self._cache.get(("langchain-http",), build)
        if "http_async_client" not in options:
            limits = _httpx_of(openai.DefaultAsyncHttpxClient).Limits(
                max_connections=100, max_keepalive_connections=0
            )
            options["http_async_client"] = openai.DefaultAsyncHttpxClient(verify=verify, limits=limits)
        return langchain_openai.ChatOpenAI(**options)

    def secret(self) -> str:
        """The provider's second secret (ERNIE's OAuth client secret), or a placeholder while replaying."""
        if self.secret_key:
            return self.secret_key
        env = self.spec.secret_key_env
        value = os.environ.get(env, "") if env else ""
        # While replaying the secret only reaches a scrubbed query parameter; any placeholder matches.
        return value or (replay_key(env) if env and self.replaying else "")

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        response_format: Mapping[str, Any] | None = None,
        stream: bool = False,
        model: str | None = None,
        **extra: Any,
    ) -> ChatResult:
        """Chat with this provider in its native dialect, through the recorded :meth:`httpx_client`.

        ``messages``/``tools``/``response_format`` are OpenAI-style and converted per dialect; ``extra``
        keywords (``temperature=0``, ``max_tokens=...``) go into the native request. Provider errors come
        back in ``result.error``; only transport failures raise. Each result is appended to
        :attr:`exchanges`. See :func:`pytest_llmport.chat.chat`.
        """
        from .chat import chat

        result = chat(
            self.spec,
            api_key=self.api_key,
            secret_key=self.secret(),
            http=self.httpx_client(),
            model=model or self.model,
            messages=messages,
            tools=tools,
            response_format=response_format,
            stream=stream,
            extra=extra,
            tokens=self._tokens,
        )
        self.exchanges.append(result)
        return result
