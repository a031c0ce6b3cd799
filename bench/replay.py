"""Per-item cost of replaying ``llm_portable`` tests, against plain tests and against pytest-recording.

Run as ``python bench/replay.py [--n 1000] [--repeat 3] [--files 10] [--providers openai,zhipu,...]
[--only llmport,floor] [--profile]``.

Four temporary projects are generated, each with its own ``pytest.ini`` and a ``conftest.py`` holding a
timing hook wrapper around ``pytest_runtestloop``, so interpreter start-up, plugin imports and collection
are excluded from the per-item figures:

* ``plain``: N trivial tests;
* ``floor``: N tests each making one openai SDK chat completion on an in-memory ``httpx2.MockTransport``
  (one client per module): the cost of the application's own call without any recording;
* ``floor-fixture``: the floor's tests taking the client from a function-scoped fixture, parametrized by a
  provider name (llmport's shape): what pytest itself charges any plugin that hands each test a provider;
* ``llmport``: N ``@pytest.mark.llm_portable`` tests calling ``llm_provider.openai_client()``, recorded once
  against a :class:`~pytest_llmport.testing.FakeProvider`, then replayed with ``--llmport-record-mode=none``
  while the fake server is stopped;
* ``pytest-recording``: N ``@pytest.mark.vcr`` tests making the same call through a module-level client,
  recorded with ``--record-mode=once``, replayed with ``--record-mode=none`` while the server is stopped.

With ``--providers a,b,...`` (P names, OpenAI-compatible ones) the llmport project holds N/P tests, each
run once per provider: N items again. Four more llmport measurements run beside them:

* ``llmport-mismatch``: the same replay, but every test sends a prompt that was never recorded, so every
  item fails with the closest-request message: what a suite of stale cassettes costs to say so;
* ``llmport-cold-pyyaml``: the fresh-checkout replay with the fast extra (yaml-rs) hidden, so PyYAML
  parses every cassette: what the extra spares;
* ``stream`` and ``oneshot``: ``--stream-n`` tests each replaying, through ``llm_provider.httpx_client()``,
  one response of the same size: a 200-event SSE stream read event by event, or one JSON body read whole.

A last table gives the whole process's CPU time per item (start-up, collection and session end
included) and the part of it outside the test loop, against plain pytest's.

With ``--before DIR`` (a folder holding another version's ``pytest_llmport`` package, e.g. extracted with
``git archive <rev> pytest_llmport | tar -x -C DIR``), ``llmport-before`` replays the same project with that
version first on ``PYTHONPATH`` and its own warm parsed-cassette cache, interleaved with the others: a
before/after figure from one run, on a machine whose load drifts. With ``llmport-cold`` chosen too,
``llmport-before-cold`` replays the fresh checkout with that version beside it.

Every variant runs ``--repeat`` times (interleaved, so slow drift of a noisy machine hits all of them alike)
and the minimum is reported. Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common import Timing, clean_env, count_cassettes, ms, run_pytest, write_json, write_project

from pytest_llmport.testing import FakeProvider

TARGET_PLAIN_MS = 0.72
TARGET_ADDED_MS = 0.15  # issue 14: a tenth of pytest-recording's added cost
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
    "llmport": (
        "import os\n\nimport openai  # noqa: F401\nimport pytest\n\n"
        # Set to replay requests that were never recorded (the llmport-mismatch measurement).
        'SUFFIX = os.environ.get("BENCH_SUFFIX", "")\n'
    ),
    "stream": "import pytest\n",
    "oneshot": "import pytest\n",
    "pytest-recording": """\
import os

import openai
import pytest

client = openai.OpenAI(api_key="sk-bench-dummy", base_url=os.environ["BENCH_FAKE_BASE_URL"], max_retries=0)
""",
}

# The floor's call behind what any plugin handing a test a per-provider fixture costs in pytest itself: a
# direct parameter (the provider's name) and a function-scoped fixture (the client), llmport's shape. The
# names differ from llmport's, which would take these items for its own.
HEADERS["floor-fixture"] = (
    "import pytest\n"
    + HEADERS["floor"]
    + """

def pytest_generate_tests(metafunc):
    if "provider" in metafunc.fixturenames:
        metafunc.fixturenames.append("provider_name")
        metafunc.parametrize("provider_name", ["openai"])


@pytest.fixture
def provider(provider_name):
    return client
"""
)

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
        model=llm_provider.model, messages=[{{"role": "user", "content": "bench {i:05d}" + SUFFIX}}]
    )
    assert reply.choices[0].message.content
""",
    "floor-fixture": """
def test_{i:05d}(provider):
    reply = provider.chat.completions.create(
        model="gpt-4o-mini", messages=[{{"role": "user", "content": "bench {i:05d}"}}]
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

# Replayed through httpx without an SDK on top: what is measured is the replay, not the SDK's parsing.
TEST_BODIES["stream"] = """
@pytest.mark.llm_portable
def test_{i:05d}(llm_provider):
    messages = [{{"role": "user", "content": "s{i:05d}"}}]
    body = {{"model": llm_provider.model, "stream": True, "messages": messages}}
    with llm_provider.httpx_client().stream("POST", "chat/completions", json=body) as response:
        pieces = sum(1 for _ in response.iter_bytes())
    assert pieces >= STREAM_EVENTS
"""
TEST_BODIES["oneshot"] = """
@pytest.mark.llm_portable
def test_{i:05d}(llm_provider):
    body = {{"model": llm_provider.model, "messages": [{{"role": "user", "content": "o{i:05d}"}}]}}
    response = llm_provider.httpx_client().post("chat/completions", json=body)
    assert len(response.content) > 1000
"""
STREAM_EVENTS = 200
CHUNK_CHARS = 4
HEADERS["stream"] = f"import pytest\n\nSTREAM_EVENTS = {STREAM_EVENTS}\n"

VARIANTS = tuple(TEST_BODIES)
# pytest's cache plugin stays on (common.run_pytest passes only -q), as in a default pytest run: llmport
# keeps parsed cassettes there.
REPLAY_ARGS: dict[str, tuple[str, ...]] = {
    "plain": (),
    "floor": (),
    "floor-fixture": (),
    "llmport": ("--providers=openai", "--llmport-record-mode=none"),
    # --cache-clear empties the cache first: a fresh CI checkout, every cassette parsed from YAML.
    "llmport-cold": ("--providers=openai", "--llmport-record-mode=none", "--cache-clear"),
    # The same without the fast extra (yaml-rs hidden): every cassette parsed by PyYAML's CSafeLoader.
    "llmport-cold-pyyaml": ("--providers=openai", "--llmport-record-mode=none", "--cache-clear"),
    "pytest-recording": ("--record-mode=none",),
    "llmport-mismatch": ("--providers=openai", "--llmport-record-mode=none"),
    "stream": ("--providers=openai", "--llmport-record-mode=none"),
    "oneshot": ("--providers=openai", "--llmport-record-mode=none"),
}
TIMED = ("plain", "floor", "floor-fixture", "llmport", "llmport-cold", "pytest-recording")
BEFORE = "llmport-before"  # with --before: the same replay with another version of the plugin
BEFORE_COLD = "llmport-before-cold"  # with --before and llmport-cold: the fresh checkout, that version
EXTRA = ("llmport-mismatch", "stream", "oneshot", "llmport-cold-pyyaml")
RECORD_ARGS: dict[str, tuple[str, ...]] = {
    "llmport": ("--providers=openai", "--llmport-record-mode=once"),
    "pytest-recording": ("--record-mode=once",),
    "stream": ("--providers=openai", "--llmport-record-mode=once"),
    "oneshot": ("--providers=openai", "--llmport-record-mode=once"),
}
LLMPORT_VARIANTS = ("llmport", "llmport-cold", "llmport-mismatch", "stream", "oneshot", "llmport-cold-pyyaml")
# variants replaying another's project
RECORDS = {
    "llmport-cold": "llmport",
    "llmport-mismatch": "llmport",
    "llmport-cold-pyyaml": "llmport",
    BEFORE: "llmport",
    BEFORE_COLD: "llmport",
}
REPLAY_ARGS[BEFORE] = (*REPLAY_ARGS["llmport"], "-o", "cache_dir=.pytest_cache_before")
REPLAY_ARGS[BEFORE_COLD] = (*REPLAY_ARGS["llmport-cold"], "-o", "cache_dir=.pytest_cache_before")
SHOWN = (*TIMED[:4], BEFORE, TIMED[4], BEFORE_COLD, *TIMED[5:])  # table order


def with_providers(args: tuple[str, ...], providers: list[str]) -> tuple[str, ...]:
    return tuple(
        f"--providers={','.join(providers)}" if arg.startswith("--providers=") else arg for arg in args
    )


def build_project(root: Path, variant: str, n: int, files: int) -> Path:
    """Write a self-contained project: pytest.ini, timing conftest, N tests spread over ``files`` modules."""
    return write_project(root / variant, HEADERS[variant], TEST_BODIES[variant], n, min(files, n))


def record(
    projects: dict[str, Path], sizes: dict[str, int], envs: dict[str, dict[str, str]], providers: list[str]
) -> None:
    for variant, args in RECORD_ARGS.items():
        if variant not in projects:
            continue
        print(f"recording {variant} cassettes ...", flush=True)
        args = with_providers(args, providers) if variant == "llmport" else args
        run_pytest(projects[variant], args, envs[variant], sizes[variant], f"record {variant}")
        found = count_cassettes(projects[variant])
        if found != sizes[variant]:
            raise SystemExit(f"record {variant}: expected {sizes[variant]} cassettes, found {found}")


def stream_body_size(project: Path) -> int:
    """Bytes of the recorded SSE body of the first stream cassette (the one-shot reply is made as long)."""
    import yaml

    path = next((project / "tests").rglob("*.yaml"))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    body = data["interactions"][0]["response"]["body"]
    return len(body.get("string", "").encode("utf-8"))


def _table(title: str, per: dict[str, float], best: dict[str, Timing], show_runs: bool) -> None:
    plain, floor = per.get("plain", float("nan")), per.get("floor", float("nan"))
    print(title)
    header = f"{'variant':<18}{'per-item ms':>12}{'x plain':>9}{'x floor':>9}{'added>floor ms':>16}"
    if show_runs:
        header += f"{'loop s':>9}{'collect s':>11}{'wall s':>9}"
    print(header)
    print("-" * len(header))
    for variant in (v for v in SHOWN if v in per):
        added = f"{per[variant] - floor:.3f}" if variant not in ("plain", "floor") else ""
        line = (
            f"{variant:<18}{per[variant]:>12.3f}{per[variant] / plain:>9.2f}{per[variant] / floor:>9.2f}"
            f"{added:>16}"
        )
        if show_runs:
            t = best[variant]
            line += f"{t.loop_s:>9.3f}{t.collect_s:>11.3f}{t.wall_s:>9.3f}"
        print(line)
    for now, before in (("llmport", BEFORE), ("llmport-cold", BEFORE_COLD)):
        if before in per and now in per:
            print(
                f"{now} added above the floor: before {per[before] - floor:.3f} ms, "
                f"now {per[now] - floor:.3f} ms ({per[now] / per[before]:.3f}x per item)"
            )
    if all(v in per for v in ("pytest-recording", "llmport", "llmport-cold", "floor")):
        print(
            f"pytest-recording / llmport per-item: {per['pytest-recording'] / per['llmport']:.2f}x "
            f"(cold cache: {per['pytest-recording'] / per['llmport-cold']:.2f}x); added above the floor: "
            f"llmport {per['llmport'] - floor:.3f} ms = "
            f"{(per['llmport'] - floor) / (per['pytest-recording'] - floor):.2f}x pytest-recording's "
            f"{per['pytest-recording'] - floor:.3f} ms"
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
    for variant in (v for v in SHOWN if v in best):
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
    for variant in (v for v in SHOWN if v in best):
        t = best[variant]
        first, median = t.first, t.median
        print(
            f"{variant:<18}{first['setup'] * 1e3:>10.3f}{first['call'] * 1e3:>10.3f}"
            f"{median['setup'] * 1e3:>11.3f}{median['call'] * 1e3:>10.3f}{median['teardown'] * 1e3:>10.3f}"
        )
    print(
        f"\ntargets (context only): plain ~{TARGET_PLAIN_MS:.2f} ms; llmport <= floor + {TARGET_ADDED_MS} ms "
        "(compare within one run: on a shared machine the CPU figures are the ones that compare)"
    )
    for label, per in (("elapsed", wall), ("CPU", cpu)) if all(v in wall for v in TIMED) else ():
        target = per["floor"] + TARGET_ADDED_MS
        verdict = "within" if per["llmport"] <= target else "ABOVE"
        print(
            f"{label}: llmport {per['llmport']:.3f} ms is {verdict} floor + {TARGET_ADDED_MS} ms "
            f"= {target:.3f} ms (added {per['llmport'] - per['floor']:.3f} ms; "
            f"cold cache {per['llmport-cold']:.3f} ms, added {per['llmport-cold'] - per['floor']:.3f} ms)"
        )


def without_yaml_rs(root: Path) -> Path:
    """A folder that, first on PYTHONPATH, hides an installed yaml-rs (the fast extra) from the plugin."""
    folder = root / "without-yaml-rs"
    (folder / "yaml_rs").mkdir(parents=True, exist_ok=True)
    (folder / "yaml_rs" / "__init__.py").write_text('raise ImportError("hidden by bench/replay.py")\n')
    return folder


BASES = ("plain", "floor")
# Variants --whole times on a one-test project too.
WHOLE = (
    "plain",
    "floor",
    "floor-fixture",
    "llmport",
    "llmport-cold",
    "llmport-cold-pyyaml",
    "pytest-recording",
)


def one_test_projects(root: Path, projects: dict[str, Path], ones: dict[str, Any]) -> dict[str, Path]:
    """For --whole: a project holding only the first test of each timed one, with its recordings."""
    out: dict[str, Path] = {}
    for variant in ones:
        base = RECORDS.get(variant, variant)
        if base not in out:
            out[base] = write_project(root / f"{base}-one", HEADERS[base], TEST_BODIES[base], 1, 1)
            recorded = projects[base] / "tests" / "cassettes"
            if recorded.is_dir():
                shutil.copytree(recorded, out[base] / "tests" / "cassettes")
    return out


def print_whole(
    runs: dict[str, list[Timing]],
    sizes: dict[str, int],
    ones: dict[str, list[Timing]] | None = None,
    providers: int = 1,
) -> None:
    """Whole process: CPU of the pytest process per item, and the part outside the test loop."""
    best = {v: min(ts, key=lambda t: t.process_cpu_s) for v, ts in runs.items() if ts}
    if not best:
        return
    one = {v: min(t.process_cpu_s for t in ts) for v, ts in (ones or {}).items() if ts}
    if one:
        print("\n[whole process, N items against one test (start-up cancels out): CPU per item]")
        header = f"{'variant':<20}{'N items ms':>12}{'one test ms':>13}{'per item ms':>13}{'- floor':>10}"
        print(header)
        print("-" * len(header))
        per = {}
        for variant in (v for v in WHOLE if v in one and v in best):
            items = providers if variant.startswith("llmport") else 1
            per[variant] = (best[variant].process_cpu_s - one[variant]) * 1000.0 / (sizes[variant] - items)
        for variant, value in per.items():
            above = f"{value - per['floor']:+.3f}" if "floor" in per and variant != "floor" else ""
            print(
                f"{variant:<20}{best[variant].process_cpu_s * 1000:>12.1f}{one[variant] * 1000:>13.1f}"
                f"{value:>13.3f}{above:>10}"
            )
    print("\n[whole process: CPU of the pytest process per item (start-up, collection and session end too)]")
    header = (
        f"{'variant':<20}{'process ms':>12}{'loop ms':>10}{'outside ms':>12}{'- plain':>10}{'- floor':>10}"
    )
    print(header)
    print("-" * len(header))
    outside = {v: ms(t.process_cpu_s - t.cpu_s, sizes[v]) for v, t in best.items()}
    for variant, t in best.items():
        n = sizes[variant]
        plain, floor = (f"{outside[variant] - outside[v]:+.3f}" if v in outside else "" for v in BASES)
        print(
            f"{variant:<20}{ms(t.process_cpu_s, n):>12.3f}{ms(t.cpu_s, n):>10.3f}{outside[variant]:>12.3f}"
            f"{plain:>10}{floor:>10}"
        )
    print(
        "(outside = start-up, collection and session end, spread over the items; one run's best. The\n"
        "floor imports the openai SDK at collection as the llmport projects do: '- floor' is llmport's part)"
    )


def print_extra(runs: dict[str, list[Timing]], sizes: dict[str, int], body_size: int) -> None:
    """Failing fast and streams, from the same interleaved runs (best of each)."""
    best = {v: ms(min(t.loop_s for t in ts), sizes[v]) for v, ts in runs.items() if ts}
    cpu = {v: ms(min(t.cpu_s for t in ts), sizes[v]) for v, ts in runs.items() if ts}
    if "llmport-mismatch" in best and "llmport" in best:
        print("\n[failing fast: every item replays a request that was never recorded]")
        for label, per in (("elapsed", best), ("CPU", cpu)):
            print(
                f"{label}: mismatching {per['llmport-mismatch']:.3f} ms/item, passing {per['llmport']:.3f} "
                f"ms/item: {per['llmport-mismatch'] / per['llmport']:.2f}x (target: at most 3x)"
            )
    if "llmport-cold" in best and "llmport-cold-pyyaml" in best:
        print("\n[fresh checkout: cassettes read with the fast extra (yaml-rs) or by PyYAML alone]")
        for label, per in (("elapsed", best), ("CPU", cpu)):
            print(
                f"{label}: fast {per['llmport-cold']:.3f} ms/item, PyYAML {per['llmport-cold-pyyaml']:.3f} "
                f"ms/item: {per['llmport-cold-pyyaml'] - per['llmport-cold']:+.3f} ms without the extra"
            )
    if "stream" in best and "oneshot" in best:
        print(
            f"\n[streams: one {STREAM_EVENTS}-event SSE response vs one JSON response, about {body_size} "
            "bytes each, replayed through httpx]"
        )
        for label, per in (("elapsed", best), ("CPU", cpu)):
            print(
                f"{label}: stream {per['stream']:.3f} ms/item, one-shot {per['oneshot']:.3f} ms/item: "
                f"{per['stream'] / per['oneshot']:.2f}x (target: at most 2x)"
            )


def figures(runs: dict[str, list[Timing]], n: int, sizes: dict[str, int] | None = None) -> dict[str, object]:
    """The best run's figures per variant, per item in ms, for ``--json`` (bench/all.py reads them).

    ``sizes``: items per variant where it is not ``n`` (the stream and one-shot variants).
    """
    out: dict[str, object] = {"n": n, "repeat": max((len(ts) for ts in runs.values()), default=0)}
    for variant, ts in runs.items():
        if not ts:
            continue
        size = (sizes or {}).get(variant, n)
        best = min(ts, key=lambda t: t.loop_s)
        out[variant] = {
            "items": size,
            "loop_ms": ms(best.loop_s, size),
            "cpu_ms": ms(min(t.cpu_s for t in ts), size),
            "wall_s": best.wall_s,
            "collect_s": best.collect_s,
            "process_cpu_ms": ms(min(t.process_cpu_s for t in ts), size),
        }
    return out


def profile(
    project: Path, env: dict[str, str], n: int, out: Path, replay_args: tuple[str, ...], top: int = 25
) -> None:
    prof = out / "llmport-replay.prof"
    # One unprofiled replay first, so the profile shows a warm run (parsed cassettes cached).
    run_pytest(project, replay_args, env, n, "warm llmport")
    print(f"\nprofiling a warm llmport replay under cProfile -> {prof}", flush=True)
    timing = run_pytest(
        project,
        replay_args,
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
    from pytest_llmport.providers import BUILTIN_PROVIDERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="items per variant (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the minimum is kept")
    parser.add_argument("--files", type=int, default=10, help="test modules the N tests are spread over")
    parser.add_argument(
        "--providers",
        default="openai",
        help="comma-separated OpenAI-compatible providers llmport replays on (N/P tests each run P times)",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated variants to time (default all: {', '.join(TIMED + EXTRA)})",
    )
    parser.add_argument("--stream-n", type=int, default=200, help="tests of the stream and one-shot variants")
    parser.add_argument("--profile", action="store_true", help="also profile one llmport replay run")
    parser.add_argument(
        "--profile-only", action="store_true", help="skip the timed runs, only record and profile"
    )
    parser.add_argument(
        "--with-key",
        action="store_true",
        help="keep the keys set while replaying llmport (a developer's machine; default: unset, as CI)",
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also replay with the pytest_llmport package under DIR (another version), as llmport-before",
    )
    parser.add_argument(
        "--whole",
        action="store_true",
        help="also time each variant's one-test project: whole-process CPU per item, N against one test",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (- = stdout)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects and print where")
    args = parser.parse_args(argv)
    providers = [name.strip() for name in args.providers.split(",") if name.strip()]
    registry = {spec.name: spec for spec in BUILTIN_PROVIDERS}
    unknown = [name for name in providers if name not in registry]
    if unknown:
        parser.error(f"unknown providers: {', '.join(unknown)}")
    if args.n < 1 or args.repeat < 1 or args.files < 1 or args.stream_n < 1:
        parser.error("--n, --repeat, --files and --stream-n must be positive")
    if args.n % len(providers):
        parser.error(f"--n must be a multiple of the {len(providers)} providers")
    chosen = [v.strip() for v in args.only.split(",") if v.strip()] or list(TIMED + EXTRA)
    if set(chosen) - set(TIMED + EXTRA):
        parser.error(f"--only takes {', '.join(TIMED + EXTRA)}")
    if args.before:
        if not (Path(args.before) / "pytest_llmport" / "__init__.py").is_file():
            parser.error(f"--before {args.before}: no pytest_llmport package there")
        chosen.insert(chosen.index("llmport") + 1 if "llmport" in chosen else len(chosen), BEFORE)
        if "llmport-cold" in chosen:
            chosen.insert(chosen.index("llmport-cold") + 1, BEFORE_COLD)
    if args.profile or args.profile_only:
        chosen = list(dict.fromkeys([*chosen, "llmport"]))
    sizes = {v: args.n for v in (*TIMED, BEFORE, BEFORE_COLD, "llmport-mismatch", "llmport-cold-pyyaml")}
    sizes.update(stream=args.stream_n, oneshot=args.stream_n)
    tests = {**sizes, "llmport": args.n // len(providers)}
    needed = {RECORDS.get(v, v) for v in chosen}

    root = Path(tempfile.mkdtemp(prefix="llmport-bench-"))
    try:
        projects = {v: build_project(root, v, tests[v], args.files) for v in VARIANTS if v in needed}
        long_reply = {"text": "x" * (CHUNK_CHARS * STREAM_EVENTS)}

        def replies(body: dict[str, object]) -> str:
            messages = body.get("messages")
            prompt = str(messages[-1].get("content", "")) if isinstance(messages, list) and messages else ""
            if prompt.startswith(("s", "o")) and prompt[1:].isdigit():
                return long_reply["text"]
            return f"[fake] {prompt}"

        fake = FakeProvider(replies, api_key="sk-bench-dummy", chunk_chars=CHUNK_CHARS).start()
        base_url = fake.base_url
        specs = [registry[name] for name in providers]
        keys = {spec.api_key_env: "sk-bench-dummy" for spec in specs} | {"OPENAI_API_KEY": "sk-bench-dummy"}
        urls = {f"{spec.env_prefix}_BASE_URL": base_url for spec in specs} | {
            "LLMPORT_OPENAI_BASE_URL": base_url
        }
        record_envs = {
            **{v: clean_env({**urls, **keys}) for v in ("llmport", "stream", "oneshot")},
            "pytest-recording": clean_env({"BENCH_FAKE_BASE_URL": base_url}),
        }
        body_size = 0
        try:
            if "stream" in projects:
                record({"stream": projects["stream"]}, sizes, record_envs, providers)
                body_size = stream_body_size(projects["stream"])
                # The one-shot reply's JSON body as long as the stream's (less the JSON around the text).
                long_reply["text"] = "x" * max(body_size - 330, 1)
            record(
                {k: v for k, v in projects.items() if k != "stream"},
                sizes,
                record_envs,
                providers,
            )
        finally:
            fake.stop()  # replays below must never reach it: any request would fail its test
        replay_env = clean_env({**urls, **(keys if args.with_key else {})})
        envs: dict[str, dict[str, str]] = {
            "plain": clean_env({}),
            "floor": clean_env({}),
            "floor-fixture": clean_env({}),
            **{v: replay_env for v in LLMPORT_VARIANTS},
            BEFORE: {**replay_env, "PYTHONPATH": str(Path(args.before or ".").resolve())},
            BEFORE_COLD: {**replay_env, "PYTHONPATH": str(Path(args.before or ".").resolve())},
            "llmport-mismatch": {**replay_env, "BENCH_SUFFIX": " (changed since recording)"},
            "llmport-cold-pyyaml": {**replay_env, "PYTHONPATH": str(without_yaml_rs(root))},
            "pytest-recording": clean_env({"BENCH_FAKE_BASE_URL": base_url}),
        }
        if not args.profile_only:
            if {"llmport", "llmport-mismatch"} & set(chosen):
                # Recording leaves the parsed-cassette cache empty: one untimed replay fills it, so that
                # "llmport" is warm from its first run (llmport-cold clears it every time).
                print("warming the parsed-cassette cache ...", flush=True)
                warm = with_providers(REPLAY_ARGS["llmport"], providers)
                run_pytest(projects["llmport"], warm, envs["llmport"], args.n, "warm llmport")
            if BEFORE in chosen:
                warm = with_providers(REPLAY_ARGS[BEFORE], providers)
                run_pytest(projects["llmport"], warm, envs[BEFORE], args.n, f"warm {BEFORE}")
            runs: dict[str, list[Timing]] = {v: [] for v in chosen}
            ones: dict[str, list[Timing]] = {v: [] for v in chosen if v in WHOLE}
            one_projects = one_test_projects(root, projects, ones) if args.whole else {}
            if "llmport" in ones and args.whole:  # its one-test project's cache, warm like the big one's
                warm = with_providers(REPLAY_ARGS["llmport"], providers)
                run_pytest(one_projects["llmport"], warm, envs["llmport"], len(providers), "warm llmport one")
            for r in range(args.repeat):
                for variant in (v for v in (*SHOWN, *EXTRA) if v in chosen):
                    project = projects[RECORDS.get(variant, variant)]
                    replay_args = REPLAY_ARGS[variant]
                    if variant.startswith("llmport"):
                        replay_args = with_providers(replay_args, providers)
                    failing = variant == "llmport-mismatch"
                    t = run_pytest(
                        project, replay_args, envs[variant], sizes[variant], variant, failing=failing
                    )
                    runs[variant].append(t)
                    if variant in ones and RECORDS.get(variant, variant) in one_projects:
                        one = one_projects[RECORDS.get(variant, variant)]
                        items = len(providers) if variant.startswith("llmport") else 1
                        ones[variant].append(
                            run_pytest(one, replay_args, envs[variant], items, f"{variant} one test")
                        )
                    n = sizes[variant]
                    print(
                        f"run {r + 1}/{args.repeat} {variant:<17} loop {t.loop_s:7.3f} s  "
                        f"{ms(t.loop_s, n):6.3f} ms/item  cpu {ms(t.cpu_s, n):6.3f} ms/item  "
                        f"wall {t.wall_s:6.3f} s",
                        flush=True,
                    )
            print(f"providers: {', '.join(providers)} ({args.n // len(providers)} tests each for llmport)")
            timed = {v: ts for v, ts in runs.items() if v in SHOWN}
            print_table(timed, args.n, args.repeat)
            extra = {v: ts for v, ts in runs.items() if v in EXTRA or v in ("llmport", "llmport-cold")}
            print_extra(extra, sizes, body_size)
            print_whole(runs, sizes, ones, len(providers))
            # Every variant timed, the failing-fast and stream ones too (bench/all.py's summary reads them).
            write_json(args.json, figures(runs, args.n, sizes))
        if args.profile or args.profile_only:
            profile(
                projects["llmport"],
                envs["llmport"],
                args.n,
                root,
                with_providers(REPLAY_ARGS["llmport"], providers),
            )
    finally:
        if args.keep:
            print(f"\nprojects kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
