"""``python -m pytest_llmport reseal PATH...``: seal cassettes again after a deliberate hand edit.

Each response body of a cassette carries its length and SHA-256 (``llmport: {length, sha256}``); a body
that does not match is refused at replay as damaged. After editing a cassette on purpose, this writes
it again in the current format with fresh seals (a folder: every ``*.yaml`` cassette below it). An
unsealed cassette (format 1, written before seals existed) is sealed too. Nothing is re-recorded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cassettes import ReadableYamlSerializer, reseal_text, write_atomically
from .errors import LlmportError


def _targets(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        found.extend(sorted(path.rglob("*.yaml")) if path.is_dir() else [path])
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmport reseal",
        description="Seal cassettes again after editing them by hand (their bodies' length and SHA-256).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a cassette, or a folder of cassettes")
    args = parser.parse_args(argv)
    failed = 0
    for path in _targets(args.paths):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(f"{path}: no such file", file=sys.stderr)
            failed += 1
            continue
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{path}: cannot read it: {exc}", file=sys.stderr)
            failed += 1
            continue
        try:
            sealed, count = reseal_text(path, text, ReadableYamlSerializer)
            if sealed != text:
                write_atomically(path, sealed.encode("utf-8"), what="cassette")
        except LlmportError as exc:
            print(str(exc), file=sys.stderr)
            failed += 1
            continue
        print(f"resealed {path} ({count} interaction{'' if count == 1 else 's'})")
    return 1 if failed else 0
