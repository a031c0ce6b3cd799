"""What the plugin adds to a pytest run that has no marked test: whole process, one-test project.

Run as ``python bench/startup.py [--runs 10] [--json PATH]``. Each run starts a fresh interpreter running
pytest on a project with one plain test, with and without the plugin, interleaved (so a noisy machine's
drift hits both alike), after one unmeasured run of each that compiles the bytecode (an installed package
has it; see ``common.PYCACHE``). Three pairs are measured:

* ``installed``: this environment as it is, every installed pytest plugin loaded: ``-p no:llmport``
  against the default (the figure a user of this environment sees);
* ``alone``: ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, a module that holds no hook against
  ``-p pytest_llmport.plugin``: the plugin's own cost, without the other plugins' start-up in the noise.
  Both sides load a plugin with ``-p``, because pytest answers every ``-p NAME`` by reading the entry
  points of every installed distribution (about 1 ms with this environment's 140): the plugin does not
  cost that in a run that loads it as installed, so it must not be counted as the plugin's;
* ``alone, CI=true``: the same in a run that replays everything, where the network guard is installed
  before the first ``conftest.py`` is imported.

For each, the medians of the wall time and of the CPU time (user + system, of the child) and their
differences are printed. With ``--before DIR`` (a folder holding another version's ``pytest_llmport``
package, e.g. extracted with ``git archive <rev> pytest_llmport | tar -x -C DIR``) each pair also runs
that version, interleaved with the two others: a before/after figure from one run. Then, in separate
interpreters: the import of ``pytest_llmport.plugin`` after pytest's own (best of 5), and the modules it
imports beyond pytest's. Nothing here asserts on timings.
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
# A plugin without hooks, in the project: what ``-p`` costs pytest itself (see the docstring).
NOOP_PLUGIN = "llmport_bench_noop"
PAIRS: dict[str, tuple[dict[str, str], list[str], list[str]]] = {
    # name: (environment, arguments without the plugin, arguments with it)
    "installed": ({}, ["-p", "no:llmport"], []),
    "alone": ({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, ["-p", NOOP_PLUGIN], ["-p", "pytest_llmport.plugin"]),
    "alone, CI=true": (
        {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "CI": "true"},
        ["-p", NOOP_PLUGIN],
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


def measure(
    project: Path, runs: int, pairs: list[str] | None = None, before: str | None = None
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, (extra_env, off_args, on_args) in PAIRS.items():
        if pairs and name not in pairs:
            continue
        env = clean_env(extra_env)
        variants = {"off": (env, off_args), "on": (env, on_args)}
        if before:
            variants["before"] = ({**env, "PYTHONPATH": str(Path(before).resolve())}, on_args)
        for variant_env, args in variants.values():
            one_run(project, variant_env, args)  # compile bytecode, warm the file cache
        timings: dict[str, list[tuple[float, float]]] = {key: [] for key in variants}
        for _ in range(runs):
            for key, (variant_env, args) in variants.items():
                timings[key].append(one_run(project, variant_env, args))
        figures: dict[str, float] = {}
        for key, measured in timings.items():
            figures[f"{key}_wall_ms"] = statistics.median(w for w, _ in measured)
            figures[f"{key}_cpu_ms"] = statistics.median(c for _, c in measured)
        figures["added_wall_ms"] = figures["on_wall_ms"] - figures["off_wall_ms"]
        figures["added_cpu_ms"] = figures["on_cpu_ms"] - figures["off_cpu_ms"]
        if before:
            figures["before_added_wall_ms"] = figures["before_wall_ms"] - figures["off_wall_ms"]
            figures["before_added_cpu_ms"] = figures["before_cpu_ms"] - figures["off_cpu_ms"]
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
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also run the pytest_llmport package under DIR (another version), interleaved: before/after",
    )
    args = parser.parse_args(argv)
    if args.before and not (Path(args.before) / "pytest_llmport" / "__init__.py").is_file():
        parser.error(f"--before {args.before}: no pytest_llmport package there")
    if args.runs < 1:
        parser.error("--runs must be positive")
    pairs = [name.strip() for name in args.pairs.split(";") if name.strip()]
    if set(pairs) - set(PAIRS):
        parser.error(f"--pairs takes {'; '.join(PAIRS)}")
    with tempfile.TemporaryDirectory(prefix="llmport-startup-") as tmp:
        project = Path(tmp)
        (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (project / "test_one.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
        (project / f"{NOOP_PLUGIN}.py").write_text('"""A pytest plugin without hooks."""\n', encoding="utf-8")
        results = measure(project, args.runs, pairs, args.before)
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
        if "before_cpu_ms" in f:
            print(
                f"{'  before':<16}{'':>10}{f['before_wall_ms']:>10.1f}{f['before_added_wall_ms']:>+9.1f}"
                f"{'':>10}{f['before_cpu_ms']:>10.1f}{f['before_added_cpu_ms']:>+9.1f}"
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
