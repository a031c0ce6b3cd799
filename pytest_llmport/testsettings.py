"""The settings of marked tests: what a test's ``llm_portable`` marker says (:class:`MarkerOptions`), each
marked test function in the run (:class:`PortableTest`), each of its items (:class:`ItemSettings`), and what
``pytest_llmport_configure_recording`` hooks may change (:class:`RecordingOptions`).

Only their definitions live here: :mod:`pytest_llmport.config` resolves them (and they are importable from
there, as documented). They are apart so that a run without a marked test never builds these dataclasses:
at import, that was most of what the plugin cost a pytest run (bench/startup.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from .errors import ConfigError

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet


@dataclass(frozen=True)
class MarkerOptions:
    """What ``@pytest.mark.llm_portable(...)`` says about one test."""

    providers: tuple[str, ...] | None = None
    baseline: str | None = None
    threshold: float | str | None = None  # str: samples.CALIBRATED
    metric: str | None = None
    requires: tuple[str, ...] = ()
    facts: bool | None = None
    models: tuple[str, ...] = ()
    samples: int | None = None
    pass_rate: float | None = None
    judge: str | None = None


@dataclass(frozen=True)
class PortableTest:
    """One marked test function in this run: what its marker says, and the providers it runs on."""

    options: MarkerOptions
    providers: tuple[str, ...]  # the run's providers that the marker's providers=[...] keeps
    lacking: Mapping[str, str]  # provider -> why it is skipped (a capability requires=[...] names)
    no_provider: str = ""  # why it runs on no provider, when ``providers`` is empty
    samples: int = 1  # answers recorded per provider (samples.py): one item each when more than one
    pass_rate: float = 1.0

    @property
    def sampled(self) -> bool:
        """Whether its items carry a sample parameter (samples.SAMPLE) beside the provider."""
        return self.samples > 1 and bool(self.providers)

    def params(self) -> list[ParameterSet]:
        """One parameter per provider and sample (skipped where a capability is missing), or a skipped
        no-provider."""
        from .samples import Sample

        if not self.providers:
            return [pytest.param(None, id="no-provider", marks=pytest.mark.skip(reason=self.no_provider))]
        params = []
        for name in self.providers:
            marks = [pytest.mark.skip(reason=self.lacking[name])] if name in self.lacking else []
            if not self.sampled:
                params.append(pytest.param(name, id=name, marks=marks))
                continue
            for index in range(1, self.samples + 1):
                sample = Sample(index, self.samples, self.pass_rate)
                params.append(pytest.param(name, sample, id=sample.ident(name), marks=marks))
        return params


@dataclass(frozen=True)
class ItemSettings:
    """What decides one ``llm_portable`` test on one provider: resolved at collection, in ``item.stash``."""

    provider: str
    providers: tuple[str, ...]  # every provider this test runs on in this run
    skipped: bool  # a skip mark (ours for a missing capability, or the user's): it needs no cassette
    skip_reason: str  # why this provider is skipped for a capability ("" when it is not)
    requires: tuple[str, ...]
    baseline: str
    threshold: float | str | None  # None: the metric's own default; "baseline": samples.CALIBRATED
    metric: str
    facts: bool
    record_mode: str
    strict_model: bool
    models: tuple[str, ...]  # models it sends on purpose besides llm_provider.model
    conflict: str | None  # another HTTP recorder or mock in the same test (see coexist.py): fails setup
    judge: str | None = None  # "<provider>[:model]" that llm_equiv.judge() asks: the marker's, else the run's


@dataclass
class RecordingOptions:
    """What ``pytest_llmport_configure_recording`` hooks may change about one test's recording.

    Our own object, not vcrpy's: the recording layer applies it however it records.
    """

    #: Extra values to scrub, by name: written as ``<REDACTED:NAME>`` into the cassette and every report,
    #: and (as every placeholder) matching any value on replay.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    #: Request JSON body fields (``name`` or a dotted path ``metadata.request_id``) recorded as ``REDACTED``:
    #: their value (any JSON value) is not compared on replay.
    ignore_body: set[str] = field(default_factory=set)
    #: Query parameters recorded as ``REDACTED``: their value is not compared on replay.
    ignore_query: set[str] = field(default_factory=set)

    def check(self, where: str) -> None:
        """A hook that put something else in is told so, naming the test and the field."""
        from .scrub import MIN_SECRET

        for name, value in self.secrets.items():
            named = isinstance(name, str) and 0 < len(name) <= 64 and name.replace("_", "").isalnum()
            if not named or not isinstance(value, str):
                raise ConfigError(
                    f"{where}: pytest_llmport_configure_recording: secrets must map a NAME (letters, "
                    f"digits, _) to a str value, e.g. recording.secrets['TENANT_TOKEN'] = "
                    f"os.environ['TENANT_TOKEN']; got {name!r}"
                )
            if len(value) < MIN_SECRET:  # the scrubber leaves such short values alone: say so, not skip it
                raise ConfigError(
                    f"{where}: pytest_llmport_configure_recording: secrets[{name!r}] is shorter than "
                    f"{MIN_SECRET} characters, too short to scrub without scrubbing ordinary text; keep "
                    f"such a value out of the requests (or out of the test)"
                )
        for kind, names in (("ignore_body", self.ignore_body), ("ignore_query", self.ignore_query)):
            if not all(isinstance(name, str) and name for name in names):
                raise ConfigError(
                    f"{where}: pytest_llmport_configure_recording: {kind} must hold non-empty field names, "
                    f"e.g. recording.{kind}.add('request_id'); got {sorted(map(repr, names))}"
                )
