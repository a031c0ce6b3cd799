"""The parsed-cassette cache in pytest's cache folder: right answers, and memory bounded by what is in use."""

from __future__ import annotations

import gc
import json
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from pytest_llmport.cassettes import AtomicPersister, HttpRequest, ReadableYamlSerializer
from pytest_llmport.errors import CorruptCassetteError
from pytest_llmport.index import RequestIndex

EXAMPLE = next(
    (Path(__file__).parent.parent / "examples" / "support_triage" / "cassettes").rglob("deepseek.yaml")
)


def copies(folder: Path, n: int) -> list[Path]:
    """``n`` copies of a real sealed cassette, one per test folder, as a suite lays them out."""
    paths = []
    for i in range(n):
        path = folder / "cassettes" / "test_app" / f"test_{i:04d}" / "deepseek.yaml"
        path.parent.mkdir(parents=True)
        shutil.copyfile(EXAMPLE, path)
        paths.append(path)
    return paths


def load(persister: AtomicPersister, path: Path) -> Any:
    return persister.load_cassette(path, ReadableYamlSerializer)


def comparable(loaded: Any) -> Any:
    requests, responses, metadata, header = loaded
    return [(r.method, r.uri, r.body) for r in requests], responses, metadata, header


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir()
    return folder


def test_a_warm_cache_answers_what_the_yaml_says_without_parsing_it(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = copies(tmp_path, 40)
    cold = AtomicPersister(cache, "gw0")
    expected = [comparable(load(cold, path)) for path in paths]
    assert expected == [comparable(load(AtomicPersister(), path)) for path in paths]
    cold.flush()
    assert [p.name for p in cache.iterdir()] == ["parsed-gw0.marshal"]

    def no_yaml(*args: Any) -> Any:
        raise AssertionError("parsed the YAML although the cache holds it")

    monkeypatch.setattr(AtomicPersister, "_parse", staticmethod(no_yaml))
    # Another worker finds what gw0 parsed, in any order.
    warm = AtomicPersister(cache, "gw1")
    assert [comparable(load(warm, path)) for path in reversed(paths)] == expected[::-1]
    warm.flush()
    assert not (cache / "parsed-gw1.marshal").exists()  # nothing new: nothing written


def test_memory_holds_the_cassettes_in_use_not_the_suite(tmp_path: Path, cache: Path) -> None:
    paths = copies(tmp_path, 300)
    cold = AtomicPersister(cache)
    for path in paths:
        load(cold, path)
    cold.flush()
    gc.collect()
    tracemalloc.start()
    try:
        kept = [load(AtomicPersister(), path) for path in paths]
        gc.collect()
        suite = tracemalloc.get_traced_memory()[0]  # what the 300 parsed cassettes take
        del kept
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        warm = AtomicPersister(cache)
        for path in paths:
            load(warm, path)  # the test's own reference goes at once, as after a test's teardown
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # The index of headers and the last RECENT entries, against the whole suite's 300 cassettes.
    assert held < suite / 4, (held, suite)
    warm.flush()


def test_an_entry_changed_in_place_is_written_and_stale_entries_drop_out(tmp_path: Path, cache: Path) -> None:
    first, second, third = copies(tmp_path, 3)
    persister = AtomicPersister(cache)
    load(persister, first)
    load(persister, second)
    persister.flush()
    # The next run uses the first cassette (and adds to it in place) and a new one, not the second.
    persister = AtomicPersister(cache)
    load(persister, first)[3]["summary"] = {"exchanges": 1}
    persister.mark_changed()
    load(persister, third)
    persister.flush()
    after = AtomicPersister(cache)
    index = after._entries()
    assert sorted(index) == sorted(str(p.absolute()) for p in (first, third))
    assert load(after, first)[3]["summary"] == {"exchanges": 1}


def test_a_damaged_or_stale_cache_falls_back_to_the_yaml(tmp_path: Path, cache: Path) -> None:
    paths = copies(tmp_path, 20)
    persister = AtomicPersister(cache)
    expected = [comparable(load(persister, path)) for path in paths]
    persister.flush()
    file = cache / "parsed-main.marshal"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])  # cut in the middle of an entry
    edited = paths[0].read_text("utf-8").replace("连衣裙", "连衣裤")
    paths[0].write_text(edited, "utf-8")  # the seal no longer matches: the file itself is refused
    persister = AtomicPersister(cache)
    with pytest.raises(Exception, match="seal"):
        load(persister, paths[0])
    assert [comparable(load(persister, path)) for path in paths[1:]] == expected[1:]
    persister.flush()
    assert [comparable(load(AtomicPersister(cache), path)) for path in paths[1:]] == expected[1:]


def first_request(persister: AtomicPersister, path: Path) -> tuple[RequestIndex, Any]:
    requests = load(persister, path)[0]
    index = RequestIndex()
    for request in requests:
        index.add(request)
    return index, requests[0]


def test_a_request_edited_after_the_cache_was_written_is_matched_as_the_file_now_says(
    tmp_path: Path, cache: Path
) -> None:
    """Requests carry no seal: an edited one must replace what the cache (its key, its spelling) kept."""
    (path,) = copies(tmp_path, 1)
    index, recorded = first_request(AtomicPersister(cache), path)
    sent = json.dumps(json.loads(recorded.body), ensure_ascii=False, separators=(",", ":")).encode()
    assert index.find(HttpRequest("POST", recorded.uri, sent, {}), lambda i: True) == 0
    persister = AtomicPersister(cache)
    first_request(persister, path)  # warm: the entry is read back from the cache
    persister.flush()
    edited = path.read_text("utf-8").replace("deepseek-chat", "deepseek-reasoner", 1)
    path.write_text(edited, "utf-8")  # the request's model: no seal notices, the file's stamp does
    index, recorded = first_request(AtomicPersister(cache), path)
    assert b"deepseek-reasoner" in recorded.body
    assert index.find(HttpRequest("POST", recorded.uri, sent, {}), lambda i: True) is None
    now = sent.replace(b"deepseek-chat", b"deepseek-reasoner")
    assert index.find(HttpRequest("POST", recorded.uri, now, {}), lambda i: True) == 0


def test_line_ends_and_bytes_are_read_as_a_text_read_would(tmp_path: Path) -> None:
    (path,) = copies(tmp_path, 1)
    expected = comparable(load(AtomicPersister(), path))
    text = path.read_text("utf-8")
    for ends in ("\r\n", "\r"):
        path.write_bytes(text.replace("\n", ends).encode("utf-8"))
        assert comparable(load(AtomicPersister(), path)) == expected, repr(ends)
    data = text.encode("utf-8")
    at = data.index("连衣裙".encode())
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])
    with pytest.raises(CorruptCassetteError, match=f"not UTF-8 text at byte {at}; delete it and re-record"):
        load(AtomicPersister(), path)
