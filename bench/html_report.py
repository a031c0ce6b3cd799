"""How fast the HTML report is written and opens, for 10,000 tests x 5 providers.

    .venv/bin/python bench/html_report.py [--tests 10000] [--providers 5] [--runs 3]

Builds a report of that size (cells shaped like real ones: a similarity check, a Chinese observation, one
or two exchanges with an answer, usage, timing and cost; about 6 % of cells differ), then measures:
writing the page (``render_html`` + the atomic write), its size, and in a real headless Chromium the time
from navigation until the page's script has rendered the first page of the matrix, filtering by kind, and
opening one cell's side-by-side view. Needs ``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmport.html import render_html
from pytest_llmport.prices import load
from pytest_llmport.report import write_atomic
from tests.browser import Browser

PROVIDERS = ["openai", "zhipu", "qwen", "deepseek", "moonshot", "doubao", "yi"]
MODELS = {
    "openai": "gpt-4o-mini",
    "zhipu": "glm-4-flash",
    "qwen": "qwen-plus",
    "deepseek": "deepseek-chat",
    "moonshot": "moonshot-v1-8k",
    "doubao": "doubao-seed-1-6-251015",
    "yi": "yi-lightning",
}
# Answers drawn character by character from 2,500 CJK characters plus punctuation: they compress about as
# badly as real answers do (repeated stock phrases would make the compressed page look smaller than real).
POOL = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)] + list("，。！？、：0123456789 ")


def answer(rng: random.Random) -> str:
    return "".join(rng.choices(POOL, k=rng.randint(60, 400)))


def cell(rng: random.Random, provider: str, prices: Any) -> dict[str, Any]:
    text = answer(rng)
    differs = rng.random() < 0.06
    kind = rng.choice(["equivalence", "app-failure", "provider-error"]) if differs else "passed"
    score = rng.uniform(0.2, 0.6) if kind == "equivalence" else rng.uniform(0.62, 1.0)
    exchanges = []
    for _ in range(rng.randint(1, 2)):
        usage = {"prompt": rng.randint(50, 800), "completion": rng.randint(20, 400)}
        exchange: dict[str, Any] = {
            "endpoint": "POST /v1/chat/completions",
            "status": 200 if kind != "provider-error" else 429,
            "request_model": MODELS[provider],
            "response_model": MODELS[provider],
            "finish_reason": "stop",
            "finish_reason_raw": "stop",
            "streamed": False,
            "usage": usage,
            "features": ["json_mode", "system_role"],
            "text": text,
            "first_byte_ms": round(rng.lognormvariate(5.5, 0.5), 1),
            "total_ms": round(rng.lognormvariate(6.5, 0.6), 1),
        }
        if kind == "provider-error":
            exchange["error"] = {"category": "rate_limit", "code": "429"}
        exchange["cost"] = prices.cost(provider, exchange)
        exchanges.append(exchange)
    return {
        "outcome": "passed" if kind == "passed" else "failed",
        "kind": kind,
        "checks": [
            {
                "kind": "similar",
                "key": "reply",
                "passed": kind != "equivalence",
                "score": score,
                "threshold": 0.61,
            }
        ],
        "observations": {"reply": text},
        "problems": [],
        "longrepr": "" if kind == "passed" else "AssertionError: the reply differs\n" * 5,
        "exchanges": exchanges,
        "falsifying": "",
        "cassette": {"source": "replayed", "path": f"cassettes/{provider}.yaml"},
    }


def build(tests: int, providers: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    prices = load()
    names = PROVIDERS[:providers]
    return {
        "format": "pytest-llmport-report",
        "version": 2,
        "plugin": "bench",
        "providers": names,
        "baseline": names[0],
        "capabilities": {p: ["json_mode", "streaming", "system_role", "tools"] for p in names},
        "prices": prices.describe(),
        "tests": {
            f"tests/test_app_{i // 500:02d}.py::test_case[{i}]": {p: cell(rng, p, prices) for p in names}
            for i in range(tests)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--providers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = build(args.tests, args.providers)
    folder = Path(tempfile.mkdtemp(prefix="llmport-html-bench-"))
    target = folder / "report.html"
    writes = []
    for _ in range(args.runs):
        start = time.perf_counter()
        write_atomic(target, render_html(report), "HTML report")
        writes.append(time.perf_counter() - start)
    size = target.stat().st_size
    loads, filters, opens = [], [], []
    with Browser() as browser:
        for _ in range(args.runs):
            loads.append(browser.open(target))
            start = time.perf_counter()
            browser.evaluate(
                "(() => { const e = document.getElementById('f-kind'); e.value = 'equivalence';"
                " e.dispatchEvent(new Event('change')); })()"
            )
            filters.append(time.perf_counter() - start)
            start = time.perf_counter()
            browser.evaluate(
                "document.querySelector('#grid tbody button[data-p]:not([data-p=\"openai\"])').click()"
            )
            browser.wait_until("document.getElementById('detail').open")
            opens.append(time.perf_counter() - start)
            browser.evaluate("document.getElementById('detail').close()")
        errors = browser.errors()
    print(
        f"report: {args.tests:,} tests x {args.providers} providers ({args.tests * args.providers:,} cells)"
    )

    def runs(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})"

    print(f"write HTML: {runs(writes)}")
    print(f"size: {size / 1e6:.1f} MB")
    print(f"load until usable in chromium: {runs(loads)}")
    print(f"filter by kind: median {statistics.median(filters) * 1000:.0f} ms")
    print(f"open a cell's side-by-side view: median {statistics.median(opens) * 1000:.0f} ms")
    print(f"console errors: {len(errors)}")


if __name__ == "__main__":
    main()
