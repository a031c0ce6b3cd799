"""The replay index answers exactly as vcrpy's matcher loop over :data:`cassettes.MATCHERS` did.

A false "ok" is the worst bug: the index must never pick a recorded interaction the matchers would
refuse, nor a different one than the first unplayed match in cassette order. vcrpy's own ``Cassette``
(``play_response`` with ``match_on=MATCHERS``, the replay path before the index) is the oracle here.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vcr.cassette import Cassette as VcrCassette
from vcr.errors import UnhandledHTTPRequestError
from vcr.request import Request as VcrRequest

from pytest_llmport.cassettes import MATCHERS, HttpRequest
from pytest_llmport.index import RequestIndex

KEY = "<REDACTED:OPENAI_API_KEY>"
ORIGINS = (
    "https://api.example.com",
    "https://API.example.com:443",
    "http://api.example.com",
    "https://b.example",
)
PATHS = ("/v1/chat", "/v1/chat/", f"/v1/{KEY}/chat", "/v1/embed", "")
QUERIES = ("", "?a=1&b=2", "?b=2&a=1", f"?key={KEY}", "?key=REDACTED", "?a=1", "?a=")
BODIES: tuple[Any, ...] = (
    None,
    b"",
    {"model": "m", "n": 1},
    {"n": 1, "model": "m"},
    {"model": "m", "n": 1.0},
    {"model": "m", "n": True},
    {"model": KEY, "n": 1},
    {"auth": f"Bearer {KEY}", "q": "中文"},
    {"q": "中文"},
    [1, {"a": KEY}],
    "key=REDACTED&x=1",
    f"token={KEY}&x=1",
    "not json",
    "{broken json",
)
LIVE_VALUES = ("sk-live-0123456789abcdef", "", "REDACTED", KEY, "x y")


def encoded(body: Any, indent: int | str | None) -> Any:
    if isinstance(body, (dict, list)) and indent == "compact":  # as httpx sends JSON
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if isinstance(body, (dict, list)):
        return json.dumps(body, ensure_ascii=indent is None, indent=indent).encode()
    return body.encode() if isinstance(body, str) else body


def live(text: Any, value: str) -> Any:
    """A live request's part: where the recording holds a placeholder, the app sends some real value."""
    if isinstance(text, bytes):
        return text.replace(KEY.encode(), value.encode()).replace(b"=REDACTED", f"={value}".encode())
    if isinstance(text, str):
        return text.replace(KEY, value).replace("=REDACTED", f"={value}")
    return text


requests = st.tuples(
    st.sampled_from(("POST", "post", "GET")),
    st.sampled_from(ORIGINS),
    st.sampled_from(PATHS),
    st.sampled_from(QUERIES),
    st.sampled_from(BODIES),
    st.sampled_from((None, 2, "compact")),
)


def build(parts: tuple[Any, ...], value: str | None = None) -> tuple[str, str, Any]:
    method, origin, path, query, body, indent = parts
    uri, data = origin + path + query, encoded(body, indent)
    if value is not None:
        uri, data = live(uri, value), live(data, value)
    return method, uri, data


def oracle(recorded: list[tuple[str, str, Any]], played: collections.Counter[int]) -> VcrCassette:
    cassette = VcrCassette("unused.yaml", match_on=MATCHERS)
    cassette.data = [(VcrRequest(m, u, b, {}), {"position": i}) for i, (m, u, b) in enumerate(recorded)]
    cassette.play_counts = collections.Counter(played)
    return cassette


def vcrpy_pick(cassette: VcrCassette, sent: tuple[str, str, Any]) -> int | None:
    try:
        position: int = cassette.play_response(VcrRequest(*sent, {}))["position"]
    except UnhandledHTTPRequestError:
        return None
    return position


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(requests, min_size=0, max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.booleans(), st.sampled_from(LIVE_VALUES)), max_size=10),
    st.lists(requests, max_size=3),
    st.sets(st.integers(0, 7)),
)
def test_the_index_picks_what_the_matchers_pick(
    recorded_parts: list[Any], sends: list[tuple[int, bool, str]], strangers: list[Any], played: set[int]
) -> None:
    recorded = [build(parts) for parts in recorded_parts]
    # Requests sent: recorded ones as the app sends them again (placeholders filled in, or the
    # recorded text itself), and requests built independently, which mostly match nothing.
    sent = [
        build(recorded_parts[i % len(recorded_parts)], value if fill else None)
        for i, fill, value in sends
        if recorded_parts
    ] + [build(parts, LIVE_VALUES[0]) for parts in strangers]
    counts = collections.Counter({i: 1 for i in played if i < len(recorded)})
    cassette = oracle(recorded, counts)
    index = RequestIndex()
    for method, uri, body in recorded:
        index.add(HttpRequest(method, uri, body, {}))
    ours = collections.Counter(counts)
    for request in sent:
        expected = vcrpy_pick(cassette, request)
        got = index.find(HttpRequest(*request, {}), lambda i: ours[i] == 0)
        assert got == expected, (request, recorded, dict(counts))
        if got is not None:
            ours[got] += 1


def test_a_placeholder_earlier_in_the_file_wins_over_a_later_exact_match() -> None:
    index = RequestIndex()
    index.add(HttpRequest("POST", "https://a.example/v1", f'{{"k": "{KEY}"}}', {}))
    index.add(HttpRequest("POST", "https://a.example/v1", '{"k": "sk-live-1"}', {}))
    played: collections.Counter[int] = collections.Counter()
    sent = HttpRequest("POST", "https://a.example/v1/", b'{"k":"sk-live-1"}', {})
    assert index.find(sent, lambda i: played[i] == 0) == 0
    played[0] += 1
    assert index.find(sent, lambda i: played[i] == 0) == 1
    played[1] += 1
    assert index.find(sent, lambda i: played[i] == 0) is None


def test_an_exact_match_earlier_in_the_file_wins_over_a_later_placeholder() -> None:
    index = RequestIndex()
    index.add(HttpRequest("POST", "https://a.example/v1", '{"k": "sk-live-1"}', {}))
    index.add(HttpRequest("POST", "https://a.example/v1", f'{{"k": "{KEY}"}}', {}))
    index.add(HttpRequest("POST", "https://a.example/v1", f'{{"k": "{KEY}"}}', {}))
    played: collections.Counter[int] = collections.Counter()
    sent = HttpRequest("POST", "https://a.example/v1", b'{"k":"sk-live-1"}', {})
    picks = []
    for _ in range(4):
        pick = index.find(sent, lambda i: played[i] == 0)
        picks.append(pick)
        if pick is not None:
            played[pick] += 1
    assert picks == [0, 1, 2, None]


def test_a_request_the_matchers_cannot_read_raises_as_they_do() -> None:
    index = RequestIndex()
    index.add(HttpRequest("GET", "https://a.example/v1", None, {}))
    sent = HttpRequest("GET", "https://a.example:99999/v1", None, {})
    cassette = oracle([("GET", "https://a.example/v1", None)], collections.Counter())
    for pick in (
        lambda: index.find(sent, lambda i: True),
        lambda: vcrpy_pick(cassette, ("GET", sent.uri, None)),
    ):
        try:
            pick()
        except ValueError:
            continue
        raise AssertionError("a port out of range was read as a match")


def test_the_index_memo_in_a_stored_request_is_used_only_with_this_code(monkeypatch: Any) -> None:
    import pytest_llmport.index as index_module

    stored = {"method": "POST", "uri": "https://a.example/v1", "body": '{"b": 1, "a": 2}', "headers": {}}
    first = RequestIndex()
    assert first.add(HttpRequest.from_dict(stored)) is True  # worked out, and remembered in the mapping
    memo = stored[index_module.MEMO]
    assert memo[0] == index_module.fingerprint() and memo[1] == "key"
    sent = HttpRequest("POST", "https://a.example/v1/", b'{"a":2,"b":1}', {})

    def refuse(request: Any) -> Any:
        raise AssertionError("the memo was not used")

    with monkeypatch.context() as patched:
        patched.setattr(index_module, "_filing", refuse)
        again = RequestIndex()
        assert again.add(HttpRequest.from_dict(stored)) is False
    assert again.find(sent, lambda i: True) == 0
    # A memo another version wrote (another digest) is worked out again, not trusted.
    stored[index_module.MEMO] = ("0" * 16, "key", ("POST", ("https", "b.example", 443, "/x"), (), "{}"))
    fresh = RequestIndex()
    assert fresh.add(HttpRequest.from_dict(stored)) is True
    assert fresh.find(sent, lambda i: True) == 0
    assert fresh.find(HttpRequest("POST", "https://b.example/x", b"{}", {}), lambda i: True) is None


def test_a_request_spelled_as_recorded_is_answered_only_by_the_first_unplayed_one(monkeypatch: Any) -> None:
    import pytest_llmport.index as index_module

    index = RequestIndex()
    for body in (b'{"n": 1}', b'{"n": 2}', b'{"n": 1}'):
        index.add(HttpRequest("POST", "https://a.example/v1", body, {}))
    played: collections.Counter[int] = collections.Counter()

    def pick(body: bytes) -> int | None:
        found = index.find(HttpRequest("POST", "https://a.example/v1", body, {}), lambda i: played[i] == 0)
        if found is not None:
            played[found] += 1
        return found

    def refuse(request: Any) -> Any:
        raise AssertionError("the request was parsed")

    with monkeypatch.context() as patched:
        patched.setattr(index_module, "request_key", refuse)
        assert pick(b'{"n": 1}') == 0  # the first unplayed one, byte for byte: no parsing
        assert pick(b'{"n": 2}') == 1
    # Position 2 is next and spelled the same, but a changed body is looked up (and found nowhere).
    assert pick(b'{"n": 3}') is None
    assert pick(b'{"n":1}') == 2  # spelled otherwise, same key: found by key
    assert pick(b'{"n": 1}') is None  # all played


def test_a_spelling_that_matched_is_remembered_with_this_code_and_only_for_its_url(monkeypatch: Any) -> None:
    import pytest_llmport.index as index_module

    stored = {
        "method": "POST",
        "uri": "https://a.example/v1",
        "body": '{\n  "b": 1,\n  "a": 2\n}',
        "headers": {},
    }
    first = RequestIndex()
    first.add(HttpRequest.from_dict(stored))
    compact = b'{"a":2,"b":1}'
    assert first.find(HttpRequest("POST", "https://a.example/v1", compact, {}), lambda i: True) == 0
    assert first.learned and stored[index_module.SPELLING] == (index_module.fingerprint(), compact)

    def refuse(request: Any) -> Any:
        raise AssertionError("the request was parsed")

    with monkeypatch.context() as patched:
        patched.setattr(index_module, "request_key", refuse)
        again = RequestIndex()
        again.add(HttpRequest.from_dict(stored))
        assert again.find(HttpRequest("POST", "https://a.example/v1", compact, {}), lambda i: True) == 0
    # Another body, or the same body to a URL spelled otherwise, is looked up as ever.
    again = RequestIndex()
    again.add(HttpRequest.from_dict(stored))
    assert (
        again.find(HttpRequest("POST", "https://a.example/v1", b'{"a":2,"b":2}', {}), lambda i: True) is None
    )
    assert again.find(HttpRequest("POST", "https://a.example/v1", compact, {}), lambda i: False) is None
    # A URL that matches by key but is not the recorded text (a password in it) is never remembered.
    other = {**stored}
    other.pop(index_module.SPELLING)
    fresh = RequestIndex()
    fresh.add(HttpRequest.from_dict(other))
    sent = HttpRequest("POST", "https://user:hunter2-secret@a.example/v1/", b'{"b":1,"a":2}', {})
    assert fresh.find(sent, lambda i: True) == 0
    assert index_module.SPELLING not in other and not fresh.learned
    # A spelling another version of this code remembered is not trusted.
    other[index_module.SPELLING] = ("0" * 16, b'{"a":2,"b":2}')
    stale = RequestIndex()
    stale.add(HttpRequest.from_dict(other))
    assert (
        stale.find(HttpRequest("POST", "https://a.example/v1", b'{"a":2,"b":2}', {}), lambda i: True) is None
    )


def test_a_fresh_index_answers_the_compact_spelling_of_a_recorded_body_without_parsing_it(
    monkeypatch: Any,
) -> None:
    """A fresh checkout's first replay: the recorded body is pretty-printed, httpx sends it compact."""
    import pytest_llmport.index as index_module

    stored = {
        "method": "POST",
        "uri": "https://a.example/v1",
        "body": '{\n  "b": 1,\n  "q": "中文",\n  "a": [1.5, true, null]\n}',
        "headers": {},
    }
    index = RequestIndex()
    assert index.add(HttpRequest.from_dict(stored))
    compact = '{"b":1,"q":"中文","a":[1.5,true,null]}'.encode()
    assert stored[index_module.MEMO][3] == compact  # kept for the next run with the key
    played: collections.Counter[int] = collections.Counter()

    def refuse(request: Any) -> Any:
        raise AssertionError("the request was parsed")

    with monkeypatch.context() as patched:
        patched.setattr(index_module, "request_key", refuse)
        assert index.find(HttpRequest("POST", "https://a.example/v1", compact, {}), lambda i: True) == 0
    assert not index.learned and index_module.SPELLING not in stored  # nothing new to remember
    # What differs, in a value, a type or the URL's text, is looked up by key as before: and refused.
    for uri, body in (
        ("https://a.example/v1", '{"b":2,"q":"中文","a":[1.5,true,null]}'.encode()),
        ("https://a.example/v1", '{"b":true,"q":"中文","a":[1.5,true,null]}'.encode()),
        ("https://a.example/v1", '{"b":1,"q":"中文","a":[1.5,1,null]}'.encode()),
        ("https://a.example/v2", compact),
    ):
        assert index.find(HttpRequest("POST", uri, body, {}), lambda i: played[i] == 0) is None, body
    # Played once, it answers no more, spelled so or otherwise.
    played[0] += 1
    assert (
        index.find(HttpRequest("POST", "https://a.example/v1", compact, {}), lambda i: played[i] == 0) is None
    )


def test_only_a_json_body_with_a_utf8_spelling_gets_a_compact_one() -> None:
    from pytest_llmport.index import compact_spelling

    def spelling(body: bytes) -> bytes | None:
        return compact_spelling(HttpRequest("POST", "https://a.example/v1", body, {}))

    assert spelling(b'{ "a" : [1, 2] }') == b'{"a":[1,2]}'
    assert spelling(b"not json") is None and spelling(b"{broken") is None and spelling(b"123") is None
    assert spelling(b'{"a": "\\ud800"}') is None  # a lone surrogate: no client sends it in UTF-8
    assert spelling(b'{"a": "\\u00e9"}') == '{"a":"é"}'.encode()


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=8,
    ).filter(lambda value: isinstance(value, (dict, list))),
    st.sampled_from((None, 2)),
)
def test_a_compact_spelling_has_the_key_of_the_body_it_spells(value: Any, indent: int | None) -> None:
    """The shortcut's premise: a body sent byte for byte as the compact spelling matches by key."""
    from pytest_llmport.index import compact_spelling, request_key

    recorded = HttpRequest("POST", "https://a.example/v1", json.dumps(value, indent=indent).encode(), {})
    key = request_key(recorded)
    spelled = compact_spelling(recorded)
    if spelled is not None:
        assert request_key(HttpRequest("POST", "https://a.example/v1", spelled, {})) == key
