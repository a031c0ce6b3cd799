"""Run-wide state (kept in ``config.stash``) and the life of one ``llm_portable`` test on one provider."""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .config import RecordingOptions, Settings, settings_of
from .errors import (
    CassetteFormatError,
    ConfigError,
    CorruptCassetteError,
    LlmportError,
    MissingCassetteError,
)
from .guard import Threads, background_hint
from .handle import ClientCache, LLMProvider
from .placeholders import PLACEHOLDER_KEYS, replay_key
from .providers import Provider

if TYPE_CHECKING:
    from .equivalence import Equivalence
    from .guard import Attempt, ChildGuard, Guard
    from .identity import ProviderIdentity
    from .judge import Judge
    from .recording import ItemRecording, Recorder
    from .samples import Sample
    from .scrub import Scrubber

PARAM = "llm_provider_name"
# Background traffic seen during a test without the marker (marked tests carry it in their report data).
BACKGROUND_PROPERTY = "llmport_background"


ALLOW = "Use --llmport-allow-network to let it through."


def replay_message(where: str, what: str) -> str:
    return (
        f"{where} blocked {what}: the run replays (record mode: none), so the network guard holds "
        f"for every test, fixture and import, not only llm_portable tests; loopback (127.0.0.1, ::1, "
        f"localhost) is allowed. {ALLOW}"
    )


def background_entry(attempt: Attempt) -> dict[str, str]:
    return {"url": attempt.target, "thread": attempt.thread.name, "hint": background_hint(attempt.target)}


def background_message(attempt: Attempt, where: str) -> str:
    return (
        f"pytest-llmport: blocked {attempt.describe()} from thread {attempt.thread.name!r} while replaying: "
        f"background traffic during {where} (not failing it). {ALLOW}"
    )


@dataclass
class Outside:
    """What the guard refused outside any test: conftest imports, between tests, around the session."""

    blocked: list[str] = field(default_factory=list)
    background: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def refuse(self, attempt: Attempt, where: str = "outside any test") -> str:
        if attempt.thread is not threading.main_thread():
            self.background.append((where, background_entry(attempt)))
            return background_message(attempt, where)
        message = replay_message(f"pytest-llmport, {where}:", attempt.describe())
        self.blocked.append(message)
        return message


@contextlib.contextmanager
def guarded_conftest_imports(config: pytest.Config) -> Iterator[Outside | None]:
    """Guard the import of conftest files, which comes before ``pytest_configure`` and this run.

    Only for that window: a usage error found right after it would end pytest without unconfiguring.
    """
    from .config import replays_from_start
    from .guard import Guard

    if not replays_from_start(config):
        yield None
        return
    outside = Outside()
    guard = Guard(lambda attempt: outside.refuse(attempt, "while importing conftest.py"))
    guard.install()
    try:
        yield outside
    finally:
        guard.uninstall()


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
    record_hint: str = ""
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


TEST_OUTCOMES = (pytest.fail.Exception, pytest.skip.Exception, pytest.xfail.Exception)


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


def provider_of(item: pytest.Item) -> str | None:
    """The provider an ``llm_portable`` item runs on, or None for any other item."""
    # Only marked tests are parametrised over PARAM (pytest_generate_tests), so the parameter alone says
    # it; this runs several times per test, and a marker lookup walks the node chain.
    callspec = getattr(item, "callspec", None)
    name = callspec.params.get(PARAM) if callspec is not None else None
    return name if isinstance(name, str) else None


def record_command(nodeid: str, spec: Provider, mode: str, samples: int | None = None) -> str:
    """The command that records ``nodeid`` on provider ``spec`` (its key variable first, if it needs one)."""
    command = f"pytest {shlex.quote(nodeid)} --providers={spec.name} --llmport-record-mode={mode}"
    if samples is not None:
        command += f" --llmport-samples={samples}"
    return f"{spec.api_key_env}=... {command}" if spec.key_required else command


def environment_reader(names: list[str]) -> Callable[[], dict[str, str]]:
    """A function giving the variables among ``names`` set (non-empty) in ``os.environ`` now.

    Read several times per test (a test may set a key): ``os.environ.get`` of an unset variable raises
    and catches a KeyError inside, about 4 us each for the twenty key variables; the mapping under
    ``os.environ`` (what its ``__setitem__`` and ``__delitem__`` keep current) answers in a tenth of that.
    """
    environ = os.environ
    data = getattr(environ, "_data", None)
    encode, decode = getattr(environ, "encodekey", None), getattr(environ, "decodevalue", None)
    if not isinstance(data, dict) or not callable(encode) or not callable(decode):
        return lambda: {name: environ[name] for name in names if environ.get(name)}
    keys = [(name, encode(name)) for name in names]
    return lambda: {name: decode(value) for name, key in keys if (value := data.get(key))}


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
        self.baseline_counts: dict[Path, int] = {}  # a sampled baseline's N, by observation file
        self.clients = ClientCache()
        self.discarded: list[dict[str, str]] = []
        self.scan_findings: list[str] = []
        self._recorder: Recorder | None = None
        self._scrubbers: dict[frozenset[tuple[str, str]], Scrubber] = {}
        self._folders: dict[tuple[Path, str], Path] = {}
        self._secret_names: list[str] | None = None
        self._read_secrets: Callable[[], dict[str, str]] = dict
        self._restore_session_env: Callable[[], None] = lambda: None
        # Every key value a scrubber of this run was built with (value -> variable).
        self._seen: dict[str, str] = {}
        self._output: tuple[int, Scrubber] | None = None
        self._current: tuple[str, ItemState] | None = None
        self._identities: dict[tuple[Any, ...], ProviderIdentity] = {}
        self.guard: Guard | None = None
        self._children: ChildGuard | None = None
        self._saved_env: dict[str, str | None] = {}
        self.scope: Scope | None = None
        self.background: list[tuple[str, dict[str, str]]] = []
        self.outside = Outside(background=self.background)

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
        item = self._recorder.current if self._recorder is not None else None
        return item is not None and item.replaying

    def children(self) -> ChildGuard:
        if self._children is None:
            from .guard import ChildGuard

            self._children = ChildGuard()
        return self._children

    @staticmethod
    def _set_env(saved: dict[str, str | None], values: dict[str, str]) -> None:
        from .environ import set_variables

        set_variables(values, saved)

    @staticmethod
    def _restore_env(saved: dict[str, str | None]) -> None:
        from .environ import restore_variables

        restore_variables(saved)

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
        if scope is None:
            return self.outside.refuse(attempt)
        what = attempt.describe()
        if scope.threads.is_background(attempt.thread):
            entry = background_entry(attempt)
            entries = scope.recording.background if scope.recording is not None else scope.background
            # The request itself may already be listed (by URL) by the recording layer.
            if not any(e["thread"] == entry["thread"] and attempt.host in e["url"] for e in entries):
                entries.append(entry)
            return background_message(attempt, scope.nodeid)
        if scope.recording is not None:
            item = scope.recording
            message = (
                f"{item.nodeid}: blocked {what} on provider {item.provider!r} while replaying "
                f"(record mode: {item.record_mode}). Requests through httpx, requests, urllib3 and aiohttp "
                f"are answered from {item.path}; this one bypassed them. {ALLOW}"
            )
            item.blocked.append(message)
            return message
        message = replay_message(f"{scope.nodeid}:", what)
        scope.blocked.append(message)
        return message

    @property
    def blocked_outside(self) -> list[str]:
        return self.outside.blocked

    def adopt(self, early: Outside | None) -> None:
        """Take over what the guard refused while conftest files were imported (before this run existed)."""
        if early is not None:
            self.outside.blocked.extend(early.blocked)
            self.outside.background.extend(early.background)

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
        from .samples import SAMPLE, sample_of

        callspec: Any = getattr(item, "callspec", None)
        params = {k: v for k, v in callspec.params.items() if k not in (PARAM, SAMPLE)} if callspec else {}
        name = getattr(item, "originalname", item.name)
        cls = getattr(item, "cls", None)
        test_name = f"{cls.__name__}.{name}" if cls is not None else name
        sample = sample_of(item)  # sample k of a samples=N test: <provider>.s<k>.yaml
        stem = sample.stem(provider) if sample is not None else provider
        if params:
            extra = param_slug(params, dict(callspec.indices), self.is_secret)
            return cassette_path(Path(item.path), self.settings.cassette_dir, test_name, stem, extra)
        # A test without other parameters has one folder for all its providers: built once.
        key = (item.path, test_name)
        folder = self._folders.get(key)
        if folder is None:
            folder = self._folders[key] = cassette_path(
                Path(item.path), self.settings.cassette_dir, test_name, provider
            ).parent
        return folder / f"{stem}.yaml"

    def _hint(self, item: pytest.Item, spec: Provider, mode: str) -> str:
        from .samples import sample_of

        sample = sample_of(item)  # the item's id exists only with this count (it may come from the option)
        return f"To record it: {record_command(item.nodeid, spec, mode, sample.count if sample else None)}"

    def plan(self, item: pytest.Item, name: str) -> tuple[Provider, Path, str, str, bool]:
        """Decide (spec, path, effective mode, key, replaying); skip or fail the test when it cannot run."""
        spec = self.registry[name]
        path = self.path_for(item, name)
        mode = settings_of(item).record_mode
        key = os.environ.get(spec.api_key_env, "")
        can_record = bool(key) or not spec.key_required
        exists = path.is_file()
        if mode == "none":
            if not exists:
                raise MissingCassetteError(
                    f"{item.nodeid}: no cassette for provider {name!r} at {path} (record mode: none).\n"
                    f"  {self._hint(item, spec, 'once')}"
                )
            return spec, path, mode, key or replay_key(spec.api_key_env), True
        if not can_record:
            if exists and mode != "all":
                # Nothing may go out without a key: pure replay.
                return spec, path, "none", replay_key(spec.api_key_env), True
            pytest.skip(
                f"{spec.api_key_env} is not set: cannot record {name!r} "
                f"({'no cassette at ' + str(path) if not exists else 'record mode all'})"
            )
        if "<" in spec.base_url and not (exists and mode == "once"):
            pytest.skip(
                f"{name}: set {spec.env_prefix}_BASE_URL (base URL {spec.base_url} has a placeholder)"
            )
        replaying = exists and mode == "once"
        return spec, path, mode, key or replay_key(spec.api_key_env), replaying

    def recording_options(self, item: pytest.Item) -> RecordingOptions:
        """What the ``pytest_llmport_configure_recording`` hooks change about this test's recording."""
        options = RecordingOptions()
        settings = settings_of(item)
        self.config.hook.pytest_llmport_configure_recording(
            config=self.config, provider=settings.provider, settings=settings, recording=options
        )
        try:
            options.check(item.nodeid)
        except ConfigError as exc:
            raise LlmportError(str(exc)) from None
        return options

    def scrubber(self, extra_key: str = "", extra: Mapping[str, str] | None = None) -> Scrubber:
        """The scrubber for what one test records: every key variable set now, ``extra_key`` and ``extra``
        (a configure_recording hook's secrets, by name)."""
        from .scrub import Scrubber

        if self._secret_names is None:
            names = {spec.api_key_env for spec in self.registry.values()}
            names |= {spec.secret_key_env for spec in self.registry.values() if spec.secret_key_env}
            self._secret_names = sorted(names | set(self.settings.secret_env))
            self._read_secrets = environment_reader(self._secret_names)
        secrets = self._read_secrets()
        if extra_key and extra_key not in PLACEHOLDER_KEYS:
            secrets.setdefault("API_KEY", extra_key)
        for name, value in (extra or {}).items():
            secrets.setdefault(name, value)
        cache_key = frozenset(secrets.items())
        scrubber = self._scrubbers.get(cache_key)
        if scrubber is None:
            scrubber = self._scrubbers[cache_key] = Scrubber(secrets)
            for name, value in secrets.items():
                self._seen.setdefault(value, name)
        return scrubber

    def output_scrubber(self, refresh: bool = True) -> Scrubber:
        """The scrubber for what the plugin writes or prints: every key seen in this run, and those set now.

        A key a test set and removed again (``monkeypatch.setenv``) still leaves its traces in the
        failure text and report data that outlive the test. ``refresh=False`` skips reading the
        environment again (it costs more than the scrubbing of a passed test's report).
        """
        from .scrub import Scrubber

        if refresh or self._output is None:
            self.scrubber()  # registers the keys set now
        if self._output is None or self._output[0] != len(self._seen):
            pairs = [(name, value) for value, name in self._seen.items()]
            self._output = (len(self._seen), Scrubber(pairs))
        return self._output[1]

    def scan(self) -> bool:
        """``--llmport-scan``: look for secrets under each path; True when something was found."""
        from .scan import Allow, Scanner, known_secrets

        secrets = [*known_secrets(self._secret_names or ()).items(), *((n, v) for v, n in self._seen.items())]
        allow_file = self.config.rootpath / ".llmport-scan-allow"
        allow = Allow.read([allow_file] if allow_file.is_file() else [])
        roots = [Path(self.config.invocation_params.dir, path) for path in self.settings.scan_paths]
        findings, _ = Scanner(secrets, allow).scan([root for root in roots if root.exists()])
        self.scan_findings = [str(finding) for finding in findings]
        return bool(findings)

    def is_secret(self, text: str) -> bool:
        """True when ``text`` holds a known key or has the shape of a provider's credential."""
        return self.redact(text) != text

    def redact(self, text: str) -> str:
        """``text`` with known keys and credential-shaped strings replaced by their markers."""
        from .scan import redact_shapes

        return redact_shapes(self.output_scrubber().text(text))

    def scrub_report(self, report: pytest.TestReport) -> None:
        """Take the secrets out of a marked test's report: failure text, captured output, properties.

        The plugin's own report data was scrubbed when it was built (:meth:`report_data`).
        """
        from .report import PROPERTY

        properties = [(name, value) for name, value in report.user_properties if name != PROPERTY]
        wasxfail = getattr(report, "wasxfail", None)
        if report.longrepr is None and not report.sections and not properties and not wasxfail:
            return  # a passed phase with no output: nothing to read
        scrubber = self.output_scrubber()
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
            report.longrepr = (longrepr[0], longrepr[1], scrubber.text(str(longrepr[2])))
        elif longrepr is not None:
            text = report.longreprtext
            clean = scrubber.text(text)
            if clean != text:
                report.longrepr = clean  # pytest prints a text longrepr as it is; JUnit XML writes it
        report.sections = [(title, scrubber.text(content)) for title, content in report.sections]
        report.user_properties = [
            (name, value if name == PROPERTY else scrubber.value(value))
            for name, value in report.user_properties
        ]
        if isinstance(wasxfail, str):
            report.wasxfail = scrubber.text(wasxfail)

    def warm_up(self) -> None:
        """Import vcrpy, the HTTP client stubs and every module a marked test may use, before the first test.

        Besides sparing the first test the import time, this keeps hypothesis' examples the same however
        many tests ran before: hypothesis mixes in constants from the local modules loaded so far, and in
        an editable install the plugin's own modules count as local.
        """
        from . import chat, compare, dialects, equivalence, observe, properties, recording, similarity  # noqa: F401

    # -- lifecycle ---------------------------------------------------------------------------------
    def recorder(self) -> Recorder:
        """The recording layer of this run (built by the first marked test)."""
        if self._recorder is None:
            from .recording import Recorder

            cache = getattr(self.config, "cache", None)  # None with -p no:cacheprovider
            worker = str(getattr(self.config, "workerinput", {}).get("workerid", "main"))
            self._recorder = Recorder(cache.mkdir("llmport-cassettes") if cache is not None else None, worker)
        return self._recorder

    def start(self, item: pytest.Item, name: str) -> ItemState:
        from .recording import ItemRecording

        spec, path, mode, key, replaying = self.plan(item, name)
        options = self.recording_options(item)
        recorder = self.recorder()
        try:
            scrubber = self.scrubber(key, options.secrets)
            cassette = recorder.open(path, mode, scrubber, options)
        except CorruptCassetteError as exc:
            # Record mode all does not read the old file, so this command gets past a damaged one.
            again = "" if isinstance(exc, CassetteFormatError) else f"\n  {self._hint(item, spec, 'all')}"
            raise CorruptCassetteError(
                f"{item.nodeid}: cassette of provider {name!r} is unusable:\n  {exc}{again}"
            ) from None
        recorder.patches.start()
        self.start_guard()
        # "all" re-records the test whole; new_episodes would keep the outdated exchange beside the new one.
        hint_mode = "all" if path.is_file() else "once"
        from . import identity
        from .properties import configure, is_property_test

        hint = self._hint(item, spec, hint_mode)
        # The judge's and the embedding provider's requests land in this test's cassette too; a replay
        # reaches them where they were recorded.
        mixing = mode == "new_episodes" and bool(cassette.data)
        own = identity.own_as_recorded(
            self.own_traffic(item), cassette.llmport, item.nodeid, path, hint, replaying, mixing
        )
        also = [own_spec for own_spec, _ in own.values()]
        judge = own.get("judge")
        spec, checker = identity.prepare(
            item.nodeid,
            spec,
            cassette,
            path,
            replaying,
            mode,
            hint,
            scrubber.uri,
            also,
            self.registry,
            self._identities,
        )
        if not replaying and not mixing:
            for role in identity.OWN_ROLES:
                cassette.llmport.pop(role, None)  # noted again by the first request each role records
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
            scrub=lambda text: self.output_scrubber().text(text),
        )
        scope = self.scope
        if scope is not None:
            recording.threads = scope.threads
            recording.blocked = scope.blocked
            recording.background = scope.background
            scope.recording = recording
        recorder.begin(recording)
        handle = LLMProvider(spec, key, path, mode, replaying, self.clients)
        models = settings_of(item).models
        if judge is not None:
            models += (judge[1],)  # the judge's requests land in this test's cassette too
        from .samples import sample_of

        state = ItemState(
            handle, recording, self._hint(item, spec, hint_mode), models=models, sample=sample_of(item)
        )
        state.judged = judge is not None
        state.own = own
        if not replaying:
            header, uri = cassette.llmport, scrubber.uri

            def note_own(role: str) -> None:
                # Only a role that records a request is noted: a cassette without the judge's exchanges
                # (the baseline's) must not need re-recording when the judge changes.
                header.update(identity.own_header({role: own[role]}, uri))

            state.note_own = note_own
        self._current = (item.nodeid, state)
        if self.settings.export_env:
            from . import sdks

            state.restore_env = sdks.apply(spec, key, handle.secret())
        if replaying and self.settings.block_network and not self.replays_all:
            # Child Python processes of a replaying test run the guard too. Not the proxy variables: a
            # client built now and kept (by the app, or urllib's global opener) would carry them into
            # later tests that record.
            self._set_env(state.saved_env, self.children().environment(os.environ, proxies=False))
        return state

    def broken(self, state: ItemState, outcome: Outcome) -> str | None:
        """Why this test's recording must not be kept, or None when it is whole.

        A failing test keeps its cassette when every exchange completed at the HTTP level, whatever its
        status: the failure is a fact about the provider, and replay reproduces it. A recording is broken
        when the test did not run (setup failed), a request could not be recorded, or the test failed
        after a response was cut short (a dropped connection, a timeout): that failure is the network's.
        """
        from .outcome import broken_exchanges

        recording = state.recording
        if outcome.interrupted:
            return "the run was interrupted during the test"
        if outcome.setup_failed:
            return "the test did not run: its setup failed"
        problems = recording.unmatched + recording.blocked
        if problems:
            return f"a request could not be recorded: {problems[0].splitlines()[0]}"
        if recording.pending:
            return broken_exchanges(recording.cassette, recording.pending)[0]
        cut = broken_exchanges(recording.cassette)
        if cut and outcome.call_failed:
            return f"the test failed after {cut[0]}"
        return None

    def finish(
        self, item: pytest.Item, state: ItemState, nextitem: pytest.Item | None, outcome: Outcome
    ) -> None:
        self._current = None
        self._restore_env(state.saved_env)
        state.restore_env()
        try:
            if self._recorder is not None:
                # Patched clients stay patched while marked tests follow one another.
                self._recorder.end(keep_patches=nextitem is not None and provider_of(nextitem) is not None)
        finally:
            self._save(item.nodeid, state, outcome)

    def _save(self, nodeid: str, state: ItemState, outcome: Outcome) -> None:
        broken = self.broken(state, outcome)
        equiv = state.equiv
        whole = broken is None and not outcome.call_failed
        if equiv is not None and equiv.is_baseline and equiv.observations and whole:
            from .equivalence import observations_path, save_observations

            target = observations_path(state.recording.path)
            # Scrubbed for this run's comparisons too, so they see what CI will read from the file.
            observations = self.output_scrubber().value(dict(equiv.observations))
            self.baselines[target] = observations
            sample = None
            if state.sample is not None:
                sample = {"index": state.sample.index, "of": state.sample.count}
                self.baseline_counts[target] = state.sample.count
            # A replay writes nothing into the source tree unless asked (--llmport-write-observations).
            if not state.recording.replaying or self.settings.write_observations:
                save_observations(target, equiv.provider, observations, sample)
        cassette = state.recording.cassette
        # A recorded test that sent nothing still gets a (empty) cassette, so replay knows it was recorded.
        fresh = not state.recording.replaying and not state.recording.path.exists()
        if not (cassette.dirty or fresh):
            return
        if broken is not None and not self.settings.record_on_failure:
            self.discard(nodeid, state, broken)
            return
        try:
            cassette.save()
        except LlmportError as exc:
            raise pytest.fail.Exception(f"{nodeid}: {exc}", pytrace=False) from None

    def discard(self, nodeid: str, state: ItemState, reason: str) -> None:
        kept = " (the old cassette is kept)" if state.recording.path.exists() else ""
        state.discarded = self.output_scrubber().value(
            {
                "nodeid": nodeid,
                "path": f"{state.recording.path}{kept}",
                "reason": reason,
                "hint": state.record_hint,
            }
        )

    def abandon(self) -> None:
        """The run ends (interrupted) while a test is open: list its recording as not saved."""
        if self._current is not None:
            nodeid, state = self._current
            self._current = None
            self._restore_env(state.saved_env)
            state.restore_env()
            if not state.recording.replaying:
                self.discard(nodeid, state, "the run was interrupted during the test")
                if state.discarded is not None:
                    self.discarded.append(state.discarded)  # no report follows: list it here

    # -- equivalence ---------------------------------------------------------------------------------------
    def equivalence(self, item: pytest.Item, state: ItemState) -> Equivalence:
        """The ``llm_equiv`` object of one test on one provider (built on first use)."""
        from .equivalence import Equivalence, EquivalenceSettings, observations_path
        from .samples import baseline_samples, read_file

        if state.equiv is not None:
            return state.equiv
        settings = settings_of(item)
        baseline = settings.baseline

        folder = observations_path(self.path_for(item, baseline)).parent

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

    def own_traffic(self, item: pytest.Item) -> dict[str, tuple[Provider, str]]:
        """The plugin's own providers a test may reach, by role, as configured: the judge, the embedder."""
        own: dict[str, tuple[Provider, str]] = {}
        judge = self.judge_of(item)
        if judge is not None:
            own["judge"] = judge
        name, model = self.settings.embedding_provider, self.settings.embedding_model
        if name and model:
            own["embedding"] = (self.registry[name], model)
        return own

    def _judge_factory(self, item: pytest.Item, state: ItemState) -> Callable[[], Judge] | None:
        found = state.own.get("judge")
        if found is None:
            return None
        spec, model = found

        def build() -> Judge:
            from .judge import Judge

            recording = state.recording
            key = os.environ.get(spec.api_key_env, "")
            where = f"{item.nodeid}: the judge {spec.name}:{model} cannot record its verdict"
            unusable = None  # only asking needs these; the baseline records its text without the judge
            if not recording.replaying and spec.key_required and not key:
                unusable = (
                    f"{where}: {spec.api_key_env} is not set. Set it, or name another judge "
                    f"(--llmport-judge=<provider>[:model])"
                )
            elif not recording.replaying and "<" in spec.base_url:
                unusable = (
                    f"{where}: set {spec.env_prefix}_BASE_URL "
                    f"(its base URL {spec.base_url} has a placeholder)"
                )
            command = self._hint(item, state.handle.spec, "all").removeprefix("To record it: ")
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
                unusable=unusable,
                asking=lambda: state.note_own("judge"),
            )

        return build

    def _embedder(self, state: ItemState) -> Callable[[list[str]], list[list[float]]] | None:
        found = state.own.get("embedding")
        if found is None:
            return None
        spec, model = found  # where it was recorded, when replaying
        key = os.environ.get(spec.api_key_env) or replay_key(spec.api_key_env)
        handle = LLMProvider(
            spec, key, state.handle.cassette_path, state.handle.record_mode, True, self.clients
        )

        def embed(texts: list[str]) -> list[list[float]]:
            # Through the patched transport, so the call lands in this test's cassette and replays offline.
            state.note_own("embedding")
            response = handle.httpx_client().post("embeddings", json={"model": model, "input": texts})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            return [list(map(float, item["embedding"])) for item in data]

        return embed

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(self.config, "workerinput"):
            return  # an xdist worker: the controller merges what the report carries (kept here, it grew)
        from .report import DISCARDED, PROPERTY

        discarded = getattr(report, DISCARDED, None)
        if isinstance(discarded, dict):
            self.discarded.append(discarded)
        data = getattr(report, PROPERTY, None)
        if isinstance(data, dict):
            # The data and failure text were scrubbed where the test ran (an xdist worker has the same
            # environment); the test id is pytest's, built from parameter values.
            scrubber = self.output_scrubber(refresh=False)
            longrepr = report.longreprtext if report.failed else ""
            outcome = "xfailed" if getattr(report, "wasxfail", None) is not None else report.outcome
            nodeid = scrubber.text(report.nodeid)
            self.matrix.add(nodeid, report.when, outcome, data, longrepr)
            if not hasattr(self.config, "workerinput"):  # once per result: where the matrix is merged
                self.config.hook.pytest_llmport_result(
                    config=self.config,
                    nodeid=nodeid,
                    provider=str(data.get("provider")),
                    when=report.when,
                    data=data,
                )
            self._gather_background(report.nodeid, data.get("background", ()))
        for name, entries in report.user_properties:
            if name == BACKGROUND_PROPERTY:
                self._gather_background(report.nodeid, entries)

    def _gather_background(self, nodeid: str, entries: Any) -> None:
        for entry in entries:
            if isinstance(entry, dict) and (nodeid, entry) not in self.background:
                self.background.append((nodeid, entry))

    def prepare_property_tests(self, items: list[pytest.Item]) -> None:
        """Make every marked ``@given`` test replayable (see :mod:`pytest_llmport.properties`)."""
        from .properties import is_property_test, make_replayable

        for item in items:
            function = getattr(item, "obj", None)
            if provider_of(item) is not None and is_property_test(function):
                make_replayable(getattr(function, "__func__", function), self.settings.max_examples)

    def report_data(self, state: ItemState, outcome: Outcome) -> dict[str, Any]:
        from .identity import model_report
        from .observe import summarize_exchanges

        equiv = state.equiv
        recording = state.recording
        problems = list(recording.unmatched + recording.blocked)
        if not recording.replaying and (recording.pending or outcome.call_failed):
            from .outcome import broken_exchanges

            # A cut the test did not expect, or an exchange missing from the cassette: the network's
            # failure, not the provider's, and not a recording to keep.
            broken = broken_exchanges(recording.cassette, recording.pending)
            problems += broken if outcome.call_failed else broken[: len(recording.pending)]
        cassette: Any = recording.cassette
        if state.judged:
            from .judge import WithoutJudge

            cassette = WithoutJudge(cassette)  # the provider's own exchanges; the judge's are in its checks
        data = {
            "provider": state.handle.name,
            # A property-based test adds checks per example and shrink step; the last ones say most.
            "checks": [check.to_dict() for check in equiv.checks[-50:]] if equiv else [],
            "observations": dict(equiv.observations) if equiv else {},
            "problems": problems,
            "background": list(state.recording.background),
            "exchanges": summarize_exchanges(cassette, state.handle.spec.dialect),
            # Where the cell's answers came from, for the verdict's "cells: N replayed, M recorded".
            "cassette": {
                "source": "replayed" if state.recording.replaying else "recorded",
                "path": str(state.recording.path),
            },
            "model": model_report(cassette, state.handle.spec.dialect, state.handle.model, state.models),
        }
        if state.sample is not None:
            data["sample"] = state.sample.as_dict()  # the matrix gathers a samples=N test's N items
        scrubbed: dict[str, Any] = self.output_scrubber().value(data)
        return scrubbed

    def start_session(self) -> None:
        """Environment for the whole session (see :func:`pytest_llmport.sdks.session_environment`)."""
        if self.settings.export_env:
            from . import sdks

            specs = [self.registry[name] for name in self.settings.providers]
            replay_only = self.settings.record_mode == "none"
            self._restore_session_env = sdks.session_environment(specs, replay_key if replay_only else None)

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
        self.clients.close()
        if self.guard is not None:
            self.guard.uninstall()
        self._restore_env(self._saved_env)
        if self._children is not None:
            self._children.close()
        self._restore_session_env()
