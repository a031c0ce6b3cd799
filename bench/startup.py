"""What the plugin adds to a pytest run that has no marked test: whole process, one-test project.

Run as ``python bench/startup.py [--runs 10] [--json PATH]``. Each run starts a fresh interpreter running
pytest on a project with one plain test, with and without the plugin, interleaved (so a noisy machine's
drift hits both alike), after one unmeasured run of each that compiles the bytecode (an installed package
has it; see ``common.PYCACHE``). Three pairs are measured:

* ``installed``: this environment as it is, every installed pytest plugin loaded: ``-p no:llmport``
  against the default (the figure a user of this environment sees);
* ``alone``: ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, no plugin against ``-p pytest_llmport.plugin``: the
  plugin's own cost, without the other plugins' start-up in the noise;
* ``alone, CI=true``: the same in a run that replays everything, where the network guard is installed
  before the first ``conftest.py`` is imported.

For each, the medians of the wall time and of the CPU time (user + system, of the child) and their
differences are printed. Then, in separate interpreters: the import of ``pytest_llmport.plugin`` after
pytest's own (best of 5), and the modules it imports beyond pytest's. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import clean_env, write_json

TARGET_MS = 20.0
PROBE = """\
import sys, time
import pytest, _pytest.pytester
before = set(sys.modules)
started = time.perf_counter()
import pytest_llmport.plugin
elapsed = time.perf_counter() - started
print(elapsed * 1000)
print(" ".join(sorted(m for m in set(sys.modules) - before if not m.startswith("pytest_llmport"))))
"""
PAIRS: dict[str, tuple[dict[str, str], list[str], list[str]]] = {
    # name: (environment, arguments without the plugin, arguments with it)
    "installed": ({}, ["-p", "no:llmport"], []),
    "alone": ({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, [], ["-p", "pytest_llmport.plugin"]),
    "alone, CI=true": (
        {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "CI": "true"},
        [],
        ["-p", "pytest_llmport.plugin"],
    ),
}


def one_run(project: Path, env: dict[str, str], extra: list[str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one whole pytest process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000


def measure(project: Path, runs: int, pairs: list[str] | None = None) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, (extra_env, off_args, on_args) in PAIRS.items():
        if pairs and name not in pairs:
            continue
        env = clean_env(extra_env)
        one_run(project, env, off_args)  # compile bytecode, warm the file cache
        one_run(project, env, on_args)
        off: list[tuple[float, float]] = []
        on: list[tuple[float, float]] = []
        for _ in range(runs):
            off.append(one_run(project, env, off_args))
            on.append(one_run(project, env, on_args))
        figures = {
            "off_wall_ms": statistics.median(w for w, _ in off),
            "on_wall_ms": statistics.median(w for w, _ in on),
            "off_cpu_ms": statistics.median(c for _, c in off),
            "on_cpu_ms": statistics.median(c for _, c in on),
        }
        figures["added_wall_ms"] = figures["on_wall_ms"] - figures["off_wall_ms"]
        figures["added_cpu_ms"] = figures["on_cpu_ms"] - figures["off_cpu_ms"]
        results[name] = figures
    return results


def probe_import() -> tuple[float, list[str]]:
    """The best of 5 imports of the plugin after pytest's own, and what it imports besides itself."""
    env = clean_env({})
    best, modules = float("inf"), []
    for _ in range(6):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, check=True, capture_output=True, text=True
        ).stdout.splitlines()
        best = min(best, float(out[0]))
        modules = out[1].split() if len(out) > 1 else []
    return best, modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="measured runs per variant (median kept)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (- = stdout)")
    parser.add_argument(
        "--pairs",
        default="",
        help=f"pairs to measure, separated by semicolons (default all: {'; '.join(PAIRS)})",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be positive")
    pairs = [name.strip() for name in args.pairs.split(";") if name.strip()]
    if set(pairs) - set(PAIRS):
        parser.error(f"--pairs takes {'; '.join(PAIRS)}")
    with tempfile.TemporaryDirectory(prefix="llmport-startup-") as tmp:
        project = Path(tmp)
        (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (project / "test_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
        results = measure(project, args.runs, pairs)
    import_ms, imported = probe_import()
    print(f"pytest, one plain test, median of {args.runs} whole-process runs (ms):")
    header = f"{'':<16}{'wall off':>10}{'wall on':>10}{'added':>9}{'cpu off':>10}{'cpu on':>10}{'added':>9}"
    print(header)
    print("-" * len(header))
    for name, f in results.items():
        print(
            f"{name:<16}{f['off_wall_ms']:>10.1f}{f['on_wall_ms']:>10.1f}{f['added_wall_ms']:>+9.1f}"
            f"{f['off_cpu_ms']:>10.1f}{f['on_cpu_ms']:>10.1f}{f['added_cpu_ms']:>+9.1f}"
        )
    print(f"(target: the plugin adds at most {TARGET_MS:.0f} ms)")
    print(f"import of pytest_llmport.plugin after pytest's: {import_ms:.1f} ms (best of 6)")
    print(f"modules it imports beyond pytest's: {len(imported)} ({', '.join(imported) or 'none'})")
    data: dict[str, Any] = {
        "runs": args.runs,
        "pairs": results,
        "import_ms": import_ms,
        "imported": imported,
        "target_ms": TARGET_MS,
    }
    write_json(args.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
