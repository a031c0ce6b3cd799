"""Replay the clients' integration modules N times in a row, serially and with ``-n 2`` (not run in CI).

Records a module of tests/test_clients.py (``--suite clients``: litellm, langchain, zhipuai, an import-time
client, anthropic, google-genai, dashscope, qianfan) or tests/test_clients_heavy.py (``--suite heavy``:
llama-index, instructor, Volcengine Ark; run it with the interpreter of a venv that has the
``clients-heavy`` extra) once against loopback fake providers, then replays it offline with no key set,
``--runs`` times plainly and ``--runs`` times under xdist, and prints passes/cells per client (test
function). A replay that passes only sometimes shows here as e.g. ``9/10``.

    .venv/bin/python bench/clients_repeat.py --runs 5
    .venv-heavy/bin/python bench/clients_repeat.py --suite heavy --runs 5
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# tests.test_clients imports litellm, which would fetch its cost map from the internet at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_llmport.providers import BUILTIN_PROVIDERS  # noqa: E402
from pytest_llmport.testing import FakeProvider  # noqa: E402
from tests.conftest import KEY  # noqa: E402

# -rA's summary lines, the same with and without xdist: "PASSED test_app.py::test_x[deepseek]".
_RESULT = re.compile(r"^(PASSED|FAILED|ERROR) test_\w+\.py::(\w+)\[", re.MULTILINE)


@dataclass
class Suite:
    files: dict[str, str]  # written into the project folder
    providers: str  # the --providers argument
    dialect_servers: Callable[[], dict[str, FakeProvider]]  # besides the OpenAI-compatible one
    variables: Callable[[dict[str, FakeProvider]], dict[str, str]]  # set while recording
    other_keys: tuple[str, ...]  # key variables a replay must not need
    replies: Any = None  # the OpenAI-compatible fake's replies


def clients() -> Suite:
    from tests import test_clients as module

    return Suite(
        {"test_app.py": module.CLIENTS, "conftest.py": module.CONFTEST},
        module.PROVIDERS,
        module.dialect_servers,
        module.dialect_variables,
        module.OTHER_KEYS,
    )


def heavy() -> Suite:
    from tests import test_clients_heavy as module

    return Suite(
        {"test_heavy.py": module.HEAVY}, module.PROVIDERS, dict, lambda servers: {}, (), module.reply
    )


def pytest(suite: Suite, folder: Path, env: dict[str, str], *args: str) -> Counter[tuple[str, str]]:
    """One run; (client, outcome) counts parsed from its ``-rA`` summary."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", suite.providers, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = Counter((m.group(2), m.group(1)) for m in _RESULT.finditer(done.stdout))
    if not found or any(outcome != "PASSED" for _, outcome in found):
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--suite", choices=("clients", "heavy"), default="clients")
    args = parser.parse_args()
    suite = clients() if args.suite == "clients" else heavy()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    for provider in BUILTIN_PROVIDERS:
        env.pop(provider.api_key_env, None)
    with tempfile.TemporaryDirectory(prefix="llmport-clients-") as tmp:
        folder = Path(tmp)
        for name, text in suite.files.items():
            (folder / name).write_text(text, encoding="utf-8")
        servers = {
            "openai": FakeProvider(suite.replies, api_key=KEY, chunk_chars=3),
            **suite.dialect_servers(),
        }
        for server in servers.values():
            server.start()
        record_env = dict(env)
        for provider in BUILTIN_PROVIDERS:
            record_env[f"{provider.env_prefix}_BASE_URL"] = servers["openai"].base_url
            record_env[provider.api_key_env] = KEY
        record_env.update(suite.variables(servers))
        started = time.perf_counter()
        recorded = pytest(suite, folder, record_env)
        print(f"recorded in {time.perf_counter() - started:.1f} s:", dict(recorded))
        for server in servers.values():
            server.stop()
        leaked = [p for p in folder.rglob("*.yaml") if KEY in p.read_text(encoding="utf-8")]
        print("cassettes:", len(list(folder.rglob("*.yaml"))), "holding the key:", len(leaked))
        replay_env = {**env, "CI": "true"}
        for name in suite.other_keys:
            replay_env.pop(name, None)
        for label, extra in (("serial", ()), ("-n 2", ("-n", "2"))):
            passes: Counter[str] = Counter()
            runs: Counter[str] = Counter()
            started = time.perf_counter()
            for _ in range(args.runs):
                for (client, outcome), count in pytest(suite, folder, replay_env, *extra).items():
                    runs[client] += count
                    if outcome == "PASSED":
                        passes[client] += count
            took = (time.perf_counter() - started) / args.runs
            print(f"replay {label}, {args.runs} runs in a row, {took:.1f} s a run (passes/cells):")
            for client in sorted(runs):
                print(f"  {client:60} {passes[client]}/{runs[client]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
