"""Hooks pytest-llmport calls; implement them in a ``conftest.py`` or a plugin.

The built-in providers are themselves an implementation of :func:`pytest_llmport_add_providers`, so a
user's implementation stands on equal footing: a provider of the same name replaces the built-in one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .providers import Provider


@pytest.hookspec
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


@pytest.hookspec
def pytest_llmport_add_metrics(config: pytest.Config) -> Mapping[str, Callable[[str, str], float]]:
    """Return similarity metrics by name, for ``llm_equiv.similar(..., metric=NAME)`` and ``metric=`` options.

    A metric takes two texts and returns a score in [0, 1]. The built-in metrics (``chrf_lcs``, ``chrf``,
    ``rouge_l``, ``bigram_jaccard``, ``token_jaccard``, ``edit_similarity``, ``embedding``) are an
    implementation of this hook; a metric of the same name from your implementation replaces one.

    .. code-block:: python

        def pytest_llmport_add_metrics(config):
            return {"exact": lambda a, b: float(a.strip() == b.strip())}
    """
    raise NotImplementedError


@pytest.hookspec
def pytest_llmport_report(config: pytest.Config, report: Mapping[str, object]) -> None:
    """Called once at the end of the run (on the xdist controller) with the whole portability report.

    ``report`` is what ``--llmport-report=PATH`` writes: providers, baseline, and per test and provider
    the outcome, every check (kind, key, score, threshold, metric, diff) and every observation.
    """
