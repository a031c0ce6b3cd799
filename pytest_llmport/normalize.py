"""Deprecated: the result shape and ``normalize()`` moved to :mod:`pytest_llmport.dialects`.

``from pytest_llmport.normalize import X`` keeps working with a :class:`DeprecationWarning` naming the new
home: :func:`pytest_llmport.dialects.normalizer.normalize` (and its ``Accumulator``), the types in
:mod:`pytest_llmport.dialects.result`, the parsing helpers in :mod:`pytest_llmport.dialects.common`, the
SSE splitter in :mod:`pytest_llmport.sse`.
"""

from __future__ import annotations

from .deprecation import moved

_RESULT = "pytest_llmport.dialects.result"
_COMMON = "pytest_llmport.dialects.common"

__getattr__ = moved(
    __name__,
    {
        "DIALECTS": "pytest_llmport.dialects:DIALECTS",
        "UnknownDialectError": "pytest_llmport.dialects:UnknownDialectError",
        "normalize": "pytest_llmport.dialects.normalizer:normalize",
        "Accumulator": "pytest_llmport.dialects.normalizer:Accumulator",
        **{
            name: f"{_RESULT}:{name}"
            for name in (
                "ERROR_CATEGORIES",
                "FINISH_REASONS",
                "ErrorCategory",
                "FinishReason",
                "NormalizedResult",
                "ProviderError",
                "ToolCall",
                "Usage",
            )
        },
        "SSEEvent": "pytest_llmport.sse:SSEEvent",
        "iter_sse_events": "pytest_llmport.sse:iter_events",
        **{
            name: f"{_COMMON}:{name}"
            for name in (
                "as_dict",
                "as_int",
                "as_list",
                "as_str",
                "categorize",
                "code_category",
                "code_text",
                "json_payloads",
                "status_category",
            )
        },
    },
)
