"""Cassette format 3: every response's head seal is required; format 2 files keep loading as before.

Format 2 added the head seal (status, headers, llmport facts) without a new format number, so a format 2
cassette whose ``head:`` line is deleted cannot be told from one sealed before the head seal existed. From
format 3 on, a missing head seal is damage. Recordings go through real sockets to the fake provider.
"""

from __future__ import annotations

import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmport.cassettes import AtomicPersister, ReadableYamlSerializer
from pytest_llmport.errors import CorruptCassetteError

from . import test_integrity

# test_integrity's recording: a one-exchange and a streamed cassette, then the provider is gone.
recorded = test_integrity.recorded


@pytest.fixture
def one(recorded: Path) -> Path:
    """The one-exchange cassette of test_integrity's recording (a second test there streams)."""
    return recorded / "test_one" / "zhipu.yaml"


def without_head_lines(text: str) -> str:
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("      head: ")]
    assert len(kept) < len(lines), text
    return "".join(kept)


def as_format_2(text: str) -> str:
    assert text.count("\n  format: 3\n") == 1, text[:200]
    return text.replace("\n  format: 3\n", "\n  format: 2\n")


def test_the_recorder_writes_format_3_with_a_head_seal_per_response(one: Path) -> None:
    text = one.read_text("utf-8")
    assert text.startswith("version: 1\nllmport:\n  format: 3\n")
    assert text.count("      head: ") == text.count("      sha256: ") == 1


def test_a_current_cassette_without_its_head_seal_is_refused(pytester: pytest.Pytester, one: Path) -> None:
    one.write_text(without_head_lines(one.read_text("utf-8")), "utf-8")
    result = pytester.runpytest("--providers=zhipu")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_one.py::test_one[[]zhipu[]]: cassette of provider 'zhipu' is unusable:",
            f"  {one}: interactions[[]0[]].response.llmport has no head seal (was its 'head:' line "
            "deleted?). If you edited it on purpose, re-seal it: python -m pytest_llmport reseal *zhipu.yaml; "
            "otherwise delete it and re-record.",
            "  To record it: ZHIPUAI_API_KEY=... pytest 'test_one.py::test_one[[]zhipu[]]' --providers=zhipu "
            "--llmport-record-mode=all",
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("seal", ["sha256", "length"])
def test_a_current_cassette_without_a_body_seal_is_refused(one: Path, seal: str) -> None:
    text = one.read_text("utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith(f"      {seal}: ")]
    one.write_text("".join(lines), "utf-8")
    with pytest.raises(CorruptCassetteError, match=r"response\.llmport has no sha256/length seal"):
        AtomicPersister().load_cassette(one, ReadableYamlSerializer)


def test_a_format_2_cassette_without_head_seals_loads_as_before(pytester: pytest.Pytester, one: Path) -> None:
    # What a cassette sealed before the head seal existed looks like: format 2, body seals only.
    one.write_text(without_head_lines(as_format_2(one.read_text("utf-8"))), "utf-8")
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=2)
    # Its body seal is still checked.
    one.write_text(one.read_text("utf-8").replace("订单三天没发货", "订单五天没发货"), "utf-8")
    result = pytester.runpytest("--providers=zhipu")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*response.body does not match its sha256 seal (edited by hand?)*"])


def test_a_format_2_cassette_with_a_wrong_head_seal_is_still_refused(one: Path) -> None:
    text = as_format_2(one.read_text("utf-8"))
    assert text.count("code: 200") == 1
    one.write_text(text.replace("code: 200", "code: 201"), "utf-8")
    with pytest.raises(CorruptCassetteError, match="do not match their head seal"):
        AtomicPersister().load_cassette(one, ReadableYamlSerializer)


def test_reseal_writes_format_3_with_head_seals(pytester: pytest.Pytester, one: Path) -> None:
    current = one.read_text("utf-8")
    one.write_text(without_head_lines(as_format_2(current)), "utf-8")
    tool = subprocess.run(
        [sys.executable, "-m", "pytest_llmport", "reseal", str(one)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tool.returncode == 0, tool.stderr
    # The same file as recorded: the format line and the head seal are back, nothing else changed.
    assert one.read_text("utf-8") == current
    pytester.runpytest("--providers=zhipu").assert_outcomes(passed=2)


def test_a_cache_written_by_another_version_is_not_trusted(tmp_path: Path, one: Path) -> None:
    """An entry checked by a version that checked less (format 2 let a head seal go missing) is parsed again."""
    cache = tmp_path / "cache"
    cache.mkdir()
    persister = AtomicPersister(cache)
    persister.load_cassette(one, ReadableYamlSerializer)
    persister.flush()
    file = cache / "parsed-main.marshal"
    # The same cache as an earlier plugin wrote it (its first record was the layout number alone),
    # holding this file's cassette as that version accepted it: its head seal deleted.
    one.write_text(without_head_lines(one.read_text("utf-8")), "utf-8")
    status = one.stat()
    entry = ReadableYamlSerializer.deserialize(one.read_text("utf-8"), verify=False)
    encoded = marshal.dumps(entry)
    key = str(one.absolute())
    file.write_bytes(
        marshal.dumps(AtomicPersister.FORMAT)
        + marshal.dumps((key, (status.st_mtime_ns, status.st_size), len(encoded)))
        + encoded
    )
    with pytest.raises(CorruptCassetteError, match="has no head seal"):
        AtomicPersister(cache).load_cassette(one, ReadableYamlSerializer)
