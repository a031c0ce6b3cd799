"""Replay every client of tests/test_clients.py N times in a row, serially and with ``-n 2`` (not run in CI).

Records the clients' module once against loopback fake providers, then replays it offline with no key
set, ``--runs`` times plainly and ``--runs`` times under xdist, and prints passes/runs per client (test
function). A replay that passes only sometimes shows here as e.g. ``4/5``.

    .venv/bin/python bench/clients_repeat.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# tests.test_clients imports litellm, which would fetch its cost map from the internet at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pytest_llmport.providers import BUILTIN_PROVIDERS  # noqa: E402
from pytest_llmport.testing import FakeProvider  # noqa: E402
from tests.conftest import KEY  # noqa: E402
from tests.test_clients import CLIENTS, PROVIDERS  # noqa: E402

# -rA's summary lines, the same with and without xdist: "PASSED test_app.py::test_x[deepseek]".
_RESULT = re.compile(r"^(PASSED|FAILED|ERROR) test_app\.py::(\w+)\[", re.MULTILINE)


def pytest(folder: Path, env: dict[str, str], *args: str) -> Counter[tuple[str, str]]:
    """One run; (client, outcome) counts parsed from its ``-rA`` summary."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", PROVIDERS, *args],
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
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    for provider in BUILTIN_PROVIDERS:
        env.pop(provider.api_key_env, None)
    with tempfile.TemporaryDirectory(prefix="llmport-clients-") as tmp:
        folder = Path(tmp)
        (folder / "test_app.py").write_text(CLIENTS, encoding="utf-8")
        servers = {
            "openai": FakeProvider(api_key=KEY, chunk_chars=3),
            "anthropic": FakeProvider(api_key=KEY, dialect="anthropic", chunk_chars=3),
            "gemini": FakeProvider(api_key=KEY, dialect="gemini", chunk_chars=3),
            "qwen-native": FakeProvider(api_key=KEY, dialect="dashscope", chunk_chars=3),
        }
        for server in servers.values():
            server.start()
        record_env = dict(env)
        for provider in BUILTIN_PROVIDERS:
            record_env[f"{provider.env_prefix}_BASE_URL"] = servers["openai"].base_url
            record_env[provider.api_key_env] = KEY
        record_env["LLMPORT_ANTHROPIC_BASE_URL"] = servers["anthropic"].url + "/v1"
        record_env["LLMPORT_GEMINI_BASE_URL"] = servers["gemini"].url + "/v1beta"
        record_env["LLMPORT_QWEN_NATIVE_BASE_URL"] = servers["qwen-native"].url + "/api/v1"
        recorded = pytest(folder, record_env)
        for server in servers.values():
            server.stop()
        print("recorded:", dict(recorded))
        replay_env = {**env, "CI": "true"}
        for name in ("ZHIPUAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "ARK_API_KEY"):
            replay_env.pop(name, None)
        for label, extra in (("serial", ()), ("-n 2", ("-n", "2"))):
            passes: Counter[str] = Counter()
            runs: Counter[str] = Counter()
            for _ in range(args.runs):
                for (client, outcome), count in pytest(folder, replay_env, *extra).items():
                    runs[client] += count
                    if outcome == "PASSED":
                        passes[client] += count
            print(f"replay {label}, {args.runs} runs in a row (passes/cells):")
            for client in sorted(runs):
                print(f"  {client:60} {passes[client]}/{runs[client]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
