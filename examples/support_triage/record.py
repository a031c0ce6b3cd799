"""Re-record this example's cassettes from the bundled fake provider (no network, no real keys).

    python examples/support_triage/record.py [provider ...]

For each provider, a FakeProvider with that provider's personality (see fake_models.py) is started, the
suite is run against it in record mode ``all``, and the recorded URLs are rewritten from the fake
server's address to the provider's real default base URL, so the cassettes replay with the default
configuration.

``record_with_fake`` and ``main_for`` serve ../property_based/record.py as well.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from fake_models import PERSONALITIES

from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.testing import FakeProvider, Replies

HERE = Path(__file__).resolve().parent
# Not a secret; the plugin scrubs it from the cassettes anyway.
DUMMY_KEY = "sk-llmport-fake-recording"  # llmport-scan: allow (a dummy key)


def rewrite_uris(path: Path, fake_base: str, real_base: str) -> int:
    """Point every recorded request of ``path`` at ``real_base``; return how many were rewritten."""
    pattern = re.compile(r"^(\s*(?:uri|base_url): )" + re.escape(fake_base) + r"(?=[/?\s]|$)", re.MULTILINE)
    text, count = pattern.subn(lambda m: m.group(1) + real_base, path.read_text(encoding="utf-8"))
    if fake_base in text:
        raise RuntimeError(f"{path}: {fake_base} left outside a request URI; check the cassette by hand")
    path.write_text(text, encoding="utf-8")
    return count


def record_with_fake(
    suite: Path,
    name: str,
    replies: Replies,
    chunk_chars: int,
    *,
    pytest_args: Sequence[str] = (),
    unset_env: Collection[str] = (),
) -> None:
    """Re-record ``suite``'s cassettes of provider ``name`` from a FakeProvider answering with ``replies``.

    The suite runs in record mode ``all`` against the fake (``pytest_args`` added to the command line,
    ``unset_env`` removed from its environment); then every recorded request points at the provider's
    real default base URL.
    """
    spec = next(p for p in BUILTIN_PROVIDERS if p.name == name)
    cassettes = suite / "cassettes"
    # Stale cassettes (tests renamed or removed since the last recording) must not survive.
    for old in cassettes.rglob(f"{name}.yaml"):
        old.unlink()
    with FakeProvider(
        replies, model=spec.model, api_key=DUMMY_KEY, chunk_chars=chunk_chars, name=name
    ) as fake:
        env = {**os.environ, f"{spec.env_prefix}_BASE_URL": fake.base_url, spec.api_key_env: DUMMY_KEY}
        for variable in unset_env:
            env.pop(variable, None)
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(suite),
            f"--providers={name}",
            "--llmport-record-mode=all",
            "-p",
            "no:cacheprovider",
            "-q",
            *pytest_args,
        ]
        print(f"== {name}: recording from {fake.base_url} as {spec.base_url}", flush=True)
        subprocess.run(command, env=env, cwd=suite, check=True)
        base = fake.base_url
    rewritten = sum(rewrite_uris(path, base, spec.base_url) for path in cassettes.rglob(f"{name}.yaml"))
    print(f"== {name}: {rewritten} request(s) now point at {spec.base_url}", flush=True)


def main_for(argv: list[str], known: Collection[str], record: Callable[[str], None]) -> int:
    """Run ``record`` for each provider named in ``argv`` (all of ``known`` if none); 2 on an unknown one."""
    names = argv or list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"unknown provider(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    for name in names:
        record(name)
    return 0


def record(name: str) -> None:
    personality = PERSONALITIES[name]
    record_with_fake(HERE, name, personality, personality.chunk_chars, pytest_args=["-m", "llm_portable"])


def main(argv: list[str]) -> int:
    return main_for(argv, PERSONALITIES, record)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
