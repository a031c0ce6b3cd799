"""The life of one ``llm_portable`` test's recording on one provider: plan, open, patch, keep or discard.

:meth:`Lifecycle.start` plans the test (:class:`Plan`: provider, cassette path, effective record mode,
key, whether it replays), runs the ``pytest_llmport_configure_recording`` hooks, opens the cassette
through the run's :class:`~pytest_llmport.recording.Recorder`, starts the client patches, checks the
recorded provider (:mod:`pytest_llmport.identity`) and routes every patched client to the test.
:meth:`Lifecycle.finish` stops routing, decides whether the recording is whole (:meth:`Lifecycle.broken`)
and saves or discards it; :meth:`Lifecycle.abandon` lists the recording of a test the run left open.

The run-wide object (:class:`pytest_llmport.run.LlmportRun`) owns the guard and the report; what it
must add around a recording (the network guard, its scope) it passes in as callables, so nothing here
imports it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import sdks
from .config import PARAM as PARAM
from .config import RecordingOptions, Settings, settings_of
from .config import provider_of as provider_of
from .environ import current as current_variable
from .environ import restore_variables
from .errors import (
    CassetteFormatError,
    ConfigError,
    CorruptCassetteError,
    LazyText,
    LlmportError,
    MissingCassetteError,
)
from .handle import ClientCache, LLMProvider
from .placeholders import replay_key
from .providers import Provider
from .samples import SAMPLE, Sample, sample_of

if TYPE_CHECKING:
    from .equivalence import Equivalence
    from .identity import ProviderIdentity
    from .recording import ItemRecording, LlmportCassette, Recorder
    from .redaction import Redaction
    from .scrub import Scrubber

TEST_OUTCOMES = (pytest.fail.Exception, pytest.skip.Exception, pytest.xfail.Exception)


@dataclass
class ItemState:
    handle: LLMProvider
    recording: ItemRecording
    record_hint: str | LazyText = ""
    # Why its recording was not saved (nodeid, path, reason, hint), for the teardown report (xdist brings it).
    discarded: dict[str, str] | None = None
    saved_env: dict[str, str | None] = field(default_factory=dict)
    restore_env: Callable[[], None] = lambda: None
    equiv: Equivalence | None = None
    models: tuple[str, ...] = ()  # the marker's models=[...]: models the test uses on purpose
    sample: Sample | None = None  # which of a samples=N test's answers this item records
    judged: bool = False  # a judge is configured: its exchanges share the cassette
    # The plugin's own providers by role ("judge", "embedding"): (provider as this test reaches it, model).
    own: dict[str, tuple[Provider, str]] = field(default_factory=dict)
    note_own: Callable[[str], None] = lambda role: None  # recording: a role's request goes into the cassette


@dataclass
class Outcome:
    """How far a test got, noted from its reports: what decides whether its recording is kept."""

    setup_failed: bool = False
    call_failed: bool = False
    interrupted: bool = False

    def note(self, when: str, failed: bool, exc: BaseException | None) -> None:
        if failed and when == "setup":
            self.setup_failed = True
        elif failed and when == "call":
            self.call_failed = True
        # pytest.fail/skip/xfail raise BaseExceptions too, but they are the test's own verdict: its
        # recording is whole. KeyboardInterrupt, SystemExit ... stop the run mid-test.
        if exc is not None and not isinstance(exc, (Exception, *TEST_OUTCOMES)):
            self.interrupted = True


@dataclass(frozen=True)
class Plan:
    """How one test runs on one provider, decided before its cassette is opened."""

    spec: Provider
    path: Path
    mode: str  # the effective record mode ("none" when nothing may go out without a key)
    key: str  # the provider's key, or the replay placeholder
    replaying: bool
    exists: bool  # the cassette file existed when the test was planned


def record_command(nodeid: str, spec: Provider, mode: str, samples: int | None = None) -> str:
    """The command that records ``nodeid`` on provider ``spec`` (its key variable first, if it needs one)."""
    command = f"pytest {shlex.quote(nodeid)} --providers={spec.name} --llmport-record-mode={mode}"
    if samples is not None:
        command += f" --llmport-samples={samples}"
    return f"{spec.api_key_env}=... {command}" if spec.key_required else command


def record_hint(item: pytest.Item, spec: Provider, mode: str) -> str:
    """``To record it: <command>`` for ``item`` on ``spec`` in record mode ``mode``."""
    sample = sample_of(item)  # the item's id exists only with this count (it may come from the option)
    return f"To record it: {record_command(item.nodeid, spec, mode, sample.count if sample else None)}"


def rerecord_hint(item: pytest.Item, spec: Provider, plan: Plan) -> LazyText:
    """:func:`record_hint` for re-recording a planned test, built only if a message shows it.

    Record mode ``all`` re-records an existing cassette whole (``new_episodes`` would keep the outdated
    exchange beside the new one); ``once`` records a missing one.
    """
    return LazyText(lambda: record_hint(item, spec, "all" if plan.exists else "once"))


class CassettePaths:
    """Where each test's cassette lives (``<cassette_dir>/<file>/<test>/<provider>.yaml``)."""

    def __init__(self, cassette_dir: str, is_secret: Callable[[str], bool]) -> None:
        self._cassette_dir = cassette_dir
        self._is_secret = is_secret
        self._folders: dict[Path, Path] = {}  # test module -> its cassette folder

    def path_for(self, item: pytest.Item, provider: str) -> Path:
        callspec: Any = getattr(item, "callspec", None)
        params = {k: v for k, v in callspec.params.items() if k not in (PARAM, SAMPLE)} if callspec else {}
        name = getattr(item, "originalname", item.name)
        cls = getattr(item, "cls", None)
        test_name = f"{cls.__name__}.{name}" if cls is not None else name
        sample = sample_of(item)  # sample k of a samples=N test: <provider>.s<k>.yaml
        stem = sample.stem(provider) if sample is not None else provider
        if params:
            from .cassettes import cassette_path, param_slug

            extra = param_slug(params, dict(callspec.indices), self._is_secret)
            return cassette_path(Path(item.path), self._cassette_dir, test_name, stem, extra)
        # The module's folder is built once (cassette_path's layout, one join per test after that).
        module = self._folders.get(item.path)
        if module is None:
            from .cassettes import cassette_folder

            module = self._folders[item.path] = cassette_folder(Path(item.path), self._cassette_dir)
        return module.joinpath(test_name, f"{stem}.yaml")


@dataclass(eq=False)
class Lifecycle:
    """The per-test recording lifecycle, for every marked test of the run (one test open at a time).

    ``start_guard`` is called once a test's patches are in place, ``attach`` with its recording just
    before the clients are routed to it; ``keep_observations(state, whole)`` before its cassette is
    saved or discarded.
    """

    config: pytest.Config
    settings: Settings
    registry: dict[str, Provider]
    redaction: Redaction
    clients: ClientCache
    paths: CassettePaths
    start_guard: Callable[[], None] = lambda: None
    attach: Callable[[ItemRecording], None] = lambda recording: None
    keep_observations: Callable[[ItemState, bool], None] = lambda state, whole: None
    _recorder: Recorder | None = field(default=None, init=False)
    _current: tuple[str, ItemState] | None = field(default=None, init=False)
    _identities: dict[tuple[Any, ...], ProviderIdentity] = field(default_factory=dict, init=False)

    @property
    def recording(self) -> ItemRecording | None:
        """The recording of the test running now, if any."""
        return self._recorder.current if self._recorder is not None else None

    def recorder(self) -> Recorder:
        """The recording layer of this run (built by the first marked test)."""
        if self._recorder is None:
            from .recording import Recorder

            cache = getattr(self.config, "cache", None)  # None with -p no:cacheprovider
            worker = str(getattr(self.config, "workerinput", {}).get("workerid", "main"))
            self._recorder = Recorder(cache.mkdir("llmport-cassettes") if cache is not None else None, worker)
        return self._recorder

    # -- plan ------------------------------------------------------------------------------------
    def plan(self, item: pytest.Item, name: str) -> Plan:
        """Decide how the test runs on ``name``; skip or fail the test when it cannot run."""
        spec = self.registry[name]
        path = self.paths.path_for(item, name)
        mode = settings_of(item).record_mode
        key = current_variable(spec.api_key_env) or ""
        exists = path.is_file()
        if mode == "none":
            if not exists:
                raise MissingCassetteError(
                    f"{item.nodeid}: no cassette for provider {name!r} at {path} (record mode: none).\n"
                    f"  {record_hint(item, spec, 'once')}"
                )
            return Plan(spec, path, mode, key or replay_key(spec.api_key_env), True, exists)
        if not key and spec.key_required:
            if exists and mode != "all":
                # Nothing may go out without a key: pure replay.
                return Plan(spec, path, "none", replay_key(spec.api_key_env), True, exists)
            pytest.skip(
                f"{spec.api_key_env} is not set: cannot record {name!r} "
                f"({'no cassette at ' + str(path) if not exists else 'record mode all'})"
            )
        if "<" in spec.base_url and not (exists and mode == "once"):
            pytest.skip(
                f"{name}: set {spec.env_prefix}_BASE_URL (base URL {spec.base_url} has a placeholder)"
            )
        replaying = exists and mode == "once"
        return Plan(spec, path, mode, key or replay_key(spec.api_key_env), replaying, exists)

    def recording_options(self, item: pytest.Item) -> RecordingOptions:
        """What the ``pytest_llmport_configure_recording`` hooks change about this test's recording."""
        options = RecordingOptions()
        hook = self.config.hook.pytest_llmport_configure_recording
        if not hook.get_hookimpls():
            return options  # nobody changes it: the defaults pass the checks below
        settings = settings_of(item)
        hook(config=self.config, provider=settings.provider, settings=settings, recording=options)
        try:
            options.check(item.nodeid)
        except ConfigError as exc:
            raise LlmportError(str(exc)) from None
        return options

    # -- open ------------------------------------------------------------------------------------
    def open(self, item: pytest.Item, plan: Plan) -> tuple[LlmportCassette, Scrubber]:
        """The test's cassette, loaded (a damaged file fails the test with a fix), and its scrubber."""
        options = self.recording_options(item)
        try:
            scrubber = self.redaction.scrubber(plan.key, options.secrets)
            cassette = self.recorder().open(plan.path, plan.mode, scrubber, options)
        except CorruptCassetteError as exc:
            # Record mode all does not read the old file, so this command gets past a damaged one.
            again = (
                "" if isinstance(exc, CassetteFormatError) else f"\n  {record_hint(item, plan.spec, 'all')}"
            )
            raise CorruptCassetteError(
                f"{item.nodeid}: cassette of provider {plan.spec.name!r} is unusable:\n  {exc}{again}"
            ) from None
        return cassette, scrubber

    def start(self, item: pytest.Item, name: str, judge: tuple[Provider, str] | None = None) -> ItemState:
        """Plan, open and patch: from here on every patched client answers for this test on ``name``.

        ``judge``: the judge provider and model of the test, whose requests land in its cassette too.
        """
        plan = self.plan(item, name)
        cassette, scrubber = self.open(item, plan)
        recorder = self.recorder()
        recorder.patches.start()
        self.start_guard()
        own = self._own(item, plan, cassette, judge)
        spec, recording = self._recording(item, plan, cassette, scrubber, own)
        self.attach(recording)
        recorder.begin(recording)
        state = self._state(item, plan, spec, recording, own.get("judge"))
        state.own = own
        if not plan.replaying:
            from . import identity

            header, uri = cassette.llmport, scrubber.uri

            def note_own(role: str) -> None:
                # Only a role that records a request is noted: a cassette without the judge's exchanges
                # (the baseline's) must not need re-recording when the judge changes.
                header.update(identity.own_header({role: own[role]}, uri))

            state.note_own = note_own
        return state

    def _own(
        self, item: pytest.Item, plan: Plan, cassette: LlmportCassette, judge: tuple[Provider, str] | None
    ) -> dict[str, tuple[Provider, str]]:
        """The plugin's own providers whose requests land in this test's cassette (the judge, the
        embedding metric's provider), by role; replaying, where they were recorded."""
        from . import identity

        own: dict[str, tuple[Provider, str]] = {}
        if judge is not None:
            own["judge"] = judge
        name, model = self.settings.embedding_provider, self.settings.embedding_model
        if name and model:
            own["embedding"] = (self.registry[name], model)
        hint = rerecord_hint(item, plan.spec, plan)
        mixing = plan.mode == "new_episodes" and bool(cassette.data)
        own = identity.own_as_recorded(
            own, cassette.llmport, item.nodeid, plan.path, hint, plan.replaying, mixing
        )
        if not plan.replaying and not mixing:
            for role in identity.OWN_ROLES:
                cassette.llmport.pop(role, None)  # noted again by the first request each role records
        return own

    def _recording(
        self,
        item: pytest.Item,
        plan: Plan,
        cassette: LlmportCassette,
        scrubber: Scrubber,
        own: Mapping[str, tuple[Provider, str]],
    ) -> tuple[Provider, ItemRecording]:
        """The provider as the test sees it (as recorded, when replaying), and the test's recording."""
        from . import identity
        from .properties import configure, is_property_test
        from .recording import ItemRecording

        spec, checker = identity.prepare(
            item.nodeid,
            plan.spec,
            cassette,
            plan.path,
            plan.replaying,
            plan.mode,
            rerecord_hint(item, plan.spec, plan),
            scrubber.uri,
            [own_spec for own_spec, _ in own.values()],
            self.registry,
            self._identities,
        )
        hint = rerecord_hint(item, spec, plan)
        function = getattr(item, "obj", None)
        property_based = is_property_test(function)
        if property_based:
            configure(
                function, cassette.llmport, plan.replaying, self.settings.max_examples, item.nodeid, hint
            )
        recording = ItemRecording(
            item.nodeid,
            plan.spec.name,
            plan.path,
            plan.mode,
            hint,
            plan.replaying,
            cassette,
            property_based=property_based,
            identity=checker,
            scrub=lambda text: self.redaction.output().text(text),
        )
        return spec, recording

    def _state(
        self,
        item: pytest.Item,
        plan: Plan,
        spec: Provider,
        recording: ItemRecording,
        judge: tuple[Provider, str] | None,
    ) -> ItemState:
        """The test's state, open until :meth:`finish`: its ``llm_provider`` and the SDKs' environment."""
        handle = LLMProvider(spec, plan.key, plan.path, plan.mode, plan.replaying, self.clients)
        models = settings_of(item).models + ((judge[1],) if judge is not None else ())
        judged = judge is not None
        state = ItemState(
            handle, recording, recording.record_hint, models=models, sample=sample_of(item), judged=judged
        )
        self._current = (item.nodeid, state)
        if self.settings.export_env:
            state.restore_env = sdks.apply(spec, plan.key, handle.secret())
        return state

    # -- keep or discard ---------------------------------------------------------------------------
    def broken(self, state: ItemState, outcome: Outcome) -> str | None:
        """Why this test's recording must not be kept, or None when it is whole.

        A failing test keeps its cassette when every exchange completed at the HTTP level, whatever its
        status: the failure is a fact about the provider, and replay reproduces it. A recording is broken
        when the test did not run (setup failed), a request could not be recorded, or the test failed
        after a response was cut short (a dropped connection, a timeout): that failure is the network's.
        """
        recording = state.recording
        if outcome.interrupted:
            return "the run was interrupted during the test"
        if outcome.setup_failed:
            return "the test did not run: its setup failed"
        problems = recording.unmatched + recording.blocked
        if problems:
            return f"a request could not be recorded: {problems[0].splitlines()[0]}"
        if not (recording.pending or outcome.call_failed):
            return None  # nothing left unrecorded, and the test passed whatever was cut short
        from .outcome import broken_exchanges

        if recording.pending:
            return broken_exchanges(recording.cassette, recording.pending)[0]
        cut = broken_exchanges(recording.cassette)
        return f"the test failed after {cut[0]}" if cut else None

    def finish(self, nodeid: str, state: ItemState, outcome: Outcome, keep_patches: bool) -> None:
        """The test ended: put its environment back, stop routing to it, save or discard its recording.

        ``keep_patches``: the next test is marked too, so the patched clients stay patched.
        """
        self._current = None
        self._restore(state)
        try:
            if self._recorder is not None:
                self._recorder.end(keep_patches=keep_patches)
        finally:
            self.save(nodeid, state, outcome)

    @staticmethod
    def _restore(state: ItemState) -> None:
        restore_variables(state.saved_env)
        state.restore_env()

    def save(self, nodeid: str, state: ItemState, outcome: Outcome) -> None:
        """Write the test's cassette when it recorded something whole; otherwise say why it was not."""
        broken = self.broken(state, outcome)
        self.keep_observations(state, broken is None and not outcome.call_failed)
        recording = state.recording
        # A recorded test that sent nothing still gets a (empty) cassette, so replay knows it was recorded.
        fresh = not recording.replaying and not recording.path.exists()
        if not (recording.cassette.dirty or fresh):
            return
        if broken is not None and not self.settings.record_on_failure:
            self.discard(nodeid, state, broken)
            return
        try:
            recording.cassette.save()
        except LlmportError as exc:
            raise pytest.fail.Exception(f"{nodeid}: {exc}", pytrace=False) from None

    def discard(self, nodeid: str, state: ItemState, reason: str) -> None:
        kept = " (the old cassette is kept)" if state.recording.path.exists() else ""
        state.discarded = self.redaction.output().value(
            {
                "nodeid": nodeid,
                "path": f"{state.recording.path}{kept}",
                "reason": reason,
                "hint": str(state.record_hint),
            }
        )

    def abandon(self) -> dict[str, str] | None:
        """The run ends (interrupted) while a test is open: what says its recording was not saved."""
        if self._current is None:
            return None
        nodeid, state = self._current
        self._current = None
        self._restore(state)
        if state.recording.replaying:
            return None
        self.discard(nodeid, state, "the run was interrupted during the test")
        return state.discarded

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
