"""Cassette files: where they live, how they read on disk, how requests match (no pytest import).

On disk a cassette is vcrpy's version-1 layout with two readability changes: JSON bodies are stored
pretty-printed under ``json:`` (a YAML block, one JSON line per line) instead of as one escaped string,
and text (Chinese included) is written as UTF-8, never as ``\\u`` escapes. Streamed bodies stay text,
one SSE event after another. JSON stays JSON text rather than becoming YAML structures because PyYAML
builds every node in Python: on a typical chat exchange that halves the time to load a cassette.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from .errors import CorruptCassetteError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    pass


def _represent_str(dumper: Any, value: str) -> Any:
    # Block style keeps SSE streams and long Chinese text readable line by line.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


# -- paths ----------------------------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def param_slug(params: Mapping[str, object], indices: Mapping[str, int]) -> str:
    """A file-name-safe name for a test's other parameters, independent of pytest's id formatting."""
    parts = []
    for name in sorted(params):
        value = params[name]
        if isinstance(value, (str, int, float, bool)) or value is None:
            text = f"{name}={value}"
            safe = _SAFE.sub("_", text)[:60]
            if safe != text:
                safe = f"{safe}-{zlib.crc32(repr(value).encode()):08x}"
        else:
            safe = f"{name}{indices.get(name, 0)}"
        parts.append(safe)
    return "-".join(parts)


def cassette_path(test_file: Path, cassette_dir: str, test_name: str, provider: str, extra: str = "") -> Path:
    """``<test dir>/<cassette_dir>/<module>/<test>/[<extra>/]<provider>.yaml``."""
    folder = test_file.parent / cassette_dir / test_file.stem / test_name
    if extra:
        folder = folder / extra
    return folder / f"{provider}.yaml"


# -- serializer (vcrpy's serializer protocol: a module-like object with serialize/deserialize) ----
def _maybe_json(text: Any) -> Any:
    if not isinstance(text, str) or not text or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _json_text(stored: Any) -> str:
    # Text as written by this version; structures as written by earlier ones.
    return stored if isinstance(stored, str) else _compact(stored)


class ReadableYamlSerializer:
    """vcrpy serializer writing JSON bodies pretty-printed and text unescaped."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        interactions = []
        for item in cassette_dict.get("interactions", []):
            request = dict(item["request"])
            parsed = _maybe_json(request.get("body"))
            if parsed is not None:
                request["body"] = {"json": _pretty(parsed)}
            # Keys of our own (memoised summaries) live in memory and in the cache, never on disk.
            response = {k: v for k, v in item["response"].items() if not k.startswith("_llmport")}
            body = dict(response.get("body", {}))
            parsed = _maybe_json(body.get("string"))
            if parsed is not None:
                body = {"json": _pretty(parsed)}
            response["body"] = body
            interactions.append({"request": request, "response": response})
        data = {**cassette_dict, "interactions": interactions}
        text: str = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
        return text

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (libyaml's CSafeLoader)
        validate_layout(data)
        for item in data["interactions"]:
            request = item["request"]
            if isinstance(request.get("body"), dict) and "json" in request["body"]:
                request["body"] = _json_text(request["body"]["json"])
            body = item["response"]["body"]
            if "json" in body:
                item["response"]["body"] = {"string": _json_text(body["json"])}
        result: dict[str, Any] = data
        return result


class WithHeader:
    """:class:`ReadableYamlSerializer` plus one cassette's top-level ``llmport:`` mapping, written first."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.header = header

    def serialize(self, cassette_dict: dict[str, Any]) -> str:
        data = {"llmport": dict(self.header), **cassette_dict} if self.header else cassette_dict
        return ReadableYamlSerializer.serialize(data)

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        return ReadableYamlSerializer.deserialize(text)


def validate_layout(data: Any) -> None:
    """Raise ``ValueError`` naming the first part of ``data`` that is not a cassette."""
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise ValueError("the file has no 'interactions' list; it is not a cassette (or it was cut short)")
    if not isinstance(data.get("llmport", {}), dict):
        raise ValueError("its top-level 'llmport' entry is not a mapping")
    for index, item in enumerate(data["interactions"]):
        where = f"interactions[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            raise ValueError(f"{where} has no 'request' mapping")
        if not isinstance(item.get("response"), dict):
            raise ValueError(f"{where} has no 'response' mapping (was the file cut short?)")
        request, response = item["request"], item["response"]
        for key in ("method", "uri"):
            if not isinstance(request.get(key), str):
                raise ValueError(f"{where}.request.{key} is missing or not a string")
        status = response.get("status")
        if not isinstance(status, dict) or not isinstance(status.get("code"), int):
            raise ValueError(f"{where}.response.status.code is missing or not a number")
        if not isinstance(response.get("body"), dict):
            raise ValueError(f"{where}.response.body is missing")
        if not isinstance(response.get("headers", {}), dict):
            raise ValueError(f"{where}.response.headers is not a mapping")


# -- persister (vcrpy's persister protocol) -------------------------------------------------------
class AtomicPersister:
    """Loads cassettes with precise errors and saves them atomically (temp file, then rename).

    With a ``cache_dir`` (pytest's cache folder), parsed cassettes are also kept there as ``marshal`` data
    keyed by each file's path, size and modification time: YAML parsing is most of what replaying a test
    costs, and a cassette rarely changes between two runs on one machine. One file per process
    (``parsed-<worker>.marshal``), read once on first use and written once by :meth:`flush` at the end of
    the run, so neither a warm nor a cold run pays a file per test. A stale entry is ignored and an
    unreadable file skipped; the YAML file is always the truth.
    """

    FORMAT = 2

    def __init__(self, cache_dir: Path | None = None, worker: str = "main") -> None:
        self.cache_dir = cache_dir
        self.worker = worker
        self._known: dict[str, tuple[tuple[int, int], Any]] | None = None
        self._used: dict[str, tuple[tuple[int, int], Any]] = {}
        self._changed = False

    def _entries(self) -> dict[str, tuple[tuple[int, int], Any]]:
        if self._known is None:
            self._known = {}
            for file in sorted(self.cache_dir.glob("parsed-*.marshal")) if self.cache_dir else ():
                try:
                    fmt, entries = marshal.loads(file.read_bytes())  # noqa: S302 - our own cache
                except (OSError, ValueError, EOFError, TypeError):
                    continue
                if fmt == self.FORMAT and isinstance(entries, dict):
                    self._known.update(entries)
        return self._known

    def _cached(self, key: str, stamp: tuple[int, int]) -> Any:
        if self.cache_dir is None:
            return None
        entry = self._entries().get(key)
        if entry is None or tuple(entry[0]) != stamp:
            self._changed = True
            return None
        self._used[key] = entry
        return entry[1]

    def _remember(self, key: str, stamp: tuple[int, int], data: Any) -> None:
        if self.cache_dir is not None:
            self._used[key] = (stamp, data)
            self._changed = True

    def mark_changed(self) -> None:
        """Something was added to a cached entry in place (an exchange summary): write it at the end."""
        self._changed = True

    def flush(self) -> None:
        """Write this process's entries (only those used in this run, so stale ones drop out)."""
        if self.cache_dir is None or not self._changed:
            return
        target = self.cache_dir / f"parsed-{self.worker}.marshal"
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=self.cache_dir)
            with os.fdopen(fd, "wb") as handle:
                handle.write(marshal.dumps((self.FORMAT, self._used)))
            os.replace(tmp, target)
        except (OSError, ValueError):
            pass  # a cache that cannot be written only costs speed
        self._changed = False

    def load_cassette(self, cassette_path: str | Path, serializer: Any) -> Any:
        from vcr.persisters.filesystem import CassetteNotFoundError

        path = Path(cassette_path)
        try:
            status = path.stat()
        except FileNotFoundError:
            raise CassetteNotFoundError() from None
        stamp = (status.st_mtime_ns, status.st_size)
        key = str(path.absolute())
        data = self._cached(key, stamp)
        if data is None:
            data = self._parse(path, serializer)
            self._remember(key, stamp, data)
        return _interactions(data)

    @staticmethod
    def _parse(path: Path, serializer: Any) -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptCassetteError(
                f"{path}: not UTF-8 text at byte {exc.start}; delete it and re-record"
            ) from exc
        if not text.strip():
            raise CorruptCassetteError(f"{path}: the file is empty; delete it and re-record")
        try:
            return serializer.deserialize(text)
        except yaml.MarkedYAMLError as exc:
            mark, context = exc.problem_mark, exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown position"
            if context is not None and exc.context:
                where += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
            raise CorruptCassetteError(
                f"{path}: not valid YAML at {where}: {exc.problem or exc}. "
                f"The file may have been cut short; delete it and re-record."
            ) from exc
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise CorruptCassetteError(f"{path}: {exc}. Delete it and re-record.") from exc

    def save_cassette(
        self, cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        from vcr.serialize import serialize

        path = Path(cassette_path)
        data = serialize(cassette_dict, serializer)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder, so the rename is atomic; a crash leaves either the old file or the new one.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _interactions(data: Any) -> Any:
    """What vcrpy's persisters return: requests, responses, metadata, then our ``llmport:`` mapping."""
    from vcr.request import Request
    from vcr.serializers import compat

    requests = [Request._from_dict(item["request"]) for item in data["interactions"]]
    responses = [compat.convert_to_bytes(item["response"]) for item in data["interactions"]]
    return requests, responses, data.get("metadata") or {}, data.get("llmport") or {}


# -- matching -------------------------------------------------------------------------------------
def _query(uri: str) -> list[tuple[str, str]]:
    return sorted(parse_qsl(urlsplit(uri).query, keep_blank_values=True))


def _location(uri: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(uri)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), port, parts.path.rstrip("/") or "/"


def body_value(body: Any) -> Any:
    """The body as a comparable value: parsed JSON when it is JSON, else bytes."""
    if body is None:
        return b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        stripped = bytes(body).lstrip()
        if stripped[:1] in (b"{", b"["):
            try:
                return json.loads(body)
            except ValueError:
                pass
        return bytes(body)
    return body


# vcrpy matchers signal a mismatch with AssertionError; raised explicitly, because pytest rewrites the
# asserts of plugin modules and would bury the message under its own introspection.
def match_method(r1: Any, r2: Any) -> None:
    if r1.method.upper() != r2.method.upper():
        raise AssertionError(f"method {r1.method} != {r2.method}")


def match_uri(r1: Any, r2: Any) -> None:
    if _location(r1.uri) != _location(r2.uri):
        raise AssertionError(f"URL {r1.uri} != {r2.uri}")
    if _query(r1.uri) != _query(r2.uri):
        raise AssertionError(f"query {_query(r1.uri)} != {_query(r2.uri)}")


def _canonical(value: Any) -> Any:
    # Python's == takes True for 1 and 1 for 1.0; JSON requests that differ so are different requests.
    return value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _canonical_body(request: Any) -> Any:
    # Remembered on the request: a recorded request is compared with every request the test sends.
    body = request.body
    memo = request.__dict__.get("_llmport_canonical")
    if memo is not None and memo[0] is body:
        return memo[1]
    value = _canonical(body_value(body))
    request.__dict__["_llmport_canonical"] = (body, value)
    return value


def match_body(r1: Any, r2: Any) -> None:
    if _canonical_body(r1) != _canonical_body(r2):
        raise AssertionError("body differs")


MATCHERS = (match_method, match_uri, match_body)


def json_differences(expected: Any, actual: Any, path: str = "$", limit: int = 5) -> list[str]:
    """At most ``limit`` readable differences between two JSON values, outermost first."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if key not in b:
                    out.append(f"{where}.{key}: recorded {_short(a[key])}, now missing")
                elif key not in a:
                    out.append(f"{where}.{key}: not recorded, now {_short(b[key])}")
                else:
                    walk(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                out.append(f"{where}: recorded {len(a)} items, now {len(b)}")
            for index, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{where}[{index}]")
        elif isinstance(a, str) and isinstance(b, str):
            if a != b:
                out.append(f"{where}: {_string_difference(a, b)}")
        elif a != b:
            out.append(f"{where}: recorded {_short(a)}, now {_short(b)}")

    walk(expected, actual, path)
    return out


def _string_difference(a: str, b: str, width: int = 60) -> str:
    """Show where two strings part: long prompts often differ only far from their start."""
    if len(a) <= width and len(b) <= width:
        return f"recorded {a!r}, now {b!r}"
    start = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    lo = max(0, start - width // 3)

    def window(text: str) -> str:
        piece = text[lo : lo + width]
        return ("..." if lo else "") + repr(piece) + ("..." if lo + width < len(text) else "")

    return f"differs at character {start}: recorded {window(a)}, now {window(b)}"


def _short(value: Any, width: int = 70) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = _compact(text) if not isinstance(text, str) else repr(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def explain_mismatch(request: Any, recorded: Sequence[Any]) -> str:
    """Say how ``request`` differs from the closest of the ``recorded`` requests."""
    if not recorded:
        return "the cassette holds no requests"
    scored = []
    for index, candidate in enumerate(recorded):
        fails = []
        for matcher in MATCHERS:
            try:
                matcher(candidate, request)
            except AssertionError as exc:
                fails.append((matcher, str(exc)))
        scored.append((len(fails), index, candidate, fails))
    scored.sort(key=lambda item: (item[0], item[1]))
    _, index, closest, fails = scored[0]
    lines = [f"closest recorded request (#{index + 1} of {len(recorded)}): {closest.method} {closest.uri}"]
    for matcher, message in fails:
        if matcher is match_body:
            a, b = body_value(closest.body), body_value(request.body)
            diffs = json_differences(a, b) if not isinstance(a, bytes) and not isinstance(b, bytes) else []
            lines.append(
                "  body differs:" if diffs else f"  body differs: recorded {_short(a)}, now {_short(b)}"
            )
            lines.extend(f"    {line}" for line in diffs)
        else:
            lines.append(f"  {message}")
    if not fails:
        lines.append("  it matches, but was already played (the test sends it more often than when recorded)")
    return "\n".join(lines)
