"""Hooks pytest-llmport calls; implement them in a ``conftest.py`` or a plugin.

The built-in providers are themselves an implementation of :func:`pytest_llmport_add_providers`, so a
user's implementation stands on equal footing: a provider of the same name replaces the built-in one.
Every hook is called on all implementations (none is ``firstresult``: each one adds to, or is told about,
the same thing); docs/hooks.md shows each one at work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .providers import Provider
    from .testsettings import ItemSettings, RecordingOptions


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


@pytest.hookspec
def pytest_llmport_configure_recording(
    config: pytest.Config, provider: str, settings: ItemSettings, recording: RecordingOptions
) -> None:
    """Change how one ``llm_portable`` test records on one provider: called at its setup, before its
    cassette opens, on the process that runs it (an xdist worker).

    ``settings`` is the test's resolved settings (provider, baseline, record mode, ...); mutate
    ``recording``: add ``secrets`` to scrub, request body fields (``ignore_body``) and query parameters
    (``ignore_query``) whose values replay must not compare. What is ignored is recorded as ``REDACTED``,
    so it applies to what is recorded from now on.

    .. code-block:: python

        def pytest_llmport_configure_recording(config, provider, settings, recording):
            recording.secrets["TENANT_TOKEN"] = "tenant-4f1c9e"
            recording.ignore_body.add("metadata.request_id")
    """


@pytest.hookspec
def pytest_llmport_result(
    config: pytest.Config, nodeid: str, provider: str, when: str, data: Mapping[str, object]
) -> None:
    """Called for each result of an ``llm_portable`` test on one provider, on the xdist controller (or the
    only process): once for its call, and for a setup or teardown that failed.

    ``data`` is the test's cell of the report (scrubbed): ``kind`` (``passed``, ``equivalence``,
    ``app-failure``, ... see ``outcome.KINDS``), ``checks``, ``observations``, ``problems``, ``exchanges``,
    ``model``, ``cassette``.

    .. code-block:: python

        def pytest_llmport_result(config, nodeid, provider, when, data):
            if data["kind"] != "passed":
                print(f"{provider}: {nodeid} is {data['kind']}")
    """
