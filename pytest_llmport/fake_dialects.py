"""Deprecated: the fake provider's dialects moved to the :mod:`pytest_llmport.fake` package.

``from pytest_llmport.fake_dialects import X`` keeps working with a :class:`DeprecationWarning` that names
the new home (``pytest_llmport.fake``).
"""

from __future__ import annotations

from .deprecation import moved

__getattr__ = moved(
    __name__,
    {
        **{
            name: f"pytest_llmport.fake:{name}"
            for name in (
                "CANNED_ERRORS",
                "ERROR_KINDS",
                "FAKE_DIALECTS",
                "QUIRKS",
                "ernie_access_token",
                "error_body",
                "family",
                "not_found",
                "validate",
            )
        },
        "doubled_version": "pytest_llmport.fake.server:doubled_version",
    },
)
