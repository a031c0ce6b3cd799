"""Replay at scale: N tests x 5 providers replayed with ``pytest -n 2``; time, CPU and memory per worker.

Run as ``python bench/scale.py [--tests 200,2000,10000] [--workers 2] [--extras-up-to 10000] [--tracemalloc]``
(the default sizes are 1,000, 10,000 and 50,000 items; ``--tests 20`` is a quick run).

For each size three projects are generated (``common.write_project``; llmport's test bodies are
bench/replay.py's):

* ``llmport``: N ``@pytest.mark.llm_portable`` tests, one openai SDK call each, run for 5 providers. The
  cassettes are recorded once, with ``-n`` workers, against one :class:`~pytest_llmport.testing.FakeProvider`
  (each provider's base URL is its own path prefix on it); the fake is stopped before any replay, so a
  request that reached it would fail its test.
* ``plain``: N trivial tests parametrised over the same 5 names: the same number of items, for pytest's and
  xdist's own time and memory.
* ``pytest-recording``: N ``@pytest.mark.vcr`` tests parametrised over the 5 names, the same call through
  a module-level client per name, recorded and replayed like llmport's (up to ``--extras-up-to`` items).

With ``--before DIR`` (a folder holding another version's ``pytest_llmport`` package, e.g. extracted with
``git archive <rev> pytest_llmport | tar -x -C DIR``) ``llmport-before`` replays the same cassettes with
that version (its own parsed-cassette cache), interleaved with the others: before/after from one run.
With ``--gc-freeze``, ``llmport-gc-frozen`` replays with ``gc.freeze()`` called after collection: what the
cyclic garbage collector's walks over the collected items cost (the ``gc ms`` column, timed through
``gc.callbacks`` in every variant).

Replays run ``--llmport-record-mode=none``, warm, and (up to ``--extras-up-to`` items) with ``--cache-clear``
first: a fresh checkout, every cassette parsed. Each run's CPU is the user and system time of all its
processes; on a busy machine it is the figure to compare (elapsed time includes waiting for a core).
Every process (the xdist controller and each worker) measures itself from a conftest: wall and CPU time
of its test loop, its resident memory after collection, every few hundred items and at the end, and its
peak (``VmHWM`` of ``/proc/self/status``); what a worker gains per item is the slope between its first
and last sample. With ``--tracemalloc`` one more warm replay traces allocations in the workers and prints
what the run kept between the end of collection and its end, by file and by line. Nothing here asserts on
timings.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import clean_env, count_cassettes, fail, write_json, write_project
from replay import HEADERS, TEST_BODIES

from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.testing import FakeProvider

PROVIDERS = ("openai", "zhipu", "qwen", "deepseek", "moonshot")
LABELS = (
    "plain",
    "llmport",
    "llmport-before",
    "llmport-gc-frozen",
    "llmport-cold",
    "pytest-recording",
    "record",
)
TESTS_PER_FILE = 100
DUMMY_KEY = "sk-bench-scale-dummy"  # llmport-scan: allow (a dummy key for the fake provider)

# Every process writes one JSON file named after itself into $LLMPORT_BENCH_OUT.
SCALE_CONFTEST = '''\
"""Bench: each pytest process (xdist controller or worker) measures its own time and memory."""

import gc
import json
import os
import time

import pytest

_EVERY = int(os.environ.get("LLMPORT_BENCH_RSS_EVERY", "500"))
_TRACE = bool(os.environ.get("LLMPORT_BENCH_TRACEMALLOC"))
if _TRACE:
    import tracemalloc

    tracemalloc.start(1)
_FREEZE = bool(os.environ.get("LLMPORT_BENCH_GC_FREEZE"))
_DATA = {"imported_s": time.perf_counter(), "samples": [], "done": 0, "passed": 0, "failed": 0}
_SNAPSHOT = []
# Time the cyclic garbage collector takes in the test loop, by generation: a collection of the oldest
# generation walks every live object, so its cost grows with what the process keeps.
_GC = {"in_loop": False, "started": 0.0, "s": [0.0, 0.0, 0.0], "n": [0, 0, 0]}


def _gc_timer(phase, info):
    if not _GC["in_loop"]:
        return
    if phase == "start":
        _GC["started"] = time.process_time()
    else:
        generation = info["generation"]
        _GC["s"][generation] += time.process_time() - _GC["started"]
        _GC["n"][generation] += 1


gc.callbacks.append(_gc_timer)


def _memory_kb():
    found = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                found[key] = int(value.split()[0])
    return found


def _who(config):
    return getattr(config, "workerinput", {}).get("workerid", "controller")


def pytest_sessionstart(session):
    _DATA["session_start_s"] = time.perf_counter()


def pytest_collection_finish(session):
    _DATA["collect_s"] = time.perf_counter() - _DATA["session_start_s"]
    _DATA["collected"] = len(session.items)
    _DATA["rss_collected_kb"] = _memory_kb()["VmRSS"]
    if _FREEZE:
        gc.freeze()  # what was collected stays: no later collection walks it (the remedy measured)
    if _TRACE:
        gc.collect()  # garbage a later collection frees is not what the run keeps
        _SNAPSHOT.append(tracemalloc.take_snapshot())


def pytest_runtest_logreport(report):
    if report.failed:
        _DATA["failed"] += 1
    elif report.when == "call" and report.passed:
        _DATA["passed"] += 1


def pytest_runtest_logfinish(nodeid, location):
    _DATA["done"] += 1
    if _DATA["done"] % _EVERY == 0:
        _DATA["samples"].append((_DATA["done"], _memory_kb()["VmRSS"]))


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    start, cpu = time.perf_counter(), time.process_time()
    _GC["in_loop"] = True
    try:
        return (yield)
    finally:
        _GC["in_loop"] = False
        _DATA["loop_s"] = time.perf_counter() - start
        _DATA["loop_cpu_s"] = time.process_time() - cpu
        _DATA["gc_s"], _DATA["gc_n"] = list(_GC["s"]), list(_GC["n"])
        _DATA["gc_frozen"] = gc.get_freeze_count()


def pytest_sessionfinish(session):
    # Not at unconfigure: xdist's controller may end a worker once its session has finished.
    out = os.environ.get("LLMPORT_BENCH_OUT")
    if not out:
        return
    memory = _memory_kb()
    _DATA.update(rss_end_kb=memory["VmRSS"], hwm_kb=memory["VmHWM"], who=_who(session.config))
    _DATA["process_s"] = time.perf_counter() - _DATA["imported_s"]
    if _TRACE and _SNAPSHOT:
        gc.collect()
        last = tracemalloc.take_snapshot()
        for key, group in (("tracemalloc", "lineno"), ("tracemalloc_files", "filename")):
            grown = last.compare_to(_SNAPSHOT[0], group)
            _DATA[key] = [(str(stat.traceback[0]), stat.size_diff, stat.count_diff) for stat in grown[:25]]
    with open(os.path.join(out, _DATA["who"] + ".json"), "w", encoding="utf-8") as handle:
        json.dump(_DATA, handle)
'''

PLAIN_HEADER = f"import pytest\n\nNAMES = {list(PROVIDERS)!r}\n"
# pytest-recording's project: the same call through one module-level client per provider name, each to
# its own path prefix on the fake, one cassette per item (test_00001[zhipu].yaml).
VCR_HEADER = f"""\
import os

import openai
import pytest

NAMES = {list(PROVIDERS)!r}
BASE = os.environ["BENCH_FAKE_BASE_URL"]
CLIENTS = {{
    name: openai.OpenAI(api_key={DUMMY_KEY!r}, base_url=f"{{BASE}}/{{name}}/v1", max_retries=0)
    for name in NAMES
}}
"""
VCR_BODY = """
@pytest.mark.vcr
@pytest.mark.parametrize("name", NAMES)
def test_{i:05d}(name):
    reply = CLIENTS[name].chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": "bench {i:05d}"}}]
    )
    assert reply.choices[0].message.content
"""
PLAIN_BODY = """
@pytest.mark.parametrize("name", NAMES)
def test_{i:05d}(name):
    assert name
"""


@dataclass
class Run:
    """One pytest run: the whole process from outside, and what each of its processes measured."""

    label: str
    items: int
    wall_s: float
    cpu_s: float  # user + system CPU of every process of the run (controller and workers)
    controller: dict[str, Any]
    workers: list[dict[str, Any]]

    @property
    def per_item_ms(self) -> float:
        return self.wall_s * 1000 / self.items

    @property
    def loop_per_item_ms(self) -> float:
        return self.controller["loop_s"] * 1000 / self.items

    @property
    def cpu_per_item_ms(self) -> float:
        """CPU of the whole run per item: on a busy machine wall time includes waiting for a core."""
        return self.cpu_s * 1000 / self.items

    @property
    def loop_cpu_per_item_ms(self) -> float:
        """The workers' CPU in their test loops, per item."""
        return sum(w["loop_cpu_s"] for w in self.workers) * 1000 / self.items

    @property
    def gc_per_item_ms(self) -> float:
        """The workers' CPU in the cyclic garbage collector during their test loops, per item."""
        return sum(sum(w.get("gc_s", ())) for w in self.workers) * 1000 / self.items

    @property
    def gc_oldest(self) -> int:
        """Collections of the oldest generation (each walks every live object) in the workers' loops."""
        return sum(w.get("gc_n", [0, 0, 0])[2] for w in self.workers)

    def worker_mb(self, key: str) -> float:
        return max(w[key] for w in self.workers) / 1024

    @property
    def rss_slope_kb(self) -> float | None:
        """KB of resident memory a worker gains per item it runs, between its first and last sample: what
        grows with the suite (the first tests' imports and the collection are before the first sample)."""
        slopes = [
            (w["samples"][-1][1] - w["samples"][0][1]) / (w["samples"][-1][0] - w["samples"][0][0])
            for w in self.workers
            if len(w["samples"]) >= 2
        ]
        return max(slopes) if slopes else None

    @property
    def loop_growth_mb(self) -> float:
        """The largest worker's memory growth from the end of collection to the end of its run."""
        return max(w["rss_end_kb"] - w["rss_collected_kb"] for w in self.workers) / 1024

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "items": self.items,
            "wall_s": self.wall_s,
            "per_item_ms": self.per_item_ms,
            "loop_s": self.controller["loop_s"],
            "loop_per_item_ms": self.loop_per_item_ms,
            "cpu_s": self.cpu_s,
            "cpu_per_item_ms": self.cpu_per_item_ms,
            "loop_cpu_per_item_ms": self.loop_cpu_per_item_ms,
            "gc_per_item_ms": self.gc_per_item_ms,
            "gc_oldest": self.gc_oldest,
            "worker_collect_s": max(w["collect_s"] for w in self.workers),
            "worker_peak_mb": self.worker_mb("hwm_kb"),
            "worker_rss_collected_mb": self.worker_mb("rss_collected_kb"),
            "worker_rss_end_mb": self.worker_mb("rss_end_kb"),
            "worker_loop_growth_mb": self.loop_growth_mb,
            "worker_rss_slope_kb_per_item": self.rss_slope_kb,
            "controller_peak_mb": self.controller["hwm_kb"] / 1024,
            "workers": self.workers,
        }


def provider_env(base: str, with_keys: bool) -> dict[str, str]:
    """Each provider's base URL on the fake (a path prefix of its own), and the dummy key while recording."""
    env: dict[str, str] = {}
    specs = {spec.name: spec for spec in BUILTIN_PROVIDERS}
    for name in PROVIDERS:
        spec = specs[name]
        env[f"{spec.env_prefix}_BASE_URL"] = f"{base}/{name}/v1"
        if with_keys:
            env[spec.api_key_env] = DUMMY_KEY
    return env


def scrubbed_env(extra: dict[str, str]) -> dict[str, str]:
    env = clean_env(extra)
    for spec in BUILTIN_PROVIDERS:  # a key of the developer's own would make a replay a recording
        if spec.api_key_env not in extra:
            env.pop(spec.api_key_env, None)
    return env


def run(project: Path, args: list[str], env: dict[str, str], items: int, label: str, workers: int) -> Run:
    """Run pytest with ``-n workers``; fail loudly unless every one of ``items`` items passed."""
    out = project / ".bench-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    # About ten memory samples per worker, whatever the size: the slope between them is what a worker
    # gains per item.
    every = max(50, items // workers // 10)
    env = {**env, "LLMPORT_BENCH_OUT": str(out), "LLMPORT_BENCH_RSS_EVERY": str(every)}
    command = [sys.executable, "-m", "pytest", "-q", "-n", str(workers), *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers were reaped by the controller
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        fail(label, proc, command)
    found = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in out.glob("*.json")}
    controller = found.pop("controller", None)
    if controller is None or len(found) != workers:
        raise SystemExit(f"{label}: expected a controller and {workers} workers, got {sorted(found)}")
    if controller["passed"] != items or controller["failed"]:
        raise SystemExit(f"{label}: expected {items} passing items, got {controller}")
    return Run(label, items, wall, cpu, controller, sorted(found.values(), key=lambda w: w["who"]))


def measure(root: Path, tests: int, args: argparse.Namespace) -> dict[str, Any]:
    items = tests * len(PROVIDERS)
    files = max(1, -(-tests // TESTS_PER_FILE))
    where = root / str(tests)
    llmport = write_project(
        where / "llmport", HEADERS["llmport"], TEST_BODIES["llmport"], tests, files, SCALE_CONFTEST
    )
    plain = write_project(where / "plain", PLAIN_HEADER, PLAIN_BODY, tests, files, SCALE_CONFTEST)
    # A fresh checkout and pytest-recording are measured up to --extras-up-to items (the 50,000-item
    # point would take the better part of an hour more).
    extras = items <= args.extras_up_to
    vcr = write_project(where / "vcr", VCR_HEADER, VCR_BODY, tests, files, SCALE_CONFTEST) if extras else None
    providers = f"--providers={','.join(PROVIDERS)}"
    fake = FakeProvider(api_key=DUMMY_KEY).start()
    base = fake.url
    vcr_env = scrubbed_env({"BENCH_FAKE_BASE_URL": base})
    try:
        print(f"[{items} items] recording {tests} tests x {len(PROVIDERS)} providers ...", flush=True)
        recorded = run(
            llmport,
            [providers, "--llmport-record-mode=once", "-p", "no:cacheprovider"],
            scrubbed_env(provider_env(base, with_keys=True)),
            items,
            "record",
            args.workers,
        )
        if vcr is not None:
            print(f"[{items} items] recording pytest-recording's cassettes ...", flush=True)
            once = ["--record-mode=once", "-p", "no:cacheprovider"]
            run(vcr, once, vcr_env, items, "vcr-record", args.workers)
    finally:
        fake.stop()  # from here on a request that reaches the fake fails its test
    for project in (llmport, vcr):
        found = count_cassettes(project) if project is not None else items
        if found != items:
            raise SystemExit(f"record: expected {items} cassettes in {project}, found {found}")
    replay_env = scrubbed_env(provider_env(base, with_keys=False))
    replay_args = [providers, "--llmport-record-mode=none"]
    runs = {"record": recorded}
    variants: list[tuple[str, Path, list[str], dict[str, str]]] = [("plain", plain, [], scrubbed_env({}))]
    if extras:
        variants.append(("llmport-cold", llmport, [*replay_args, "--cache-clear"], replay_env))
    variants.append(("llmport", llmport, replay_args, replay_env))
    if args.before:
        before_env = {**replay_env, "PYTHONPATH": str(Path(args.before).resolve())}
        before_args = [*replay_args, "-o", "cache_dir=.pytest_cache_before"]  # its own parsed-cassette cache
        variants.append(("llmport-before", llmport, before_args, before_env))
    if args.gc_freeze:
        frozen_env = {**replay_env, "LLMPORT_BENCH_GC_FREEZE": "1"}
        variants.append(("llmport-gc-frozen", llmport, replay_args, frozen_env))
    if vcr is not None:
        variants.append(("pytest-recording", vcr, ["--record-mode=none"], vcr_env))
    for r in range(args.repeat):
        for label, project, extra, env in variants:
            result = run(project, extra, env, items, label, args.workers)
            print(
                f"[{items} items] run {r + 1}/{args.repeat} {label:<16} wall {result.wall_s:7.2f} s  "
                f"{result.per_item_ms:6.3f} ms/item  cpu {result.cpu_per_item_ms:6.3f} ms/item  "
                f"worker peak {result.worker_mb('hwm_kb'):6.1f} MB",
                flush=True,
            )
            if label not in runs or result.cpu_s < runs[label].cpu_s:
                runs[label] = result
    figures: dict[str, Any] = {"tests": tests, "items": items, "workers": args.workers}
    figures.update({label: result.as_dict() for label, result in runs.items()})
    if args.tracemalloc:
        traced = run(
            llmport,
            replay_args,
            {**replay_env, "LLMPORT_BENCH_TRACEMALLOC": "1"},
            items,
            "tracemalloc",
            args.workers,
        )
        figures["tracemalloc"] = traced.workers[0].get("tracemalloc", [])
        figures["tracemalloc_files"] = traced.workers[0].get("tracemalloc_files", [])
        figures["tracemalloc_items"] = traced.workers[0]["done"]
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)
    return figures


def print_tables(results: list[dict[str, Any]], workers: int) -> None:
    print(f"\nreplay at scale, pytest -n {workers}, 5 providers; whole process (start-up and collection in)")
    header = (
        f"{'items':>7} {'variant':<17}{'wall s':>8}{'ms/item':>9}{'cpu s':>8}{'cpu ms/item':>12}"
        f"{'x plain':>8}{'loop cpu ms':>12}{'collect s':>10}{'peak MB':>8}{'after coll.':>12}"
        f"{'growth':>7}{'KB/item':>8}{'gc ms':>7}{'gen2':>6}"
    )
    print(header)
    print("-" * len(header))
    for figures in results:
        plain = figures["plain"]["cpu_per_item_ms"]
        for label in LABELS:
            f = figures.get(label)
            if f is None:
                continue
            slope = f.get("worker_rss_slope_kb_per_item")
            print(
                f"{figures['items']:>7} {label:<17}{f['wall_s']:>8.1f}{f['per_item_ms']:>9.3f}"
                f"{f['cpu_s']:>8.1f}{f['cpu_per_item_ms']:>12.3f}{f['cpu_per_item_ms'] / plain:>8.2f}"
                f"{f['loop_cpu_per_item_ms']:>12.3f}{f['worker_collect_s']:>10.2f}"
                f"{f['worker_peak_mb']:>8.1f}{f['worker_rss_collected_mb']:>12.1f}"
                f"{f['worker_loop_growth_mb']:>7.1f}{(f'{slope:.2f}' if slope is not None else '-'):>8}"
                f"{f.get('gc_per_item_ms', 0.0):>7.3f}{f.get('gc_oldest', 0):>6}"
            )
    print(
        "(cpu = user + system CPU of every process of the run, x plain compares it; loop cpu = the\n"
        " workers' CPU in their test loops, per item. MB per worker, the largest: peak = VmHWM; after coll.\n"
        " = resident after collection; growth = resident at the end minus after collection; KB/item =\n"
        " resident memory a worker gains per item it runs, from its first sample to its last; gc ms = the\n"
        " workers' CPU in the cyclic garbage collector during their loops, per item (part of loop cpu);\n"
        " gen2 = collections of the oldest generation there, each walking every live object.\n"
        " ms/item = whole-process wall / items.)"
    )
    if len(results) > 1:
        first, last = results[0], results[-1]
        for label in LABELS:
            if label in first and label in last:
                cpu = last[label]["cpu_per_item_ms"] / first[label]["cpu_per_item_ms"]
                loop = last[label]["loop_cpu_per_item_ms"] / first[label]["loop_cpu_per_item_ms"]
                print(
                    f"{label}: per-item CPU at {last['items']} items is {cpu:.2f}x that at {first['items']} "
                    f"(whole run), {loop:.2f}x (test loop)"
                )
    for figures in results:
        ran = figures.get("tracemalloc_items") or 1
        for key, what in (("tracemalloc_files", "by file"), ("tracemalloc", "by line")):
            traced = figures.get(key)
            if not traced:
                continue
            print(
                f"\n[{figures['items']} items] tracemalloc {what}, one worker ({ran} items): what the run "
                "kept from the end of collection to its end (garbage collected first):"
            )
            for where, size, count in traced[:15]:
                print(f"  {size / 1024:>10.1f} KiB {size / ran:>8.0f} B/item {count:>+8d} blocks  {where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--tests",
        default="200,2000,10000",
        help="comma-separated test counts, each x 5 providers (default 200,2000,10000: 1k, 10k, 50k items)",
    )
    parser.add_argument("--workers", type=int, default=2, help="pytest -n workers (default 2)")
    parser.add_argument("--repeat", type=int, default=1, help="replays per variant; the fastest is kept")
    parser.add_argument(
        "--extras-up-to",
        type=int,
        default=10_000,
        metavar="ITEMS",
        help="measure a fresh checkout and pytest-recording only up to this many items (default 10000)",
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also replay with the pytest_llmport package under DIR (another version), as llmport-before",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="also replay with gc.freeze() after collection (llmport-gc-frozen): the collector's walks",
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also trace one replay's allocations")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (- = stdout)")
    parser.add_argument("--keep", action="store_true", help="keep the generated projects and print where")
    args = parser.parse_args(argv)
    if args.before and not (Path(args.before) / "pytest_llmport" / "__init__.py").is_file():
        parser.error(f"--before {args.before}: no pytest_llmport package there")
    sizes = [int(part) for part in args.tests.split(",") if part.strip()]
    if not sizes or min(sizes) < 1 or args.workers < 1 or args.repeat < 1:
        parser.error("--tests, --workers and --repeat must be positive")
    root = Path(tempfile.mkdtemp(prefix="llmport-scale-"))
    started = time.perf_counter()
    try:
        results = [measure(root, tests, args) for tests in sizes]
    finally:
        if args.keep:
            print(f"\nprojects kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_tables(results, args.workers)
    print(f"\nbench/scale.py took {time.perf_counter() - started:.0f} s")
    write_json(args.json, {"sizes": results, "workers": args.workers, "providers": list(PROVIDERS)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
