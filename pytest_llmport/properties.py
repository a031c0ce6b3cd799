"""Property-based tests (hypothesis ``@given``) inside ``llm_portable`` tests, replayable offline.

Every example hypothesis generates is a new HTTP request, and a committed cassette holds only the ones
that were recorded. So the plugin makes generation repeatable: it applies settings to each marked
``@given`` test the way hypothesis' own ``@seed`` decorator does (on the wrapped test, with the test's
own settings as parent): derandomised, no example database, no deadline, a bounded example count, and
the health checks that a recorded provider trips (a function-scoped ``llm_provider``, slow live calls)
suppressed. Recording and replaying then walk the same examples, shrinking included.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import MutableMapping
from typing import Any

from .errors import CassetteError, LazyText

# Hypothesis has worded this note "Falsifying example: ..." and, more recently, "Failing test case: ...".
_FALSIFYING = re.compile(r"^(?:Falsifying (?:explicit )?example|Failing test case): .*", re.S)


def is_property_test(function: Any) -> bool:
    return bool(getattr(function, "is_hypothesis_test", False))


def make_replayable(function: Any, max_examples: int) -> None:
    """Apply the replay-safe settings to a ``@given`` test (idempotent: the marked function is shared by
    the items of every provider)."""
    from hypothesis import HealthCheck, settings

    if getattr(function, "_llmport_replayable", False):
        return
    current: Any = getattr(function, "_hypothesis_internal_use_settings", None) or settings.default
    function._llmport_own_settings = current  # the test's own, before ours: the parent of every item's
    function._hypothesis_internal_use_settings = settings(
        current,
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=min(current.max_examples, max_examples),
        suppress_health_check=[
            *current.suppress_health_check,
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
        ],
    )
    function._llmport_replayable = True


def strategy_fingerprint(function: Any) -> str:
    """A short hash of the test's ``@given`` strategies (their repr, which hypothesis keeps stable)."""
    given = getattr(getattr(function, "hypothesis", None), "_given_kwargs", None) or {}
    text = repr(sorted((name, repr(strategy)) for name, strategy in given.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def configure(
    function: Any,
    header: MutableMapping[str, Any],
    replaying: bool,
    max_examples: int,
    nodeid: str,
    hint: str | LazyText,
) -> None:
    """Settings of one item: replaying, the recorded example count; recording, the ini's (then noted).

    The cassette's ``llmport: hypothesis:`` entry keeps the example count and a fingerprint of the
    strategies, so a replay walks exactly the recorded examples whatever ``llmport_max_examples``, the
    rootdir or the ini say, and a changed strategy is reported once, before any example runs.
    """
    import hypothesis
    from hypothesis import settings

    function = getattr(function, "__func__", function)
    make_replayable(function, max_examples)
    own: Any = function._llmport_own_settings
    fingerprint = strategy_fingerprint(function)
    entry = header.get("hypothesis") if replaying else None
    count = min(own.max_examples, max_examples)
    if isinstance(entry, dict):
        if entry.get("strategy") not in (None, fingerprint):
            raise CassetteError(
                f"{nodeid}: the @given strategies of this test changed since its cassette was recorded "
                f"(fingerprint {entry.get('strategy')}, now {fingerprint}), so its examples would be inputs "
                f"that were never recorded. Re-record the test whole. {hint}"
            )
        if isinstance(entry.get("max_examples"), int) and entry["max_examples"] > 0:
            count = entry["max_examples"]
    function._hypothesis_internal_use_settings = settings(
        function._hypothesis_internal_use_settings, max_examples=count
    )
    if not replaying:
        header["hypothesis"] = {
            "max_examples": count,
            "strategy": fingerprint,
            "version": hypothesis.__version__,
        }


# The plugin's fixtures say nothing about the input; hypothesis lists them among the arguments anyway.
_FIXTURE_ARGUMENT = re.compile(r"^\s*(?:llm_provider|llm_equiv|llm_provider_name)=.*,?$")


def falsifying_example(exc: BaseException | None) -> str | None:
    """The smallest failing input hypothesis reported (from the exception's notes), if any."""
    for note in getattr(exc, "__notes__", ()) or ():
        if _FALSIFYING.match(note):
            return "\n".join(line for line in str(note).splitlines() if not _FIXTURE_ARGUMENT.match(line))
    return None
