"""Hooks pytest-llmport calls; implement them in a ``conftest.py`` or a plugin.

The built-in providers are themselves an implementation of :func:`pytest_llmport_add_providers`, so a
user's implementation stands on equal footing: a provider of the same name replaces the built-in one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .providers import Provider


def pytest_llmport_add_providers(config: pytest.Config) -> Iterable[Provider]:
    """Return providers to add to the registry (called once, in ``pytest_configure``).

    Implement it in the root ``conftest.py`` or an installed plugin; a provider whose name already exists
    replaces it. ``[tool.llmport.providers.<name>]`` and ``LLMPORT_<NAME>_BASE_URL`` /
    ``LLMPORT_<NAME>_MODEL`` are applied afterwards and win.

    .. code-block:: python

        from pytest_llmport import Provider

        def pytest_llmport_add_providers(config):
            return [Provider("gateway", "https://llm.example.internal/v1", "qwen-max", "GATEWAY_KEY")]
    """
    raise NotImplementedError
