"""pytest-llmport: run the same pytest test across LLM providers, recorded once and replayed offline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    CorruptCassetteError,
    LlmportError,
    MissingCassetteError,
    NetworkBlockedError,
    NoRecordedResponseError,
)
from .providers import Provider

if TYPE_CHECKING:
    from .handle import LLMProvider

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CorruptCassetteError",
    "LLMProvider",
    "LlmportError",
    "MissingCassetteError",
    "NetworkBlockedError",
    "NoRecordedResponseError",
    "Provider",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # LLMProvider's module (and the SDK table it imports) loads when a marked test or a user asks for it.
    if name == "LLMProvider":
        from .handle import LLMProvider

        return LLMProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
