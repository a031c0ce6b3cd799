"""Importing the plugin is cheap: no heavy module is loaded before a marked test runs and needs it.

Each check runs pytest in a subprocess (a fresh ``sys.modules``) with pytest-llmport as the only plugin, and
lists, at the end of the session, which of the heavy modules got imported.
"""

from __future__ import annotations

import pytest

# Third-party modules that cost tens to hundreds of milliseconds to import, and the plugin's own modules
# that only a running marked test needs (they import most of the third-party ones).
HEAVY = (
    "aiohttp",
    "deepdiff",
    "httpx",
    "httpx2",
    "hypothesis",
    "jsonschema",
    "numpy",
    "openai",
    "opencc",
    "rapidfuzz",
    "requests",
    "ssl",
    "urllib3",
    "vcr",
    "yaml",
    "yaml_rs",
    "pytest_llmport.cassettes",
    "pytest_llmport.chat",
    "pytest_llmport.compare",
    "pytest_llmport.dialects",  # the URL check at start-up needs it only for an added or changed provider
    "pytest_llmport.fake",
    "pytest_llmport.fake_dialects",
    "pytest_llmport.fastyaml",
    "pytest_llmport.handle",
    "pytest_llmport.lifecycle",
    "pytest_llmport.llmequiv",
    "pytest_llmport.prices",  # and tomllib: the price table is read for a report with cells
    "pytest_llmport.recording",
    "pytest_llmport.scrub",
    "pytest_llmport.similarity",
    "pytest_llmport.strategies",
    "pytest_llmport.testing",
)

# What collecting a marked test needs (sampling, hypothesis' replay settings), but a run without one not.
# testsettings: the dataclasses of marked tests, most of what importing the plugin cost (bench/startup.py).
UNTIL_MARKED = ("pytest_llmport.properties", "pytest_llmport.samples", "pytest_llmport.testsettings")

CONFTEST = f"""
import sys

HEAVY = {HEAVY!r}

def pytest_sessionfinish(session):
    print("LOADED", session.config.pluginmanager.get_plugin("llmport-run") is not None)
    print("HEAVY", sorted(m for m in HEAVY if m in sys.modules))
"""

MARKED = """
import pytest

@pytest.mark.llm_portable
def test_marked(llm_provider):
    llm_provider.openai_client()

@pytest.mark.llm_portable(providers=["openai"], baseline="openai")
def test_marked_too(llm_provider, llm_equiv):
    pass

def test_plain():
    pass
"""


@pytest.fixture
def alone(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # Other installed plugins (anyio, pytest-httpx, respx, langsmith, hypothesis ...) import some of these
    # themselves: load ours alone, so the check is about what pytest-llmport imports.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(CONFTEST)
    return pytester


@pytest.mark.parametrize("ci", [False, True], ids=["local", "CI=true"])
def test_run_without_marked_tests_imports_no_heavy_dependency(
    alone: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: bool
) -> None:
    # Under CI the whole run replays: the network guard is installed from the start, and must stay light.
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    alone.makeconftest(CONFTEST.replace("HEAVY = ", f"HEAVY = {UNTIL_MARKED!r} + "))
    alone.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = alone.runpytest_subprocess("-s", "-p", "pytest_llmport.plugin")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*LOADED True", "*HEAVY []"])


@pytest.mark.parametrize(
    "args",
    [("--collect-only", "-q"), ("-m", "not llm_portable")],
    ids=["collect-only", "marked-tests-deselected"],
)
def test_collecting_marked_tests_without_running_them_imports_no_heavy_dependency(
    alone: pytest.Pytester, args: tuple[str, ...]
) -> None:
    alone.makepyfile(test_marked=MARKED)
    result = alone.runpytest_subprocess("-s", "-p", "pytest_llmport.plugin", "--providers=openai", *args)
    assert result.ret == (pytest.ExitCode.OK)
    if "--collect-only" in args:
        result.stdout.fnmatch_lines(["test_marked.py::test_marked[[]openai[]]", "test_marked.py::test_plain"])
    else:
        result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*LOADED True", "*HEAVY []"])


def test_the_check_sees_what_a_marked_test_imports(alone: pytest.Pytester) -> None:
    """The same check on a run that executes a marked test: it does list heavy modules (so it can fail)."""
    alone.makepyfile(
        test_marked="import pytest\n\n@pytest.mark.llm_portable\ndef test_m(llm_provider):\n    pass\n"
    )
    result = alone.runpytest_subprocess("-s", "-p", "pytest_llmport.plugin", "--providers=openai")
    result.stdout.fnmatch_lines(["*LOADED True", "*HEAVY [[]*'pytest_llmport.recording'*"])


def test_a_marked_test_without_a_judge_does_not_import_the_judge(
    alone: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What only some runs need stays unloaded in the others: the LLM judge, for one."""
    alone.makeconftest(CONFTEST.replace("HEAVY = ", "HEAVY = ('pytest_llmport.judge',) + "))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-import-check-0123456789")  # recorded: nothing is sent
    monkeypatch.delenv("CI", raising=False)
    alone.makepyfile(
        test_marked="import pytest\n\n@pytest.mark.llm_portable\ndef test_m(llm_provider):\n    pass\n"
    )
    result = alone.runpytest_subprocess("-s", "-p", "pytest_llmport.plugin", "--providers=openai")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HEAVY [[]*'pytest_llmport.recording'*"])
    result.stdout.no_fnmatch_line("*pytest_llmport.judge*")
