"""What the network guard's refusals say, and where those outside any test go (conftest imports,
between tests, around the session). The guard itself is :mod:`pytest_llmport.guard`; which test a
refusal belongs to is the run's (``LlmportRun`` scopes).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .guard import background_hint

if TYPE_CHECKING:
    import pytest

    from .guard import Attempt
    from .recording import ItemRecording

ALLOW = "Use --llmport-allow-network to let it through."


def replay_message(where: str, what: str) -> str:
    return (
        f"{where} blocked {what}: the run replays (record mode: none), so the network guard holds "
        f"for every test, fixture and import, not only llm_portable tests; loopback (127.0.0.1, ::1, "
        f"localhost) is allowed. {ALLOW}"
    )


def background_entry(attempt: Attempt) -> dict[str, str]:
    return {"url": attempt.target, "thread": attempt.thread.name, "hint": background_hint(attempt.target)}


def background_message(attempt: Attempt, where: str) -> str:
    return (
        f"pytest-llmport: blocked {attempt.describe()} from thread {attempt.thread.name!r} while replaying: "
        f"background traffic during {where} (not failing it). {ALLOW}"
    )


def recording_message(recording: ItemRecording, what: str) -> str:
    """A request that bypassed the patched clients of a replaying test."""
    return (
        f"{recording.nodeid}: blocked {what} on provider {recording.provider!r} while replaying "
        f"(record mode: {recording.record_mode}). Requests through httpx, requests, urllib3 and aiohttp "
        f"are answered from {recording.path}; this one bypassed them. {ALLOW}"
    )


def child_message(where: str, entry: Mapping[str, Any]) -> str:
    """What a child process's guard refused (``entry`` from :meth:`ChildGuard.collect`)."""
    return (
        f"{where}: a child process (pid {entry.get('pid')}: {entry.get('command')}) was refused "
        f"{entry.get('what')} while replaying. Child Python processes run the same guard; other "
        f"programs are pointed at a closed proxy, which a program that ignores HTTP(S)_PROXY "
        f"(curl --noproxy, its own network stack) bypasses: see docs/limitations.md. "
        f"Use --llmport-allow-network to let it through."
    )


@dataclass
class Outside:
    """What the guard refused outside any test: conftest imports, between tests, around the session."""

    blocked: list[str] = field(default_factory=list)
    background: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def refuse(self, attempt: Attempt, where: str = "outside any test") -> str:
        if attempt.thread is not threading.main_thread():
            self.background.append((where, background_entry(attempt)))
            return background_message(attempt, where)
        message = replay_message(f"pytest-llmport, {where}:", attempt.describe())
        self.blocked.append(message)
        return message


@contextlib.contextmanager
def guarded_conftest_imports(config: pytest.Config) -> Iterator[Outside | None]:
    """Guard the import of conftest files, which comes before ``pytest_configure`` and this run.

    Only for that window: a usage error found right after it would end pytest without unconfiguring.
    """
    from .config import replays_from_start
    from .guard import Guard

    if not replays_from_start(config):
        yield None
        return
    outside = Outside()
    guard = Guard(lambda attempt: outside.refuse(attempt, "while importing conftest.py"))
    guard.install()
    try:
        yield outside
    finally:
        guard.uninstall()
