"""Other HTTP recorders and mocks in the same test as ``llm_portable``: refused, with the fix.

pytest-recording's ``vcr`` mark, pytest-httpx's ``httpx_mock`` and respx's ``respx_mock`` patch the same
transports the plugin records through, and they win: the test's requests would go to another cassette
or to a mock, its own cassette would stay empty, and the test would pass on every provider without any
provider having answered. So such a test fails at setup, naming the conflict. Tests that use them
without ``llm_portable`` are left alone: the plugin patches nothing outside marked tests.
"""

from __future__ import annotations

from collections.abc import Iterable

_FIX = (
    "Keep the LLM calls in a test of their own, marked llm_portable only; mock the other services in "
    "separate tests (or, for a module- or class-level mark, mark the other tests one by one)."
)


OTHER_RECORDER_MARKS = ("vcr", "respx")


def conflict(nodeid: str, provider: str, fixturenames: Iterable[str], marks: Iterable[str]) -> str | None:
    """Why a test with these fixtures and marks cannot run as an ``llm_portable`` test, or None.

    ``marks``: which of :data:`OTHER_RECORDER_MARKS` the test carries (read in config.py, at collection).
    """
    fixtures, marked = set(fixturenames), set(marks)
    reasons = []
    if "vcr" in marked:
        reasons.append(
            "@pytest.mark.vcr (pytest-recording) would record it into pytest-recording's own cassette"
        )
    if "httpx_mock" in fixtures:
        reasons.append(
            "pytest-httpx's httpx_mock fixture would answer its httpx requests instead of the provider"
        )
    if "respx_mock" in fixtures or "respx" in marked:
        reasons.append("respx's respx_mock would answer its httpx requests instead of the provider")
    if not reasons:
        return None
    return (
        f"{nodeid}: this llm_portable test on provider {provider!r} also uses another HTTP recorder or "
        f"mock: {'; '.join(reasons)}. Nothing would reach the provider or this test's cassette, and it "
        f"would pass on every provider. {_FIX} See docs/clients.md#other-recorders-and-mocks."
    )
