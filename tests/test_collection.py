"""Collection skips cassette folders: pytest does not walk a folder per test and a file per provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmport.config import is_cassette_folder

SEEN = """
def pytest_collect_file(file_path, parent):
    print("SEEN", file_path.relative_to(parent.config.rootpath).as_posix())
"""
MARKED = """
import pytest

@pytest.mark.llm_portable
def test_reply(llm_provider):
    pass
"""


def _cassettes(pytester: pytest.Pytester, folder: str = "cassettes") -> None:
    for provider in ("openai", "qwen"):
        path = pytester.path / folder / "test_app" / "test_reply" / f"{provider}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("version: 1\ninteractions: []\n", encoding="utf-8")


def test_cassette_folders_are_not_walked(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SEEN)
    pytester.makepyfile(test_app=MARKED)
    _cassettes(pytester)
    result = pytester.runpytest("-s", "--collect-only", "-q", "--providers=openai,qwen")
    result.stdout.fnmatch_lines(["SEEN test_app.py", "test_app.py::test_reply[[]openai[]]"])
    result.stdout.no_fnmatch_line("SEEN cassettes/*")
    assert result.ret == pytest.ExitCode.OK


def test_without_the_plugin_pytest_walks_them(pytester: pytest.Pytester) -> None:
    """The same project without the plugin: pytest offers every cassette to collection (so the test
    above can fail)."""
    pytester.makeconftest(SEEN)
    pytester.makepyfile(test_app="def test_reply():\n    pass\n")
    _cassettes(pytester)
    result = pytester.runpytest("-s", "--collect-only", "-q", "-p", "no:llmport")
    result.stdout.fnmatch_lines(["SEEN cassettes/test_app/test_reply/openai.yaml"])


def test_a_folder_of_that_name_with_tests_in_it_is_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=MARKED)
    _cassettes(pytester)
    (pytester.path / "cassettes" / "test_inside.py").write_text("def test_inside():\n    pass\n")
    nested = pytester.path / "cassettes" / "deeper" / "test_nested.py"
    nested.parent.mkdir()
    nested.write_text("def test_nested():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "--providers=openai")
    result.stdout.fnmatch_lines(
        ["cassettes/deeper/test_nested.py::test_nested", "cassettes/test_inside.py::*"]
    )


def test_the_configured_cassette_folder_is_the_one_skipped(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SEEN)
    pytester.makeini("[pytest]\nllmport_cassette_dir = recordings\n")
    pytester.makepyfile(test_app=MARKED)
    _cassettes(pytester, "recordings")
    _cassettes(pytester, "cassettes")  # no longer the cassette folder: walked as any other
    result = pytester.runpytest("-s", "--collect-only", "-q", "--providers=openai")
    result.stdout.fnmatch_lines(["SEEN cassettes/test_app/test_reply/openai.yaml"])
    result.stdout.no_fnmatch_line("SEEN recordings/*")


def test_is_cassette_folder(tmp_path: Path) -> None:
    root = tmp_path
    folder = root / "data" / "cassettes"
    (folder / "test_app" / "test_reply").mkdir(parents=True)
    (folder / "test_app" / "test_reply" / "openai.yaml").write_text("version: 1\n")
    assert is_cassette_folder(folder, "cassettes")
    assert is_cassette_folder(folder, "data/cassettes")
    assert not is_cassette_folder(folder, "other/cassettes")
    assert not is_cassette_folder(folder, "../cassettes")
    assert not is_cassette_folder(root / "missing" / "cassettes", "cassettes")
    (folder / "test_app" / "notes.txt").write_text("kept by hand\n")
    assert not is_cassette_folder(folder, "cassettes")  # something else in it: walked as before
    (folder / "test_app" / "notes.txt").unlink()
    assert is_cassette_folder(folder, "cassettes")
    deep = folder / "test_app" / "test_reply" / "case=a" / "more"
    deep.mkdir(parents=True)
    (deep / "test_hidden.py").write_text("def test_hidden():\n    pass\n")
    assert not is_cassette_folder(folder, "cassettes")  # a test at any depth is collected
