"""Run-wide state (kept in ``config.stash``) and the life of one ``llm_portable`` test on one provider."""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .config import MARKER, Settings
from .errors import CorruptCassetteError, MissingCassetteError
from .guard import Threads, background_hint
from .handle import REPLAY_KEY, ClientCache, LLMProvider
from .providers import Provider

if TYPE_CHECKING:
    from .cassettes import AtomicPersister
    from .equivalence import Equivalence
    from .guard import Attempt, ChildGuard, Guard
    from .identity import ProviderIdentity
    from .recording import ItemRecording, Patches, Router
    from .scrub import Scrubber

PARAM = "llm_provider_name"
# Background traffic seen during a test without the marker (marked tests carry it in their report data).
BACKGROUND_PROPERTY = "llmport_background"
RECORDING_MODES = ("once", "new_episodes", "all")


@dataclass
class Scope:
    """What the network guard refused for one test (marked or not) or one collector, and from where."""

    nodeid: str
    threads: Threads
    blocked: list[str] = field(default_factory=list)
    background: list[dict[str, str]] = field(default_factory=list)
    reported: int = 0  # blocked messages already turned into a failure
    recording: ItemRecording | None = None


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
        self.guard: Guard | None = None
        self._children: ChildGuard | None = None
        self._saved_env: dict[str, str | None] = {}
        self.scope: Scope | None = None
        self.blocked_outside: list[str] = []
        self.background: list[tuple[str, dict[str, str]]] = []

    # -- the network guard -----------------------------------------------------------------------
    @property
    def replays_all(self) -> bool:
        """Nothing in this run can record (record mode none): the guard holds from start to end."""
        return self.settings.block_network and self.settings.record_mode == "none"

    def start_guard(self) -> None:
        """Install the network guard; in a run that only replays, also guard child processes."""
        if not self.settings.block_network or self.guard is not None:
            return
        from .guard import Guard

        self.guard = Guard(self._refused, self._blocking)
        self.guard.install()
        if self.replays_all:
            children = self.children()
            self.guard.proxy_port = children.proxy_port
            self._set_env(self._saved_env, children.environment(os.environ, proxies=True))

    def _blocking(self) -> bool:
        if self.replays_all:
            return True
        item = self._router.item if self._router is not None else None
        return item is not None and item.replaying

    def children(self) -> ChildGuard:
        if self._children is None:
            from .guard import ChildGuard

            self._children = ChildGuard()
        return self._children

    @staticmethod
    def _set_env(saved: dict[str, str | None], values: dict[str, str]) -> None:
        for var, value in values.items():
            saved.setdefault(var, os.environ.get(var))
            os.environ[var] = value

    @staticmethod
    def _restore_env(saved: dict[str, str | None]) -> None:
        for var, old in saved.items():
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old
        saved.clear()

    def enter(self, nodeid: str) -> tuple[Scope, Scope | None]:
        """A test or collector starts: refusals from now on are its own (or background traffic)."""
        self.collect_children()
        previous, self.scope = self.scope, Scope(nodeid, Threads())
        return self.scope, previous

    def leave(self, previous: Scope | None) -> None:
        self.collect_children()
        self.scope = previous

    def _refused(self, attempt: Attempt) -> str:
        scope = self.scope
        what = attempt.describe()
        off = "Use --llmport-allow-network to let it through."
        if scope is not None:
            background = scope.threads.is_background(attempt.thread)
        else:
            background = attempt.thread is not threading.main_thread()
        if background:
            where = scope.nodeid if scope is not None else "outside any test"
            self._note_background(scope, attempt)
            return (
                f"pytest-llmport: blocked {what} from thread {attempt.thread.name!r} while replaying: "
                f"background traffic during {where} (not failing it). {off}"
            )
        if scope is not None and scope.recording is not None:
            item = scope.recording
            message = (
                f"{item.nodeid}: blocked {what} on provider {item.provider!r} while replaying "
                f"(record mode: {item.record_mode}). Requests through httpx, requests, urllib3 and aiohttp "
                f"are answered from {item.path}; this one bypassed them. {off}"
            )
            item.blocked.append(message)
            return message
        where = f"{scope.nodeid}:" if scope is not None else "pytest-llmport, outside any test:"
        message = (
            f"{where} blocked {what}: the run replays (record mode: none), so the network guard holds "
            f"for every test, fixture and import, not only llm_portable tests; loopback (127.0.0.1, ::1, "
            f"localhost) is allowed. {off}"
        )
        (scope.blocked if scope is not None else self.blocked_outside).append(message)
        return message

    def _note_background(self, scope: Scope | None, attempt: Attempt) -> None:
        entry = {
            "url": attempt.target,
            "thread": attempt.thread.name,
            "hint": background_hint(attempt.target),
        }
        if scope is None:
            self.background.append(("outside any test", entry))
            return
        entries = scope.recording.background if scope.recording is not None else scope.background
        # The request itself may already be listed (by URL) by the recording layer.
        if not any(e["thread"] == entry["thread"] and attempt.host in e["url"] for e in entries):
            entries.append(entry)

    def collect_children(self) -> None:
        """Turn what child processes' guards refused into failures of the test that was running."""
        if self._children is None:
            return
        for entry in self._children.collect():
            scope = self.scope
            where = scope.nodeid if scope is not None else "pytest-llmport (outside any test)"
            message = (
                f"{where}: a child process (pid {entry.get('pid')}: {entry.get('command')}) was refused "
                f"{entry.get('what')} while replaying. Child Python processes run the same guard; other "
                f"programs are pointed at a closed proxy, which a program that ignores HTTP(S)_PROXY "
                f"(curl --noproxy, its own network stack) bypasses: see docs/limitations.md. "
                f"Use --llmport-allow-network to let it through."
            )
            if scope is None:
                self.blocked_outside.append(message)
            elif scope.recording is not None:
                scope.recording.blocked.append(message)
            else:
                scope.blocked.append(message)

    def new_blocked(self, scope: Scope) -> list[str]:
        """Refusals of this scope not yet reported as a failure."""
        self.collect_children()
        blocked = scope.recording.blocked if scope.recording is not None else scope.blocked
        fresh = blocked[scope.reported :]
        scope.reported = len(blocked)
        return fresh

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
            self._patches = Patches(self._router)
        assert self._patches is not None
        self._patches.start()
        self.start_guard()
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
        scope = self.scope
        if scope is not None:
            recording.threads = scope.threads
            recording.blocked = scope.blocked
            recording.background = scope.background
            scope.recording = recording
        self._router.item = recording
        handle = LLMProvider(spec, key, path, mode, replaying, self.clients)
        marker = item.get_closest_marker(MARKER)
        declared = list(marker.kwargs.get("models", ())) if marker else []
        if embedding and self.settings.embedding_model:
            declared.append(self.settings.embedding_model)  # the embedding metric's requests land here too
        state = ItemState(handle, recording, models=tuple(declared))
        if self.settings.export_env:
            self._set_env(state.saved_env, handle.env)
        if replaying and self.settings.block_network and not self.replays_all:
            # Child Python processes of a replaying test run the guard too. Not the proxy variables: a
            # client built now and kept (by the app, or urllib's global opener) would carry them into
            # later tests that record.
            self._set_env(state.saved_env, self.children().environment(os.environ, proxies=False))
        return state

    def finish(self, item: pytest.Item, state: ItemState, nextitem: pytest.Item | None, passed: bool) -> None:
        self._restore_env(state.saved_env)
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
            entries: Any = ()
            if name == PROPERTY and isinstance(data, dict):
                longrepr = report.longreprtext if report.failed else ""
                outcome = "xfailed" if getattr(report, "wasxfail", None) is not None else report.outcome
                self.matrix.add(report.nodeid, report.when, outcome, data, longrepr)
                entries = data.get("background", ())
            elif name == BACKGROUND_PROPERTY:
                entries = data
            for entry in entries:
                if isinstance(entry, dict) and (report.nodeid, entry) not in self.background:
                    self.background.append((report.nodeid, entry))

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
            "background": list(state.recording.background),
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
        if self.guard is not None:
            self.guard.uninstall()
        self._restore_env(self._saved_env)
        if self._children is not None:
            self._children.close()
