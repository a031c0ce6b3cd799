"""Re-record this example's cassettes from the bundled fake provider (no network, no real keys).

    python examples/property_based/record.py [provider ...]

For each provider, a FakeProvider runs that provider's fake model (quirky_models.py: the personalities of
../support_triage plus qwen's greeting quirk), the suite is run against it in record mode ``all``, and the
recorded URLs are rewritten from the fake server's address to the provider's real default base URL, so
the cassettes replay with the default configuration.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support_triage"))  # fake_models.py, imported by quirky_models.py

from quirky_models import CHUNK_CHARS, MODELS  # noqa: E402

from pytest_llmport.providers import BUILTIN_PROVIDERS  # noqa: E402
from pytest_llmport.testing import FakeProvider  # noqa: E402

CASSETTES = HERE / "cassettes"
# Not a secret; the plugin scrubs it from the cassettes anyway.
DUMMY_KEY = "sk-llmport-fake-recording"


def rewrite_uris(path: Path, fake_base: str, real_base: str) -> int:
    """Point every recorded request of ``path`` at ``real_base``; return how many were rewritten."""
    pattern = re.compile(r"^(\s*uri: )" + re.escape(fake_base) + r"(?=[/?\s]|$)", re.MULTILINE)
    text, count = pattern.subn(lambda m: m.group(1) + real_base, path.read_text(encoding="utf-8"))
    if fake_base in text:
        raise RuntimeError(f"{path}: {fake_base} left outside a request URI; check the cassette by hand")
    path.write_text(text, encoding="utf-8")
    return count


def record(name: str) -> None:
    spec = next(p for p in BUILTIN_PROVIDERS if p.name == name)
    # Stale cassettes (tests renamed or removed since the last recording) must not survive.
    for old in CASSETTES.rglob(f"{name}.yaml"):
        old.unlink()
    with FakeProvider(
        MODELS[name], model=spec.model, api_key=DUMMY_KEY, chunk_chars=CHUNK_CHARS[name], name=name
    ) as fake:
        env = {**os.environ, f"{spec.env_prefix}_BASE_URL": fake.base_url, spec.api_key_env: DUMMY_KEY}
        env.pop("CI", None)
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(HERE),
            f"--providers={name}",
            "--llmport-record-mode=all",
            "-p",
            "no:cacheprovider",
            "-q",
        ]
        print(f"== {name}: recording from {fake.base_url} as {spec.base_url}", flush=True)
        subprocess.run(command, env=env, cwd=HERE, check=True)
        base = fake.base_url
    rewritten = sum(rewrite_uris(path, base, spec.base_url) for path in CASSETTES.rglob(f"{name}.yaml"))
    print(f"== {name}: {rewritten} request(s) now point at {spec.base_url}", flush=True)


def main(argv: list[str]) -> int:
    names = argv or list(MODELS)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        print(f"unknown provider(s): {', '.join(unknown)}; known: {', '.join(MODELS)}")
        return 2
    for name in names:
        record(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
