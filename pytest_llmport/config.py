"""Every option, ini key, ``[tool.llmport]`` entry and marker argument, resolved once.

Precedence, written down once:
- facts about a test (which providers it supports): marker > command line > ini > default;
- run modes (record mode, network blocking): command line > ini > default.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .errors import ConfigError

RECORD_MODES = ("none", "once", "new_episodes", "all")
DEFAULT_PROVIDERS = ("openai",)
MARKER = "llm_portable"
MARKER_KEYWORDS = ("providers", "baseline", "threshold", "metric", "requires", "facts", "models", "judge")
DEFAULT_BASELINE = "openai"
TOOL_KEYS = ("providers", "prices")
CASSETTE_INVENTORY = ("report", "prune")


def add_options(parser: pytest.Parser) -> None:
    """Register the command-line options and ini keys (one group, shown by ``pytest --help``)."""
    group = parser.getgroup("llmport", "LLM provider portability (pytest-llmport)")
    group.addoption(
        "--providers",
        dest="llmport_providers",
        default=None,
        metavar="NAMES",
        help="comma-separated providers to run llm_portable tests on, e.g. openai,zhipu,qwen "
        "(default: ini llmport_providers, else openai)",
    )
    group.addoption(
        "--llmport-record-mode",
        dest="llmport_record_mode",
        default=None,
        choices=RECORD_MODES,
        help="cassette record mode (default: ini llmport_record_mode, else 'none' when $CI is set, "
        "else 'once')",
    )
    group.addoption(
        "--llmport-record-on-failure",
        dest="llmport_record_on_failure",
        action="store_true",
        default=None,
        help="keep even a broken recording (a cut-short response the test did not expect, a request "
        "that got no recorded response); a failing test with whole exchanges is always kept",
    )
    group.addoption(
        "--llmport-no-export-env",
        dest="llmport_export_env",
        action="store_false",
        default=None,
        help="do not point OPENAI_BASE_URL / OPENAI_API_KEY at the provider during llm_portable tests",
    )
    group.addoption(
        "--llmport-allow-network",
        dest="llmport_block_network",
        action="store_false",
        default=None,
        help="do not block connections to non-loopback hosts while replaying",
    )
    group.addoption(
        "--llmport-baseline",
        dest="llmport_baseline",
        default=None,
        metavar="NAME",
        help="provider whose observations the others are compared with (default: ini llmport_baseline, "
        "else openai); a marker's baseline= wins",
    )
    group.addoption(
        "--llmport-report",
        dest="llmport_report",
        default=None,
        metavar="PATH",
        help="write every observation, score, threshold and diff as JSON to PATH",
    )
    group.addoption(
        "--llmport-scan",
        dest="llmport_scan",
        action="append",
        default=[],
        metavar="PATH",
        help="at the end of the run, fail if a file under PATH holds a key or a credential-shaped string "
        "(repeatable; as python -m pytest_llmport scan PATH)",
    )
    group.addoption(
        "--llmport-html",
        dest="llmport_html",
        default=None,
        metavar="PATH",
        help="write the migration report as one self-contained HTML file to PATH",
    )
    group.addoption(
        "--llmport-matrix",
        dest="llmport_matrix",
        default=None,
        metavar="ROWS|all",
        help="show the whole matrix up to ROWS rows, beyond that only rows with a difference "
        "(default: ini llmport_matrix_rows, else 50); 'all' shows every row",
    )
    group.addoption(
        "--llmport-cassettes",
        dest="llmport_cassettes",
        default=None,
        choices=CASSETTE_INVENTORY,
        help="list orphaned, missing and outdated cassettes ('report'), or also delete the orphans ('prune')",
    )
    parser.addini("llmport_matrix_rows", "rows the terminal matrix shows in full (or 'all')", default="")
    parser.addini(
        "llmport_cassette_max_age",
        "days after which the cassette inventory calls a cassette old (default 180)",
        default="",
    )
    group.addoption(
        "--llmport-strict-model",
        dest="llmport_strict_model",
        action="store_true",
        default=None,
        help="fail a test whose requests name a model other than llm_provider.model (or the marker's "
        "models=[...]); default: a finding only",
    )
    group.addoption(
        "--llmport-write-observations",
        dest="llmport_write_observations",
        action="store_true",
        default=None,
        help="write the baseline's <provider>.observations.json files on replay too (default: only when "
        "the baseline test is recorded)",
    )
    group.addoption(
        "--llmport-judge",
        dest="llmport_judge",
        default=None,
        metavar="PROVIDER[:MODEL]",
        help="provider (and model) that llm_equiv.judge() asks, e.g. openai:gpt-4o-mini (default: ini "
        "llmport_judge); a marker's judge= wins",
    )
    parser.addini("llmport_judge", "judge provider[:model] for llm_equiv.judge()", default="")
    parser.addini("llmport_providers", "default providers (comma or space separated)", default="")
    parser.addini(
        "llmport_strict_model",
        "fail tests that send another model than llm_provider.model",
        type="bool",
        default=False,
    )
    parser.addini(
        "llmport_write_observations", "write baseline observations on replay too", type="bool", default=False
    )
    parser.addini("llmport_baseline", "default baseline provider", default="")
    parser.addini(
        "llmport_max_examples", "most examples a property-based llm_portable test generates", default="10"
    )
    parser.addini("llmport_threshold", "default similarity threshold in [0, 1]", default="")
    parser.addini("llmport_metric", "default similarity metric", default="")
    parser.addini(
        "llmport_check_facts",
        "similar() also fails when the texts state different numbers or negations",
        type="bool",
        default=True,
    )
    parser.addini(
        "llmport_embedding_provider",
        "provider whose embeddings endpoint the embedding metric uses",
        default="",
    )
    parser.addini("llmport_embedding_model", "embedding model for the embedding metric", default="")
    parser.addini("llmport_record_mode", "default record mode: " + ", ".join(RECORD_MODES), default="")
    parser.addini(
        "llmport_record_on_failure", "keep broken recordings too (see --help)", type="bool", default=False
    )
    parser.addini("llmport_export_env", "export OPENAI_BASE_URL etc. during tests", type="bool", default=True)
    parser.addini(
        "llmport_block_network", "block non-loopback connections in replay", type="bool", default=True
    )
    parser.addini(
        "llmport_cassette_dir", "cassette folder, relative to each test file's folder", default="cassettes"
    )
    parser.addini(
        "llmport_secret_env",
        "extra environment variables whose values are scrubbed from cassettes",
        type="linelist",
        default=[],
    )


@dataclass(frozen=True)
class Settings:
    """The run's settings; built once in ``pytest_configure`` and kept in ``config.stash``."""

    providers: tuple[str, ...]
    record_mode: str
    record_on_failure: bool
    export_env: bool
    block_network: bool
    cassette_dir: str
    secret_env: tuple[str, ...]
    baseline: str = DEFAULT_BASELINE
    threshold: float | None = None
    metric: str | None = None
    embedding_provider: str | None = None
    embedding_model: str | None = None
    report_path: str | None = None
    max_examples: int = 10
    scan_paths: tuple[str, ...] = ()
    html_path: str | None = None
    matrix_rows: int | None = 50
    cassette_inventory: str | None = None
    cassette_max_age: int = 180
    check_facts: bool = True
    strict_model: bool = False
    write_observations: bool = False
    judge: str | None = None  # "<provider>[:model]" that llm_equiv.judge() asks


@dataclass(frozen=True)
class MarkerOptions:
    """What ``@pytest.mark.llm_portable(...)`` says about one test."""

    providers: tuple[str, ...] | None = None
    baseline: str | None = None
    threshold: float | None = None
    metric: str | None = None
    requires: tuple[str, ...] = ()
    facts: bool | None = None
    models: tuple[str, ...] = ()
    judge: str | None = None


def read_tool_table(config: pytest.Config) -> dict[str, Any]:
    """Return ``[tool.llmport]`` from the project's pyproject.toml (empty when there is none)."""
    candidates = [config.inipath] if config.inipath and config.inipath.name == "pyproject.toml" else []
    candidates.append(config.rootpath / "pyproject.toml")
    for path in candidates:
        if path is not None and Path(path).is_file():
            return _load_tool_table(Path(path))
    return {}


def _load_tool_table(path: Path) -> dict[str, Any]:
    # Imported here: a project configured by pytest.ini alone never needs a TOML parser.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("llmport", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.llmport] must be a table")
    unknown = sorted(set(table) - set(TOOL_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: [tool.llmport] has unknown key(s) {', '.join(unknown)}; known: {', '.join(TOOL_KEYS)}"
        )
    providers = table.get("providers", {})
    if not isinstance(providers, dict):
        raise ConfigError(f"{path}: [tool.llmport.providers] must be a table of provider tables")
    return table


def parse_provider_list(text: str, known: Iterable[str], source: str) -> tuple[str, ...]:
    """Split ``openai,zhipu`` (commas or spaces), dropping duplicates; unknown names are a usage error."""
    names = tuple(dict.fromkeys(part for part in text.replace(",", " ").split() if part))
    if not names:
        raise ConfigError(
            f"{source} is empty; give a comma-separated list, e.g. {source.split('=')[0]}=openai,zhipu. "
            f"Known providers: {', '.join(sorted(known))}"
        )
    check_known(names, known, source)
    return names


def check_known(names: Iterable[str], known: Iterable[str], source: str) -> None:
    known_set = set(known)
    unknown = [name for name in names if name not in known_set]
    if unknown:
        raise ConfigError(
            f"{source}: unknown provider(s) {', '.join(unknown)}. "
            f"Known providers: {', '.join(sorted(known_set))}. "
            f"Add your own in [tool.llmport.providers.<name>] or with the pytest_llmport_add_providers hook."
        )


def default_record_mode(environ: Mapping[str, str]) -> str:
    # CI systems set CI=true; there a missing cassette must fail rather than try the network.
    ci = environ.get("CI", "").strip().lower()
    return "none" if ci and ci not in ("0", "false", "no") else "once"


def replays_from_start(config: pytest.Config) -> bool:
    """Before ``pytest_configure``: does this run only replay, with the network guard on?"""
    namespace = config.known_args_namespace
    try:
        block = getattr(namespace, "llmport_block_network", None)
        if block is None:
            block = bool(config.getini("llmport_block_network"))
        mode = getattr(namespace, "llmport_record_mode", None) or str(config.getini("llmport_record_mode"))
    except (ValueError, pytest.UsageError):
        return False  # resolve() reports the bad value at configure
    return bool(block) and (mode.strip() or default_record_mode(os.environ)) == "none"


def resolve(config: pytest.Config, known: Iterable[str]) -> Settings:
    """Resolve the command line and ini keys into :class:`Settings`, validating as it goes."""
    known = tuple(known)
    cli_providers = config.getoption("llmport_providers")
    ini_providers = str(config.getini("llmport_providers")).strip()
    if cli_providers is not None:
        providers = parse_provider_list(cli_providers, known, f"--providers={cli_providers}")
    elif ini_providers:
        providers = parse_provider_list(ini_providers, known, f"ini llmport_providers={ini_providers!r}")
    else:
        providers = DEFAULT_PROVIDERS
    mode = config.getoption("llmport_record_mode") or str(config.getini("llmport_record_mode")).strip()
    if not mode:
        mode = default_record_mode(os.environ)
    if mode not in RECORD_MODES:
        raise ConfigError(f"ini llmport_record_mode={mode!r} is not one of {', '.join(RECORD_MODES)}")

    def flag(option: str, ini: str) -> bool:
        value = config.getoption(option)
        if value is not None:
            return bool(value)
        try:
            return bool(config.getini(ini))
        except (ValueError, pytest.UsageError) as exc:  # pytest's message names the value, not the key
            raise ConfigError(f"ini {ini}: {exc}, not a boolean: use true or false") from None

    baseline = config.getoption("llmport_baseline") or str(config.getini("llmport_baseline")).strip()
    if baseline:
        check_known([baseline], known, f"baseline {baseline!r}")
    threshold_text = str(config.getini("llmport_threshold")).strip()
    threshold = None
    if threshold_text:
        try:
            threshold = float(threshold_text)
        except ValueError:
            threshold = -1.0
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"ini llmport_threshold={threshold_text!r} must be a number between 0 and 1")
    examples_text = str(config.getini("llmport_max_examples")).strip() or "10"
    if not examples_text.isdigit() or int(examples_text) < 1:
        raise ConfigError(f"ini llmport_max_examples={examples_text!r} must be a whole number >= 1")
    embedding_provider = str(config.getini("llmport_embedding_provider")).strip() or None
    if embedding_provider:
        check_known([embedding_provider], known, f"ini llmport_embedding_provider={embedding_provider!r}")
    return Settings(
        providers=providers,
        record_mode=mode,
        record_on_failure=flag("llmport_record_on_failure", "llmport_record_on_failure"),
        export_env=flag("llmport_export_env", "llmport_export_env"),
        block_network=flag("llmport_block_network", "llmport_block_network"),
        cassette_dir=str(config.getini("llmport_cassette_dir")) or "cassettes",
        secret_env=tuple(str(name) for name in config.getini("llmport_secret_env")),
        baseline=baseline or DEFAULT_BASELINE,
        threshold=threshold,
        metric=str(config.getini("llmport_metric")).strip() or None,
        embedding_provider=embedding_provider,
        embedding_model=str(config.getini("llmport_embedding_model")).strip() or None,
        report_path=config.getoption("llmport_report"),
        max_examples=int(examples_text),
        scan_paths=tuple(config.getoption("llmport_scan") or ()),
        html_path=config.getoption("llmport_html"),
        matrix_rows=_matrix_rows(config),
        cassette_inventory=config.getoption("llmport_cassettes"),
        cassette_max_age=_whole_number(
            str(config.getini("llmport_cassette_max_age")).strip() or "180", "ini llmport_cassette_max_age"
        ),
        check_facts=bool(config.getini("llmport_check_facts")),
        strict_model=flag("llmport_strict_model", "llmport_strict_model"),
        write_observations=flag("llmport_write_observations", "llmport_write_observations"),
        judge=_judge(config, known),
    )


def check_judge(text: str, known: Iterable[str], source: str) -> str:
    """``<provider>[:model]`` with a known provider, else a usage error that shows the form."""
    from .judge import split_judge

    name, model = split_judge(text)
    if not name:
        raise ConfigError(f"{source}: give <provider>[:model], e.g. openai:gpt-4o-mini")
    check_known([name], known, source)
    return f"{name}:{model}" if model else name


def _judge(config: pytest.Config, known: Iterable[str]) -> str | None:
    option = config.getoption("llmport_judge")
    text, source = (
        (option, f"--llmport-judge={option}")
        if option is not None
        else (str(config.getini("llmport_judge")).strip(), "")
    )
    source = source or f"ini llmport_judge={text!r}"
    return check_judge(text, known, source) if text else None


def _whole_number(text: str, source: str) -> int:
    if not text.isdigit():
        raise ConfigError(f"{source}={text!r} must be a whole number >= 0")
    return int(text)


def _matrix_rows(config: pytest.Config) -> int | None:
    option = config.getoption("llmport_matrix")
    text, source = (
        (option, f"--llmport-matrix={option}")
        if option is not None
        else (str(config.getini("llmport_matrix_rows")).strip(), "ini llmport_matrix_rows")
    )
    if not text:
        return 50
    if text == "all":
        return None
    if not text.isdigit():
        raise ConfigError(f"{source}: give a number of rows or 'all', e.g. --llmport-matrix=all")
    return int(text)


def _is_name_list(value: object) -> bool:
    # A bare string is iterable too, and providers="zhipu" is the mistake this catches.
    return isinstance(value, (list, tuple)) and all(isinstance(name, str) for name in value)


def marker_options(
    marker: pytest.Mark, known: Sequence[str], where: str, metrics: Iterable[str] | None = None
) -> MarkerOptions:
    """Validate ``@pytest.mark.llm_portable(...)`` arguments once, at collection."""
    usage = f"{where}: @pytest.mark.{MARKER}"
    if marker.args:
        raise ConfigError(
            f"{usage} takes keyword arguments only ({', '.join(MARKER_KEYWORDS)}), got {marker.args!r}"
        )
    unknown = sorted(set(marker.kwargs) - set(MARKER_KEYWORDS))
    if unknown:
        raise ConfigError(
            f"{usage} got unknown keyword(s) {', '.join(unknown)}; accepted: {', '.join(MARKER_KEYWORDS)}"
        )
    baseline = marker.kwargs.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, str):
            raise ConfigError(f"{usage}(baseline={baseline!r}): baseline must be a provider name")
        check_known([baseline], known, f"{usage}(baseline=...)")
    threshold = marker.kwargs.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1
    ):
        raise ConfigError(f"{usage}(threshold={threshold!r}): threshold must be a number between 0 and 1")
    metric = marker.kwargs.get("metric")
    # Listed only for a marker that names a metric: listing them imports the built-in ones (rapidfuzz).
    known_metrics = sorted(metrics) if metrics is not None and metric is not None else None
    if metric is not None and (
        not isinstance(metric, str) or (known_metrics and metric not in known_metrics)
    ):
        raise ConfigError(
            f"{usage}(metric={metric!r}): unknown similarity metric; known: {', '.join(known_metrics or [])}"
        )
    facts = marker.kwargs.get("facts")
    if facts is not None and not isinstance(facts, bool):
        raise ConfigError(f"{usage}(facts={facts!r}): facts must be True or False")
    requires = marker.kwargs.get("requires", ())
    if not _is_name_list(requires):
        raise ConfigError(
            f"{usage}(requires={requires!r}): requires must be a list of capabilities, "
            f'e.g. requires=["tools"]'
        )
    from .providers import CAPABILITIES

    unknown_caps = [name for name in requires if name not in CAPABILITIES]
    if unknown_caps:
        raise ConfigError(
            f"{usage}(requires=...): unknown capabilities {', '.join(unknown_caps)}; "
            f"known: {', '.join(CAPABILITIES)}"
        )
    models = marker.kwargs.get("models", ())
    if not _is_name_list(models) or not all(models):
        raise ConfigError(
            f"{usage}(models={models!r}): models must be a list of the model names the test sends on "
            f'purpose besides llm_provider.model, e.g. models=["glm-4-flash", "glm-4-plus"]'
        )
    judge = marker.kwargs.get("judge")
    if judge is not None:
        if not isinstance(judge, str):
            raise ConfigError(f'{usage}(judge={judge!r}): judge must be "<provider>[:model]"')
        judge = check_judge(judge, known, f"{usage}(judge={judge!r})")
    extra: dict[str, Any] = {
        "judge": judge,
        "requires": tuple(requires),
        "models": tuple(models),
        "baseline": baseline,
        "threshold": None if threshold is None else float(threshold),
        "metric": metric,
        "facts": facts,
    }
    providers = marker.kwargs.get("providers")
    if providers is None:
        return MarkerOptions(**extra)
    if not _is_name_list(providers):
        raise ConfigError(
            f"{usage}(providers={providers!r}): providers must be a list of provider names, "
            f'e.g. providers=["zhipu", "qwen"]'
        )
    check_known(providers, known, f"{usage}(providers=...)")
    return MarkerOptions(providers=tuple(providers), **extra)
