"""A hostile provider on 127.0.0.1 that echoes the caller's key back in every way a server can, and a
checker that finds a key in a file however it is spelled (independent of the plugin's scrubber).

Requests go to ``/v1/<route>?s=<spelling>&at=<split>``; the server knows the keys it echoes (it was built
with them), so it echoes them whatever the client sent. Routes:

- ``json``: a JSON answer holding the key spelled ``s`` (raw text inside a JSON string);
- ``sse``: a stream whose content carries the key split across two events at ``at``, each event written
  in two transport chunks cut inside the key;
- ``form``: an OAuth-style form answer ``access_token=<key>&expires_in=3600``;
- ``junk``: ``{"access_token": "<key>"}`` followed by bytes that are not JSON;
- ``jwt``: a JWT signed from the ``id.secret`` key, as the zhipuai SDK makes them;
- ``error``: 401 ``Incorrect API key provided: <key>``.

Every answer also carries the key in headers: ``X-Echo`` (spelled ``s``), ``Location`` (as an
``access_token`` query parameter) and ``X-Upstream-Auth`` (``Basic`` base64 of ``user:key``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit

SPELLINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda key: key,
    "percent": lambda key: quote(key, safe=""),
    "percent-twice": lambda key: quote(quote(key, safe=""), safe=""),
    "json": lambda key: json.dumps(key)[1:-1],
    "json-slash": lambda key: json.dumps(key)[1:-1].replace("/", "\\/"),
    "json-u": lambda key: "".join(f"\\u{ord(c):04x}" for c in key),
    "json-twice": lambda key: json.dumps(json.dumps(key))[1:-1],
    "json-twice-slash": lambda key: json.dumps(json.dumps(key).replace("/", "\\/"))[1:-1],
    "base64": lambda key: base64.b64encode(key.encode()).decode(),
    "base64-user": lambda key: base64.b64encode(b"user:" + key.encode()).decode(),
}


# zhipuai signs the current time; a fixed one keeps every token, and every test that scans or scrubs
# one, the same on each run (a token built from the clock once ended in "-x" and failed CI).
SIGNED_AT_MS = 1_764_547_200_000


def jwt(key: str, now: int = SIGNED_AT_MS) -> str:
    """The token zhipuai makes from an ``id.secret`` key (HS256, ``sign_type: SIGN``)."""
    ident, secret = key.split(".")

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing = (
        part({"alg": "HS256", "sign_type": "SIGN"})
        + "."
        + part({"api_key": ident, "exp": now, "timestamp": now})
    )
    signature = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


class HostileServer:
    def __init__(self, key: str, zhipu_key: str) -> None:
        self.key = key
        self.zhipu_key = zhipu_key
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._answer()

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                route = parts.path.rstrip("/").rsplit("/", 1)[-1]
                server.requests.append((self.command, self.path))
                spelled = SPELLINGS[query.get("s", ["raw"])[0]](server.key)
                at = int(query.get("at", ["7"])[0]) % max(1, len(server.key) - 1) + 1
                status, content_type, body = 200, "application/json", b""
                chunks: list[bytes] = []
                if route == "json":
                    body = ('{"id": "x", "echo": "' + spelled + '", "choices": []}').encode()
                elif route == "sse":
                    content_type = "text/event-stream"
                    first, second = server.key[:at], server.key[at:]
                    for piece in ("your key is " + first, second, " ok"):
                        event = "data: " + json.dumps({"choices": [{"delta": {"content": piece}}]}) + "\n\n"
                        data = event.encode()
                        cut = len(data) // 2
                        chunks += [data[:cut], data[cut:]]
                    chunks.append(b"data: [DONE]\n\n")
                elif route == "form":
                    content_type = "application/x-www-form-urlencoded"
                    body = f"access_token=tok{at}x{at}Z9q8w7e6r5&expires_in=3600&note={quote(server.key)}".encode()
                elif route == "junk":
                    body = (
                        '{"access_token": "tok-' + str(at) + 'abcdef123456", "k": "' + spelled + '"} <html>'
                    ).encode()
                elif route == "jwt":
                    body = json.dumps({"token": jwt(server.zhipu_key), "id": "x"}).encode()
                elif route == "error":
                    status = 401
                    body = json.dumps(
                        {"error": {"message": f"Incorrect API key provided: {server.key}"}}
                    ).encode()
                else:
                    status, body = 404, b"{}"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("X-Echo", spelled)
                self.send_header(
                    "Location", f"https://example.invalid/cb?access_token={quote(server.key)}&state=1"
                )
                basic = base64.b64encode(b"user:" + server.key.encode()).decode()
                self.send_header("X-Upstream-Auth", f"Basic {basic}")
                if not chunks:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for chunk in chunks or [body]:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    if chunks:
                        time.sleep(0.001)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


# -- finding a key in what the run left behind ----------------------------------------------------
_U = re.compile(r"\\+u([0-9a-fA-F]{4})")
_ESCAPED = re.compile(r"\\+([\"/\\'])")
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: m.group(1), _U.sub(lambda m: chr(int(m.group(1), 16)), text))


def readings(text: str) -> Iterator[str]:
    """``text`` as the decoders a reader (or an attacker) might apply would read it, two deep."""
    first = {text, unquote(text), unquote_plus(text), _unescape(text)}
    second = {decoded for value in first for decoded in (unquote(value), _unescape(value))}
    yield from first | second
    for value in {text, _unescape(text)}:
        for run in set(_B64_RUN.findall(value)):
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                with contextlib.suppress(ValueError):
                    yield decode(run + "=" * (-len(run) % 4)).decode("latin-1")


def stream_contents(text: str) -> Iterator[str]:
    """The text an SSE client reassembles from every stream in a cassette (field by field)."""
    import yaml

    if "data:" not in text or not text.startswith("version:"):
        return
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return
    if not isinstance(data, dict):
        return
    for item in data.get("interactions") or []:
        body = item.get("response", {}).get("body", {}).get("string")
        if not isinstance(body, str) or "data:" not in body:
            continue
        pieces = []
        for line in body.splitlines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                pieces.append(event["choices"][0]["delta"].get("content") or "")
        yield "".join(pieces)


def leaks(text: str, key: str) -> list[str]:
    """How ``key`` can be read back from ``text`` (empty when it cannot)."""
    found = [f"readable as {reading[:80]!r}..." for reading in readings(text) if key in reading][:1]
    found += [
        f"reassembled from a stream: {content!r}" for content in stream_contents(text) if key in content
    ]
    for token in _JWT.findall(text):
        found.append(f"a JWT is left: {token[:12]}...")
    return found


def files_left(root: Path) -> dict[str, str]:
    """Every file below ``root`` (cassettes, cache, report, observations, JUnit XML), as text."""
    return {
        str(path.relative_to(root)): path.read_bytes().decode("utf-8", "replace")
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
