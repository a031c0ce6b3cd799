"""Run-wide state (kept in ``config.stash``): settings, providers, clients, the network guard, the matrix.

The life of one test's recording is :mod:`pytest_llmport.lifecycle`'s, the run's secrets
:mod:`pytest_llmport.redaction`'s, each test's ``llm_equiv`` wiring :mod:`pytest_llmport.llmequiv`'s,
what a refusal of the network guard says :mod:`pytest_llmport.refusals`': :class:`LlmportRun` holds
one of each and delegates. Which test (scope) a refusal belongs to is decided here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .config import Settings, provider_of
from .guard import Threads
from .placeholders import replay_key
from .providers import Provider
from .redaction import Redaction
from .redaction import environment_reader as environment_reader
from .refusals import (
    Outside,
    background_entry,
    background_message,
    child_message,
    recording_message,
    replay_message,
)

if TYPE_CHECKING:
    from .guard import Attempt, ChildGuard, Guard
    from .handle import ClientCache
    from .lifecycle import CassettePaths, ItemState, Lifecycle, Outcome
    from .llmequiv import Equivalences
    from .recording import ItemRecording
    from .scrub import Scrubber

# Background traffic seen during a test without the marker (marked tests carry it in their report data).
BACKGROUND_PROPERTY = "llmport_background"


@dataclass
class Scope:
    """What the network guard refused for one test (marked or not) or one collector, and from where."""

    nodeid: str
    threads: Threads
    blocked: list[str] = field(default_factory=list)
    background: list[dict[str, str]] = field(default_factory=list)
    reported: int = 0  # blocked messages already turned into a failure
    recording: ItemRecording | None = None


class LlmportRun:
    """Everything that lives for the whole run: settings, providers, clients, the guard, the matrix."""

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
        self.matrix = Matrix(settings.providers, settings.baseline, compact=settings.xdist_controller)
        self.discarded: list[dict[str, str]] = []
        self.scan_findings: list[str] = []
        self.redaction = Redaction(registry.values(), settings.secret_env)
        self._restore_session_env: Callable[[], None] = lambda: None
        self.guard: Guard | None = None
        self._children: ChildGuard | None = None
        self._saved_env: dict[str, str | None] = {}
        self.scope: Scope | None = None
        self.background: list[tuple[str, dict[str, str]]] = []
        self.outside = Outside(background=self.background)

    # What only marked tests use is made (and its modules imported) on first use: a run without one
    # stays light (tests/test_import.py, bench/startup.py). Once made, each is a plain attribute.
    @functools.cached_property
    def clients(self) -> ClientCache:
        from .handle import ClientCache

        return ClientCache(offline=self.settings.record_mode == "none")

    @functools.cached_property
    def paths(self) -> CassettePaths:
        from .lifecycle import CassettePaths

        return CassettePaths(self.settings.cassette_dir, self.redaction.is_secret)

    @functools.cached_property
    def equivalences(self) -> Equivalences:
        from .llmequiv import Equivalences

        settings, registry = self.settings, self.registry
        return Equivalences(settings, registry, self.metrics, self.clients, self.paths, self.redaction)

    @functools.cached_property
    def lifecycle(self) -> Lifecycle:
        from .lifecycle import Lifecycle

        return Lifecycle(
            self.config,
            self.settings,
            self.registry,
            self.redaction,
            self.clients,
            self.paths,
            start_guard=self.start_guard,
            attach=self._attach,
            keep_observations=self.equivalences.keep,
        )

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
        if "lifecycle" not in self.__dict__:
            return False  # no marked test has started: nothing replays
        recording = self.lifecycle.recording
        return recording is not None and recording.replaying

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
            message = recording_message(scope.recording, what)
            scope.recording.blocked.append(message)
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
            message = child_message(where, entry)
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

    # -- one test ---------------------------------------------------------------------------------
    def start(self, item: pytest.Item, name: str) -> ItemState:
        """Start the recording of ``item`` on provider ``name`` (see :meth:`Lifecycle.start`)."""
        state = self.lifecycle.start(item, name, self.equivalences.judge_of(item))
        if state.recording.replaying and self.settings.block_network and not self.replays_all:
            # Child Python processes of a replaying test run the guard too. Not the proxy variables: a
            # client built now and kept (by the app, or urllib's global opener) would carry them into
            # later tests that record.
            self._set_env(state.saved_env, self.children().environment(os.environ, proxies=False))
        return state

    def _attach(self, recording: ItemRecording) -> None:
        """What the guard refuses during the test from now on is its recording's."""
        scope = self.scope
        if scope is not None:
            recording.threads = scope.threads
            recording.blocked = scope.blocked
            recording.background = scope.background
            scope.recording = recording

    def finish(
        self, item: pytest.Item, state: ItemState, nextitem: pytest.Item | None, outcome: Outcome
    ) -> None:
        # Patched clients stay patched while marked tests follow one another.
        keep_patches = nextitem is not None and provider_of(nextitem) is not None
        self.lifecycle.finish(item.nodeid, state, outcome, keep_patches)

    def abandon(self) -> None:
        """The run ends (interrupted) while a test is open: list its recording as not saved."""
        if "lifecycle" not in self.__dict__:
            return  # no marked test started
        discarded = self.lifecycle.abandon()
        if discarded is not None:
            self.discarded.append(discarded)  # no report follows: list it here

    # -- secrets ---------------------------------------------------------------------------------------
    def output_scrubber(self, refresh: bool = True) -> Scrubber:
        """The scrubber for what the plugin writes or prints (see :meth:`Redaction.output`)."""
        return self.redaction.output(refresh)

    def scan(self) -> bool:
        """``--llmport-scan``: look for secrets under each path; True when something was found."""
        from .scan import Allow, Scanner

        allow_file = self.config.rootpath / ".llmport-scan-allow"
        allow = Allow.read([allow_file] if allow_file.is_file() else [])
        roots = [Path(self.config.invocation_params.dir, path) for path in self.settings.scan_paths]
        findings, _ = Scanner(self.redaction.known(), allow).scan([root for root in roots if root.exists()])
        self.scan_findings = [str(finding) for finding in findings]
        return bool(findings)

    def warm_up(self) -> None:
        """Import vcrpy, the HTTP client stubs and every module a marked test may use, before the first test.

        Besides sparing the first test the import time, this keeps hypothesis' examples the same however
        many tests ran before: hypothesis mixes in constants from the local modules loaded so far, and in
        an editable install the plugin's own modules count as local.
        """
        import contextlib
        import importlib
        import sys

        from . import (  # noqa: F401  # noqa: F401  (the report hook's, at the first test's end)
            chat,
            compare,
            dialects,
            equivalence,
            observe,
            outcome,
            properties,
            recording,
            similarity,
            verdict,
        )

        # The connection layer of each httpx flavour the application imported: the first client built
        # (llm_provider.openai_client() in the first test) would import it, about 30 ms.
        for flavour, layer in (("httpx", "httpcore"), ("httpx2", "httpcore2")):
            if flavour in sys.modules:
                with contextlib.suppress(ImportError):
                    importlib.import_module(layer)

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
            result = self.config.hook.pytest_llmport_result  # once per result: where the matrix is merged
            if result.get_hookimpls():  # (no call at all when nobody implements it)
                result(
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
        marked = [item for item in items if provider_of(item) is not None]
        if not marked:
            return
        from .properties import is_property_test, make_replayable

        for item in marked:
            function = getattr(item, "obj", None)
            if is_property_test(function):
                make_replayable(getattr(function, "__func__", function), self.settings.max_examples)

    def report_data(self, state: ItemState, outcome: Outcome) -> dict[str, Any]:
        """The cell of one test on one provider, NOT scrubbed yet: the report hook adds the outcome's
        parts (the exception's first line may echo a key) and scrubs the whole once, so nothing is
        walked twice. Its lists and mappings may be the recording's own: scrubbing copies them.
        """
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
        return data

    def start_session(self) -> None:
        """Environment for the whole session (see :func:`pytest_llmport.sdks.session_environment`)."""
        if self.settings.export_env:
            from . import sdks

            specs = [self.registry[name] for name in self.settings.providers]
            replay_only = self.settings.record_mode == "none"
            self._restore_session_env = sdks.session_environment(specs, replay_key if replay_only else None)

    def close(self) -> None:
        if "lifecycle" in self.__dict__:  # made by the first marked test (see the properties above)
            self.lifecycle.close()
        if "clients" in self.__dict__:
            self.clients.close()
        if self.guard is not None:
            self.guard.uninstall()
        self._restore_env(self._saved_env)
        if self._children is not None:
            self._children.close()
        self._restore_session_env()
