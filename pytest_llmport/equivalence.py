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


def save_observations(path: Path, provider: str, observations: Mapping[str, Any]) -> bool:
    """Write atomically; return False (and write nothing) when the file already says the same."""
    if load_observations(path) == observations:
        return False
    text = json.dumps(
        {"provider": provider, "observations": observations}, ensure_ascii=False, indent=2, sort_keys=True
    )
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
    judge: dict[str, str] | None = None  # judge(): provider, model, prompt_version, verdict, reason

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], "")}


@dataclass
class EquivalenceSettings:
    """What decides a comparison for one test: resolved from call > marker > ini > default."""

    baseline: str
    threshold: float | None  # None: the metric's own default (similarity.default_threshold)
    metric: str
    facts: bool = True


def check_threshold(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{where}: threshold={value!r} must be a number between 0 and 1")
    return float(value)


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
        judge: Callable[[], Judge] | None = None,
    ) -> None:
        self.nodeid = nodeid
        self.provider = provider
        self.settings = settings
        self.observations: dict[str, Any] = {}
        self.checks: list[Check] = []
        self._baseline_values = baseline_values
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
        values = self._baseline_values()
        if key not in values:
            known = ", ".join(sorted(values)) or "none"
            raise MissingBaselineError(
                f"{self.nodeid}: the baseline provider {self.settings.baseline!r} has no observation "
                f"{key!r} (it has: {known}). Record it: {self._record_command}"
            )
        return values[key]

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
        threshold: float | None = None,
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
        from .similarity import default_threshold, verdict

        if not isinstance(text, str):
            raise ConfigError(
                f"{self.nodeid}: llm_equiv.similar({key!r}, ...) needs a str, got {type(text).__name__}"
            )
        if facts is not None and not isinstance(facts, bool):
            raise ConfigError(
                f"{self.nodeid}: llm_equiv.similar({key!r}, facts={facts!r}): facts must be True or False"
            )
        check_facts = self.settings.facts if facts is None else facts
        name = metric or self.settings.metric
        if threshold is not None:
            limit = check_threshold(threshold, self.nodeid)
        else:
            limit = default_threshold(name) if self.settings.threshold is None else self.settings.threshold
        function = self._metrics.get(name)
        if function is None:
            known = ", ".join(sorted(self._metrics))
            raise ConfigError(f"{self.nodeid}: unknown similarity metric {name!r}; known: {known}")
        self.observe(key, text)
        if reference is None and self.is_baseline:
            self.checks.append(Check("similar", key, True, detail="baseline", metric=name, threshold=limit))
            return 1.0
        other = reference if reference is not None else self.baseline(key)
        if not isinstance(other, str):
            raise ConfigError(f"{self.nodeid}: the baseline's {key!r} is not text: {other!r}")
        result = verdict(
            other, text, lambda a, b: self._score(name, function, a, b), limit, facts=check_facts
        )
        score = result.score
        against = "reference text" if reference is not None else f"baseline {self.settings.baseline}"
        self.checks.append(
            Check(
                "similar",
                key,
                result.passed,
                score=score,
                threshold=limit,
                metric=name,
                facts=list(result.facts),
                detail=result.facts[0] if result.facts else "",
            )
        )
        shown = f"\n  expected: {_clip(other)}\n  actual:   {_clip(text)}"
        if score < limit:
            raise EquivalenceError(
                f"{self.nodeid}: {key!r} on {self.provider} is not similar enough to the {against}: "
                f"{name} {score:.3f} < threshold {limit:.2f}{shown}"
            )
        if result.facts:
            raise EquivalenceError(
                f"{self.nodeid}: {key!r} on {self.provider} states other facts than the {against}: "
                f"{'; '.join(result.facts)} ({name} {score:.3f} >= threshold {limit:.2f}; if such "
                f"differences are expected here, pass facts=False){shown}"
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
