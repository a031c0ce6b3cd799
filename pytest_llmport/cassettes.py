"""Cassette files: where they live, how they read on disk, how requests match (no pytest import).

On disk a cassette is vcrpy's version-1 layout with two readability changes: JSON bodies are stored
pretty-printed under ``json:`` (a YAML block, one JSON line per line) instead of as one escaped string,
and text (Chinese included) is written as UTF-8, never as ``\\u`` escapes. Streamed bodies stay text,
one SSE event after another. JSON stays JSON text rather than becoming YAML structures because PyYAML
builds every node in Python: on a typical chat exchange that halves the time to load a cassette.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import json
import marshal
import os
import re
import shlex
import sys
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from . import fastyaml
from .errors import CassetteFormatError, CassetteWriteError, CorruptCassetteError
from .placeholders import MARKER, REDACTED

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


def param_slug(
    params: Mapping[str, object],
    indices: Mapping[str, int],
    is_secret: Callable[[str], bool] = lambda text: False,
) -> str:
    """A file-name-safe name for a test's other parameters, independent of pytest's id formatting.

    A parameter whose value ``is_secret`` (a key, whatever ``ids=`` says) is named by its position, as
    values that are not scalars are: a key must not become a folder name.
    """
    parts = []
    for name in sorted(params):
        value = params[name]
        if isinstance(value, str) and is_secret(value):
            safe = f"{name}{indices.get(name, 0)}"
        elif isinstance(value, (str, int, float, bool)) or value is None:
            text = f"{name}={value}"
            safe = _SAFE.sub("_", text)[:60]
            if safe != text:
                safe = f"{safe}-{zlib.crc32(repr(value).encode()):08x}"
        else:
            safe = f"{name}{indices.get(name, 0)}"
        parts.append(safe)
    return "-".join(parts)


def cassette_folder(test_file: Path, cassette_dir: str) -> Path:
    """``<test dir>/<cassette_dir>/<module>``: where the cassettes of one test module go."""
    return test_file.parent / cassette_dir / test_file.stem


def cassette_path(test_file: Path, cassette_dir: str, test_name: str, provider: str, extra: str = "") -> Path:
    """``<test dir>/<cassette_dir>/<module>/<test>/[<extra>/]<provider>.yaml``."""
    folder = cassette_folder(test_file, cassette_dir) / test_name
    if extra:
        folder = folder / extra
    return folder / f"{provider}.yaml"


# -- requests ---------------------------------------------------------------------------------------
class HttpRequest:
    """One request as a cassette keeps it: method, URL, body (bytes or None), headers (one value each).

    The shape of vcrpy's ``Request`` (what its stubs hand over), without its URL parsing per instance:
    matching parses a URL once, in :mod:`pytest_llmport.index`, and only when it needs to.
    """

    def __init__(self, method: str, uri: str, body: Any, headers: Mapping[str, Any]) -> None:
        self.method = method
        self.uri = uri
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        # As vcrpy keeps them: the first value of each, one entry per name whatever its case.
        kept: dict[str, Any] = {}
        lowered: dict[str, str] = {}
        for name, value in headers.items():
            first = value[0] if isinstance(value, (list, tuple)) and value else value
            kept[lowered.setdefault(name.lower(), name)] = first
        self.headers = kept

    @classmethod
    def of(cls, request: Any) -> HttpRequest:
        """Ours as it is, or a copy of a vcrpy ``Request`` (vcrpy's ``http.client`` stubs send those)."""
        if isinstance(request, HttpRequest):
            return request
        body = request.body
        if hasattr(body, "read") or (body is not None and not isinstance(body, (bytes, bytearray, str))):
            body = getattr(request, "body_bytes", body)  # a file or iterator body, read once by vcrpy
        return cls(request.method, request.uri, body, dict(request.headers))

    #: The mapping a loaded request was read from (in the parsed-cassette cache): where the replay index
    #: keeps what it worked out about it, so a warm run does not work it out again.
    stored: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HttpRequest:
        request = cls(data["method"], data["uri"], data.get("body"), data.get("headers") or {})
        request.stored = data
        return request

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "uri": self.uri,
            "body": self.body,
            "headers": {name: [value] for name, value in self.headers.items()},
        }

    def __repr__(self) -> str:
        return f"<HttpRequest {self.method} {self.uri}>"


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


FORMAT = 3
"""The cassette format this version writes and the newest it reads.

1: no ``llmport`` block, unsealed; 2: each body sealed, a response's head seal optional (it came later);
3: every response carries its head seal too, so deleting that line is damage, not an older file.
"""


class CassetteDamage(ValueError):
    """A cassette whose content does not match its seal: cut short, or edited without re-sealing."""


class CassetteTooNew(ValueError):
    """A cassette written in a format newer than this version of the plugin reads."""


def _stored_bytes(body: Mapping[str, Any]) -> bytes:
    """The body exactly as the file stores it (the JSON text of ``json:``, else ``string:``)."""
    value = body.get("json", body.get("string", ""))
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return _compact(value).encode("utf-8")  # a JSON body stored as YAML structures (the earlier layout)


def _seal(body: Mapping[str, Any]) -> dict[str, Any]:
    stored = _stored_bytes(body)
    return {"length": len(stored), "sha256": hashlib.sha256(stored).hexdigest()}


_SEALS = ("head", "length", "sha256")


def _head_seal(response: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """The seal of what decides a response's outcome besides its body: status, headers, llmport facts.

    Without it, ``code: 400`` edited to ``200`` or a deleted ``incomplete:`` block would replay a
    recorded failure as a success.
    """
    facts = {
        "status": response.get("status"),
        "headers": response.get("headers"),
        "llmport": {k: v for k, v in meta.items() if k not in _SEALS},
    }
    text = _SEAL_JSON.encode(facts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# What json.dumps(facts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str) builds
# for every call, built once: a fresh checkout checks a head seal per response.
_SEAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


# Client libraries whose version a cassette notes when they are loaded (the inventory flags older ones).
_SDKS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "zhipuai": "zhipuai",
    "dashscope": "dashscope",
    "google-genai": "google.genai",
    "litellm": "litellm",
    "langchain-openai": "langchain_openai",
    "qianfan": "qianfan",
}


def _sdk_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for distribution, module in _SDKS.items():
        if module in sys.modules:
            try:
                versions[distribution] = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                continue
    return versions


def _header(data: Mapping[str, Any]) -> dict[str, Any]:
    from . import __version__

    header = dict(data.get("llmport") or {})
    header.pop("interactions", None)
    header.setdefault("recorded", datetime.date.today().isoformat())
    header.setdefault("sdk", _sdk_versions())
    # format first, the count last: a reader sees the version before anything else.
    return {
        "format": FORMAT,
        "plugin": __version__,
        **{
            k: v
            for k, v in header.items()
            if k
            not in (
                "format",
                "plugin",
            )
        },
        "interactions": len(data.get("interactions", [])),
    }


class ReadableYamlSerializer:
    """vcrpy serializer writing JSON bodies pretty-printed and text unescaped, each body sealed."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        interactions = []
        for item in cassette_dict.get("interactions", []):
            # Keys of our own (the replay index's memo) live in memory and in the cache, never on disk.
            request = {k: v for k, v in item["request"].items() if not k.startswith("_llmport")}
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
            meta = {k: v for k, v in dict(response.pop("llmport", None) or {}).items() if k not in _SEALS}
            chunks = meta.get("chunks")
            # Chunk lengths describe the body as received; scrubbing or pretty-printing changed it.
            if "json" in body or not isinstance(chunks, list) or sum(chunks) != len(_stored_bytes(body)):
                meta.pop("chunks", None)
            # The seal comes last, so a file cut anywhere before its end loses a seal it needs.
            response["llmport"] = {**meta, "head": _head_seal(response, meta), **_seal(body)}
            interactions.append({"request": request, "response": response})
        data = {
            "version": cassette_dict.get("version", 1),
            "llmport": _header(cassette_dict),
            **{k: v for k, v in cassette_dict.items() if k not in ("version", "llmport", "interactions")},
            "interactions": interactions,
        }
        text: str = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
        return text

    @staticmethod
    def deserialize(text: str, verify: bool = True) -> dict[str, Any]:
        # yaml-rs where it reads exactly what PyYAML would (the fast extra, see fastyaml.py), else PyYAML.
        data = fastyaml.load(text)
        if data is None:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (libyaml's CSafeLoader)
        validate_layout(data)
        if cassette_format(data) >= 2 and verify:
            verify_seal(data)
        for item in data["interactions"]:
            request = item["request"]
            if isinstance(request.get("body"), dict) and "json" in request["body"]:
                request["body"] = _json_text(request["body"]["json"])
            body = item["response"]["body"]
            if "json" in body:
                item["response"]["body"] = {"string": _json_text(body["json"])}
        result: dict[str, Any] = data
        return result


def cassette_format(data: Mapping[str, Any]) -> int:
    """The format of a parsed cassette: 1 without an ``llmport`` block; raises on a format not known."""
    header = data.get("llmport")
    if header is None or (isinstance(header, dict) and "format" not in header):
        return 1  # unsealed: recorded before seals (a header without a format holds identity facts only)
    fmt = header.get("format") if isinstance(header, dict) else None
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 2:
        raise CassetteDamage(f"llmport.format is {fmt!r}, not a cassette format number")
    if fmt > FORMAT:
        from . import __version__

        writer = header.get("plugin")
        raise CassetteTooNew(
            f"cassette format {fmt} (written by pytest-llmport {writer or 'of a later version'}); this "
            f"pytest-llmport {__version__} reads formats 1 to {FORMAT}. Upgrade pytest-llmport"
            + (f" to {writer} or later" if isinstance(writer, str) else "")
        )
    return fmt


def verify_seal(data: Mapping[str, Any]) -> None:
    """Raise ``CassetteDamage`` naming the first interaction whose body does not match its seal.

    Only for sealed cassettes (format 2 on); one SHA-256 per body, once per parse (the parsed cache
    keeps only verified cassettes, keyed by the file's size and modification time).
    """
    interactions = data["interactions"]
    expected = data["llmport"].get("interactions")
    heads_required = cassette_format(data) >= 3
    if data.get("version") != 1:
        raise CassetteDamage("the cassette has no 'version: 1' line")
    if expected != len(interactions):
        raise CassetteDamage(
            f"llmport.interactions says {expected!r} interactions, the file holds {len(interactions)} "
            "(was it cut short?)"
        )
    for index, item in enumerate(interactions):
        where = f"interactions[{index}].response"
        meta = item["response"].get("llmport")
        if not isinstance(meta, dict) or "sha256" not in meta or "length" not in meta:
            raise CassetteDamage(f"{where}.llmport has no sha256/length seal (was the file cut short?)")
        stored = _stored_bytes(item["response"]["body"])
        if meta["length"] != len(stored):
            raise CassetteDamage(
                f"{where}.body is {len(stored)} bytes, its seal says {meta['length']} "
                "(cut short, or edited by hand)"
            )
        if meta["sha256"] != hashlib.sha256(stored).hexdigest():
            raise CassetteDamage(f"{where}.body does not match its sha256 seal (edited by hand?)")
        # Format 2 cassettes sealed before the head seal existed may have none; format 3 on must.
        if "head" not in meta:
            if heads_required:
                raise CassetteDamage(f"{where}.llmport has no head seal (was its 'head:' line deleted?)")
        elif meta["head"] != _head_seal(item["response"], meta):
            raise CassetteDamage(
                f"{where}: its status, headers or llmport facts (incomplete, chunks) do not match their "
                "head seal (edited by hand?)"
            )
        chunks = meta.get("chunks")
        if chunks is not None and (
            not isinstance(chunks, list)
            or not all(isinstance(n, int) and n > 0 for n in chunks)
            or sum(chunks) != len(stored)
        ):
            raise CassetteDamage(f"{where}.llmport.chunks do not add up to the body's {len(stored)} bytes")
        incomplete = meta.get("incomplete")
        if incomplete is not None and not (
            isinstance(incomplete, dict) and isinstance(incomplete.get("error"), str)
        ):
            raise CassetteDamage(f"{where}.llmport.incomplete has no 'error' kind")


class WithHeader:
    """:class:`ReadableYamlSerializer` plus one cassette's top-level ``llmport:`` mapping, written first."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.header = header

    def serialize(self, cassette_dict: dict[str, Any]) -> str:
        data = {"llmport": dict(self.header), **cassette_dict} if self.header else cassette_dict
        return ReadableYamlSerializer.serialize(data)

    @staticmethod
    def deserialize(text: str, verify: bool = True) -> dict[str, Any]:
        return ReadableYamlSerializer.deserialize(text, verify=verify)


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
    (``parsed-<worker>.marshal``), so neither a warm nor a cold run pays a file per test: a stream of
    entries, each a small ``(key, stamp, length)`` header followed by the entry's own marshal data. On
    first use the headers of every process's file are read, not the data; an entry's data is read when
    its cassette is loaded. Memory holds the headers and the last few entries used, never the suite's
    cassettes (a suite of 50,000 would otherwise sit in every worker). When something new was parsed or
    changed, :meth:`flush` writes the entries used in this run (so stale ones drop out) and replaces this
    process's file. A stale entry is ignored and an unreadable file skipped; the YAML file is the truth.
    """

    FORMAT = 4  # 4: a stream of (key, stamp, length) headers, each followed by a sealed cassette's data
    # Entries used lately stay in memory, in case a test adds to its cassette in place (mark_changed).
    RECENT = 16

    def __init__(self, cache_dir: Path | None = None, worker: str = "main") -> None:
        self.cache_dir = cache_dir
        self.worker = worker
        # key -> (stamp, open file, offset, length) of an entry's data in the files read at first use.
        self._index: dict[str, tuple[tuple[int, int], Any, int, int]] | None = None
        self._files: list[Any] = []
        # Used lately: key -> [stamp, data, dirty]; older entries leave memory once they are written out.
        self._recent: dict[str, list[Any]] = {}
        self._hits: set[str] = set()  # used as read: copied over from the old file at flush
        self._out: Any = None  # the new file, opened when the first new or changed entry goes out
        self._out_path: Path | None = None
        self._written: set[str] = set()
        self._changed = False

    def _entries(self) -> dict[str, tuple[tuple[int, int], Any, int, int]]:
        if self._index is None:
            self._index = {}
            for file in sorted(self.cache_dir.glob("parsed-*.marshal")) if self.cache_dir else ():
                try:
                    handle = file.open("rb")
                except OSError:
                    continue
                self._files.append(handle)
                # A damaged or cut file keeps the entries before the damage.
                with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
                    if marshal.load(handle) != self._written_by():  # noqa: S302 - our own cache
                        continue
                    while True:
                        try:
                            key, stamp, length = marshal.load(handle)  # noqa: S302 - our own cache
                        except EOFError:
                            break
                        self._index[key] = (tuple(stamp), handle, handle.tell(), length)
                        handle.seek(length, os.SEEK_CUR)
        return self._index

    @classmethod
    def _written_by(cls) -> tuple[int, int, str]:
        """A cache file's first record: its layout, the cassette format and the plugin that checked it.

        An entry holds a cassette that passed the checks of the version that parsed it; another version
        (another format, or checks added within one) parses the YAML file again.
        """
        from . import __version__

        return (cls.FORMAT, FORMAT, __version__)

    @staticmethod
    def _read(entry: tuple[tuple[int, int], Any, int, int]) -> bytes:
        _, handle, offset, length = entry
        handle.seek(offset)
        data: bytes = handle.read(length)
        if len(data) != length:
            raise EOFError("cut short")
        return data

    def _cached(self, key: str, stamp: tuple[int, int]) -> Any:
        if self.cache_dir is None:
            return None
        recent = self._recent.get(key)
        if recent is not None and recent[0] == stamp:
            return recent[1]
        entry = self._entries().get(key)
        if entry is None or entry[0] != stamp:
            self._changed = True
            return None
        try:
            data = marshal.loads(self._read(entry))  # noqa: S302 - our own cache
        except (OSError, ValueError, EOFError, TypeError):
            self._changed = True
            return None
        self._keep(key, stamp, data, dirty=False)
        return data

    def _remember(self, key: str, stamp: tuple[int, int], data: Any) -> None:
        if self.cache_dir is not None:
            self._keep(key, stamp, data, dirty=True)
            self._changed = True

    def _keep(self, key: str, stamp: tuple[int, int], data: Any, dirty: bool) -> None:
        self._recent.pop(key, None)
        self._recent[key] = [stamp, data, dirty]
        while len(self._recent) > self.RECENT:
            oldest = next(iter(self._recent))
            self._let_go(oldest, self._recent.pop(oldest))

    def mark_changed(self) -> None:
        """Something was added to a cached entry in place (an exchange summary): write it at the end."""
        self._changed = True
        for entry in self._recent.values():
            entry[2] = True

    def _let_go(self, key: str, entry: list[Any]) -> None:
        stamp, data, dirty = entry
        if not dirty:
            self._hits.add(key)
            return
        self._hits.discard(key)
        self._append(key, stamp, marshal.dumps(data))

    def _append(self, key: str, stamp: tuple[int, int], encoded: bytes) -> None:
        if self._out is False or self.cache_dir is None:
            return  # the cache could not be written: that only costs speed
        try:
            if self._out is None:
                for stale in self.cache_dir.glob(f".parsed-{glob.escape(self.worker)}.*{TEMP_SUFFIX}"):
                    with contextlib.suppress(OSError):
                        stale.unlink()  # left by a run that was killed
                self._out_path = self.cache_dir / f".parsed-{self.worker}.{os.getpid()}{TEMP_SUFFIX}"
                self._out = self._out_path.open("wb", buffering=1 << 16)  # a write per many entries
                marshal.dump(self._written_by(), self._out)
            marshal.dump((key, stamp, len(encoded)), self._out)
            self._out.write(encoded)
            self._written.add(key)
        except (OSError, ValueError):
            self._out_failed()

    def _out_failed(self) -> None:
        if self._out:
            with contextlib.suppress(OSError):
                self._out.close()
        if self._out_path is not None:
            self._out_path.unlink(missing_ok=True)
        self._out = False

    def flush(self) -> None:
        """Write this process's entries (only those used in this run, so stale ones drop out)."""
        if self.cache_dir is None:
            return
        while self._recent:
            oldest = next(iter(self._recent))
            self._let_go(oldest, self._recent.pop(oldest))
        if self._changed:
            index = self._entries()
            for key in sorted(self._hits - self._written):
                with contextlib.suppress(OSError, ValueError, EOFError):
                    self._append(key, index[key][0], self._read(index[key]))
        if self._out:
            target = self.cache_dir / f"parsed-{self.worker}.marshal"
            try:
                self._out.close()
                os.replace(self._out_path, target)  # type: ignore[arg-type]
            except OSError:
                self._out_failed()
        for handle in self._files:
            handle.close()
        self._files, self._index, self._out, self._out_path = [], None, None, None
        self._hits.clear()
        self._written.clear()
        self._changed = False

    def load_cassette(self, cassette_path: str | Path, serializer: Any) -> Any:
        """(requests, responses, metadata, ``llmport:`` header); ``FileNotFoundError`` without a file."""
        path = cassette_path if isinstance(cassette_path, Path) else Path(cassette_path)  # Path(Path) parses
        status = path.stat()
        stamp = (status.st_mtime_ns, status.st_size)
        key = str(path.absolute())
        data = self._cached(key, stamp)
        if data is None:
            data = self._parse(path, serializer)
            self._remember(key, stamp, data)
        return _interactions(data)

    @staticmethod
    def _parse(path: Path, serializer: Any) -> Any:
        with open(path, "rb") as handle:  # a binary read: no text layer, which costs more than the read
            data = handle.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptCassetteError(
                f"{path}: not UTF-8 text at byte {exc.start}; delete it and re-record"
            ) from exc
        if "\r" in text:  # line ends as a text read gives them (universal newlines)
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return parse_cassette(path, text, serializer)

    def save_cassette(
        self, cassette_path: str | Path, cassette_dict: dict[str, Any], serializer: Any
    ) -> None:
        """Write ``cassette_dict`` (``requests``, ``responses``, optional ``metadata``) atomically."""
        data = cassette_data(
            cassette_dict["requests"], cassette_dict["responses"], cassette_dict.get("metadata")
        )
        write_atomically(Path(cassette_path), serializer.serialize(data).encode("utf-8"), what="cassette")


def parse_cassette(path: Path, text: str, serializer: Any, verify: bool = True) -> Any:
    """Parse the text of the cassette at ``path``; raise ``CorruptCassetteError`` saying what and where."""
    if not text.strip():
        raise CorruptCassetteError(f"{path}: the file is empty; delete it and re-record")
    try:
        return serializer.deserialize(text, verify=verify)
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark, exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown position"
        if context is not None and exc.context:
            where += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
        raise CorruptCassetteError(
            f"{path}: not valid YAML at {where}: {exc.problem or exc}. "
            f"The file may have been cut short; delete it and re-record."
        ) from exc
    except CassetteTooNew as exc:
        raise CassetteFormatError(f"{path}: {exc}.") from exc
    except CassetteDamage as exc:
        raise CorruptCassetteError(
            f"{path}: {exc}. If you edited it on purpose, re-seal it: python -m pytest_llmport "
            f"reseal {shlex.quote(str(path))}; otherwise delete it and re-record."
        ) from exc
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise CorruptCassetteError(f"{path}: {exc}. Delete it and re-record.") from exc


def reseal_text(path: Path, text: str, serializer: Any) -> tuple[str, int]:
    """The cassette ``text`` written again in the current format with fresh seals, and its size."""
    data = parse_cassette(path, text, serializer, verify=False)
    return serializer.serialize(data), len(data["interactions"])


TEMP_SUFFIX = ".tmp"


def write_atomically(path: Path, data: bytes, what: str = "file") -> None:
    """Write ``path`` through a temporary file in its folder and a rename: old file or new, never half.

    Temporary files left by a write that was killed are removed; a failed write (a full disk) raises
    ``CassetteWriteError`` naming the file, and leaves nothing behind.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                stale.unlink()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise CassetteWriteError(f"could not write the {what} {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; these are ordinary (committed) files
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CassetteWriteError(f"could not write the {what} {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _interactions(data: Any) -> Any:
    """What the persister returns: requests, responses, metadata, then our ``llmport:`` mapping."""
    requests = [HttpRequest.from_dict(item["request"]) for item in data["interactions"]]
    responses = [_body_as_bytes(item["response"]) for item in data["interactions"]]
    return requests, responses, data.get("metadata") or {}, data.get("llmport") or {}


def _body_as_bytes(response: dict[str, Any]) -> dict[str, Any]:
    # Clients read bytes; YAML gives text. In place: the parsed-cassette cache keeps the converted dict.
    body = response.get("body")
    if isinstance(body, dict):
        string = body.get("string")
        if isinstance(string, str):
            with contextlib.suppress(UnicodeEncodeError):
                body["string"] = string.encode("utf-8")
    return response


def _body_as_text(response: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(response)
    body = result.get("body")
    if isinstance(body, dict) and isinstance(body.get("string"), (bytes, bytearray)):
        with contextlib.suppress(UnicodeDecodeError):
            result["body"] = {**body, "string": bytes(body["string"]).decode("utf-8")}
    return result


def cassette_data(
    requests: Sequence[Any], responses: Sequence[Mapping[str, Any]], metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The mapping a serializer writes: version 1 interactions, text bodies where they are UTF-8."""
    interactions = []
    for request, response in zip(requests, responses, strict=True):
        record = HttpRequest.of(request).to_dict()
        if isinstance(record["body"], (bytes, bytearray)):
            with contextlib.suppress(UnicodeDecodeError):
                record["body"] = bytes(record["body"]).decode("utf-8")
        interactions.append({"request": record, "response": _body_as_text(response)})
    data: dict[str, Any] = {"version": 1, "interactions": interactions}
    if metadata:
        data["metadata"] = dict(metadata)
    return data


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


# -- placeholders match any value ------------------------------------------------------------------
# Where a recorded request holds ``<REDACTED:...>`` (or a whole value ``REDACTED``), the application now
# sends a key, a placeholder key or a token of this run: any value matches there. Which positions of a
# recorded request hold one is worked out once per request, on first use; a request without any costs one
# substring search of its URL and body.
_ANYTHING = re.compile(".*", re.DOTALL)


def string_pattern(text: str) -> re.Pattern[str] | None:
    """A recorded string with placeholders as the pattern of the strings it matches; None without any."""
    if text == REDACTED:
        return _ANYTHING
    if "<REDACTED" not in text:
        return None
    pieces = MARKER.split(text)
    if len(pieces) == 1:
        return None
    return re.compile(".*?".join(re.escape(piece) for piece in pieces), re.DOTALL)


def _fits_string(recorded: str, value: Any) -> bool:
    pattern = string_pattern(recorded)
    return pattern is not None and isinstance(value, str) and pattern.fullmatch(value) is not None


@dataclass(frozen=True)
class _Wild:
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class _WildObject:
    exact: dict[str, Any]
    wild: tuple[tuple[re.Pattern[str], Any], ...]


def _template(value: Any) -> tuple[Any, bool]:
    """(template, holds a placeholder) for a recorded JSON value."""
    if isinstance(value, str):
        pattern = string_pattern(value)
        return (_Wild(pattern), True) if pattern is not None else (value, False)
    if isinstance(value, dict):
        exact: dict[str, Any] = {}
        wild: list[tuple[re.Pattern[str], Any]] = []
        found = False
        for key, item in value.items():
            template, held = _template(item)
            pattern = string_pattern(key)
            found = found or held or pattern is not None
            if pattern is not None:
                wild.append((pattern, template))
            else:
                exact[key] = template
        return (_WildObject(exact, tuple(wild)) if found else value), found
    if isinstance(value, list):
        items = [_template(item) for item in value]
        if any(held for _, held in items):
            return [template for template, _ in items], True
        return value, False
    return value, False


def _fits(template: Any, value: Any) -> bool:
    if isinstance(template, _Wild):
        if template.pattern is _ANYTHING:  # a whole value REDACTED: a secret, or a field a hook ignores
            return True
        return isinstance(value, str) and template.pattern.fullmatch(value) is not None
    if isinstance(template, _WildObject):
        if not isinstance(value, dict) or len(value) != len(template.exact) + len(template.wild):
            return False
        if any(key not in value or not _fits(item, value[key]) for key, item in template.exact.items()):
            return False
        rest = [key for key in value if key not in template.exact]
        for pattern, item in template.wild:
            key = next((k for k in rest if pattern.fullmatch(k) and _fits(item, value[k])), None)
            if key is None:
                return False
            rest.remove(key)
        return True
    if isinstance(template, list) and any(isinstance(t, (_Wild, _WildObject, list)) for t in template):
        return (
            isinstance(value, list)
            and len(value) == len(template)
            and all(_fits(t, v) for t, v in zip(template, value, strict=True))
        )
    return bool(_canonical(template) == _canonical(value))


_WILD_BYTES = re.compile(MARKER.pattern.encode("ascii") + rb"|(?<==)REDACTED(?=&|$)")


def _bytes_pattern(body: bytes) -> re.Pattern[bytes]:
    pieces = _WILD_BYTES.split(body)
    return re.compile(b".*?".join(re.escape(piece) for piece in pieces), re.DOTALL)


def _body_template(request: Any) -> Any:
    """The recorded body as a template when it holds placeholders, else None (memoised)."""
    body = request.body
    memo = request.__dict__.get("_llmport_body_template")
    if memo is not None and memo[0] is body:
        return memo[1]
    raw = body.encode("utf-8") if isinstance(body, str) else body
    template: Any = None
    if isinstance(raw, (bytes, bytearray)) and b"REDACTED" in raw:
        value = body_value(raw)
        if isinstance(value, bytes):
            template = _bytes_pattern(value)
        else:
            template, held = _template(value)
            template = template if held else None
    request.__dict__["_llmport_body_template"] = (body, template)
    return template


@dataclass(frozen=True)
class _UriTemplate:
    location: tuple[str, str, int | None]
    path: re.Pattern[str]
    query: list[tuple[str, Any]]


def _uri_template(request: Any) -> _UriTemplate | None:
    uri = request.uri
    memo = request.__dict__.get("_llmport_uri_template")
    if memo is not None and memo[0] is uri:
        return memo[1]  # type: ignore[no-any-return]
    template = None
    if "REDACTED" in uri:
        scheme, host, port, _ = _location(uri)
        path = unquote(urlsplit(uri).path).rstrip("/") or "/"
        query = sorted(parse_qsl(urlsplit(uri).query, keep_blank_values=True), key=lambda pair: pair[0])
        template = _UriTemplate(
            (scheme, host, port),
            string_pattern(path) or re.compile(re.escape(path)),
            [(name, string_pattern(value) or value) for name, value in query],
        )
    request.__dict__["_llmport_uri_template"] = (uri, template)
    return template


def _fits_uri(template: _UriTemplate, uri: str) -> bool:
    scheme, host, port, _ = _location(uri)
    if (scheme, host, port) != template.location:
        return False
    if template.path.fullmatch(unquote(urlsplit(uri).path).rstrip("/") or "/") is None:
        return False
    query = sorted(parse_qsl(urlsplit(uri).query, keep_blank_values=True), key=lambda pair: pair[0])
    return len(query) == len(template.query) and all(
        name == expected_name
        and (expected == value if isinstance(expected, str) else expected.fullmatch(value) is not None)
        for (name, value), (expected_name, expected) in zip(query, template.query, strict=True)
    )


# vcrpy matchers signal a mismatch with AssertionError; raised explicitly, because pytest rewrites the
# asserts of plugin modules and would bury the message under its own introspection. vcrpy passes the
# request being sent first and the recorded one second; messages say the recorded one first.
def match_method(r1: Any, r2: Any) -> None:
    if r1.method.upper() != r2.method.upper():
        raise AssertionError(f"method {r2.method} != {r1.method}")


def match_uri(r1: Any, r2: Any) -> None:
    template = _uri_template(r2)
    if template is not None:
        if not _fits_uri(template, r1.uri):
            path = unquote(urlsplit(r1.uri).path).rstrip("/") or "/"
            if _location(r1.uri)[:3] != template.location or not template.path.fullmatch(path):
                raise AssertionError(f"URL {r2.uri} != {r1.uri}")
            raise AssertionError(f"query {_query(r2.uri)} != {_query(r1.uri)}")
        return
    if _location(r1.uri) != _location(r2.uri):
        raise AssertionError(f"URL {r2.uri} != {r1.uri}")
    if _query(r1.uri) != _query(r2.uri):
        raise AssertionError(f"query {_query(r2.uri)} != {_query(r1.uri)}")


def _canonical(value: Any) -> Any:
    # Python's == takes True for 1 and 1 for 1.0; JSON requests that differ so are different requests.
    return value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _canonical_body(request: Any) -> Any:
    return body_forms(request)[0]


def body_forms(request: Any) -> tuple[Any, Any]:
    """(canonical form, :func:`body_value`) of a request's body, worked out once per body.

    Remembered on the request: a recorded request is compared with every request the test sends, and
    the replay index spells a recorded JSON body from the value it parsed for the canonical form.
    """
    body = request.body
    memo = request.__dict__.get("_llmport_canonical")
    if memo is not None and memo[0] is body:
        return memo[1], memo[2]
    value = body_value(body)
    canonical = _canonical(value)
    request.__dict__["_llmport_canonical"] = (body, canonical, value)
    return canonical, value


def match_body(r1: Any, r2: Any) -> None:
    template = _body_template(r2)
    if template is None:
        if _canonical_body(r1) != _canonical_body(r2):
            raise AssertionError("body differs")
        return
    value = body_value(r1.body)
    if isinstance(template, re.Pattern):
        fits = isinstance(value, bytes) and template.fullmatch(value) is not None
    else:
        fits = not isinstance(value, bytes) and _fits(template, value)
    if not fits:
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
            if a != b and not _fits_string(a, b):
                out.append(f"{where}: {_string_difference(a, b)}")
        elif a != b and a != REDACTED:  # a whole-value REDACTED matches any value (see _fits)
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
                matcher(request, candidate)
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
