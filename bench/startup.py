"""What the plugin adds to a pytest run that has no marked test: whole process, one-test project.

Run as ``python bench/startup.py [--runs 10]``. Each run starts a fresh interpreter running pytest on a
project with one plain test, once with ``-p no:llmport`` and once with the plugin loaded (interleaved, so a
noisy machine's drift hits both alike); the medians and their difference are printed, with the modules the
plugin alone imports. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = """\
import sys
before = set(sys.modules)
import pytest_llmport.plugin
print(" ".join(sorted(m for m in set(sys.modules) - before if not m.startswith("pytest_llmport"))))
"""


def one_run(project: Path, extra: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=project,
        check=True,
        capture_output=True,
    )
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llmport-startup-") as tmp:
        project = Path(tmp)
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "test_one.py").write_text("def test_one():\n    pass\n")
        without: list[float] = []
        with_plugin: list[float] = []
        for _ in range(args.runs):
            without.append(one_run(project, ["-p", "no:llmport"]))
            with_plugin.append(one_run(project, []))
    off, on = statistics.median(without), statistics.median(with_plugin)
    imported = subprocess.run(
        [sys.executable, "-c", "import pytest\n" + PROBE], check=True, capture_output=True, text=True
    ).stdout.split()
    print(f"pytest, one plain test, median of {args.runs} whole-process runs:")
    print(f"  -p no:llmport  {off:8.1f} ms")
    print(f"  with llmport   {on:8.1f} ms   (+{on - off:.1f} ms; target: at most +20 ms)")
    print(f"  modules the plugin imports beyond pytest's: {len(imported)} ({', '.join(imported) or 'none'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
