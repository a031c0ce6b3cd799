"""Exceptions the plugin raises. Each message names the test, the provider and the fix.

:class:`LazyText` is a part of such a message built only when the message is.
"""

from __future__ import annotations

import socket
from collections.abc import Callable


class LlmportError(Exception):
    """Base class of every pytest-llmport error."""


class ConfigError(LlmportError):
    """Bad configuration: an option, an ini key, a ``[tool.llmport]`` entry or a marker argument."""


class CassetteError(LlmportError):
    """A cassette that cannot be used as it is."""


class CorruptCassetteError(CassetteError):
    """A cassette file that does not parse or does not have the cassette layout."""


class CassetteFormatError(CorruptCassetteError):
    """A cassette written in a newer format than this version of the plugin reads."""


class CassetteWriteError(CassetteError):
    """A cassette (or the report) that could not be written: a full disk, a read-only folder."""


class MissingCassetteError(CassetteError):
    """Replay was asked for and there is no cassette to replay."""


class NoRecordedResponseError(CassetteError):
    """A request during replay that the cassette holds no response for.

    Deliberately not an ``OSError``: HTTP clients treat those as connection failures and retry or hide them.
    """


class NetworkBlockedError(LlmportError, ConnectionRefusedError):
    """A connection attempt to a non-loopback host while replaying.

    A ``ConnectionRefusedError`` on purpose: HTTP clients turn it into their own connection error, so the
    application's ``except`` clauses run as they would offline; the test still fails with this message.
    """


class LookupBlockedError(NetworkBlockedError, socket.gaierror):
    """A name lookup of a non-loopback host while replaying (a ``socket.gaierror``, as resolvers raise)."""


class UnrecordedRequestRefused(LlmportError, ConnectionRefusedError):
    """What a client sees for a request its cassette cannot answer while replaying.

    A connection error, so the application's error handling runs; the test fails with the
    :class:`NoRecordedResponseError` message, which was noted when this was raised.
    """


class UnrecordedExampleError(BaseException):
    """A property-based test generated an input whose request was never recorded.

    A ``BaseException`` on purpose: hypothesis would treat an ``Exception`` as a failure to shrink (asking
    for still more unrecorded inputs) and SDKs would retry it with back-off; this stops the test at once.
    """


class ForeignRequestError(BaseException):
    """A request that does not go to the provider under test (see :mod:`pytest_llmport.identity`).

    A ``BaseException`` for the reason :class:`UnrecordedExampleError` is one: SDKs would retry an
    ``Exception`` with back-off and apps would catch it; this is a mistake in the test setup, so it
    stops the test at once.
    """


class LazyText:
    """Text built the first time it is shown: a part only a failure's message needs (a record command).

    A passing test never formats its hints, so it does not pay for them. ``str()`` and f-strings give the
    text; it is built once.
    """

    __slots__ = ("_build", "_text")

    def __init__(self, build: Callable[[], str]) -> None:
        self._build: Callable[[], str] | None = build
        self._text = ""

    def __str__(self) -> str:
        if self._build is not None:
            self._text, self._build = self._build(), None
        return self._text

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return repr(str(self))
