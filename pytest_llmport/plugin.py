"""pytest hooks of pytest-llmport: short bodies, the whole lifecycle on one screen."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import config as cfg
from . import hookspecs, providers
from .config import PARAM, provider_of
from .errors import ConfigError, LlmportError
from .metrics import MetricRegistry
from .redaction import LogScrubber, WarningScrubber
from .refusals import Outside, guarded_conftest_imports
from .report import DISCARDED, PROPERTY, RunReport
from .run import BACKGROUND_PROPERTY, LlmportRun, Scope
from .testids import leaky_ids, leaky_worker_ids, param_id

# What only a marked test needs (lifecycle.py, samples.py, handle.py ...) is imported where it is used,
# so a run without one stays light (tests/test_import.py, bench/startup.py).
if TYPE_CHECKING:
    from .equivalence import Equivalence
    from .handle import LLMProvider
    from .lifecycle import ItemState, Outcome

RUN_KEY = pytest.StashKey[LlmportRun]()
ITEM_KEY: pytest.StashKey[ItemState] = pytest.StashKey()
IDS_CHECKED_KEY = pytest.StashKey[bool]()
OUTCOME_KEY: pytest.StashKey[Outcome] = pytest.StashKey()
SETUP_PROBLEM_KEY = pytest.StashKey[str]()
REPORT_KEY = pytest.StashKey[RunReport]()
SCOPE_KEY = pytest.StashKey[Scope]()
# The JUnit properties this plugin added to an item (from its scrubbed report data).
JUNIT_KEY = pytest.StashKey[list[tuple[str, object]]]()
EARLY_KEY = pytest.StashKey[Outside]()
# Each marked test function's parsed marker and providers, by cfg.function_key, until its items exist.
TESTS_KEY: pytest.StashKey[dict[str, cfg.PortableTest]] = pytest.StashKey()
# One of each distinct ItemSettings: items mostly resolve to equal ones (every item of a function on one
# provider, and of every function with the same marker), and pytest keeps every item to the session's end.
SHARED_KEY: pytest.StashKey[dict[cfg.ItemSettings, cfg.ItemSettings]] = pytest.StashKey()
# workeroutput entries an xdist worker hands the controller (see pytest_sessionfinish)
BLOCKED_OUTSIDE = "llmport_blocked_outside"
UNREPORTED_DISCARDS = "llmport_unreported_discards"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_llmport_add_providers(config: pytest.Config) -> Iterable[providers.Provider]:
    # This plugin registers before any conftest, so users' providers of the same name win.
    return providers.BUILTIN_PROVIDERS


def pytest_addoption(parser: pytest.Parser) -> None:
    cfg.add_options(parser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    # Before any conftest imports litellm, which would fetch its cost map from a background thread.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # conftest.py files (and the app they import) load before pytest_configure, in a run that only
    # replays too: guard that window, and hand what it refused to the run.
    with guarded_conftest_imports(early_config) as outside:
        yield
    if outside is not None:
        early_config.stash[EARLY_KEY] = outside


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{cfg.MARKER}(providers=None): run this test once per selected LLM provider, recording and "
        "replaying its HTTP traffic; providers=[...] restricts it to a subset, requires=[...] skips "
        "providers lacking a capability, baseline=/threshold=/metric=/facts=/judge= tune llm_equiv, "
        "models=[...] names models the test sends on purpose besides llm_provider.model.",
    )
    try:
        table = cfg.read_tool_table(config)
        contributed = config.hook.pytest_llmport_add_providers(config=config)
        registry = providers.build_registry(contributed, table.get("providers", {}))
        metrics = MetricRegistry(lambda: config.hook.pytest_llmport_add_metrics(config=config))
        settings = cfg.resolve(config, registry, metrics)
        config.stash[REPORT_KEY] = RunReport(
            settings, registry, table.get("prices"), junit_xml=bool(getattr(config.option, "xmlpath", None))
        )
        if settings.cassette_inventory:
            config.stash[REPORT_KEY].without_inventory_under_xdist()
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    run = config.stash[RUN_KEY] = LlmportRun(config, settings, registry, metrics)
    run.start_session()
    # Registered as a plugin for its pytest_runtest_logreport, which merges xdist workers' results.
    config.pluginmanager.register(run, "llmport-run")
    config.pluginmanager.register(WarningScrubber(run.redaction), "llmport-warnings")
    config.pluginmanager.register(LogScrubber(run.redaction), "llmport-logs")
    run.adopt(config.stash.get(EARLY_KEY, None))
    if run.replays_all:
        run.start_guard()  # from here on: imports, session fixtures and unmarked tests are guarded too


def pytest_llmport_add_metrics(config: pytest.Config) -> dict[str, Any]:
    from .equivalence import embedding_metric
    from .semantic import semantic
    from .similarity import METRICS

    # "embedding" is scored by the equivalence layer through the configured provider's embeddings endpoint;
    # "semantic" needs the optional extra and says how to install it when it is missing.
    return {**METRICS, "embedding": embedding_metric, "semantic": semantic}


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(RUN_KEY, None)
    if run is None:
        return
    run.abandon()  # a test still open here was interrupted
    run.collect_children()
    if run.blocked_outside and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if hasattr(session.config, "workerinput"):
        # xdist workers: the controller merges their reports. What no report carries (blocked outside
        # any test; a recording an interrupt left unsaved) rides home in workeroutput.
        output = session.config.workeroutput  # type: ignore[attr-defined]
        output[BLOCKED_OUTSIDE] = list(dict.fromkeys(run.blocked_outside))
        output[UNREPORTED_DISCARDS] = list(run.discarded)  # a worker lists only those (run.abandon)
        return
    if _shortfalls(run) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # too many tolerated samples in some cell
    outputs = session.config.stash[REPORT_KEY]
    if run.matrix.cells or run.settings.report_path or run.settings.html_path:
        # Without a cell or a file to write, building the report would only read the price table.
        outputs.write(run.matrix)
    if outputs.errors and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
    if run.matrix.cells:
        session.config.hook.pytest_llmport_report(config=session.config, report=outputs.build(run.matrix))
    if run.settings.scan_paths and run.scan() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)  # an xdist hook, called on the controller as each worker finishes
def pytest_testnodedown(node: Any, error: object) -> None:
    run = node.config.stash.get(RUN_KEY, None)
    output = getattr(node, "workeroutput", None) or {}
    if run is not None:
        blocked = output.get(BLOCKED_OUTSIDE, ())
        run.blocked_outside.extend(line for line in blocked if line not in run.blocked_outside)
        run.discarded.extend(output.get(UNREPORTED_DISCARDS, ()))


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()
        config.pluginmanager.unregister(run)
        if config.pluginmanager.has_plugin("llmport-warnings"):
            config.pluginmanager.unregister(name="llmport-warnings")
        del config.stash[RUN_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    run = metafunc.config.stash[RUN_KEY]
    try:
        test = cfg.portable_test(metafunc.definition, run.settings, run.registry, run.metrics)
    except ConfigError as exc:
        # CollectError is shown as its message alone, without pluggy's frames.
        raise pytest.Collector.CollectError(str(exc)) from None
    if test is None:
        return
    metafunc.config.stash.setdefault(TESTS_KEY, {})[cfg.function_key(metafunc.definition)] = test
    if PARAM not in metafunc.fixturenames:
        metafunc.fixturenames.append(PARAM)
    if not test.sampled:
        metafunc.parametrize(PARAM, test.params())
        return
    from .samples import SAMPLE

    if SAMPLE not in metafunc.fixturenames:
        metafunc.fixturenames.append(SAMPLE)
    metafunc.parametrize([PARAM, SAMPLE], test.params())


@pytest.hookimpl(wrapper=True)
def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> Generator[None, Any, Any]:
    chosen = yield  # another plugin's id, or None for pytest's own
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return chosen
    return param_id(val, chosen, run.redaction.redact, run.settings.escape_ids)


@pytest.hookimpl(trylast=True)  # after other plugins' and conftests' hooks have added their marks
def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    run = session.config.stash[RUN_KEY]
    for item in items:
        _settings(item)
    # Every item has its settings: the functions' parsed markers would only stay for the session (an item
    # added later reads its marker again, to the same result).
    session.config.stash.get(TESTS_KEY, {}).clear()
    session.config.stash.get(SHARED_KEY, {}).clear()  # the items keep theirs
    run.prepare_property_tests(items)
    if not hasattr(session.config, "workerinput"):  # an xdist controller checks its workers' ids
        leaky_ids(items, run.redaction.redact, PARAM)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # pytest would walk every cassette folder (one per test, a file per provider) looking for tests.
    run = config.stash.get(RUN_KEY, None)
    folder = run.settings.cassette_dir if run is not None else ""
    if not folder or collection_path.name != folder.rstrip("/").rpartition("/")[2]:
        return None  # another plugin or pytest itself decides
    return True if cfg.is_cassette_folder(collection_path, folder) else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    config = node.config
    if not config.stash.get(IDS_CHECKED_KEY, False):  # every worker collects the same ids
        config.stash[IDS_CHECKED_KEY] = True
        leaky_worker_ids(config, ids, config.stash[RUN_KEY].redaction.redact)


def _settings(item: pytest.Item) -> cfg.ItemSettings | None:
    """The item's settings, resolved once (None for an item that is not an ``llm_portable`` test)."""
    name = provider_of(item)
    if name is None:
        return None
    if cfg.ITEM_SETTINGS not in item.stash:
        run = item.config.stash[RUN_KEY]
        tests = item.config.stash.get(TESTS_KEY, {})
        settings = cfg.resolve_item(item, name, tests, run.settings, run.registry, run.metrics)
        shared = item.config.stash.setdefault(SHARED_KEY, {})
        item.stash[cfg.ITEM_SETTINGS] = shared.setdefault(settings, settings)  # equal settings, one object
    return item.stash[cfg.ITEM_SETTINGS]


def pytest_collection_finish(session: pytest.Session) -> None:
    # --collect-only runs no test: nothing to warm up for.
    if not session.config.stash[RUN_KEY].settings.collect_only and any(
        provider_of(item) is not None for item in session.items
    ):
        session.config.stash[RUN_KEY].warm_up()
    if session.config.stash[RUN_KEY].settings.cassette_inventory:
        session.config.stash[REPORT_KEY].take_inventory(session, session.config.stash[RUN_KEY])


def pytest_deselected(items: list[pytest.Item]) -> None:
    # Deselected tests still exist: the cassette inventory must not call their cassettes orphans.
    if items and REPORT_KEY in items[0].config.stash:
        items[0].config.stash[REPORT_KEY].deselected.extend(items)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    run = collector.config.stash.get(RUN_KEY, None)
    if run is None or not run.replays_all:
        return (yield)
    scope, previous = run.enter(collector.nodeid)
    try:
        report = yield
    finally:
        blocked = run.new_blocked(scope)
        run.leave(previous)
    if blocked and report.passed:  # an import that reached for the network, even if it caught the error
        report.outcome = "failed"
        report.longrepr = "\n".join(blocked)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    run = item.config.stash[RUN_KEY]
    scope, previous = run.enter(item.nodeid)
    item.stash[SCOPE_KEY] = scope
    try:
        return (yield)
    finally:
        run.leave(previous)
        # pytest keeps every item to the end of the session: the test's cassette, clients and scope must
        # not stay with it, or a worker's memory grows with the suite (bench/scale.py).
        keys: tuple[pytest.StashKey[Any], ...] = (
            ITEM_KEY,
            OUTCOME_KEY,
            SCOPE_KEY,
            SETUP_PROBLEM_KEY,
            JUNIT_KEY,
        )
        for key in keys:
            if key in item.stash:
                del item.stash[key]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    settings = _settings(item)
    if settings is None or settings.skipped:
        return  # a provider skipped for a missing capability needs no cassette
    if settings.conflict is not None:
        pytest.fail(settings.conflict, pytrace=False)
    try:
        item.stash[ITEM_KEY] = item.config.stash[RUN_KEY].start(item, settings.provider)
    except LlmportError as exc:
        problem = str(exc)
    else:
        return
    item.stash[SETUP_PROBLEM_KEY] = problem
    pytest.fail(problem, pytrace=False)  # outside the except block: the message alone, no chained traceback


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    state = item.stash.get(ITEM_KEY, None)
    try:
        result = yield
    finally:
        # The app may have swallowed or wrapped our error (the openai SDK turns it into
        # APIConnectionError); the missing recording is the real cause, so say that.
        problems = (state.recording.unmatched + state.recording.blocked) if state else []
        if problems:
            raise pytest.fail.Exception("\n".join(dict.fromkeys(problems)), pytrace=False) from None
    if state is not None and cfg.settings_of(item).strict_model:
        from .identity import strict_model_failure

        wrong_model = strict_model_failure(item.nodeid, state.recording.cassette, state.handle, state.models)
        if wrong_model:
            raise pytest.fail.Exception(wrong_model, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    run = item.config.stash[RUN_KEY]
    scope = item.stash.get(SCOPE_KEY, None)
    if scope is not None:
        # What the guard refused in this phase fails it, even when the code caught the error.
        blocked = run.new_blocked(scope)
        if blocked and report.passed:
            report.outcome = "failed"
            report.longrepr = "\n".join(dict.fromkeys(blocked))
        if report.when == "teardown" and scope.background and scope.recording is None:
            report.user_properties.append((BACKGROUND_PROPERTY, list(scope.background)))
    name = provider_of(item)
    if name is None:
        return report
    exc = call.excinfo.value if call.excinfo is not None else None
    state = item.stash.get(ITEM_KEY, None)
    if report.when == "teardown" and state is not None and state.discarded:
        setattr(report, DISCARDED, state.discarded)  # an attribute: xdist carries it, JUnit does not show it
    outcome = item.stash.get(OUTCOME_KEY, None)
    if outcome is None:
        from .lifecycle import Outcome

        outcome = item.stash[OUTCOME_KEY] = Outcome()
    outcome.note(report.when, report.failed, exc)
    if report.when == "call" and report.failed and state is not None and _tolerated(state, exc):
        report.outcome = "skipped"  # what pytest.xfail does; the cell's pass rate decides the run
        report.wasxfail = (
            f"sample {state.sample.index} of {state.sample.count} not equivalent, tolerated by "
            f"pass_rate={state.sample.pass_rate:g}: the cell's pass rate decides"
            if state.sample
            else ""
        )
    scrubber = None
    if report.when == "call" or not report.passed:
        from .outcome import cell_kind
        from .properties import falsifying_example

        # Travels with the report, so xdist brings it to the controller's matrix.
        data: dict[str, Any] = run.report_data(state, outcome) if state else {"provider": name}
        if SETUP_PROBLEM_KEY in item.stash:
            data["problems"] = [item.stash[SETUP_PROBLEM_KEY]]
        example = falsifying_example(exc)
        if example:
            data["falsifying"] = example
        state_word = (
            "xfailed" if getattr(report, "wasxfail", None) is not None and report.skipped else report.outcome
        )
        data.update(cell_kind(state_word, exc, data))
        scrubber = run.output_scrubber()
        data = scrubber.value(data)  # the exception's first line may echo a key
        # An attribute, not a user property: junitxml writes the teardown report's user properties with
        # str(), and this dict is for the matrix (xdist carries report attributes). JUnit gets flat
        # string properties instead, once per test, built from the scrubbed data (so not scrubbed again).
        setattr(report, PROPERTY, data)  # dropped once every reporter has read it (pytest_runtest_logreport)
        known = len(item.user_properties)
        item.config.stash[REPORT_KEY].add_junit_properties(item, data, report)
        if len(item.user_properties) > known:
            item.stash[JUNIT_KEY] = item.user_properties[known:]
    # Before any reporter sees it: pytest's terminal, JUnit XML, xdist's controller.
    ours: list[tuple[str, object]] = item.stash.get(JUNIT_KEY, [])
    run.redaction.scrub_report(report, scrubber, clean=ours)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        # Every reporter has read the cell now (an xdist worker has sent it, the matrix has taken it).
        # pytest keeps each report to the end of the session: the cell must not stay there with it, or
        # memory grows with the suite (bench/scale.py).
        report.__dict__.pop(PROPERTY, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    # Around every teardown, so a failing fixture finalizer cannot skip saving and unpatching.
    try:
        return (yield)
    finally:
        state = item.stash.get(ITEM_KEY, None)
        if state is not None:
            outcome = item.stash.get(OUTCOME_KEY, None)
            if outcome is None:
                from .lifecycle import Outcome

                outcome = Outcome()
            item.config.stash[RUN_KEY].finish(item, state, nextitem, outcome)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None or hasattr(config, "workerinput"):
        return
    for title, lines in config.stash[REPORT_KEY].summary(run.matrix, run.discarded):
        terminalreporter.section(f"llmport: {title}")
        for line in lines:
            terminalreporter.write_line(line)
    short = _shortfalls(run)
    if short:
        terminalreporter.section("llmport: pass rate below pass_rate (the run fails)", red=True)
        for line in short:
            terminalreporter.write_line(line)
    if run is not None and run.scan_findings:
        terminalreporter.section("llmport: secrets found (--llmport-scan)", red=True)
        for line in run.scan_findings:
            terminalreporter.write_line(line)
    if run is not None and run.background:
        terminalreporter.section("llmport: background traffic (not recorded; refused while replaying)")
        for where, entry in run.background:
            terminalreporter.write_line(
                f"{where}: {entry.get('url')} from thread {entry.get('thread')!r}: {entry.get('hint')}"
            )
    if run is not None and run.blocked_outside:
        terminalreporter.section("llmport: network blocked outside tests")
        for line in dict.fromkeys(run.blocked_outside):
            terminalreporter.write_line(line)


def _shortfalls(run: LlmportRun) -> list[str]:
    """The cells whose tolerated samples exceed their pass rate (none in a run without cells)."""
    if not run.matrix.cells:
        return []
    from .samples import shortfalls

    return shortfalls(run.matrix.cells)


def _tolerated(state: ItemState, exc: BaseException | None) -> bool:
    from .samples import tolerated

    return tolerated(state, exc)


def _marked_state(request: pytest.FixtureRequest, fixture: str) -> ItemState:
    """The running item's state; a fixture of ours in a test without the marker is a usage error."""
    state: ItemState | None = request.node.stash.get(ITEM_KEY, None)
    if state is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the {fixture} fixture needs @pytest.mark.{cfg.MARKER} on the test"
        )
    return state


@pytest.fixture
def llm_equiv(request: pytest.FixtureRequest) -> Equivalence:
    """Schema checks, structural and similarity comparisons against the baseline provider."""
    state = _marked_state(request, "llm_equiv")
    try:
        return request.config.stash[RUN_KEY].equivalences.of(request.node, state)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def llm_provider(request: pytest.FixtureRequest) -> LLMProvider:
    """The provider this ``llm_portable`` test runs on (see :class:`pytest_llmport.LLMProvider`)."""
    handle: LLMProvider = _marked_state(request, "llm_provider").handle
    return handle
