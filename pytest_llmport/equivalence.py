"""``llm_equiv``: behavioural equivalence of one test's outputs against the baseline provider's.

The baseline provider's observations are written beside its cassette
(``cassettes/<module>/<test>/<baseline>.observations.json``) whenever its test passes, so a comparison
works in any order, under xdist, and when the baseline is not in this run's ``--providers``: CI replays
``--providers=zhipu,qwen`` against committed ``openai`` observations. The baseline's own test only records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import threshold_value
from .errors import ConfigError, LlmportError

if TYPE_CHECKING:
    from .judge import Judge, JudgeVerdict


class MissingBaselineError(LlmportError):
    """The baseline provider has no observation under the key a test compares."""


class EquivalenceError(AssertionError):
    """An output is not equivalent to the baseline's (a test failure, not an error)."""


def observations_path(cassette: Path) -> Path:
    return cassette.with_name(cassette.stem + ".observations.json")


def load_observations(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise LlmportError(f"{path} is not valid JSON ({exc}); delete it and re-record the baseline") from exc
    if not isinstance(data, dict) or not isinstance(data.get("observations"), dict):
        raise LlmportError(f"{path} has no 'observations' mapping; delete it and re-record the baseline")
    observations: dict[str, Any] = data["observations"]
    return observations


def save_observations(
    path: Path, provider: str, observations: Mapping[str, Any], sample: Mapping[str, int] | None = None
) -> bool:
    """Write atomically; return False (and write nothing) when the file already says the same.

    ``sample`` (``{"index": k, "of": n}``) marks one of a sampled baseline's files.
    """
    content: dict[str, Any] = {"provider": provider, "observations": observations}
    if sample is not None:
        content["sample"] = dict(sample)
    if path.is_file() and load_observations(path) == observations:
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("sample") == content.get("sample"):
                return False
        except ValueError:
            pass
    text = json.dumps(content, ensure_ascii=False, indent=2, sort_keys=True)
    from .cassettes import write_atomically

    write_atomically(path, (text + "\n").encode("utf-8"), what="baseline observations")
    return True


@dataclass
class Check:
    """One comparison's outcome, for the matrix and the JSON report."""

    kind: str  # schema | same | similar
    key: str
    passed: bool
    detail: str = ""
    score: float | None = None
    threshold: float | None = None
    metric: str | None = None
    diff: list[str] = field(default_factory=list)
    finding: str | None = None
    facts: list[str] = field(default_factory=list)  # similar(): why the texts state different facts
    # similar(threshold="baseline"): the baseline's own spread (least typical, mean, margin, samples)
    spread: dict[str, float] | None = None
    judge: dict[str, str] | None = None  # judge(): provider, model, prompt_version, verdict, reason
    contained: bool | None = None  # similar(): passed below the threshold, one text holding the other

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], "")}


@dataclass(frozen=True)
class EquivalenceSettings:
    """What decides a comparison for one test: marker > ini > default, resolved at collection (a call's
    own ``threshold=`` / ``metric=`` / ``facts=`` win over these)."""

    baseline: str
    threshold: float | str | None  # None: the metric's own default; "baseline": samples.CALIBRATED
    metric: str
    facts: bool = True


def __getattr__(name: str) -> Any:
    if name == "check_threshold":  # deprecated: the one threshold check is config.threshold_value
        import warnings

        warnings.warn(
            "pytest_llmport.equivalence.check_threshold is deprecated; use "
            "pytest_llmport.config.threshold_value(value, source)",
            DeprecationWarning,
            stacklevel=2,
        )
        return lambda value, where: threshold_value(value, f"{where}: threshold={value!r}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Equivalence:
    """The ``llm_equiv`` fixture: check schemas, compare structures and texts against the baseline."""

    def __init__(
        self,
        *,
        nodeid: str,
        provider: str,
        settings: EquivalenceSettings,
        baseline_values: Callable[[], Mapping[str, Any]],
        metrics: Mapping[str, Callable[[str, str], float]],
        record_command: str,
        embed: Callable[[list[str]], list[list[float]]] | None = None,
        baseline_samples: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
        sample: int = 1,
        judge: Callable[[], Judge] | None = None,
    ) -> None:
        self.nodeid = nodeid
        self.provider = provider
        self.settings = settings
        self.observations: dict[str, Any] = {}
        self.checks: list[Check] = []
        # One mapping per sample the baseline recorded (pytest_llmport.samples); this item is sample `sample`.
        self._samples = baseline_samples or (lambda: [baseline_values()])
        self.sample = sample
        self._metrics = metrics
        self._record_command = record_command
        self._embed = embed
        self._judge = judge

    @property
    def is_baseline(self) -> bool:
        """True on the baseline provider's own run: comparisons only record there."""
        return self.provider == self.settings.baseline

    # -- recording ------------------------------------------------------------------------------------------
    def observe(self, key: str, value: Any) -> Any:
        """Record ``value`` under ``key`` (JSON-serialisable; dataclasses and pydantic models converted)."""
        from .compare import NotSerializableError, ensure_jsonable

        if not isinstance(key, str) or not key:
            raise ConfigError(f"{self.nodeid}: observation keys must be non-empty strings, got {key!r}")
        try:
            self.observations[key] = ensure_jsonable(value, where=f"observation {key!r} on {self.provider}")
        except NotSerializableError as exc:
            raise ConfigError(f"{self.nodeid}: {exc}") from None
        return value

    def baseline(self, key: str) -> Any:
        """The baseline provider's observation under ``key``; fails with the command that records it."""
        __tracebackhide__ = True
        from .samples import paired

        samples = self._baseline_samples()
        values = samples[paired(self.sample, len(samples))] if samples else {}
        if key not in values:
            known = ", ".join(sorted(values)) or "none"
            raise MissingBaselineError(
                f"{self.nodeid}: the baseline provider {self.settings.baseline!r} has no observation "
                f"{key!r} (it has: {known}). Record it: {self._record_command}"
            )
        return values[key]

    def _baseline_samples(self) -> Sequence[Mapping[str, Any]]:
        try:
            return self._samples()
        except MissingBaselineError as exc:
            raise MissingBaselineError(f"{self.nodeid}: {exc}. Record it: {self._record_command}") from None

    def _baseline_texts(self, key: str) -> list[str]:
        """The baseline's text under ``key`` in each of its samples (the paired one checked first)."""
        self.baseline(key)  # a missing key fails here, with the command that records it
        texts = []
        for index, values in enumerate(self._baseline_samples(), start=1):
            if key not in values:
                raise MissingBaselineError(
                    f"{self.nodeid}: baseline sample {index} of {self.settings.baseline!r} has no "
                    f"observation {key!r}. Record it: {self._record_command}"
                )
            if not isinstance(values[key], str):
                raise ConfigError(f"{self.nodeid}: the baseline's {key!r} is not text: {values[key]!r}")
            texts.append(values[key])
        return texts

    # -- checks ---------------------------------------------------------------------------------------------
    def schema(self, raw_or_value: Any, schema: Any, *, lenient: bool = False, key: str | None = None) -> Any:
        """Parse (when given text) and validate against ``schema``; return the validated value.

        ``lenient=True`` accepts JSON wrapped in a Markdown code fence or in prose, and records that the
        output was not bare JSON: a portability finding the matrix shows even when the test passes.
        """
        __tracebackhide__ = True
        from .compare import InvalidSchemaError, SchemaError, check_schema

        name = key or "schema"
        try:
            result = check_schema(raw_or_value, schema, lenient=lenient)
        except InvalidSchemaError as exc:
            raise ConfigError(f"{self.nodeid}: {exc}") from None
        except SchemaError as exc:
            self.checks.append(
                Check("schema", name, False, detail=str(exc).splitlines()[0], diff=exc_lines(exc))
            )
            raise EquivalenceError(f"{self.nodeid}: output {name!r} on {self.provider}: {exc}") from None
        finding = None if result.bare else f"not bare JSON ({result.wrapper})"
        self.checks.append(Check("schema", name, True, finding=finding))
        if key is not None:
            self.observe(key, result.value)
        return result.value

    def same(
        self,
        key: str,
        value: Any,
        *,
        ignore_order: bool = False,
        tolerance: float | None = None,
        abs_tolerance: float | None = None,
        exclude: Sequence[str] = (),
        exclude_regex: Sequence[str] = (),
        normalize: Any = None,
    ) -> None:
        """Record ``value`` and, off the baseline, assert it is structurally equal to the baseline's."""
        __tracebackhide__ = True
        from .compare import check_options, compare_structures, format_comparison

        # Checked on every provider: a bad option must not pass on the baseline and fail only elsewhere.
        check_options(tolerance, abs_tolerance, exclude, exclude_regex)
        self.observe(key, value)
        if self.is_baseline:
            self.checks.append(Check("same", key, True, detail="baseline"))
            return
        expected = self.baseline(key)
        comparison = compare_structures(
            expected,
            self.observations[key],
            ignore_order=ignore_order,
            tolerance=tolerance,
            abs_tolerance=abs_tolerance,
            exclude_paths=exclude,
            exclude_regex_paths=exclude_regex,
            normalize=normalize,
        )
        lines = list(comparison.diff_lines)
        self.checks.append(Check("same", key, comparison.equal, diff=lines, detail=lines[0] if lines else ""))
        if not comparison.equal:
            message = format_comparison(key, comparison, self.settings.baseline, self.provider)
            raise EquivalenceError(f"{self.nodeid}: {message}")

    def similar(
        self,
        key: str,
        text: str,
        *,
        reference: str | None = None,
        threshold: float | str | None = None,
        metric: str | None = None,
        facts: bool | None = None,
    ) -> float:
        """Record ``text``; assert its similarity to the baseline's (or to ``reference``) meets the threshold
        and, unless ``facts=False``, that both texts state the same numbers and negations.

        Returns the score. The threshold, metric and facts check come from the call, else the marker,
        else the ini keys ``llmport_threshold`` / ``llmport_metric`` / ``llmport_check_facts``, else the
        defaults chosen on the benchmark (facts checked).
        """
        __tracebackhide__ = True
        from .similarity import default_threshold, passes, verdict

        if not isinstance(text, str):
            raise ConfigError(
                f"{self.nodeid}: llm_equiv.similar({key!r}, ...) needs a str, got {type(text).__name__}"
            )
        if facts is not None and not isinstance(facts, bool):
            raise ConfigError(
                f"{self.nodeid}: llm_equiv.similar({key!r}, facts={facts!r}): facts must be True or False"
            )
        from .samples import CALIBRATED

        check_facts = self.settings.facts if facts is None else facts
        name = metric or self.settings.metric
        chosen = threshold if threshold is not None else self.settings.threshold
        calibrated = chosen == CALIBRATED
        if calibrated or chosen is None:
            limit = default_threshold(name)  # replaced by the baseline's spread below
        elif threshold is not None:
            limit = threshold_value(threshold, f"{self.nodeid}: threshold={threshold!r}")
        else:
            limit = float(chosen)  # checked when the test was collected
        function = self._metrics.get(name)
        if function is None:
            known = ", ".join(sorted(self._metrics))
            raise ConfigError(f"{self.nodeid}: unknown similarity metric {name!r}; known: {known}")
        if calibrated and reference is not None:
            raise ConfigError(
                f"{self.nodeid}: llm_equiv.similar({key!r}, reference=..., threshold={CALIBRATED!r}): a "
                f"reference text has no spread to calibrate on; give a number as the threshold"
            )
        self.observe(key, text)
        if reference is None and self.is_baseline:
            self.checks.append(
                Check(
                    "similar",
                    key,
                    True,
                    detail="baseline",
                    metric=name,
                    threshold=None if calibrated else limit,
                )
            )
            return 1.0
        other = reference if reference is not None else self.baseline(key)
        if not isinstance(other, str):
            raise ConfigError(f"{self.nodeid}: the baseline's {key!r} is not text: {other!r}")

        def scorer(a: str, b: str) -> float:
            return self._score(name, function, a, b)

        result = verdict(other, text, scorer, limit, facts=check_facts)
        score = result.score
        texts = self._baseline_texts(key) if reference is None else [other]
        spread: dict[str, float] = {}
        if calibrated or len(texts) > 1:
            score, limit, spread = self._against_samples(key, name, texts, text, scorer, limit, calibrated)
        against = "reference text" if reference is not None else f"baseline {self.settings.baseline}"
        if len(texts) > 1:
            against += f"'s {len(texts)} samples (mean score)"
        # One rule whatever the path: the score (the mean over the baseline's samples, if it has several)
        # against the threshold, containment and the facts against the paired text (similarity.passes).
        passed = passes(score, limit, result.contained, result.facts)
        held = score < limit and result.contained  # passed on containment, below the threshold
        self.checks.append(
            Check(
                "similar",
                key,
                passed,
                score=score,
                threshold=limit,
                metric=name,
                facts=list(result.facts),
                detail=result.facts[0] if result.facts else "contained" if held else "",
                spread=spread or None,
                contained=True if held else None,
            )
        )
        shown = f"\n  expected: {_clip(other)}\n  actual:   {_clip(text)}"
        if score < limit and not result.contained:
            calibration = (
                f" (the baseline's own samples score {spread['least']:.3f} to each other at the least "
                f"typical, {spread['mean']:.3f} on average; threshold = {spread['least']:.3f} - margin "
                f"{spread['margin']:.2f})"
                if calibrated
                else ""
            )
            raise EquivalenceError(
                f"{self.nodeid}: {key!r} on {self.provider} is not similar enough to the {against}: "
                f"{name} {score:.3f} < threshold {limit:.2f}{calibration}{shown}"
            )
        if result.facts:
            compared = (
                f"< threshold {limit:.2f}, but one answer holds the other"
                if score < limit
                else f">= threshold {limit:.2f}"
            )
            raise EquivalenceError(
                f"{self.nodeid}: {key!r} on {self.provider} states other facts than the {against}: "
                f"{'; '.join(result.facts)} ({name} {score:.3f} {compared}; if such differences are "
                f"expected here, pass facts=False){shown}"
            )
        return score

    def judge(
        self,
        key: str,
        text: str,
        *,
        rubric: str | None = None,
        question: str | None = None,
        reference: str | None = None,
    ) -> JudgeVerdict:
        """Record ``text``; off the baseline, ask the judge provider whether it is equivalent to the
        baseline's (or to ``reference``) under ``rubric``, and fail with the judge's reason when it is not.

        The judge is ``<provider>[:model]`` from the marker's ``judge=``, else ``--llmport-judge``, else the
        ini key ``llmport_judge``. ``rubric`` may name ``{question}``, ``{baseline}`` and ``{candidate}``;
        the default one (:data:`pytest_llmport.judge.DEFAULT_RUBRIC`) asks for the same facts and the same
        conclusion. The judge's exchange is recorded in this test's cassette and replayed like the rest.
        """
        __tracebackhide__ = True
        from .judge import DEFAULT_RUBRIC, JudgeVerdict, prompt_version, render_rubric

        where = f"{self.nodeid}: llm_equiv.judge({key!r}) on {self.provider}"
        if not isinstance(text, str):
            raise ConfigError(f"{where} needs a str, got {type(text).__name__}")
        for name, value in (("rubric", rubric), ("question", question), ("reference", reference)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: {name}= must be a str, got {type(value).__name__}")
        rubric = DEFAULT_RUBRIC if rubric is None else rubric
        # Checked on every provider, the baseline too: a bad setup must not pass there and fail elsewhere.
        if self._judge is None:
            raise ConfigError(
                f"{where}: no judge provider is configured. Name one: ini llmport_judge = "
                f"openai:gpt-4o-mini, or --llmport-judge=openai:gpt-4o-mini, or @pytest.mark.llm_portable("
                f'judge="openai:gpt-4o-mini") (any provider of the run\'s registry, with its key to record)'
            )
        render_rubric(rubric, {"question": question or "", "baseline": "", "candidate": ""}, where)
        judge = self._judge()
        self.observe(key, text)
        version = prompt_version(rubric)
        details = {"provider": judge.handle.name, "model": judge.model, "prompt_version": version}
        if reference is None and self.is_baseline:
            self.checks.append(Check("judge", key, True, detail="baseline", metric="judge", judge=details))
            return JudgeVerdict(True, "baseline", judge.handle.name, judge.model, version)
        other = reference if reference is not None else self.baseline(key)
        if not isinstance(other, str):
            raise ConfigError(f"{self.nodeid}: the baseline's {key!r} is not text: {other!r}")
        verdict = judge.ask(rubric, other, text, question, where)
        against = "reference text" if reference is not None else f"baseline {self.settings.baseline}"
        said = f"the judge {judge.label} (prompt {version})"
        finding = None if verdict.equivalent else f"{said}: not equivalent: {verdict.reason}"
        self.checks.append(
            Check(
                "judge",
                key,
                verdict.equivalent,
                detail=verdict.reason,
                metric="judge",
                finding=finding,
                judge=verdict.to_dict(),
            )
        )
        if not verdict.equivalent:
            raise EquivalenceError(
                f"{self.nodeid}: {key!r} on {self.provider} is not equivalent to the {against} according "
                f"to {said}: {verdict.reason}\n  expected: {_clip(other)}\n  actual:   {_clip(text)}"
            )
        return verdict

    def relation(
        self,
        name: str,
        function: Callable[[Any], Any],
        value: Any,
        transform: Callable[[Any], Any],
        *,
        expect: str | Callable[[Any, Any], bool] = "equal",
    ) -> tuple[Any, Any]:
        """A metamorphic relation: run ``function`` on ``value`` and on ``transform(value)`` and check the
        outputs relate as ``expect`` says: ``"equal"`` (the transformation must not change the output),
        ``"different"`` (it must change it), or a callable ``(original, transformed) -> bool``.

        A broken relation is a finding about this provider (the matrix says "broken" and the report keeps
        both inputs and outputs); it fails the test like a non-equivalent answer. Returns both outputs.
        """
        __tracebackhide__ = True
        if callable(expect):
            holds_fn: Callable[[Any, Any], bool] = expect
            label = getattr(expect, "__name__", "custom")
        elif expect in ("equal", "different"):
            label = expect
            holds_fn = (lambda a, b: a == b) if expect == "equal" else (lambda a, b: a != b)
        else:
            raise ConfigError(
                f"{self.nodeid}: relation {name!r}: expect={expect!r} must be "
                f"'equal', 'different' or a callable"
            )
        transformed_input = transform(value)
        original, transformed = function(value), function(transformed_input)
        holds = bool(holds_fn(original, transformed))
        detail = (
            f"input {_clip(str(value), 60)} -> {_clip(str(original), 60)}; "
            f"transformed {_clip(str(transformed_input), 60)} -> {_clip(str(transformed), 60)}"
        )
        self.checks.append(Check("relation", name, holds, detail=detail, metric=label))
        if not holds:
            raise EquivalenceError(
                f"{self.nodeid}: relation {name!r} ({label}) broken on {self.provider}:\n"
                f"  f({value!r}) = {original!r}\n  f({transformed_input!r}) = {transformed!r}"
            )
        return original, transformed

    def _against_samples(
        self,
        key: str,
        name: str,
        texts: Sequence[str],
        text: str,
        scorer: Callable[[str, str], float],
        limit: float,
        calibrated: bool,
    ) -> tuple[float, float, dict[str, float]]:
        """The mean score against every baseline sample and, with ``threshold="baseline"``, the threshold
        from the baseline's own spread (see :mod:`pytest_llmport.samples`)."""
        from .samples import CALIBRATED, CALIBRATION_MARGIN, spread
        from .similarity import verdict

        def score(a: str, b: str) -> float:
            return verdict(a, b, scorer, limit, facts=False).score  # JSON answers read by their values

        mean = sum(score(other, text) for other in texts) / len(texts)
        if not calibrated:
            return mean, limit, {}
        if len(texts) < 2:
            raise ConfigError(
                f"{self.nodeid}: llm_equiv.similar({key!r}, threshold={CALIBRATED!r}) calibrates on the "
                f"baseline's own samples, but {self.settings.baseline!r} has {len(texts)}: record the "
                f"baseline with samples=N (N >= 2, e.g. @pytest.mark.llm_portable(samples=5)): "
                f"{self._record_command}"
            )
        own = spread(texts, score)
        return (
            mean,
            own.threshold(),
            {"least": own.least, "mean": own.mean, "margin": CALIBRATION_MARGIN, "samples": own.samples},
        )

    def _score(self, name: str, function: Callable[[str, str], float], a: str, b: str) -> float:
        from .semantic import SemanticUnavailableError

        if name != "embedding":
            try:
                return float(function(a, b))
            except SemanticUnavailableError as exc:
                raise SemanticUnavailableError(
                    f"{self.nodeid}: metric {name!r} on {self.provider}: {exc}"
                ) from None
        if self._embed is None:
            raise ConfigError(
                f"{self.nodeid}: metric 'embedding' needs ini llmport_embedding_provider (a provider name) "
                f"and llmport_embedding_model"
            )
        first, second = self._embed([a, b])
        return cosine(first, second)


def embedding_metric(a: str, b: str) -> float:
    """Registry entry for ``embedding``: scored by :class:`Equivalence` through a provider, never directly."""
    raise ConfigError(
        "the 'embedding' metric is computed through llm_equiv, with ini llmport_embedding_provider"
    )


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity clipped to [0, 1] (opposite directions count as unrelated)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return max(0.0, min(1.0, dot / norm)) if norm else 0.0


def exc_lines(exc: BaseException) -> list[str]:
    return [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]


def _clip(text: str, width: int = 160) -> str:
    return repr(text) if len(text) <= width else repr(text[:width]) + f"... ({len(text)} chars)"
