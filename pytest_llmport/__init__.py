"""pytest-llmport: run the same pytest test across LLM providers, recorded once and replayed offline."""

from __future__ import annotations

from .errors import (
    ConfigError,
    CorruptCassetteError,
    LlmportError,
    MissingCassetteError,
    NetworkBlockedError,
    NoRecordedResponseError,
)
from .handle import LLMProvider
from .providers import Provider

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
