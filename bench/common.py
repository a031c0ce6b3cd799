"""Helpers the bench scripts share: generated projects, a clean environment, timed pytest subprocesses.

The scripts run as ``python bench/<name>.py``, so this module is imported as ``common`` (the script's folder
is first on ``sys.path``). Nothing here asserts on timings.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PYTEST_INI = """\
[pytest]
testpaths = tests
python_files = test_*.py
"""

TIMING_CONFTEST = '''\
"""Bench timing: wall time of the test loop only (collection and start-up excluded)."""

import json
import os
import time

import pytest

_MARKS: dict[str, float] = {}
_PHASES = {"setup": 0.0, "call": 0.0, "teardown": 0.0}
_DURATIONS: dict[str, list[float]] = {}


def pytest_runtest_logreport(report):
    # pytest's own per-phase durations: no extra clock reads in the measured path.
    _PHASES[report.when] += report.duration
    _DURATIONS.setdefault(report.when, []).append(report.duration)


def pytest_sessionstart(session):
    _MARKS["session_start"] = time.perf_counter()


def pytest_collection_finish(session):
    _MARKS["collection_finish"] = time.perf_counter()


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        return (yield)
    finally:
        end, cpu_end = time.perf_counter(), time.process_time()
        path = os.environ.get("LLMPORT_BENCH_TIMING")
        if path:
            data = {
                "loop_s": end - start,
                "cpu_s": cpu_end - cpu_start,
                "collect_s": _MARKS.get("collection_finish", start) - _MARKS.get("session_start", start),
                "phases": _PHASES,
                "first": {key: values[0] for key, values in _DURATIONS.items()},
                "median": {key: sorted(values)[len(values) // 2] for key, values in _DURATIONS.items()},
                "items": len(session.items),
                "failed": session.testsfailed,
            }
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
'''


@dataclass
class Timing:
    loop_s: float
    cpu_s: float
    phases: dict[str, float]
    first: dict[str, float]
    median: dict[str, float]
    wall_s: float
    collect_s: float
    # CPU time (user + system) of the whole pytest process: start-up, collection, loop and session end.
    process_cpu_s: float = 0.0


def write_project(
    project: Path, header: str, body: str, n: int, files: int, conftest: str = TIMING_CONFTEST
) -> Path:
    """Write pytest.ini, a conftest and N tests (``body.format(i=...)``) spread over ``files`` modules."""
    tests = project / "tests"
    tests.mkdir(parents=True)
    (project / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    (project / "conftest.py").write_text(conftest, encoding="utf-8")
    per_file = -(-n // files)
    for f, start in enumerate(range(0, n, per_file)):
        text = header + "".join(body.format(i=i) for i in range(start, min(start + per_file, n)))
        (tests / f"test_bench_{f:03d}.py").write_text(text, encoding="utf-8")
    return project


# Installed packages have their bytecode compiled; a shell with PYTHONDONTWRITEBYTECODE=1 (this machine's)
# would make every run compile the plugin's ~40 modules again. Bench runs keep bytecode in one folder of
# their own instead, outside the source tree.
PYCACHE = Path(tempfile.gettempdir()) / "llmport-bench-pycache"


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without provider keys, plugin settings, ``CI`` or coverage, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "LLMPORT_", "PYTEST_"))
        and key not in ("CI", "BENCH_FAKE_BASE_URL", "COVERAGE_PROCESS_START", "PYTHONDONTWRITEBYTECODE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


def run_pytest(
    project: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    n: int,
    label: str,
    prefix: tuple[str, ...] = ("-m", "pytest"),
    base_args: tuple[str, ...] = ("-q",),
    failing: bool = False,
) -> Timing:
    """Run pytest in a subprocess; fail loudly unless exactly N tests ran and all passed.

    ``failing``: all N must fail instead, each for want of a recorded response (a stale replay).
    """
    timing_file = project / ".bench-timing.json"
    timing_file.unlink(missing_ok=True)
    env = {**env, "LLMPORT_BENCH_TIMING": str(timing_file)}
    command = [sys.executable, *prefix, *base_args, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    process_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != (1 if failing else 0) or not timing_file.is_file():
        fail(label, proc, command)
    data = json.loads(timing_file.read_text(encoding="utf-8"))
    if data["items"] != n or data["failed"] != (n if failing else 0):
        raise SystemExit(f"{label}: expected {n} {'failing' if failing else 'passing'} items, got {data}")
    if failing and "no recorded response for POST" not in proc.stdout:
        raise SystemExit(f"{label}: the items failed, but not for want of a recorded response")
    return Timing(
        data["loop_s"],
        data["cpu_s"],
        data["phases"],
        data["first"],
        data["median"],
        wall,
        data["collect_s"],
        process_cpu,
    )


def fail(label: str, proc: subprocess.CompletedProcess[str], command: list[str]) -> None:
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    raise SystemExit(f"{label}: pytest exited with {proc.returncode}\n$ {' '.join(command)}\n{tail}")


def count_cassettes(project: Path) -> int:
    return sum(1 for _ in (project / "tests").rglob("*.yaml"))


def ms(seconds: float, n: int) -> float:
    return seconds * 1000.0 / n


def write_json(path: str | None, data: object) -> None:
    """Write ``data`` as JSON to ``path`` (``-`` for stdout), for ``bench/all.py`` and other readers."""
    if not path:
        return
    text = json.dumps(data, indent=2, sort_keys=True)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n", encoding="utf-8")
