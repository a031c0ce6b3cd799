"""Each test's ``llm_equiv`` object, wired from its settings: where its baseline's observations are, the
judge and the embeddings client it may use, and the baseline observations this run made.

The comparisons themselves are :mod:`pytest_llmport.equivalence`'s; the judge's prompt and verdict are
:mod:`pytest_llmport.judge`'s. This module connects them to one test on one provider.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings, settings_of
from .handle import ClientCache, LLMProvider
from .lifecycle import CassettePaths, ItemState, record_command, record_hint
from .placeholders import replay_key
from .providers import Provider

if TYPE_CHECKING:
    import pytest

    from .equivalence import Equivalence
    from .judge import Judge
    from .redaction import Redaction


@dataclass(eq=False)
class Equivalences:
    """The run's ``llm_equiv`` wiring, and the baseline observations made in this process."""

    settings: Settings
    registry: dict[str, Provider]
    metrics: Mapping[str, Callable[[str, str], float]]
    clients: ClientCache
    paths: CassettePaths
    redaction: Redaction
    # Baseline observations made in this process, for tests whose baseline ran earlier in the same run.
    baselines: dict[Path, dict[str, Any]] = field(default_factory=dict, init=False)
    baseline_counts: dict[Path, int] = field(default_factory=dict, init=False)  # a sampled baseline's N

    def keep(self, state: ItemState, whole: bool) -> None:
        """A test ends: a whole baseline recording keeps its observations, for this run and on disk."""
        equiv = state.equiv
        if equiv is None or not equiv.is_baseline or not equiv.observations or not whole:
            return
        from .equivalence import observations_path, save_observations

        target = observations_path(state.recording.path)
        # Scrubbed for this run's comparisons too, so they see what CI will read from the file.
        observations = self.redaction.output().value(dict(equiv.observations))
        self.baselines[target] = observations
        sample = None
        if state.sample is not None:
            sample = {"index": state.sample.index, "of": state.sample.count}
            self.baseline_counts[target] = state.sample.count
        # A replay writes nothing into the source tree unless asked (--llmport-write-observations).
        if not state.recording.replaying or self.settings.write_observations:
            save_observations(target, equiv.provider, observations, sample)

    def of(self, item: pytest.Item, state: ItemState) -> Equivalence:
        """The ``llm_equiv`` object of one test on one provider (built on first use)."""
        from .equivalence import Equivalence, EquivalenceSettings, observations_path
        from .samples import baseline_samples, read_file

        if state.equiv is not None:
            return state.equiv
        settings = settings_of(item)
        baseline = settings.baseline

        folder = observations_path(self.paths.path_for(item, baseline)).parent

        def lookup(path: Path) -> tuple[Mapping[str, Any], int | None] | None:
            if path in self.baselines:
                return self.baselines[path], self.baseline_counts.get(path)
            return read_file(path)

        def samples() -> list[Mapping[str, Any]]:
            return baseline_samples(folder, baseline, lookup)[0]

        nodeid = item.nodeid.replace(f"[{state.handle.name}", f"[{baseline}", 1)
        count = None
        if state.sample is not None:
            # Every sample of the baseline, not only the one this item pairs with.
            nodeid = nodeid.partition("[")[0]
            count = state.sample.count
        state.equiv = Equivalence(
            nodeid=item.nodeid,
            provider=state.handle.name,
            settings=EquivalenceSettings(baseline, settings.threshold, settings.metric, settings.facts),
            baseline_values=lambda: {},
            baseline_samples=samples,
            sample=state.sample.index if state.sample is not None else 1,
            metrics=self.metrics,
            record_command=record_command(nodeid, self.registry[baseline], "all", count),
            embed=self._embedder(state),
            judge=self._judge_factory(item, state),
        )
        return state.equiv

    def judge_of(self, item: pytest.Item) -> tuple[Provider, str] | None:
        """The judge provider and model of a test: the marker's ``judge=``, else the run's, else None."""
        from .judge import split_judge

        text = settings_of(item).judge
        if not text:
            return None
        name, model = split_judge(text)  # validated at configure (ini, option) and collection (marker)
        spec = self.registry[name]
        return spec, model or spec.model

    def _judge_factory(self, item: pytest.Item, state: ItemState) -> Callable[[], Judge] | None:
        found = self.judge_of(item)
        if found is None:
            return None
        spec, model = found

        def build() -> Judge:
            from .judge import Judge

            recording = state.recording
            key = os.environ.get(spec.api_key_env, "")
            command = record_hint(item, state.handle.spec, "all").removeprefix("To record it: ")
            if spec.key_required and spec.api_key_env not in command:
                command = f"{spec.api_key_env}=... {command}"
            handle = LLMProvider(
                spec,
                key or replay_key(spec.api_key_env),
                state.handle.cassette_path,
                state.handle.record_mode,
                recording.replaying,
                self.clients,
            )
            return Judge(
                handle=handle,
                model=model,
                recorded=lambda: list(recording.cassette.requests),
                replaying=recording.replaying,
                record_command=command,
                problem=recording.unmatched.append,
                unusable=_unusable(item.nodeid, spec, model, key, recording.replaying),
            )

        return build

    def _embedder(self, state: ItemState) -> Callable[[list[str]], list[list[float]]] | None:
        name, model = self.settings.embedding_provider, self.settings.embedding_model
        if not name or not model:
            return None
        spec = self.registry[name]
        key = os.environ.get(spec.api_key_env) or replay_key(spec.api_key_env)
        handle = LLMProvider(
            spec, key, state.handle.cassette_path, state.handle.record_mode, True, self.clients
        )

        def embed(texts: list[str]) -> list[list[float]]:
            # Through the patched transport, so the call lands in this test's cassette and replays offline.
            response = handle.httpx_client().post("embeddings", json={"model": model, "input": texts})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            return [list(map(float, item["embedding"])) for item in data]

        return embed


def _unusable(nodeid: str, spec: Provider, model: str, key: str, replaying: bool) -> str | None:
    """Why the judge cannot record a verdict (no key, a placeholder URL), or None.

    Only asking needs these; the baseline records its text without the judge.
    """
    if replaying:
        return None
    where = f"{nodeid}: the judge {spec.name}:{model} cannot record its verdict"
    if spec.key_required and not key:
        return (
            f"{where}: {spec.api_key_env} is not set. Set it, or name another judge "
            f"(--llmport-judge=<provider>[:model])"
        )
    if "<" in spec.base_url:
        return f"{where}: set {spec.env_prefix}_BASE_URL (its base URL {spec.base_url} has a placeholder)"
    return None
