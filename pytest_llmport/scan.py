"""``python -m pytest_llmport scan PATH...``: fail when a file holds a key, or a string shaped like one.

Run it in CI before cassettes are committed (and on the pytest cache, the report, observation files).
Two kinds of finding:

- a **known key value**: the value of a provider key variable set in the environment (and of each
  ``--env NAME``), in any spelling the scrubber knows (raw, percent-encoded, JSON-escaped, base64, a
  JWT made from it);
- a **credential shape** of the providers' formats (:data:`PATTERNS`), whoever's key it is.

The plugin's own markers (``REDACTED``, ``<REDACTED:...>``) and replay placeholders are never findings.
A false positive is allowed by a line comment ``llmport-scan: allow``, or in an allow file
(``.llmport-scan-allow`` in the current folder, or ``--allow FILE``) listing the finding's fingerprint
(``sha256:...``, printed with each finding; the file never holds the string itself) or a file glob
(``path:cassettes/legacy/*``). Output names the file, line, column and pattern, with the string masked.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .placeholders import ANY_MARKER, PLACEHOLDER_KEYS, REDACTED
from .scrub import Scrubber

ALLOW_COMMENT = "llmport-scan: allow"
ALLOW_FILE = ".llmport-scan-allow"
_VALUE = r"([A-Za-z0-9._~+/-]{16,}=*)"
_UUID = r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
_NAMES = (
    r"(?:[a-z0-9]+_)*(?:ak|sk|access_?key(?:_?id)?|secret(?:_?access)?_?key|client_?secret|"
    r"access_?token|refresh_?token|api_?key|apikey|password|secret_?id)"
)

#: (name, pattern) in order of precedence; group 1, when there is one, is the credential itself.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Anthropic key (sk-ant-...)", re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}")),
    (
        "OpenAI-style key (sk-...: OpenAI, DeepSeek, Moonshot, Qwen, ...)",
        re.compile(r"(?<![A-Za-z0-9_-])sk-(?!ant-)[A-Za-z0-9_-]{20,}"),
    ),
    ("Google API key (AIza...)", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("Qianfan key (bce-v3/ALTAK-...)", re.compile(r"bce-v3/ALTAK-[A-Za-z0-9_-]+/[A-Za-z0-9_-]+")),
    (
        "Zhipu key (id.secret)",
        re.compile(r"(?<![A-Za-z0-9])[0-9a-f]{32}\.[A-Za-z0-9]{16}(?![A-Za-z0-9])"),
    ),
    (
        "JWT (Zhipu signs them from its keys)",
        re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
    ),
    ("Volcengine access key (AKLT...)", re.compile(r"(?<![A-Za-z0-9])AKLT[A-Za-z0-9_-]{20,}")),
    ("Tencent SecretId (AKID...)", re.compile(r"(?<![A-Za-z0-9])AKID[A-Za-z0-9]{32}")),
    (
        "Ark API key (a UUID as a key)",
        re.compile(
            rf"(?i)(?:\bbearer\s+|\bark_?api_?key[\"']?\s*[:=]\s*[\"']?|api-key[\"']?\s*:\s*[\"']?){_UUID}"
        ),
    ),
    ("Bearer token", re.compile(rf"\b(?:Bearer|bearer|BEARER)\s+(?=[A-Za-z._~+/-]*[0-9]){_VALUE}")),
    (
        "Basic credentials",
        re.compile(r"\b(?:Basic|basic|BASIC)\s+(?=[A-Za-z+/]*[0-9+/])([A-Za-z0-9+/]{12,}={0,2})"),
    ),
    (
        "credential assignment (Qianfan AK/SK, client_secret, access_token, ...)",
        re.compile(rf"(?i)(?<![A-Za-z0-9]){_NAMES}[\"']?\s*[:=]\s*[\"']?{_VALUE}"),
    ),
)


def credential_shaped(text: str) -> bool:
    """True when ``text`` holds a string of one of the :data:`PATTERNS` (other than allowed markers)."""
    return any(not _allowed(_secret_of(m)) for _, pattern in PATTERNS for m in pattern.finditer(text))


def redact_shapes(text: str) -> str:
    """``text`` with every credential-shaped string of :data:`PATTERNS` replaced by ``<REDACTED>``."""
    for _, pattern in PATTERNS:
        found = [m for m in pattern.finditer(text) if not _allowed(_secret_of(m))]
        for start, end in reversed([m.span(1 if m.re.groups else 0) for m in found]):
            text = text[:start] + ANY_MARKER + text[end:]
    return text


def _secret_of(match: re.Match[str]) -> str:
    return match.group(1) if match.re.groups else match.group(0)


def _allowed(secret: str) -> bool:
    return REDACTED in secret or secret in PLACEHOLDER_KEYS or any(secret in key for key in PLACEHOLDER_KEYS)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    column: int
    pattern: str
    secret: str
    excerpt: str

    @property
    def fingerprint(self) -> str:
        return "sha256:" + hashlib.sha256(self.secret.encode("utf-8", "surrogateescape")).hexdigest()[:16]

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}:{self.column}: {self.pattern}: {self.excerpt}  "
            f"(allow it: {self.fingerprint} in {ALLOW_FILE})"
        )


def mask(secret: str) -> str:
    """Enough to recognise a string, never enough to use it."""
    return f"{secret[:4]}…[{len(secret)} chars]" if len(secret) > 8 else f"…[{len(secret)} chars]"


@dataclass
class Allow:
    fingerprints: set[str]
    globs: list[str]

    @classmethod
    def read(cls, files: Iterable[Path]) -> Allow:
        allow = cls(set(), [])
        for file in files:
            for raw in file.read_text(encoding="utf-8").splitlines():
                entry = raw.split("#", 1)[0].strip()
                if entry.startswith("sha256:"):
                    allow.fingerprints.add(entry[:23])
                elif entry.startswith("path:"):
                    allow.globs.append(entry[5:].strip())
                elif entry:
                    raise ValueError(f"{file}: {raw!r} is neither 'sha256:<fingerprint>' nor 'path:<glob>'")
        return allow

    def skips(self, path: Path) -> bool:
        names = (path.as_posix(), path.absolute().as_posix(), path.name)
        return any(fnmatch.fnmatch(name, glob) for glob in self.globs for name in names)


class Scanner:
    """Finds known key values and credential shapes in text, line by line."""

    def __init__(
        self, secrets: Mapping[str, str] | Iterable[tuple[str, str]], allow: Allow | None = None
    ) -> None:
        self.scrubber = Scrubber(secrets)
        self.allow = allow or Allow(set(), [])

    def scan_text(self, path: Path, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if ALLOW_COMMENT in line:
                continue
            spans: list[tuple[int, int, str]] = [
                (start, end, f"known value of {name}") for start, end, name in self.scrubber.findings(line)
            ]
            for name, pattern in PATTERNS:
                for match in pattern.finditer(line):
                    group = 1 if pattern.groups else 0
                    start, end = match.span(group)
                    if not _allowed(match.group(group)) and not any(
                        s < end and start < e for s, e, _ in spans
                    ):
                        spans.append((start, end, name))
            spans.sort()
            for start, end, name in spans:
                finding = Finding(
                    path, number, start + 1, name, line[start:end], _excerpt(line, spans, start)
                )
                if finding.fingerprint not in self.allow.fingerprints:
                    findings.append(finding)
        return findings

    def scan(self, roots: Sequence[Path]) -> tuple[list[Finding], int]:
        """Findings in every file under ``roots``, and how many files were read."""
        findings: list[Finding] = []
        count = 0
        for file in _files(roots):
            if self.allow.skips(file):
                continue
            try:
                data = file.read_bytes()
            except OSError:
                continue
            count += 1
            findings.extend(self.scan_text(file, data.decode("utf-8", "surrogateescape")))
        return findings, count


def _excerpt(line: str, spans: list[tuple[int, int, str]], around: int, width: int = 100) -> str:
    out, position = [], 0
    for start, end, _ in spans:
        if start < position:
            continue
        out.append(line[position:start])
        out.append(mask(line[start:end]))
        position = end
    out.append(line[position:])
    masked = "".join(out)
    # Where the finding is in the masked line: its offset moved by the masks before it.
    shift = sum(len(mask(line[s:e])) - (e - s) for s, e, _ in spans if e <= around)
    centre = around + shift
    lo = max(0, centre - width // 3)
    text = masked[lo : lo + width].strip()
    return ("…" if lo else "") + text + ("…" if lo + width < len(masked) else "")


def _files(roots: Sequence[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for name in sorted(names):
                if name != ALLOW_FILE:
                    yield Path(folder) / name


def known_secrets(variables: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of ``variables`` (and of every built-in provider's key variables) set in ``environ``."""
    from .providers import BUILTIN_PROVIDERS

    environ = os.environ if environ is None else environ
    names = {p.api_key_env for p in BUILTIN_PROVIDERS} | {p.secret_key_env for p in BUILTIN_PROVIDERS}
    names |= set(variables)
    return {name: environ[name] for name in sorted(names) if name and environ.get(name)}


def report(findings: Sequence[Finding], files: int, out: TextIO) -> None:
    for finding in findings:
        print(finding, file=out)
    if findings:
        places = len({finding.path for finding in findings})
        print(
            f"llmport scan: {len(findings)} possible secret(s) in {places} of {files} file(s). Remove them "
            f"(re-record with the key variable set, so the scrubber knows it), or allow a false positive: "
            f"a line comment '{ALLOW_COMMENT}', or its fingerprint in {ALLOW_FILE}.",
            file=out,
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmport scan",
        description="Fail when a file holds a known key value or a credential-shaped string.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders to scan")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="also look for the value of this variable (the built-in providers' key variables always count)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help=f"allow-list file of 'sha256:<fingerprint>' and 'path:<glob>' lines (default: ./{ALLOW_FILE})",
    )
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        print(f"llmport scan: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    allow_files = list(args.allow) or ([Path(ALLOW_FILE)] if Path(ALLOW_FILE).is_file() else [])
    try:
        allow = Allow.read(allow_files)
    except (OSError, ValueError) as exc:
        print(f"llmport scan: {exc}", file=sys.stderr)
        return 2
    findings, files = Scanner(known_secrets(args.env), allow).scan(args.paths)
    report(findings, files, sys.stdout)
    if not findings:
        print(f"llmport scan: {files} file(s), no secret found")
    return 1 if findings else 0
