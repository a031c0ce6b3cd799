from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# pytester's in-process runs drop the modules an inner run imported, and the next import makes a second
# copy. Copies do not mix: libyaml's C extension keeps the first yaml.nodes classes (tags stop resolving),
# and httpx exceptions from one copy slip past ``except`` clauses of the other. Import them once, here.
import aiohttp  # noqa: F401
import deepdiff  # noqa: F401 - imports numpy if installed; numpy 2.2 (Python 3.10) warns on a second import
import httpcore  # noqa: F401 - httpx imports it lazily, on the first transport
import httpcore2  # noqa: F401 - the same for httpx2 (the openai SDK's transport)
import httpx  # noqa: F401

# The importlib_metadata backport (litellm imports it), on its first import, appends its finder to
# sys.meta_path and deletes find_distributions from the stdlib's PathFinder. An in-process run restores
# sys.meta_path when it ends, dropping the backport's finder: from then on this process sees no installed
# distribution, so no entry-point plugin loads in a later in-process run ("unrecognized arguments:
# --providers"). Imported here, before any run saves sys.meta_path, its finder is part of what is restored.
import importlib_metadata  # noqa: F401 - a dependency of litellm (dev)
import numpy  # noqa: F401 - the semantic metric's encoder; numpy 2.4 refuses a second import outright
import openai  # noqa: F401
import pytest
import requests  # noqa: F401
import vcr  # noqa: F401
import yaml  # noqa: F401

from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.testing import FakeProvider

KEY = "sk-llmport-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _reports_match_the_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every JSON report a test writes (below its pytester or tmp_path folder) must match the schema.

    A test that writes a broken report on purpose names it other than ``*.json``.
    """
    yield
    import json

    from pytest_llmport.report import REPORT_FORMAT, schema_errors

    roots = {
        request.node.funcargs[name] for name in ("pytester", "tmp_path") if name in request.node.funcargs
    }
    for root in roots:
        folder = Path(getattr(root, "path", root))
        for path in folder.rglob("*.json"):
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(report, dict) and report.get("format") == REPORT_FORMAT:
                errors = schema_errors(report)
                assert not errors, f"{path} does not match the report schema:\n" + "\n".join(errors[:20])


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(api_key=KEY) as server:
        yield server


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, fake: FakeProvider) -> FakeProvider:
    """Point every built-in provider at the fake server with a key, outside CI (record mode 'once')."""
    monkeypatch.delenv("CI", raising=False)
    for provider in BUILTIN_PROVIDERS:
        monkeypatch.setenv(f"{provider.env_prefix}_BASE_URL", fake.base_url)
        monkeypatch.setenv(provider.api_key_env, KEY)
    return fake


XDIST = ("-p", "xdist", "-n", "2")


@dataclass
class RunModes:
    """Runs the inner pytest plainly or under ``-p xdist -n 2``, as the test's parameter says.

    For every inner run whose outcome xdist could change: what workers send the controller (report data,
    the matrix, the verdict, baseline observations, discarded recordings, background traffic, guard
    messages) is merged there, and a plain run never exercises that path.
    """

    pytester: pytest.Pytester
    xdist: bool

    @property
    def args(self) -> list[str]:
        return list(XDIST) if self.xdist else []

    def __call__(self, *args: str | os.PathLike[str], subprocess: bool = False) -> pytest.RunResult:
        run = self.pytester.runpytest_subprocess if subprocess else self.pytester.runpytest
        return run(*args, *self.args)


@pytest.fixture(params=["plain", "xdist"])
def run_modes(
    request: pytest.FixtureRequest, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> RunModes:
    """``run_modes(*args)`` runs pytester's inner pytest plainly, then (second parameter) under xdist.

    Both modes run with Python's default bytecode caching. Each xdist worker is a fresh Python, and pytest
    rewrites the asserts of every installed plugin's modules (hypothesis, langsmith, ...) as it imports them:
    with ``PYTHONDONTWRITEBYTECODE`` set (as on this machine) nothing is cached and each worker pays about
    2 s of CPU for it, on every inner run. (An in-process inner run shares the outer run's modules.)
    """
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    return RunModes(pytester, request.param == "xdist")


@pytest.fixture
def xdist_args(run_modes: RunModes) -> list[str]:
    """The extra arguments of :func:`run_modes` (for tests that call pytester themselves)."""
    return run_modes.args


def lines_in_any_order(result: pytest.RunResult, patterns: list[str]) -> None:
    """Each pattern matches some line of the output, in whichever order the lines came.

    Under xdist, lines about different items (failures, skip reasons) arrive as the workers finish them,
    so ``fnmatch_lines`` (which wants its patterns in order) would fail at random.
    """
    for pattern in patterns:
        result.stdout.fnmatch_lines([pattern])


def cassettes(root: Path) -> dict[str, str]:
    """Every cassette below ``root`` by relative path, with its text."""
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8") for path in sorted(root.rglob("*.yaml"))
    }
