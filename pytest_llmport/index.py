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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .cassettes import (
    MATCHERS,
    _body_template,
    _canonical_body,
    _location,
    _query,
    _uri_template,
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


class RequestIndex:
    """Recorded requests, in cassette order, filed for one lookup per request sent."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._by_key: dict[Key, list[int]] = {}
        self._patterned: list[int] = []  # positions of requests with placeholders, ascending
        self._unreadable: list[int] = []  # recorded requests no key could be made of (kept for the matchers)

    def add(self, request: Any) -> None:
        position = len(self.requests)
        self.requests.append(request)
        if has_placeholder(request):
            self._patterned.append(position)
            return
        try:
            key = request_key(request)
        except (ValueError, TypeError):
            self._unreadable.append(position)
            return
        self._by_key.setdefault(key, []).append(position)

    def __len__(self) -> int:
        return len(self.requests)

    def find(self, request: Any, available: Callable[[int], bool]) -> int | None:
        """The first position whose recorded request matches ``request`` and is ``available``, or None."""
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
        return best

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
