"""Run-wide state (kept in ``config.stash``) and the life of one ``llm_portable`` test on one provider."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .config import MARKER, Settings
from .errors import CorruptCassetteError, MissingCassetteError
from .handle import REPLAY_KEY, ClientCache, LLMProvider
from .providers import Provider

if TYPE_CHECKING:
    from .cassettes import AtomicPersister
    from .equivalence import Equivalence
    from .identity import ProviderIdentity
    from .recording import ItemRecording, Patches, Router
    from .scrub import Scrubber

PARAM = "llm_provider_name"
RECORDING_MODES = ("once", "new_episodes", "all")


@dataclass
class ItemState:
    handle: LLMProvider
    recording: ItemRecording
    saved_env: dict[str, str | None] = field(default_factory=dict)
    equiv: Equivalence | None = None
    models: tuple[str, ...] = ()  # the marker's models=[...]: models the test uses on purpose


def provider_of(item: pytest.Item) -> str | None:
    """The provider an ``llm_portable`` item runs on, or None for any other item."""
    # Only marked tests are parametrised over PARAM (pytest_generate_tests), so the parameter alone says
    # it; this runs several times per test, and a marker lookup walks the node chain.
    callspec = getattr(item, "callspec", None)
    name = callspec.params.get(PARAM) if callspec is not None else None
    return name if isinstance(name, str) else None


class LlmportRun:
    """Everything that lives for the whole run: settings, providers, patches, clients."""

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        registry: dict[str, Provider],
        metrics: Mapping[str, Callable[[str, str], float]] | None = None,
    ) -> None:
        from .report import Matrix

        self.config = config
        self.settings = settings
        self.registry = registry
        self.metrics: Mapping[str, Callable[[str, str], float]] = metrics if metrics is not None else {}
        self.matrix = Matrix(settings.providers, settings.baseline)
        # Baseline observations made in this process, for tests whose baseline ran earlier in the same run.
        self.baselines: dict[Path, dict[str, Any]] = {}
        self.clients = ClientCache()
        self.discarded: list[str] = []
        self._router: Router | None = None
        self._patches: Patches | None = None
        self._scrubbers: dict[frozenset[tuple[str, str]], Scrubber] = {}
        self._persister: AtomicPersister | None = None
        self._secret_names: list[str] | None = None
        self._identities: dict[tuple[Any, ...], ProviderIdentity] = {}

    # -- where and how -----------------------------------------------------------------------------
    def path_for(self, item: pytest.Item, provider: str) -> Path:
        from .cassettes import cassette_path, param_slug

        callspec: Any = getattr(item, "callspec", None)
        params = {k: v for k, v in callspec.params.items() if k != PARAM} if callspec else {}
        name = getattr(item, "originalname", item.name)
        cls = getattr(item, "cls", None)
        test_name = f"{cls.__name__}.{name}" if cls is not None else name
        extra = param_slug(params, dict(callspec.indices)) if params else ""
        return cassette_path(Path(item.path), self.settings.cassette_dir, test_name, provider, extra)

    def _hint(self, item: pytest.Item, spec: Provider, mode: str) -> str:
        command = f"pytest {shlex.quote(item.nodeid)} --providers={spec.name} --llmport-record-mode={mode}"
        if spec.key_required:
            command = f"{spec.api_key_env}=... {command}"
        return f"To record it: {command}"

    def plan(self, item: pytest.Item, name: str) -> tuple[Provider, Path, str, str, bool]:
        """Decide (spec, path, effective mode, key, replaying); skip or fail the test when it cannot run."""
        spec = self.registry[name]
        path = self.path_for(item, name)
        mode = self.settings.record_mode
        key = os.environ.get(spec.api_key_env, "")
        can_record = bool(key) or not spec.key_required
        exists = path.is_file()
        if mode == "none":
            if not exists:
                raise MissingCassetteError(
                    f"{item.nodeid}: no cassette for provider {name!r} at {path} (record mode: none).\n"
                    f"  {self._hint(item, spec, 'once')}"
                )
            return spec, path, mode, key or REPLAY_KEY, True
        if not can_record:
            if exists and mode != "all":
                return spec, path, "none", REPLAY_KEY, True  # nothing may go out without a key: pure replay
            pytest.skip(
                f"{spec.api_key_env} is not set: cannot record {name!r} "
                f"({'no cassette at ' + str(path) if not exists else 'record mode all'})"
            )
        if "<" in spec.base_url and not (exists and mode == "once"):
            pytest.skip(
                f"{name}: set {spec.env_prefix}_BASE_URL (base URL {spec.base_url} has a placeholder)"
            )
        replaying = exists and mode == "once"
        return spec, path, mode, key or REPLAY_KEY, replaying

    def scrubber(self, extra_key: str) -> Scrubber:
        from .scrub import Scrubber

        if self._secret_names is None:
            names = {spec.api_key_env for spec in self.registry.values()}
            names |= {spec.secret_key_env for spec in self.registry.values() if spec.secret_key_env}
            self._secret_names = sorted(names | set(self.settings.secret_env))
        environ = os.environ
        secrets = {name: environ[name] for name in self._secret_names if environ.get(name)}
        if extra_key and extra_key != REPLAY_KEY:
            secrets.setdefault("API_KEY", extra_key)
        cache_key = frozenset(secrets.items())
        scrubber = self._scrubbers.get(cache_key)
        if scrubber is None:
            scrubber = self._scrubbers[cache_key] = Scrubber(secrets)
        return scrubber

    def warm_up(self) -> None:
        """Import vcrpy, the HTTP client stubs and every module a marked test may use, before the first test.

        Besides sparing the first test the import time, this keeps hypothesis' examples the same however
        many tests ran before: hypothesis mixes in constants from the local modules loaded so far, and in
        an editable install the plugin's own modules count as local.
        """
        from . import chat, compare, dialects, equivalence, observe, properties, recording, similarity  # noqa: F401

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, item: pytest.Item, name: str) -> ItemState:
        from .recording import ItemRecording, Patches, Router, open_cassette

        spec, path, mode, key, replaying = self.plan(item, name)
        if self._persister is None:
            from .cassettes import AtomicPersister

            cache = getattr(self.config, "cache", None)  # None with -p no:cacheprovider
            worker = str(getattr(self.config, "workerinput", {}).get("workerid", "main"))
            self._persister = AtomicPersister(
                cache.mkdir("llmport-cassettes") if cache is not None else None, worker
            )
        try:
            cassette = open_cassette(path, mode, self.scrubber(key), self._persister)
        except CorruptCassetteError as exc:
            raise CorruptCassetteError(
                f"{item.nodeid}: cassette of provider {name!r} is unusable:\n  {exc}"
            ) from None
        if self._router is None:
            self._router = Router()
            self._patches = Patches(self._router, self.settings.block_network)
        assert self._patches is not None
        self._patches.start()
        # "all" re-records the test whole; new_episodes would keep the outdated exchange beside the new one.
        hint_mode = "all" if path.is_file() else "once"
        from . import identity
        from .properties import configure, is_property_test

        hint = self._hint(item, spec, hint_mode)
        embedding = self.settings.embedding_provider if self.settings.embedding_model else None
        also = [self.registry[embedding]] if embedding else []
        spec, checker = identity.prepare(
            item.nodeid,
            spec,
            cassette,
            path,
            replaying,
            mode,
            hint,
            self.scrubber(key).uri,
            also,
            self.registry,
            self._identities,
        )
        function = getattr(item, "obj", None)
        if is_property_test(function):
            configure(function, cassette.llmport, replaying, self.settings.max_examples, item.nodeid, hint)
        recording = ItemRecording(
            item.nodeid,
            name,
            path,
            mode,
            self._hint(item, spec, hint_mode),
            replaying,
            cassette,
            property_based=is_property_test(function),
            identity=checker,
        )
        self._router.item = recording
        handle = LLMProvider(spec, key, path, mode, replaying, self.clients)
        marker = item.get_closest_marker(MARKER)
        declared = list(marker.kwargs.get("models", ())) if marker else []
        if embedding and self.settings.embedding_model:
            declared.append(self.settings.embedding_model)  # the embedding metric's requests land here too
        state = ItemState(handle, recording, models=tuple(declared))
        if self.settings.export_env:
            for var, value in handle.env.items():
                state.saved_env[var] = os.environ.get(var)
                os.environ[var] = value
        return state

    def finish(self, item: pytest.Item, state: ItemState, nextitem: pytest.Item | None, passed: bool) -> None:
        for var, old in state.saved_env.items():
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old
        if self._router is not None:
            self._router.item = None
        equiv = state.equiv
        if equiv is not None and equiv.is_baseline and equiv.observations and passed:
            from .equivalence import observations_path, save_observations

            target = observations_path(state.recording.path)
            self.baselines[target] = dict(equiv.observations)
            # A replay writes nothing into the source tree unless asked (--llmport-write-observations).
            if not state.recording.replaying or self.settings.write_observations:
                save_observations(target, equiv.provider, equiv.observations)
        cassette = state.recording.cassette
        # A recorded test that sent nothing still gets a (empty) cassette, so replay knows it was recorded.
        fresh = not state.recording.replaying and not state.recording.path.exists()
        if cassette.dirty or fresh:
            if passed or self.settings.record_on_failure:
                cassette._save(force=True)
            else:
                self.discarded.append(f"{item.nodeid}: {state.recording.path}")
        if self._patches is not None and (nextitem is None or provider_of(nextitem) is None):
            self._patches.stop()

    # -- equivalence ---------------------------------------------------------------------------------------
    def equivalence(self, item: pytest.Item, state: ItemState) -> Equivalence:
        """The ``llm_equiv`` object of one test on one provider (built on first use)."""
        from .config import marker_options
        from .equivalence import Equivalence, EquivalenceSettings, load_observations, observations_path
        from .similarity import DEFAULT_METRIC, DEFAULT_THRESHOLD

        if state.equiv is not None:
            return state.equiv
        marker = item.get_closest_marker(MARKER)
        assert marker is not None
        options = marker_options(marker, list(self.registry), item.nodeid, self.metrics)
        settings = self.settings
        baseline = options.baseline or settings.baseline
        threshold = options.threshold if options.threshold is not None else settings.threshold
        eq_settings = EquivalenceSettings(
            baseline=baseline,
            threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
            metric=options.metric or settings.metric or DEFAULT_METRIC,
            facts=settings.check_facts if options.facts is None else options.facts,
        )
        target = observations_path(self.path_for(item, baseline))

        def baseline_values() -> dict[str, Any]:
            return self.baselines.get(target) or load_observations(target)

        spec = self.registry[baseline]
        nodeid = item.nodeid.replace(f"[{state.handle.name}", f"[{baseline}", 1)
        command = f"pytest {shlex.quote(nodeid)} --providers={baseline} --llmport-record-mode=all"
        if spec.key_required:
            command = f"{spec.api_key_env}=... {command}"
        state.equiv = Equivalence(
            nodeid=item.nodeid,
            provider=state.handle.name,
            settings=eq_settings,
            baseline_values=baseline_values,
            metrics=self.metrics,
            record_command=command,
            embed=self._embedder(state),
        )
        return state.equiv

    def _embedder(self, state: ItemState) -> Callable[[list[str]], list[list[float]]] | None:
        name, model = self.settings.embedding_provider, self.settings.embedding_model
        if not name or not model:
            return None
        spec = self.registry[name]
        key = os.environ.get(spec.api_key_env) or REPLAY_KEY
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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from .report import PROPERTY

        for name, data in report.user_properties:
            if name == PROPERTY and isinstance(data, dict):
                longrepr = report.longreprtext if report.failed else ""
                outcome = "xfailed" if getattr(report, "wasxfail", None) is not None else report.outcome
                self.matrix.add(report.nodeid, report.when, outcome, data, longrepr)

    def prepare_property_tests(self, items: list[pytest.Item]) -> None:
        """Make every marked ``@given`` test replayable (see :mod:`pytest_llmport.properties`)."""
        from .properties import is_property_test, make_replayable

        for item in items:
            function = getattr(item, "obj", None)
            if provider_of(item) is not None and is_property_test(function):
                make_replayable(getattr(function, "__func__", function), self.settings.max_examples)

    def report_data(self, state: ItemState) -> dict[str, Any]:
        from .identity import model_report
        from .observe import summarize_exchanges

        equiv = state.equiv
        return {
            "provider": state.handle.name,
            # A property-based test adds checks per example and shrink step; the last ones say most.
            "checks": [check.to_dict() for check in equiv.checks[-50:]] if equiv else [],
            "observations": dict(equiv.observations) if equiv else {},
            "problems": list(state.recording.unmatched + state.recording.blocked),
            "exchanges": summarize_exchanges(state.recording.cassette, state.handle.spec.dialect),
            "model": model_report(
                state.recording.cassette, state.handle.spec.dialect, state.handle.model, state.models
            ),
        }

    def close(self) -> None:
        if self._persister is not None:
            self._persister.flush()
        if self._patches is not None:
            self._patches.stop()
        self.clients.close()
