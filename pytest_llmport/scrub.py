"""Secret scrubbing and header pruning for recorded exchanges (pure: no pytest, no vcrpy).

Two layers, because a secret must never reach disk: credential-bearing headers, query parameters and
JSON fields are replaced by name; and the literal value of every configured key variable is replaced
wherever it appears (URL, any header, request or response body), in its raw, URL-quoted and
JSON-escaped spellings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"
# What httpx leaves unescaped in a URL path.
_PATH_SAFE = "/:@!$&'()*+,;="

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
    {"access_token", "refresh_token", "session_key", "session_secret", "client_secret"}
)
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


class Scrubber:
    """Replaces secrets in vcrpy request objects and response dicts, returning new objects."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        # Short values would match innocent text (a key "abc" would eat every "abc" in every body).
        spellings: dict[str, str] = {}
        for name, value in secrets.items():
            if len(value) < 6:
                continue
            marker = f"<{REDACTED}:{name}>"
            for variant in (
                value,
                quote(value, safe=""),
                quote_plus(value, safe=""),
                quote(value, safe=_PATH_SAFE),
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
            ):
                spellings.setdefault(variant, marker)
        # Longest first, so a key that contains another key is replaced whole.
        self._literals = sorted(spellings.items(), key=lambda item: -len(item[0]))
        self._pattern = (
            re.compile("|".join(re.escape(value) for value, _ in self._literals)) if self._literals else None
        )
        self._markers = dict(self._literals)

    # -- literals ----------------------------------------------------------------------------------
    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(lambda m: self._markers[m.group(0)], value)

    def data(self, value: bytes) -> bytes:
        if self._pattern is None or not value:
            return value
        try:
            return self.text(value.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            for literal, marker in self._literals:
                value = value.replace(literal.encode("utf-8"), marker.encode("utf-8"))
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
        result: dict[str, Any] = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower in NOISY_REQUEST_HEADERS or lower.startswith(NOISY_REQUEST_PREFIXES):
                continue
            result[name] = REDACTED if lower in SECRET_HEADERS else self._header_value(value)
        return result

    def response_headers(self, headers: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower in NOISY_RESPONSE_HEADERS or lower.startswith(NOISY_RESPONSE_PREFIXES):
                continue
            result[name] = [REDACTED] if lower in SECRET_HEADERS else self._header_value(value)
        return result

    def _header_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (list, tuple)):
            return [self.text(v) if isinstance(v, str) else v for v in value]
        return value

    def body(self, body: Any) -> bytes | str | None:
        """Literal secrets out, and credential fields of JSON bodies (OAuth token responses) redacted."""
        if body is None:
            return None
        if isinstance(body, (dict, list)):  # vcrpy's aiohttp stub hands over ``json=`` bodies unencoded
            body = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        elif not isinstance(body, (bytes, str)):
            return body  # type: ignore[no-any-return]
        raw = body.encode("utf-8") if isinstance(body, str) else body
        raw = self.data(raw)
        if any(key.encode() in raw for key in SECRET_JSON_KEYS):
            try:
                parsed = json.loads(raw)
            except ValueError:
                pass
            else:
                raw = json.dumps(redact_json(parsed), ensure_ascii=False, separators=(",", ":")).encode(
                    "utf-8"
                )
        return raw.decode("utf-8") if isinstance(body, str) else raw

    def response(self, response: Mapping[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of a vcrpy response dict (``status``, ``headers``, ``body``, extras kept)."""
        result = dict(response)
        result["headers"] = self.response_headers(response.get("headers", {}))
        body = dict(response.get("body", {}))
        if "string" in body:
            body["string"] = self.body(body["string"])
        result["body"] = body
        return result

    def strings(self, values: Iterable[str]) -> list[str]:
        return [self.text(value) for value in values]


def redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if key in SECRET_JSON_KEYS and isinstance(item, str) else redact_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value
