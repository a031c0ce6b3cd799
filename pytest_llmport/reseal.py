"""``python -m pytest_llmport reseal PATH...``: seal cassettes again after a deliberate hand edit.

Each response of a cassette carries its seals (``llmport: {head, length, sha256}``: its status, headers
and facts, then its body's length and SHA-256); a response that does not match them is refused at
replay as damaged. After editing a cassette on purpose, this writes it again in the current format with
fresh seals (a folder: every ``*.yaml`` cassette below it). Cassettes of older formats (1: unsealed; 2:
head seals optional) are written in the current one too. Nothing is re-recorded.
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
        description="Seal cassettes again after editing them by hand (each response's head and body seals).",
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
