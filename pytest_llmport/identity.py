"""Who a test talks to: the provider under test and the model it names.

Provider identity. A request belongs to the provider under test when it goes to the scheme, host, port
and path prefix of the provider's base URL (for a native dialect whose base URL is a bare host, to that
dialect's own paths), or to one of the provider's declared ``extra_hosts``. While recording, a request
that does not is refused before it leaves, so a cassette of provider X never holds another provider's
traffic; while replaying, a loaded cassette is checked once, so cassettes recorded before this check are
reported. The usual cause is a client built before the test (at import, in a module-level variable, in a
``functools.cache`` factory, injected by a fixture): it still points where it was first built.

Model identity. Every exchange's request model (the JSON body's ``model``, or the URL for Gemini and
ERNIE native) and response model are kept for the report; a request model other than
``llm_provider.model`` (or one the test declares with ``models=[...]``) is a finding on the cell, and
``--llmport-strict-model`` makes it a failure.

The cassette itself says which provider, base URL and model it was recorded against (its top-level
``llmport:`` mapping), so replay serves the test from the recording, whatever this machine's settings.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .dialects import REGISTRY, find
from .errors import CassetteError, LazyText
from .providers import Provider

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Native dialects whose base URL is a bare host: only their own API paths belong to the provider.
DIALECT_PATHS: Mapping[str, tuple[str, ...]] = {
    name: d.own_paths for name, d in REGISTRY.items() if d.own_paths
}
MODEL_MEMO = "_llmport_models"  # on each response dict; the serializer never writes ``_llmport`` keys

CAUSE = (
    "Likely cause: a client created before this test (at import, in a module-level variable, cached "
    "with functools.cache / lru_cache, or injected by a fixture) still points where it was first built; "
    "or a hard-coded URL."
)


@dataclass(frozen=True)
class Location:
    """Scheme, host, port and path prefix of a URL (the query never matters)."""

    scheme: str
    host: str
    port: int | None
    path: str

    @classmethod
    def parse(cls, url: str) -> Location:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)  # ValueError on a malformed port
        return cls(scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/"))

    def admits(self, other: Location) -> bool:
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        return not self.path or other.path == self.path or other.path.startswith(self.path + "/")


def _prefix(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class ProviderIdentity:
    """Where the requests of one test on one provider may go; built once per test, checked per request."""

    def __init__(
        self,
        spec: Provider,
        base_url: str | None = None,
        also: Iterable[Provider] = (),
        others: Mapping[str, Provider] | None = None,
    ) -> None:
        self.provider = spec.name
        self.base_url = base_url or spec.base_url
        self.extra_hosts = tuple(spec.extra_hosts)
        self.env_prefix = spec.env_prefix
        self.dialect = spec.dialect
        locations = [*self._locations(spec, self.base_url)]
        for extra in also:  # the plugin's own traffic, e.g. the embedding metric's provider
            locations.extend(self._locations(extra, extra.base_url))
        self.locations = tuple(locations)
        self._others = {name: other for name, other in (others or {}).items() if name != spec.name}
        # Every test of a suite sends to the same few URLs: each is parsed and checked once per identity.
        self._admitted: dict[str, bool] = {}

    @staticmethod
    def _locations(spec: Provider, base_url: str) -> list[Location]:
        base = Location.parse(base_url)
        found = [
            dataclasses.replace(base, path=(base.path + sub).rstrip("/"))
            for sub in DIALECT_PATHS.get(spec.dialect, ("",))
        ]
        found.extend(Location.parse(url) for url in spec.extra_hosts)
        return found

    def admits(self, uri: str) -> bool:
        known = self._admitted.get(uri)
        if known is not None:
            return known
        try:
            target = Location.parse(uri)
        except ValueError:
            return False
        admitted = any(location.admits(target) for location in self.locations)
        if len(self._admitted) >= _ADMITTED_SIZE:
            self._admitted.clear()
        self._admitted[uri] = admitted
        return admitted

    def _admits_scrubbed(self, uri: str) -> bool:
        # A key in the path was scrubbed with the path around it: only scheme, host and port are left.
        from .placeholders import MARKER

        try:
            target = Location.parse(uri)
        except ValueError:
            return False
        if not MARKER.search(target.path):
            return False
        here = (target.scheme, target.host, target.port)
        return any((place.scheme, place.host, place.port) == here for place in self.locations)

    def _where(self) -> str:
        paths = DIALECT_PATHS.get(self.dialect)
        own = f" (the {self.dialect} API's paths {', '.join(paths)} only)" if paths else ""
        extra = f" or {', '.join(self.extra_hosts)}" if self.extra_hosts else ""
        return f"base URL {self.base_url}{own}{extra}"

    def _owners(self, uri: str) -> str:
        """``provider openai's`` when the URL belongs to other known providers, else empty."""
        owners = [
            name
            for name, other in sorted(self._others.items())
            if "<" not in other.base_url and ProviderIdentity(other).admits(uri)
        ]
        if not owners:
            return ""
        more = f" and {len(owners) - 3} more" if len(owners) > 3 else ""
        return f"provider {', '.join(owners[:3])}{more}'s"

    def refusal(self, nodeid: str, method: str, uri: str) -> str:
        """The message for a live request that is not the provider's (``uri`` already scrubbed)."""
        owners = self._owners(uri)
        owned = f"\n  That URL is {owners}." if owners else ""
        return (
            f"{nodeid}: refused {method} {uri} on provider {self.provider!r}: it does not go to "
            f"{self.provider} ({self._where()}), so it was not sent and nothing of it is recorded.{owned}\n"
            f"  {CAUSE}\n"
            f"  Fix: build the client inside the test from the llm_provider fixture "
            f"(llm_provider.openai_client(), or base_url=llm_provider.base_url and "
            f"api_key=llm_provider.api_key). "
            f"If this URL does belong to {self.provider} (an OAuth token endpoint, a second API host), "
            f"declare it in pyproject.toml:\n"
            f"    [tool.llmport.providers.{self.provider}]\n"
            f'    extra_hosts = ["{_prefix(uri)}"]'
        )

    def check_cassette(
        self,
        nodeid: str,
        path: Any,
        requests: Sequence[Any],
        recorded_provider: Any,
        hint: str | LazyText,
        has_header: bool = True,
    ) -> None:
        """Refuse a loaded cassette that belongs to another provider or holds another provider's traffic."""
        if recorded_provider and recorded_provider != self.provider:
            raise CassetteError(
                f"{nodeid}: cassette {path} was recorded for provider {recorded_provider!r}, not "
                f"{self.provider!r} (its llmport: provider entry says so); it was copied or moved.\n"
                f"  Fix: put it back where provider {recorded_provider} reads it, or re-record. {hint}"
            )
        for index, request in enumerate(requests):
            if not self.admits(request.uri) and not self._admits_scrubbed(request.uri):
                from .judge import is_judge_request

                if is_judge_request(request):
                    # Recorded before cassettes noted where the judge was (own_header): it moved since.
                    raise CassetteError(
                        f"{nodeid}: cassette {path} holds the LLM judge's request #{index + 1}, "
                        f"{request.method} {request.uri}, but the judge's provider is now configured at "
                        f"another base URL, and the cassette does not say which one it was recorded with.\n"
                        f"  Fix: point the judge's provider at that base URL again "
                        f"(LLMPORT_<NAME>_BASE_URL), or re-record the test whole. {hint}"
                    )
                owners = self._owners(request.uri)
                owned = f" ({owners})" if owners else ""
                why = (
                    "the cassette says it was recorded with this check, so the provider's configuration "
                    "changed since (an extra_hosts entry removed?)."
                    if has_header
                    else "it was recorded by a version of pytest-llmport that did not check this, and the "
                    "test passed on another provider's answer."
                )
                # A cassette without the llmport: mapping does not say which base URL it was recorded
                # against: a gateway set with LLMPORT_<NAME>_BASE_URL looks like a foreign host.
                gateway = (
                    ""
                    if has_header or owners
                    else " If it was recorded through another base URL (a gateway), set that base URL again "
                    f"({self.env_prefix}_BASE_URL) or re-record, so that the cassette records it."
                )
                raise CassetteError(
                    f"{nodeid}: cassette {path} of provider {self.provider!r} holds exchange #{index + 1}, "
                    f"{request.method} {request.uri}{owned}, which does not go to {self.provider} "
                    f"({self._where()}): {why}\n"
                    f"  {CAUSE}\n"
                    f"  Fix: build the client from the llm_provider fixture, then re-record. {hint}{gateway}"
                )


# -- the cassette's own record of what it was recorded against ----------------------------------------
def header(spec: Provider, scrub_uri: Callable[[str], str]) -> dict[str, Any]:
    """The identity part of a cassette's top-level ``llmport:`` mapping."""
    return {"provider": spec.name, "base_url": scrub_uri(spec.base_url), "model": spec.model}


def as_recorded(spec: Provider, recorded: Mapping[str, Any]) -> Provider:
    """``spec`` with the base URL and model the cassette was recorded against, for replay."""
    base_url, model = recorded.get("base_url"), recorded.get("model")
    # The same few (provider, base URL, model) triples for every cassette of a suite: each built once. The
    # entry holds the spec itself, so its id cannot be reused by another object while it is remembered.
    key = (id(spec), base_url, model)
    known = _RECORDED.get(key)
    if known is not None and known[0] is spec:
        return known[1]
    changes: dict[str, Any] = {
        name: value
        for name, value in (("base_url", base_url), ("model", model))
        if isinstance(value, str) and value and value != getattr(spec, name)
    }
    result = dataclasses.replace(spec, **changes) if changes else spec
    if isinstance(base_url, (str, type(None))) and isinstance(model, (str, type(None))):
        if len(_RECORDED) >= _ADMITTED_SIZE:
            _RECORDED.clear()
        _RECORDED[key] = (spec, result)
    return result


_ADMITTED_SIZE = 4096
_RECORDED: dict[tuple[int, Any, Any], tuple[Provider, Provider]] = {}


def rebased_mismatch(
    spec: Provider, recorded: Mapping[str, Any], nodeid: str, path: Any, hint: str | LazyText
) -> None:
    """Adding new episodes to a cassette recorded against another base URL would mix two servers."""
    base = recorded.get("base_url")
    if isinstance(base, str) and base and base != spec.base_url:
        raise CassetteError(
            f"{nodeid}: cassette {path} was recorded against {base}, provider {spec.name!r} is now at "
            f"{spec.base_url}; record mode new_episodes would mix the two in one cassette.\n"
            f"  Fix: re-record the test whole. {hint}"
        )


# The plugin's own traffic in a test's cassette (the LLM judge, the embedding metric's provider): each is
# recorded under its role with the provider, base URL and model it went to, so a replay sends to the
# recorded base URL (as the provider under test replays at its own, as_recorded) and a changed judge or
# embedding model is named instead of looking like an unrecorded request.
OWN_ROLES = ("judge", "embedding")


def own_header(own: Mapping[str, tuple[Provider, str]], scrub_uri: Callable[[str], str]) -> dict[str, Any]:
    """The ``llmport:`` entries of the plugin's own providers, by role."""
    return {
        role: {"provider": spec.name, "base_url": scrub_uri(spec.base_url), "model": model}
        for role, (spec, model) in own.items()
    }


def own_as_recorded(
    own: Mapping[str, tuple[Provider, str]],
    recorded: Mapping[str, Any],
    nodeid: str,
    path: Any,
    hint: str | LazyText,
    replaying: bool,
    mixing: bool,
) -> dict[str, tuple[Provider, str]]:
    """The plugin's own providers (role -> (provider, model)) as this test must reach them.

    Replaying, each at the base URL its entry records; a cassette recorded with another provider or model
    for a role is refused with the re-record command (its answers do not answer the new one). With
    ``mixing`` (record mode new_episodes over recorded exchanges), another base URL is refused too.
    A cassette without an entry (an earlier version) keeps the configured provider.
    """
    result = dict(own)
    for role, (spec, model) in own.items():
        entry = recorded.get(role)
        if not isinstance(entry, Mapping) or not (replaying or mixing):
            continue
        was = f"{entry.get('provider')}:{entry.get('model')} at {entry.get('base_url')}"
        key = f" ({spec.api_key_env} set for the {role})" if spec.key_required else ""
        if entry.get("provider") != spec.name or entry.get("model") != model:
            raise CassetteError(
                f"{nodeid}: cassette {path} was recorded with the {role} {was}, but the {role} is now "
                f"{spec.name}:{model}: the recorded answers are another model's.\n"
                f"  Fix: re-record the test whole{key}, or configure the {role} as recorded. {hint}"
            )
        if replaying:
            result[role] = (as_recorded(spec, {"base_url": entry.get("base_url")}), model)
        elif entry.get("base_url") != spec.base_url:
            raise CassetteError(
                f"{nodeid}: cassette {path} was recorded with the {role} {was}, it is now at "
                f"{spec.base_url}; record mode new_episodes would mix the two in one cassette.\n"
                f"  Fix: re-record the test whole{key}. {hint}"
            )
    return result


def prepare(
    nodeid: str,
    spec: Provider,
    cassette: Any,
    path: Any,
    replaying: bool,
    mode: str,
    hint: str | LazyText,
    scrub_uri: Callable[[str], str],
    also: Sequence[Provider] = (),
    others: Mapping[str, Provider] | None = None,
    cache: dict[tuple[Any, ...], ProviderIdentity] | None = None,
) -> tuple[Provider, ProviderIdentity]:
    """At the start of a test: the provider as the test sees it, and the identity its requests must have.

    Replaying, that is the provider as recorded (base URL, model), and the loaded cassette is checked once.
    Recording, the cassette's ``llmport:`` mapping is set to what this recording goes to.
    """
    recorded = cassette.llmport
    if replaying:
        spec = as_recorded(spec, recorded)
    elif mode == "new_episodes" and cassette.data:
        rebased_mismatch(spec, recorded, nodeid, path, hint)
    # One per provider configuration and run: building one parses URLs, about 30 us.
    key = (spec.name, spec.base_url, spec.dialect, spec.extra_hosts, *(p.base_url for p in also))
    checker = cache.get(key) if cache is not None else None
    if checker is None:
        checker = ProviderIdentity(spec, also=also, others=others)
        if cache is not None:
            cache[key] = checker
    if cassette.data and mode != "all":
        checker.check_cassette(
            nodeid, path, cassette.requests, recorded.get("provider"), hint, bool(recorded)
        )
    if not replaying:
        recorded.update(header(spec, scrub_uri))
    return spec, checker


# -- model identity -----------------------------------------------------------------------------------
def _json(raw: Any) -> Any:
    if isinstance(raw, (bytes, bytearray)):
        raw = bytes(raw).decode("utf-8", "replace")
    if not isinstance(raw, str) or raw.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def request_model(dialect: str, uri: str, body: Any) -> str | None:
    """The model a request names: in the JSON body, or in the URL path (Gemini, ERNIE native)."""
    known = find(dialect)
    if known is not None and known.model_from_path is not None:
        named = known.model_from_path(urlsplit(uri).path)
        if named is not None:
            return named or None
    parsed = _json(body)
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else None


def _model_of(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    message = obj.get("message")
    for value in (
        obj.get("model"),
        obj.get("modelVersion"),  # Gemini
        message.get("model") if isinstance(message, dict) else None,  # Anthropic's message_start event
    ):
        if isinstance(value, str) and value:
            return value
    return None


def response_model(body: Any) -> str | None:
    """The model a response names (JSON, or the first SSE events), when the provider says it."""
    parsed = _json(body)
    if parsed is not None:
        return _model_of(parsed)
    text = bytes(body).decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    if not isinstance(text, str):
        return None
    seen = 0
    for line in text.splitlines():
        if line.startswith("data:"):
            found = _model_of(_json(line[5:].strip()))
            seen += 1
            if found or seen >= 5:
                return found
    return None


def exchange_models(cassette: Any, dialect: str) -> list[tuple[str | None, str | None]]:
    """``(request model, response model)`` of each exchange the test used, remembered on the response.

    Like the exchange summaries of :mod:`pytest_llmport.observe`, the memo rides in the parsed-cassette
    cache, so a replayed exchange is parsed once, not on every run.
    """
    from .observe import _used

    result, added = [], False
    for request, response in _used(cassette):
        memo = response.setdefault(MODEL_MEMO, {})
        if dialect not in memo:
            body = response.get("body", {}).get("string") if isinstance(response.get("body"), dict) else None
            memo[dialect] = [request_model(dialect, request.uri, request.body), response_model(body)]
            added = True
        sent, served = memo[dialect]
        result.append((sent, served))
    if added:
        cassette.mark_changed()
    return result


def model_report(cassette: Any, dialect: str, expected: str, declared: Sequence[str] = ()) -> dict[str, Any]:
    """The report data's ``model`` entry for one test on one provider."""
    models = exchange_models(cassette, dialect)
    allowed = list(dict.fromkeys([expected, *declared]))
    sent = [m for m, _ in models]
    return {
        "expected": expected,
        "sent": sent,
        "served": [m for _, m in models],
        "mismatch": any(m is not None and m not in allowed for m in sent),
        "allowed": allowed,
    }


def model_findings(report: Mapping[str, Any], provider: str) -> list[str]:
    """``model gpt-4o-mini sent to zhipu (llm_provider.model is glm-4-flash)``, once per wrong model."""
    allowed = report.get("allowed") or [report.get("expected")]
    wrong = dict.fromkeys(m for m in report.get("sent", ()) if m is not None and m not in allowed)
    return [f"model {m} sent to {provider} (llm_provider.model is {report.get('expected')})" for m in wrong]


def strict_model_failure(nodeid: str, cassette: Any, handle: Any, declared: Sequence[str]) -> str | None:
    """The failure message under ``--llmport-strict-model``, or None when every request model is allowed."""
    provider = handle.name
    findings = model_findings(model_report(cassette, handle.spec.dialect, handle.model, declared), provider)
    if not findings:
        return None
    return (
        f"{nodeid}: {'; '.join(findings)}.\n"
        f"  The app names its own model instead of llm_provider.model, so this test did not test "
        f"{provider}'s model.\n"
        f"  Fix: pass model=llm_provider.model; or, if the test uses several models on purpose, declare "
        f"them: @pytest.mark.llm_portable(models=[...]); or drop --llmport-strict-model "
        f"(ini llmport_strict_model) to keep this a finding only."
    )
