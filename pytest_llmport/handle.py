"""``LLMProvider``: what the ``llm_provider`` fixture hands to a test."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .providers import Provider

if TYPE_CHECKING:
    import ssl

    import httpx
    import openai

    from .chat import ChatResult

REPLAY_KEY = "llmport-replay-key"


class ClientCache:
    """Run-wide cache of SDK clients and the TLS context they share.

    A new ``openai.OpenAI()`` costs about 20 ms, nearly all of it building a TLS context; a test suite that
    builds one per test spends most of its replay time there. vcrpy patches transports at class level, so a
    shared client is recorded and replayed like a fresh one.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._ssl: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import ssl  # deferred: a run without marked tests should not pay for it

            import certifi

            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

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
        """Variables exported during the test: ``openai.OpenAI()`` built from the environment lands here."""
        return {
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": self.api_key,
            "LLMPORT_PROVIDER": self.name,
            "LLMPORT_MODEL": self.model,
        }

    def _openai_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"base_url": self.base_url, "api_key": self.api_key}
        extra = {k: v for k, v in self.headers.items() if k != "Authorization"}
        if extra:
            options["default_headers"] = extra
        options.update(kwargs)
        return options

    def openai_client(self, **kwargs: Any) -> openai.OpenAI:
        """An ``openai.OpenAI`` client for this provider, shared across tests with the same arguments."""
        import openai

        options = self._openai_kwargs(kwargs)
        key = ("openai", *sorted((k, repr(v)) for k, v in options.items()))

        def build() -> openai.OpenAI:
            if "http_client" not in options:
                options["http_client"] = openai.DefaultHttpx2Client(verify=self._cache.ssl_context())
            return openai.OpenAI(**options)

        client: openai.OpenAI = self._cache.get(key, build)
        return client

    def async_openai_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """A new ``openai.AsyncOpenAI`` client (async clients belong to one event loop, so none is shared)."""
        import openai

        options = self._openai_kwargs(kwargs)
        options.setdefault("http_client", openai.DefaultAsyncHttpx2Client(verify=self._cache.ssl_context()))
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

    def _secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        env = self.spec.secret_key_env
        value = os.environ.get(env, "") if env else ""
        # While replaying the secret only reaches a scrubbed query parameter; any placeholder matches.
        return value or (REPLAY_KEY if env and self.replaying else "")

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
            secret_key=self._secret_key(),
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
