"""The one result shape every dialect's answer is normalised into (standard library only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

__all__ = [
    "ERROR_CATEGORIES",
    "FINISH_REASONS",
    "ErrorCategory",
    "FinishReason",
    "NormalizedResult",
    "ProviderError",
    "ToolCall",
    "Usage",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]
ErrorCategory = Literal[
    "auth", "rate_limit", "quota", "content_filter", "bad_request", "server", "timeout", "unknown"
]
FINISH_REASONS: tuple[FinishReason, ...] = get_args(FinishReason)
ERROR_CATEGORIES: tuple[ErrorCategory, ...] = get_args(ErrorCategory)


@dataclass(frozen=True)
class ToolCall:
    id: str | None
    name: str | None
    arguments: object
    raw_arguments: str


@dataclass(frozen=True)
class Usage:
    prompt: int | None = None
    completion: int | None = None
    total: int | None = None
    reasoning: int | None = None
    cached: int | None = None


@dataclass(frozen=True)
class ProviderError:
    category: ErrorCategory
    code: str | None
    message: str | None
    http_status: int | None


@dataclass(frozen=True)
class NormalizedResult:
    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "unknown"
    finish_reason_raw: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    request_id: str | None = None
    streamed: bool = False
    chunks: int = 0
    error: ProviderError | None = None
    content_filtered: bool = False
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values (tuples become lists) for reports."""
        data = asdict(self)
        data["tool_calls"] = list(data["tool_calls"])
        data["warnings"] = list(self.warnings)
        return data
