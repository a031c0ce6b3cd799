"""Test ids without secrets: pytest writes them to its terminal, JUnit XML and ``.pytest_cache``.

Without ``ids=``, pytest names a parametrised test after its values (``test_x[sk-...]``), and that node
id then outlives the run in files the plugin never writes. The ``pytest_make_parametrize_id`` hook is
the one place where an id can be chosen before the node exists, so a value holding a known key (or a
credential shape the scanner reports) gets an id with the secret replaced by its marker. Ids the user
wrote (``ids=[...]``, an ``ids=`` function that returns a string, ``pytest.param(id=...)``) never reach
that hook: those are checked after collection and reported by a warning that names the test by its
scrubbed id (a usage error, before any id is written, where warnings are errors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from .placeholders import MARKER

#: pytest's own limit for an id made from a string (``parametrize_long_str_id_strategy``).
LONG_ID = 100


class SecretInTestIdWarning(UserWarning):
    """A test id the user chose holds a secret; pytest writes ids where the plugin cannot scrub them."""


def param_id(val: object, chosen: str | None, redact: Callable[[str], str], escape: bool) -> str | None:
    """The id of one parameter value: ``chosen`` (another plugin's, or None) unless a secret is in it.

    None leaves the id to pytest, exactly as without the plugin. ``escape`` mirrors pytest's ASCII
    escaping of string ids (its ``disable_test_id_escaping...`` ini key turns it off).
    """
    if chosen is not None:
        clean = redact(chosen)
        return chosen if clean == chosen else clean
    if isinstance(val, bytes):
        text = val.decode("utf-8", "backslashreplace")
    elif isinstance(val, str):
        text = val
    else:
        return None
    clean = redact(text)
    if clean == text:
        return None
    if escape:
        clean = clean.encode("unicode_escape").decode("ascii")
    if len(clean) > LONG_ID:  # pytest would not show a value this long either: keep the markers only
        clean = "-".join(MARKER.findall(clean))
    return clean


def _leak_warning(nodeid: str, redact: Callable[[str], str]) -> SecretInTestIdWarning | None:
    clean = redact(nodeid)
    if clean == nodeid:
        return None
    return SecretInTestIdWarning(
        f"{clean}: this test's id holds a secret (the id comes from ids= or pytest.param(id=)); "
        "pytest prints ids and writes them to JUnit XML and .pytest_cache, where pytest-llmport "
        "cannot scrub them. Give it an id without the value, e.g. ids=['tenant-a', ...]."
    )


def leaky_ids(items: Iterable[pytest.Item], redact: Callable[[str], str], provider_param: str) -> None:
    """Warn about each parametrised test whose id (chosen by the user) still holds a secret."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        # The provider's own parameter has the provider's name as its id: checking it would load the
        # scrubber into every run that only collects marked tests (tests/test_import.py).
        if callspec is None or set(callspec.params) <= {provider_param}:
            continue
        warning = _leak_warning(item.nodeid, redact)
        if warning is None:
            continue
        try:
            item.warn(warning)
        except SecretInTestIdWarning:  # -W error: stop before any id is printed or written
            raise pytest.UsageError(str(warning)) from None


def leaky_worker_ids(config: pytest.Config, nodeids: Iterable[str], redact: Callable[[str], str]) -> None:
    """:func:`leaky_ids` for an xdist controller, from the ids its first worker collected.

    Workers leave the check to the controller: each would warn once more, and an error raised in a
    worker's collection makes xdist's controller fail with an internal error that prints the raw id.
    """
    for nodeid in nodeids:
        warning = _leak_warning(nodeid, redact) if "[" in nodeid else None
        if warning is None:
            continue
        try:
            config.issue_config_time_warning(warning, stacklevel=2)
        except SecretInTestIdWarning:  # -W error: stop before the workers run (and print) anything
            raise pytest.UsageError(str(warning)) from None
