"""The similarity metrics known to a run, merged from every ``pytest_llmport_add_metrics`` answer.

The hook is called on first use, not at start-up: the built-in metrics live in :mod:`similarity`, whose
import is most of what the plugin would otherwise add to a pytest run that has no marked test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

Metric = Callable[[str, str], float]

# Chosen on the dev splits of STS-B zh, LCQMC and PAWS-X zh (see similarity.py); named here so that
# resolving a test's settings at collection does not import the metrics themselves.
DEFAULT_METRIC: str = "chrf_lcs"


class MetricRegistry(Mapping[str, Metric]):
    """Metrics by name; a later-registered plugin's metric of a taken name wins (conftests over built-ins)."""

    def __init__(self, answers: Callable[[], Sequence[Mapping[str, Metric]]]) -> None:
        self._answers = answers
        self._metrics: dict[str, Metric] | None = None

    def _load(self) -> dict[str, Metric]:
        if self._metrics is None:
            merged: dict[str, Metric] = {}
            # pluggy returns the last-registered implementation's answer first.
            for batch in reversed(self._answers()):
                merged.update(batch)
            self._metrics = merged
        return self._metrics

    def __getitem__(self, name: str) -> Metric:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __contains__(self, name: Any) -> bool:
        return name in self._load()
