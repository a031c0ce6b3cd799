"""Per-item cost of replaying ``llm_portable`` tests, against plain tests and against pytest-recording.

Run as ``python bench/replay.py [--n 1000] [--repeat 3] [--files 10] [--profile]``.

Four temporary projects are generated, each with its own ``pytest.ini`` and a ``conftest.py`` holding a
timing hook wrapper around ``pytest_runtestloop``, so interpreter start-up, plugin imports and collection
are excluded from the per-item figures:

* ``plain``: N trivial tests;
* ``floor``: N tests each making one openai SDK chat completion on an in-memory ``httpx2.MockTransport``
  (one client per module): the cost of the application's own call without any recording;
* ``llmport``: N ``@pytest.mark.llm_portable`` tests calling ``llm_provider.openai_client()``, recorded once
  against a :class:`~pytest_llmport.testing.FakeProvider`, then replayed with ``--llmport-record-mode=none``
  while the fake server is stopped;
* ``pytest-recording``: N ``@pytest.mark.vcr`` tests making the same call through a module-level client,
  recorded with ``--record-mode=once``, replayed with ``--record-mode=none`` while the server is stopped.

Every variant runs ``--repeat`` times (interleaved, so slow drift of a noisy machine hits all of them alike)
and the minimum is reported. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import tempfile
from pathlib import Path

from common import Timing, clean_env, count_cassettes, ms, run_pytest, write_json, write_project

from pytest_llmport.testing import FakeProvider

TARGET_PLAIN_MS = 0.72
TARGET_ADDED_MS = 0.3
PROFILE_FILTER = r"pytest_llmport|/vcr/|/yaml/"

# One chat.completion as the FakeProvider answers it; the floor's in-memory transport returns it verbatim.
CANNED_COMPLETION = {
    "id": "chatcmpl-fake-0000000000000000-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "[fake] bench 0000", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    "system_fingerprint": "fp_fake",
}

HEADERS: dict[str, str] = {
    "plain": "",
    "floor": f"""\
import json

import httpx2
import openai

_BODY = json.dumps({CANNED_COMPLETION!r}).encode()


def _handler(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=_BODY, headers={{"content-type": "application/json; charset=utf-8"}})


client = openai.OpenAI(
    api_key="sk-bench-floor",
    base_url="http://127.0.0.1:9/v1",
    max_retries=0,
    http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
)
""",
    # The application under test imports its SDK at module level, as in the other variants; otherwise
    # the openai import (about a second) would land in llmport's first test instead of in collection.
    "llmport": "import openai  # noqa: F401\nimport pytest\n",
    "pytest-recording": """\
import os

import openai
import pytest

client = openai.OpenAI(api_key="sk-bench-dummy", base_url=os.environ["BENCH_FAKE_BASE_URL"], max_retries=0)
""",
}

TEST_BODIES: dict[str, str] = {
    "plain": """
def test_{i:05d}():
    assert True
""",
    "floor": """
def test_{i:05d}():
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": "bench {i:05d}"}}]
    )
    assert reply.choices[0].message.content
""",
    "llmport": """
@pytest.mark.llm_portable
def test_{i:05d}(llm_provider):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{{"role": "user", "content": "bench {i:05d}"}}]
    )
    assert reply.choices[0].message.content
""",
    "pytest-recording": """
@pytest.mark.vcr
def test_{i:05d}():
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": "bench {i:05d}"}}]
    )
    assert reply.choices[0].message.content
""",
}

VARIANTS = tuple(TEST_BODIES)
# pytest's cache plugin stays on (common.run_pytest passes only -q), as in a default pytest run: llmport
# keeps parsed cassettes there.
REPLAY_ARGS: dict[str, tuple[str, ...]] = {
    "plain": (),
    "floor": (),
    "llmport": ("--providers=openai", "--llmport-record-mode=none"),
    # --cache-clear empties the cache first: a fresh CI checkout, every cassette parsed from YAML.
    "llmport-cold": ("--providers=openai", "--llmport-record-mode=none", "--cache-clear"),
    "pytest-recording": ("--record-mode=none",),
}
TIMED = ("plain", "floor", "llmport", "llmport-cold", "pytest-recording")
RECORD_ARGS: dict[str, tuple[str, ...]] = {
    "llmport": ("--providers=openai", "--llmport-record-mode=once"),
    "pytest-recording": ("--record-mode=once",),
}


def build_project(root: Path, variant: str, n: int, files: int) -> Path:
    """Write a self-contained project: pytest.ini, timing conftest, N tests spread over ``files`` modules."""
    return write_project(root / variant, HEADERS[variant], TEST_BODIES[variant], n, files)


def record(projects: dict[str, Path], n: int, envs: dict[str, dict[str, str]]) -> None:
    for variant, args in RECORD_ARGS.items():
        print(f"recording {variant} cassettes ...", flush=True)
        run_pytest(projects[variant], args, envs[variant], n, f"record {variant}")
        found = count_cassettes(projects[variant])
        if found != n:
            raise SystemExit(f"record {variant}: expected {n} cassettes, found {found}")


def _table(title: str, per: dict[str, float], best: dict[str, Timing], show_runs: bool) -> None:
    plain, floor = per["plain"], per["floor"]
    print(title)
    header = f"{'variant':<18}{'per-item ms':>12}{'x plain':>9}{'x floor':>9}{'added>floor ms':>16}"
    if show_runs:
        header += f"{'loop s':>9}{'collect s':>11}{'wall s':>9}"
    print(header)
    print("-" * len(header))
    for variant in TIMED:
        added = f"{per[variant] - floor:.3f}" if variant not in ("plain", "floor") else ""
        line = (
            f"{variant:<18}{per[variant]:>12.3f}{per[variant] / plain:>9.2f}{per[variant] / floor:>9.2f}"
            f"{added:>16}"
        )
        if show_runs:
            t = best[variant]
            line += f"{t.loop_s:>9.3f}{t.collect_s:>11.3f}{t.wall_s:>9.3f}"
        print(line)
    print(
        f"pytest-recording / llmport per-item: {per['pytest-recording'] / per['llmport']:.2f}x "
        f"(cold cache: {per['pytest-recording'] / per['llmport-cold']:.2f}x)"
    )


def print_table(runs: dict[str, list[Timing]], n: int, repeat: int) -> None:
    best = {variant: min(ts, key=lambda t: t.loop_s) for variant, ts in runs.items()}
    wall = {variant: ms(t.loop_s, n) for variant, t in best.items()}
    cpu = {variant: ms(min(t.cpu_s for t in ts), n) for variant, ts in runs.items()}
    print(f"\nN={n} items per variant, best of {repeat}; per-item = pytest_runtestloop time / N")
    _table("\n[elapsed time in the test loop]", wall, best, show_runs=True)
    _table(
        "\n[CPU time of the pytest process in the test loop (less sensitive to a loaded machine)]",
        cpu,
        best,
        show_runs=False,
    )
    print("\n[where the loop time goes, per item, from pytest's report durations of the best run]")
    header = (
        f"{'variant':<18}{'setup ms':>10}{'call ms':>10}{'teardown ms':>13}{'other ms':>10}{'total ms':>10}"
    )
    print(header)
    print("-" * len(header))
    for variant in TIMED:
        t = best[variant]
        setup, call, teardown = (ms(t.phases[key], n) for key in ("setup", "call", "teardown"))
        total = ms(t.loop_s, n)
        other = total - setup - call - teardown
        print(f"{variant:<18}{setup:>10.3f}{call:>10.3f}{teardown:>13.3f}{other:>10.3f}{total:>10.3f}")
    print("(other = reporting, logging and hook overhead outside the three phases)")
    print("\n[one-time vs steady state: first item's and median item's phase durations, ms]")
    header = (
        f"{'variant':<18}{'1st setup':>10}{'1st call':>10}{'med setup':>11}{'med call':>10}{'med tear':>10}"
    )
    print(header)
    print("-" * len(header))
    for variant in TIMED:
        t = best[variant]
        first, median = t.first, t.median
        print(
            f"{variant:<18}{first['setup'] * 1e3:>10.3f}{first['call'] * 1e3:>10.3f}"
            f"{median['setup'] * 1e3:>11.3f}{median['call'] * 1e3:>10.3f}{median['teardown'] * 1e3:>10.3f}"
        )
    print(
        f"\ntargets (context only): plain ~{TARGET_PLAIN_MS:.2f} ms; llmport <= floor + {TARGET_ADDED_MS} ms "
        f"(~1.65 ms, ~2.3x plain, at the reference figures)"
    )
    for label, per in (("elapsed", wall), ("CPU", cpu)):
        target = per["floor"] + TARGET_ADDED_MS
        verdict = "within" if per["llmport"] <= target else "ABOVE"
        print(
            f"{label}: llmport {per['llmport']:.3f} ms is {verdict} floor + {TARGET_ADDED_MS} ms "
            f"= {target:.3f} ms (added {per['llmport'] - per['floor']:.3f} ms; "
            f"cold cache {per['llmport-cold']:.3f} ms, added {per['llmport-cold'] - per['floor']:.3f} ms)"
        )


def figures(runs: dict[str, list[Timing]], n: int) -> dict[str, object]:
    """The best run's figures per variant, per item in ms, for ``--json`` (bench/all.py reads them)."""
    out: dict[str, object] = {"n": n, "repeat": max(len(ts) for ts in runs.values())}
    for variant, ts in runs.items():
        best = min(ts, key=lambda t: t.loop_s)
        out[variant] = {
            "loop_ms": ms(best.loop_s, n),
            "cpu_ms": ms(min(t.cpu_s for t in ts), n),
            "wall_s": best.wall_s,
            "collect_s": best.collect_s,
        }
    return out


def profile(project: Path, env: dict[str, str], n: int, out: Path, top: int = 25) -> None:
    prof = out / "llmport-replay.prof"
    # One unprofiled replay first, so the profile shows a warm run (parsed cassettes cached).
    run_pytest(project, REPLAY_ARGS["llmport"], env, n, "warm llmport")
    print(f"\nprofiling a warm llmport replay under cProfile -> {prof}", flush=True)
    timing = run_pytest(
        project,
        REPLAY_ARGS["llmport"],
        env,
        n,
        "profile llmport",
        prefix=("-m", "cProfile", "-o", str(prof), "-m", "pytest"),
    )
    per_item = ms(timing.loop_s, n)
    print(f"(profiled loop: {timing.loop_s:.3f} s, {per_item:.3f} ms/item with cProfile overhead)")
    for key in ("cumulative", "tottime"):
        print(f"\n=== top {top} by {key} (filter: {PROFILE_FILTER}) ===")
        pstats.Stats(str(prof)).sort_stats(key).print_stats(PROFILE_FILTER, top)
    print(f"\n=== top {top} by tottime, all code ===")
    pstats.Stats(str(prof)).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="tests per variant (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the minimum is kept")
    parser.add_argument("--files", type=int, default=10, help="test modules the N tests are spread over")
    parser.add_argument("--profile", action="store_true", help="also profile one llmport replay run")
    parser.add_argument(
        "--profile-only", action="store_true", help="skip the timed runs, only record and profile"
    )
    parser.add_argument(
        "--with-key",
        action="store_true",
        help="keep OPENAI_API_KEY set while replaying llmport (a developer's machine; default: unset, as CI)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (- = stdout)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects and print where")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1 or args.files < 1:
        parser.error("--n, --repeat and --files must be positive")

    root = Path(tempfile.mkdtemp(prefix="llmport-bench-"))
    try:
        projects = {variant: build_project(root, variant, args.n, args.files) for variant in VARIANTS}
        fake = FakeProvider(api_key="sk-bench-dummy").start()
        base_url = fake.base_url
        key_env = {"OPENAI_API_KEY": "sk-bench-dummy"}
        record_envs = {
            "llmport": clean_env({"LLMPORT_OPENAI_BASE_URL": base_url, **key_env}),
            "pytest-recording": clean_env({"BENCH_FAKE_BASE_URL": base_url}),
        }
        try:
            record(projects, args.n, record_envs)
        finally:
            fake.stop()  # replays below must never reach it: any request would fail its test
        envs: dict[str, dict[str, str]] = {
            "plain": clean_env({}),
            "floor": clean_env({}),
            "llmport": clean_env({"LLMPORT_OPENAI_BASE_URL": base_url, **(key_env if args.with_key else {})}),
            "pytest-recording": clean_env({"BENCH_FAKE_BASE_URL": base_url}),
        }
        if not args.profile_only:
            runs: dict[str, list[Timing]] = {variant: [] for variant in TIMED}
            for r in range(args.repeat):
                for variant in TIMED:
                    project = projects[variant.removesuffix("-cold")]
                    env = envs[variant.removesuffix("-cold")]
                    t = run_pytest(project, REPLAY_ARGS[variant], env, args.n, variant)
                    runs[variant].append(t)
                    print(
                        f"run {r + 1}/{args.repeat} {variant:<17} loop {t.loop_s:7.3f} s  "
                        f"{ms(t.loop_s, args.n):6.3f} ms/item  cpu {ms(t.cpu_s, args.n):6.3f} ms/item  "
                        f"wall {t.wall_s:6.3f} s",
                        flush=True,
                    )
            print_table(runs, args.n, args.repeat)
            write_json(args.json, figures(runs, args.n))
        if args.profile or args.profile_only:
            profile(projects["llmport"], envs["llmport"], args.n, root)
    finally:
        if args.keep:
            print(f"\nprojects kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
