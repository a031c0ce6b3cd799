"""The replay index: a cassette's recorded requests by (method, URL, canonical body), built once per load.

Replaying asks one question per request: which recorded interaction, not played yet, answers it first?
vcrpy answers it by running every matcher against every recorded request, on a ``Request`` object built
(and its URL parsed) for the purpose. Here each recorded request without a placeholder is filed under
the key :func:`request_key` gives it, which is equal for two requests exactly when
:data:`~pytest_llmport.cassettes.MATCHERS` would match them (method case-blind; scheme, host, port and
path as :func:`~pytest_llmport.cassettes._location` reads them; the query sorted; the body canonical).
A recorded request that holds a ``<REDACTED:...>`` placeholder matches a family of values, so it has no
key: those few are tried with the matchers themselves, in cassette order. The answer is the same
interaction vcrpy's loop would pick, with one dictionary lookup in place of N matcher calls.

Most replays need not even that: a test sends its requests in the recorded order, so the request sent is
usually the first recorded one not played yet, spelled the same (same method and URL, and the body byte
for byte the recorded one, or the spelling that matched it by key before). Such a request has that
recorded request's key; no earlier one is available, so it is the answer, found without parsing the
request. The spelling that matched is remembered beside the key (in the parsed-cassette cache, for the
next run), only when its URL is the recorded one: its body then holds what the recorded body holds,
written another way (JSON whitespace, key order, escapes), so nothing the cassette does not hold.
Before any request is sent, a recorded JSON body's compact spelling (:func:`compact_spelling`, the one
httpx and the SDKs built on it send) stands in for a spelling that matched: on a fresh checkout the
first replay of a test need not parse its request either.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from .cassettes import (
    MATCHERS,
    _body_template,
    _canonical_body,
    _location,
    _query,
    _uri_template,
    body_forms,
)

Key = tuple[str, tuple[str, str, int | None, str], tuple[tuple[str, str], ...], Any]


def request_key(request: Any) -> Key:
    """What matching compares of a request: equal keys exactly when every matcher passes.

    Raises what the matchers raise on a request they cannot read (a URL with an invalid port ...).
    """
    uri = request.uri
    return (request.method.upper(), _location(uri), tuple(_query(uri)), _canonical_body(request))


def has_placeholder(request: Any) -> bool:
    """A recorded request whose URL or body holds a placeholder: it matches by pattern, not by key."""
    return _uri_template(request) is not None or _body_template(request) is not None


def matches(request: Any, recorded: Any) -> bool:
    """The matchers' own verdict (``request`` is the one sent, ``recorded`` the cassette's)."""
    try:
        for matcher in MATCHERS:
            matcher(request, recorded)
    except AssertionError:
        return False
    return True


MEMO = "_llmport_match"  # the stored request's memo: (fingerprint, kind, key, compact spelling or None)
SPELLING = "_llmport_sent"  # the stored request's other memo: (fingerprint, a body that matched it by key)


def compact_spelling(request: Any) -> bytes | None:
    """A request's JSON body as httpx sends JSON (no spaces, the recorded key order), or None.

    The spelling parses back to the same JSON value, so it has the request's key: a body sent so, byte
    for byte, matches it as a body that matched by key would.
    """
    canonical, value = body_forms(request)  # (parsed once, for the key too)
    if not isinstance(canonical, str):  # bytes: the body is no JSON
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8")  # strict: a lone surrogate has no UTF-8 spelling a client could send
    except (ValueError, TypeError, RecursionError):  # (UnicodeEncodeError is a ValueError)
        return None


def _filing(request: Any) -> tuple[str, Any, bytes | None]:
    """("key", its key, its compact spelling), ("pattern", None, None) or ("unreadable", None, None)."""
    if has_placeholder(request):
        return "pattern", None, None
    try:
        key = request_key(request)
    except (ValueError, TypeError):
        return "unreadable", None, None
    return "key", key, compact_spelling(request)


def _hashable(key: Any) -> Key:
    # The parsed-cassette cache (marshal) gives tuples back as tuples; this keeps a list from slipping in.
    method, location, query, body = key
    return (method, tuple(location), tuple(tuple(pair) for pair in query), body)


@functools.cache
def fingerprint() -> str:
    """A digest of the code that files requests: a memo made by other code is not trusted.

    A key remembered in the parsed-cassette cache by an earlier version of this plugin (or of the
    matchers it mirrors) would match by rules that no longer hold; so the memo carries the digest of
    the bytecode of every function that decides a request's key, and one with another digest is
    worked out again.
    """
    from . import cassettes

    digest = hashlib.sha256(sys.version.encode())
    functions = (
        request_key,
        has_placeholder,
        compact_spelling,
        _filing,
        cassettes._location,
        cassettes._query,
        cassettes._canonical,
        cassettes._canonical_body,
        cassettes.body_forms,
        cassettes.body_value,
        cassettes._uri_template,
        cassettes._body_template,
        cassettes.string_pattern,
        cassettes.HttpRequest.__init__,
    )

    def feed(code: types.CodeType) -> None:
        digest.update(code.co_code)
        digest.update(repr(code.co_names).encode())
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                feed(const)
            elif isinstance(const, frozenset):  # its repr's order changes with the hash seed
                digest.update(repr(sorted(map(repr, const))).encode())
            else:
                digest.update(repr(const).encode())

    for function in functions:
        feed(function.__code__)
    return digest.hexdigest()[:16]


class RequestIndex:
    """Recorded requests, in cassette order, filed for one lookup per request sent."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._by_key: dict[Key, list[int]] = {}
        self._patterned: list[int] = []  # positions of requests with placeholders, ascending
        self._unreadable: list[int] = []  # recorded requests no key could be made of (kept for the matchers)
        self._keyed: list[bool] = []  # per position: filed by its key (no placeholder, readable)
        self._spellings: list[bytes | None] = []  # per position: another body that matched it by key
        #: A spelling was remembered in a stored mapping: the parsed-cassette cache should be written.
        self.learned = False

    def add(self, request: Any) -> bool:
        """File one recorded request; True when that was worked out anew into its stored mapping."""
        position = len(self.requests)
        self.requests.append(request)
        stored = getattr(request, "stored", None)
        memo = stored.get(MEMO) if isinstance(stored, dict) else None
        fresh = not (isinstance(memo, (tuple, list)) and len(memo) == 4 and memo[0] == fingerprint())
        kind, key, compact = _filing(request) if fresh else memo[1:]  # type: ignore[index]
        if fresh and isinstance(stored, dict):
            stored[MEMO] = (fingerprint(), kind, key, compact)
        spelling = stored.get(SPELLING) if isinstance(stored, dict) and kind == "key" else None
        if not (isinstance(spelling, (tuple, list)) and len(spelling) == 2 and spelling[0] == fingerprint()):
            spelling = (None, None)  # none, or noted by other code
        learned = spelling[1] if isinstance(spelling[1], bytes) else None
        # One spelling per request: the one a client sent and matched, else the compact one.
        self._spellings.append(learned or (compact if kind == "key" and isinstance(compact, bytes) else None))
        self._keyed.append(kind == "key")
        if kind == "key":
            self._by_key.setdefault(_hashable(key), []).append(position)
        elif kind == "pattern":
            self._patterned.append(position)
        else:
            self._unreadable.append(position)
        return fresh and isinstance(stored, dict)

    def __len__(self) -> int:
        return len(self.requests)

    def find(self, request: Any, available: Callable[[int], bool]) -> int | None:
        """The first position whose recorded request matches ``request`` and is ``available``, or None."""
        first = self._first_available(available)
        if first is not None and self._keyed[first] and self._spelled_as(first, request):
            # The usual replay: the request is spelled as the first recorded one not played yet, so it has
            # that one's key, and no position before it is available: the answer of the lookup below.
            return first
        try:
            key = request_key(request)
        except (ValueError, TypeError):
            return self._scan(request, available, range(len(self.requests)))
        best: int | None = None
        for position in self._by_key.get(key, ()):
            if available(position):
                best = position
                break
        # Requests matched by pattern or unreadable come before the keyed one only if earlier in the file.
        for position in self._others(best):
            # Matchers first, as vcrpy's loop runs them: on a recorded request they cannot read they raise.
            if matches(request, self.requests[position]) and available(position):
                return position
        if best is not None:
            self._learn(best, request)
        return best

    # How far to look for the first available position: a test's requests are replayed in order, so it is
    # nearly always the first or second; past this many played ones the lookup below answers.
    _FIRST_WITHIN = 64

    def _first_available(self, available: Callable[[int], bool]) -> int | None:
        for position in range(min(len(self.requests), self._FIRST_WITHIN)):
            if available(position):
                return position
        return None

    def _spelled_as(self, position: int, request: Any) -> bool:
        """The recorded method and URL, and the recorded body or its remembered spelling, byte for byte."""
        recorded = self.requests[position]
        if recorded.method != request.method or recorded.uri != request.uri:
            return False
        body, sent = recorded.body, request.body
        if sent is None:
            return body is None
        return isinstance(sent, bytes) and (
            (isinstance(body, bytes) and sent == body) or sent == self._spellings[position]
        )

    def _learn(self, position: int, request: Any) -> None:
        """Remember how ``request`` (which matched ``position`` by key) spelled its body, for next time."""
        recorded, sent = self.requests[position], request.body
        stored = getattr(recorded, "stored", None)
        if (
            isinstance(stored, dict)
            and isinstance(sent, bytes)
            and sent != self._spellings[position]
            and recorded.method == request.method
            and recorded.uri == request.uri  # a URL spelled otherwise might hold what the recording does not
        ):
            self._spellings[position] = sent
            stored[SPELLING] = (fingerprint(), sent)
            self.learned = True

    def _others(self, before: int | None) -> Iterator[int]:
        others = self._patterned if not self._unreadable else sorted(self._patterned + self._unreadable)
        for position in others:
            if before is not None and position > before:
                return
            yield position

    def _scan(self, request: Any, available: Callable[[int], bool], positions: range) -> int | None:
        # The request's own key cannot be made: the matchers decide (and raise) as they always did.
        for position in positions:
            if matches(request, self.requests[position]) and available(position):
                return position
        return None
