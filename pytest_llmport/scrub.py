"""One scrubber for everything the plugin writes or prints (pure: no pytest, no vcrpy).

A secret must never reach disk or a log: not in a cassette, an observation file, the JSON report, a
failure message or a cassette's path. Three layers, each applied to every text:

- **known values**: the value of every configured key variable, in any spelling a client, a server or
  a log may give it: raw, percent-encoded (once or twice, ``+`` for a space), JSON-escaped (``\\/``,
  ``\\uXXXX``, ``\\"``, any mix, escaped twice), Python ``\\x`` escapes, base64 (at any alignment,
  inside ``user:key`` too) and as a JWT signed with it or naming its id (Zhipu's ``id.secret`` keys);
- **credential shapes**: ``Bearer``/``Basic`` tokens, and ``name=value`` / ``"name": "value"`` for
  credential names (``access_token``, ``client_secret``...), wherever they appear;
- **names**: credential headers, query parameters and JSON fields become ``REDACTED`` whole.

Bodies are scrubbed as what they are: JSON is parsed and each decoded string scrubbed (so no escape
hides a key), a Server-Sent Events stream is also scrubbed per field across its events (a key split
over two events is still found), a form body pair by pair. Whatever does not parse is scrubbed as text.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from .placeholders import ANY_MARKER, PLACEHOLDER_KEYS, REDACTED, marker

__all__ = ["REDACTED", "SECRET_HEADERS", "SECRET_JSON_KEYS", "SECRET_QUERY", "Scrubber", "redact_json"]

# What httpx leaves unescaped in a URL path.
_PATH_SAFE = "/:@!$&'()*+,;="
# Values shorter than this would match innocent text (a key "abc" would eat every "abc" in every body).
MIN_SECRET = 6
# Base64 is matched on the part of the encoding that depends on the key alone; shorter keys give
# cores short enough to occur by chance in images and other base64 data.
_MIN_BASE64_CORE = 12

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "x-dashscope-workspace",
        "x-dashscope-encryptionkey",
        "x-tc-timestamp",
    }
)
SECRET_QUERY = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "access_token",
        "client_id",
        "client_secret",
        "token",
        "signature",
        "groupid",
    }
)
SECRET_JSON_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "session_key",
        "session_secret",
        "client_secret",
        "secret_key",
        "api_key",
        "apikey",
    }
)
# Credential names redacted where they appear as ``name=value`` or ``"name": "value"`` in any text (form
# bodies, OAuth answers, Location headers, bodies that are not valid JSON, messages).
_TEXT_FIELDS = "|".join(sorted(SECRET_JSON_KEYS | {"client_secret", "password"}))
# Request headers that only describe the client's machine or connection; they make diffs noisy.
NOISY_REQUEST_HEADERS = frozenset({"accept-encoding", "connection", "content-length", "host"})
NOISY_REQUEST_PREFIXES = ("x-stainless-",)
# Response headers that change on every call or describe the transport, not the answer.
NOISY_RESPONSE_HEADERS = frozenset(
    {
        "set-cookie",
        "date",
        "server",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "alt-svc",
        "cf-ray",
        "cf-cache-status",
        "strict-transport-security",
        "via",
        "age",
        "expires",
        "report-to",
        "nel",
        "vary",
        "openai-processing-ms",
        "x-envoy-upstream-service-time",
        "req-cost-time",
        "x-served-by",
    }
)
NOISY_RESPONSE_PREFIXES = ("x-ratelimit-", "x-kong-", "cf-", "x-amzn-")


_JSON_SHORT = {"\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


def _hex(number: int, width: int) -> str:
    """``number`` in hexadecimal as a regex that accepts either case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{number:0{width}x}")


@functools.lru_cache(maxsize=4096)
def _char(char: str) -> str:
    """A regex for one character of a secret in every spelling it may have in text."""
    if char == "\\":
        return r"\\+"  # raw, JSON-escaped, escaped twice...
    options = [re.escape(char)]
    if char == " ":
        options.append(r"\+")
    if char in "\"/'":
        options.append(r"\\+" + re.escape(char))
    if char in _JSON_SHORT:
        options.append(r"\\+" + _JSON_SHORT[char])
    code = ord(char)
    high, low = divmod(code - 0x10000, 0x400)
    units = [code] if code < 0x10000 else [0xD800 + high, 0xDC00 + low]
    options.append("".join(r"\\+u" + _hex(unit, 4) for unit in units))
    utf8 = char.encode("utf-8", "surrogatepass")
    options.append("".join("%(?:25)?" + _hex(byte, 2) for byte in utf8))
    if not char.isascii():
        options.append("".join(r"\\+x" + _hex(byte, 2) for byte in utf8))
    return "(?:" + "|".join(options) + ")"


def _base64_cores(value: bytes) -> set[str]:
    """The parts of the base64 encoding of ``value`` that do not depend on what surrounds it."""
    cores = set()
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + value).decode("ascii")
            start = -(-8 * shift // 6)
            end = 8 * (shift + len(value)) // 6
            core = encoded[start:end]
            if len(core) >= _MIN_BASE64_CORE:
                cores.add(core)
    return cores


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")
# A token has a digit: "basic understanding" in an answer is prose.
_AUTH_TOKEN = re.compile(
    r"\b(Bearer|Basic|bearer|basic|BEARER|BASIC)(\s+)(?!REDACTED\b)(?=[A-Za-z._~+/-]*[0-9])([A-Za-z0-9._~+/-]{16,}=*)"
)
_FORM_FIELD = re.compile(rf"(?i)(?<![A-Za-z0-9_])((?:{_TEXT_FIELDS})=)([^&#\s\"'<>\\()\[\],;]+)")
_JSON_FIELD = re.compile(rf'(?i)("(?:{_TEXT_FIELDS})"\s*:\s*)"(?!REDACTED")(?:[^"\\]|\\.)*"')
_SSE_DATA = re.compile(r"(?m)^data:")
_SSE_EVENT_END = re.compile(r"(\r\n\r\n|\n\n|\r\r)")
_LINE_END = re.compile(r"(\r\n|\n|\r)")
_FORM_BODY = re.compile(r"[^=&\s]+=[^&\s]*(?:&[^=&\s]+=[^&\s]*)*")
_NOT_JSON = object()


def _form_field(match: re.Match[str]) -> str:
    value = match.group(2)
    # Tokens carry digits (or are long); ``api_key=client.key`` in a traceback's source line is code.
    token = value != REDACTED and (
        (len(value) >= 8 and any(c.isdigit() for c in value)) or (len(value) >= 24 and "." not in value)
    )
    return match.group(1) + REDACTED if token else match.group(0)


def _b64decode(part: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return None


_SCALARS = frozenset({int, float, bool, type(None)})
_MEMO_LENGTH = 1024  # longer texts (prompts, answers) rarely repeat
_MEMO_SIZE = 8192
_NOTHING: dict[str, str] = {}  # the memo of a scrub function that has none


class Scrubber:
    """Replaces secrets in texts, values, vcrpy requests and response dicts, returning new objects."""

    def __init__(self, secrets: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """``secrets``: variable name -> value (or pairs, when one variable had several values)."""
        pairs = secrets.items() if isinstance(secrets, Mapping) else secrets
        known: dict[str, str] = {}
        for name, value in pairs:
            if len(value) >= MIN_SECRET and value not in PLACEHOLDER_KEYS:
                known.setdefault(value, name)  # the first name given for a value names its marker
        # Longest first, so a key that contains another key is replaced whole.
        ordered = sorted(((name, value) for value, name in known.items()), key=lambda item: -len(item[1]))
        self.names = sorted({name for name, _ in ordered})
        self._markers = {f"s{index}": marker(name) for index, (name, _) in enumerate(ordered)}
        self._pattern = (
            re.compile(
                "|".join(
                    f"(?P<s{index}>{''.join(_char(c) for c in value)})"
                    for index, (_, value) in enumerate(ordered)
                )
            )
            if ordered
            else None
        )
        cores: dict[str, str] = {}
        for name, value in ordered:
            for core in _base64_cores(value.encode("utf-8")):
                cores.setdefault(core, marker(name))
        self._cores = cores
        self._core_pattern = (
            re.compile("|".join(re.escape(core) for core in sorted(cores, key=len, reverse=True)))
            if cores
            else None
        )
        # Report data repeats its strings (URLs, kinds, models) from test to test, and is scrubbed more than
        # once on its way out: text() is a pure function of the scrubber's secrets, so it is remembered.
        self._memo: dict[str, str] = {}
        # A JWT counts as this key's when it is signed with the key (or the secret half of ``id.secret``)
        # or names the key (or its id half) in its payload: Zhipu's SDK makes such tokens from its keys.
        self._signing: list[tuple[bytes, str]] = []
        self._ids: dict[str, str] = {}
        for name, value in ordered:
            self._signing.append((value.encode("utf-8"), marker(name)))
            self._ids.setdefault(value, marker(name))
            if value.count(".") == 1:
                ident, secret = value.split(".")
                self._signing.append((secret.encode("utf-8"), marker(name)))
                if len(ident) >= MIN_SECRET:
                    self._ids.setdefault(ident, marker(name))

    # -- text --------------------------------------------------------------------------------------
    def text(self, value: str) -> str:
        """Every secret out of a text of unknown structure (a message, a header, a URL, a form body).

        Besides known values and tokens, ``name=value`` and ``"name": "value"`` pairs of credential names
        are redacted. Strings inside JSON get :meth:`string` instead: their fields are redacted by name.
        """
        if not value:
            return value
        known = self._memo.get(value)
        if known is not None:
            return known
        scrubbed = self._text(value)
        if len(value) <= _MEMO_LENGTH:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[value] = scrubbed
        return scrubbed

    def _text(self, value: str) -> str:
        value = self.string(value)
        if "=" in value:
            value = _FORM_FIELD.sub(_form_field, value)
        if '"' in value:
            value = _JSON_FIELD.sub(lambda m: f'{m.group(1)}"{REDACTED}"', value)
        return value

    def string(self, value: str) -> str:
        """Known values and ``Bearer``/``Basic`` tokens out of ``value``."""
        if not value:
            return value
        value = self.known(value)
        if "earer" in value or "asic" in value or "EARER" in value or "ASIC" in value:
            value = _AUTH_TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{ANY_MARKER}", value)
        return value

    def known(self, value: str) -> str:
        """The known secret values out of ``value``, however spelled (raw, escaped, base64, in a JWT)."""
        if self._pattern is None or not value:
            return value
        value = self._pattern.sub(lambda m: self._markers[m.lastgroup or ""], value)
        value = self._base64(value)
        if "eyJ" in value:
            value = _JWT.sub(self._jwt, value)
        return value

    def spans(self, value: str) -> list[tuple[int, int, str]]:
        """Where known secret values occur in ``value``: (start, end, marker), in order."""
        if self._pattern is None:
            return []
        return [(m.start(), m.end(), self._markers[m.lastgroup or ""]) for m in self._pattern.finditer(value)]

    def findings(self, value: str) -> list[tuple[int, int, str]]:
        """Where known values occur in ``value`` in any spelling: (start, end, variable), in order."""
        if self._pattern is None:
            return []
        found = [*self.spans(value), *self._base64_runs(value)]
        if "eyJ" in value:
            found += [
                (m.start(), m.end(), mark)
                for m in _JWT.finditer(value)
                if (mark := self._jwt(m)) != m.group(0)
            ]
        return sorted((start, end, mark[len(REDACTED) + 2 : -1]) for start, end, mark in found)

    def _base64(self, value: str) -> str:
        for start, end, mark in reversed(self._base64_runs(value)):
            value = value[:start] + mark + value[end:]
        return value

    def _base64_runs(self, value: str) -> list[tuple[int, int, str]]:
        """Each run of base64 characters that holds a key's encoding (std or URL-safe, any alignment)."""
        runs: list[tuple[int, int, str]] = []
        if self._core_pattern is None:
            return runs
        for match in self._core_pattern.finditer(value):
            start, end = match.start(), match.end()
            if runs and start < runs[-1][1]:
                continue
            while start > 0 and value[start - 1] in _B64:
                start -= 1
            while end < len(value) and value[end] in _B64:
                end += 1
            while end < len(value) and value[end] == "=":
                end += 1
            if runs and start <= runs[-1][1]:
                start = runs.pop()[0]
            runs.append((start, end, self._cores[match.group(0)]))
        return runs

    def _jwt(self, match: re.Match[str]) -> str:
        token = match.group(0)
        header, payload, signature = token.split(".")
        decoded = _b64decode(payload)
        try:
            claims = json.loads(decoded) if decoded else None
        except ValueError:
            claims = None
        if isinstance(claims, dict):
            for claim in claims.values():
                if isinstance(claim, str) and claim in self._ids:
                    return self._ids[claim]
        expected = _b64decode(signature)
        if expected:
            signed = f"{header}.{payload}".encode("ascii")
            for secret, mark in self._signing:
                if hmac.compare_digest(hmac.new(secret, signed, hashlib.sha256).digest(), expected):
                    return mark
        return token

    def data(self, value: bytes) -> bytes:
        if not value:
            return value
        text = value.decode("utf-8", "surrogateescape")
        scrubbed = self.text(text)
        return value if scrubbed == text else scrubbed.encode("utf-8", "surrogateescape")

    def value(self, value: Any) -> Any:
        """A scrubbed copy of a JSON-like value the plugin writes (observations, report data)."""
        return self._walk(value, self.text)

    def _walk(self, value: Any, scrub: Callable[[str], str]) -> Any:
        kind = type(value)
        if kind is str:
            return scrub(value)
        if kind in _SCALARS:  # most leaves of report data: answered before the ABC checks below
            return value
        if isinstance(value, str):
            return scrub(value)
        # A marked test's report data (about 40 nodes, mostly strings seen in earlier tests) is walked
        # once per test: leaves are answered in the loop of their mapping or list, remembered texts
        # without a call at all.
        walk = self._walk
        known = self._memo.get if scrub == self.text else _NOTHING.get
        if isinstance(value, Mapping):
            result = {}
            for key, item in value.items():
                name = (known(key) or scrub(key)) if isinstance(key, str) else key
                if isinstance(item, str):
                    secret = isinstance(name, str) and name.lower() in SECRET_JSON_KEYS
                    result[name] = REDACTED if secret else known(item) or scrub(item)
                elif type(item) in _SCALARS:
                    result[name] = item
                else:
                    result[name] = walk(item, scrub)
            return result
        if isinstance(value, (list, tuple)):
            return [
                known(item) or scrub(item)
                if isinstance(item, str)
                else item
                if type(item) in _SCALARS
                else walk(item, scrub)
                for item in value
            ]
        return value

    # -- parts -------------------------------------------------------------------------------------
    def uri(self, uri: str) -> str:
        parts = urlsplit(uri)
        # Work on decoded parts: clients percent-encode a key in more ways than can be listed.
        path = unquote(parts.path)
        if self.text(path) != path:
            parts = parts._replace(path=quote(self.text(path), safe=_PATH_SAFE + "<>"))
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            scrubbed = [
                (name, REDACTED if name.lower() in SECRET_QUERY else self.text(value))
                for name, value in pairs
            ]
            if scrubbed != pairs:
                parts = parts._replace(query=urlencode(scrubbed, safe="<>:", quote_via=quote))
        netloc = parts.netloc
        if "@" in netloc:  # user:password@host
            netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
        return self.text(urlunsplit(parts._replace(netloc=netloc)))

    def request_headers(self, headers: Mapping[str, Any]) -> dict[str, Any]:
        return self._headers(headers, NOISY_REQUEST_HEADERS, NOISY_REQUEST_PREFIXES, REDACTED)

    def response_headers(self, headers: Mapping[str, Any]) -> dict[str, Any]:
        # vcrpy stores response header values as lists.
        return self._headers(headers, NOISY_RESPONSE_HEADERS, NOISY_RESPONSE_PREFIXES, [REDACTED])

    def _headers(
        self, headers: Mapping[str, Any], noisy: Collection[str], prefixes: tuple[str, ...], redacted: Any
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower in noisy or lower.startswith(prefixes):
                continue
            result[self.text(name)] = redacted if lower in SECRET_HEADERS else self._header_value(value)
        return result

    def _header_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [self._header_value(v) for v in value]
        if not isinstance(value, str):
            return value
        # Location, Content-Location, Link...: a URL's query parameters are scrubbed by name too.
        if value.startswith(("http://", "https://", "/")):
            return self.uri(value)
        return self.text(value)

    def body(self, body: Any) -> bytes | str | None:
        """Every secret out of a request or response body, keeping its type (dicts become JSON bytes)."""
        if body is None:
            return None
        if isinstance(body, (dict, list)):  # vcrpy's aiohttp stub hands over ``json=`` bodies unencoded
            body = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        elif not isinstance(body, (bytes, str)):
            return body  # type: ignore[no-any-return]
        text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
        scrubbed = self._body_text(text)
        if scrubbed == text:
            unchanged: bytes | str = body
            return unchanged
        return scrubbed.encode("utf-8", "surrogateescape") if isinstance(body, bytes) else scrubbed

    def _body_text(self, text: str) -> str:
        start = text.lstrip()[:1]
        if start in ("{", "[", '"'):
            parsed = self._json(text)
            if parsed is not _NOT_JSON:
                scrubbed = self._walk(parsed, self.string)
                if scrubbed == parsed:
                    return text  # every string decoded and clean: no escape can hide a key either
                return json.dumps(scrubbed, ensure_ascii=False, separators=(",", ":"))
        if _SSE_DATA.search(text):
            return self._stream(text)
        if "=" in text and _FORM_BODY.fullmatch(text.strip()):
            return self._form(text)
        return self.text(text)

    @staticmethod
    def _json(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return _NOT_JSON

    def _form(self, text: str) -> str:
        """``a=1&client_secret=...``: pair by pair, so the pairs without a secret keep their spelling."""
        pairs = []
        for pair in text.split("&"):
            name, _, value = pair.partition("=")
            decoded = unquote_plus(name)
            if decoded.strip().lower() in SECRET_QUERY | SECRET_JSON_KEYS:
                pairs.append(f"{name}={REDACTED}")
                continue
            plain = unquote_plus(value)
            clean = self.text(plain)
            pairs.append(pair if clean == plain else f"{name}={quote(clean, safe='<>:')}")
        return self.text("&".join(pairs))

    def _stream(self, text: str) -> str:
        """Scrub a Server-Sent Events body field by field across its events, as a client reassembles it.

        A key the server split over two events (``"...sk-ev"``, then ``"il-KEY..."``) is in neither
        event alone; it is found in the concatenation of each JSON field's values (``choices[0].delta.
        content`` of every event, in order) and removed from every event it spans.
        """
        parts = _SSE_EVENT_END.split(text)
        events: list[list[str]] = [_LINE_END.split(event) for event in parts[0::2]]
        # per field path: [(event, line, parsed data or None, container, key, value)]
        leaves: dict[tuple[Any, ...], list[list[Any]]] = {}
        parsed: dict[tuple[int, int], Any] = {}
        for e, lines in enumerate(events):
            for n in range(0, len(lines), 2):
                line = lines[n]
                if not line.startswith("data:"):
                    continue
                payload = line[5:][1:] if line[5:6] == " " else line[5:]
                data = self._json(payload) if payload[:1] in ("{", "[") else _NOT_JSON
                if data is _NOT_JSON:
                    leaves.setdefault(("<data>",), []).append([e, n, None, None, None, payload])
                    continue
                parsed[(e, n)] = data
                _collect(data, (), leaves, e, n)
        changed: set[tuple[int, int]] = set()
        for found in leaves.values():
            joined = "".join(leaf[5] for leaf in found)
            spans = self.spans(joined)
            if not spans:
                continue
            offset = 0
            for leaf in found:
                start, end = offset, offset + len(leaf[5])
                offset = end
                new = _cut(leaf[5], start, end, spans)
                if new == leaf[5]:
                    continue
                changed.add((leaf[0], leaf[1]))
                if leaf[3] is None:
                    events[leaf[0]][leaf[1]] = "data: " + new  # scrubbed as text below
                else:
                    leaf[3][leaf[4]] = new
        for e, lines in enumerate(events):
            for n in range(0, len(lines), 2):
                data = parsed.get((e, n), _NOT_JSON)
                if data is _NOT_JSON:
                    lines[n] = self.text(lines[n])
                    continue
                clean = self._walk(data, self.string)
                if clean != data or (e, n) in changed:
                    lines[n] = "data: " + json.dumps(clean, ensure_ascii=False, separators=(",", ":"))
        parts[0::2] = ["".join(lines) for lines in events]
        return "".join(parts)

    def response(self, response: Mapping[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of a vcrpy response dict (``status``, ``headers``, ``body``, extras kept)."""
        result = dict(response)
        result["headers"] = self.response_headers(response.get("headers", {}))
        body = dict(response.get("body", {}))
        if "string" in body:
            old = body["string"]
            body["string"] = self.body(old)
            if body["string"] is not old:
                _refit(result, body["string"])
        result["body"] = body
        return result


def _collect(
    value: Any, path: tuple[Any, ...], leaves: dict[tuple[Any, ...], list[list[Any]]], event: int, line: int
) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, str):
            leaves.setdefault((*path, key), []).append([event, line, value, value, key, item])
        else:
            _collect(item, (*path, key), leaves, event, line)


def _cut(text: str, start: int, end: int, spans: list[tuple[int, int, str]]) -> str:
    """``text`` (``joined[start:end]``) without the spans, each marker where its span began."""
    out, position = [], start
    for s, e, mark in spans:
        if e <= start or s >= end:
            continue
        out.append(text[position - start : max(s, position) - start])
        if s >= start:
            out.append(mark)
        position = min(e, end)
    out.append(text[position - start :])
    return "".join(out)


def _refit(response: dict[str, Any], body: Any) -> None:
    """Keep the body's recorded chunking and integrity facts true after scrubbing changed its length."""
    meta = response.get("llmport")
    if not isinstance(meta, dict):
        return
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body or b""
    meta = dict(meta)
    if "chunks" in meta:
        # The recorded boundaries no longer fall where they fell; replay then splits by events.
        del meta["chunks"]
    if "length" in meta:
        meta["length"] = len(raw)
    if "sha256" in meta:
        meta["sha256"] = hashlib.sha256(raw).hexdigest()
    response["llmport"] = meta


def redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if key in SECRET_JSON_KEYS and isinstance(item, str) else redact_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value


def blank_query(uri: str, names: Iterable[str]) -> str:
    """``uri`` with the value of each query parameter in ``names`` replaced by ``REDACTED``.

    A recorded ``REDACTED`` matches any value on replay: what a configure_recording hook ignores.
    """
    parts = urlsplit(uri)
    wanted = set(names)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    blanked = [(name, REDACTED if name in wanted else value) for name, value in pairs]
    if blanked == pairs:
        return uri
    return urlunsplit(parts._replace(query=urlencode(blanked, safe="<>:", quote_via=quote)))


def blank_body(body: bytes | str | None, paths: Iterable[str]) -> bytes | str | None:
    """A JSON request body with each field at a dotted path in ``paths`` set to ``REDACTED``."""
    if body is None:
        return None
    text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
    if text.lstrip()[:1] != "{":
        return body
    try:
        value = json.loads(text)
    except ValueError:
        return body
    changed = False
    for path in paths:
        node: Any = value
        *parents, last = path.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[last] = REDACTED
            changed = True
    if not changed:
        return body
    out = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return out.encode("utf-8") if isinstance(body, bytes) else out
