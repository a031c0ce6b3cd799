"""Every option, ini key, ``[tool.llmport]`` entry and marker argument, resolved once.

The run's settings (:class:`Settings`) are resolved in ``pytest_configure``; each ``llm_portable`` test's
(:class:`ItemSettings`) at collection, kept in ``item.stash`` and read through :func:`settings_of`.
Nothing else in the package reads the marker, an ini key or an option.

Precedence, written down once:
- facts about a test (the providers it supports, skip reasons, baseline, threshold, metric, facts check,
  the models it sends on purpose): marker > command line > ini > default;
- run modes (record mode, network blocking, strict model): command line > marker > ini > default. The
  marker has no run-mode argument today: one that lowered the record mode would let a CI run (record
  mode ``none`` by default) record.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError

if TYPE_CHECKING:
    from .providers import Provider
    from .testsettings import ItemSettings as ItemSettings
    from .testsettings import MarkerOptions as MarkerOptions
    from .testsettings import PortableTest as PortableTest
    from .testsettings import RecordingOptions as RecordingOptions

# Defined in testsettings.py, which only a run with a marked test imports (building these dataclasses is
# most of what importing config.py cost: bench/startup.py); still importable from here, as documented.
_TEST_SETTINGS = ("ItemSettings", "MarkerOptions", "PortableTest", "RecordingOptions")


def __getattr__(name: str) -> Any:
    if name in _TEST_SETTINGS:
        from . import testsettings

        return getattr(testsettings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


RECORD_MODES = ("none", "once", "new_episodes", "all")
DEFAULT_PROVIDERS = ("openai",)
MARKER = "llm_portable"
MARKER_KEYWORDS = (
    "providers",
    "baseline",
    "threshold",
    "metric",
    "requires",
    "facts",
    "models",
    "samples",
    "pass_rate",
    "judge",
)
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
    group.addoption(
        "--llmport-samples",
        dest="llmport_samples",
        default=None,
        metavar="N",
        help="record and replay N answers per test and provider (default: ini llmport_samples, else 1); "
        "a marker's samples= wins",
    )
    group.addoption(
        "--llmport-pass-rate",
        dest="llmport_pass_rate",
        default=None,
        metavar="RATE",
        help="with samples, the share of equivalent samples a cell needs at 95%% confidence, 0.5 to 1 "
        "(default: ini llmport_pass_rate, else 1: every sample); a marker's pass_rate= wins",
    )
    parser.addini("llmport_samples", "answers recorded per test and provider (default 1)", default="")
    parser.addini("llmport_pass_rate", "share of equivalent samples a cell needs (default 1)", default="")
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
    threshold: float | str | None = None  # str: samples.CALIBRATED
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
    samples: int = 1
    pass_rate: float = 1.0
    xdist_controller: bool = False  # this process hands the tests to xdist workers (-n N, N > 0)
    escape_ids: bool = True  # pytest's own ini key that turns off the escaping of test ids
    collect_only: bool = False  # pytest's --collect-only: no test runs
    judge: str | None = None  # "<provider>[:model]" that llm_equiv.judge() asks


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


def is_cassette_folder(path: Path, cassette_dir: str) -> bool:
    """Whether ``path`` is a folder of cassettes (``<test dir>/<cassette_dir>``): nothing to collect there.

    Only a folder that holds nothing but folders and ``.yaml`` files, at any depth: a folder of that name
    with a Python file (or anything else) anywhere in it is collected as before, so no test is skipped.
    Listing the names is cheap beside what pytest does per folder and file while it looks for tests.
    """
    parts = Path(cassette_dir).parts
    if not parts or ".." in parts or Path(cassette_dir).is_absolute() or path.parts[-len(parts) :] != parts:
        return False
    if not path.is_dir():
        return False
    failed: list[OSError] = []
    for _, _, files in os.walk(path, onerror=failed.append):
        if any(not name.endswith(".yaml") for name in files):
            return False
    return not failed  # an unreadable folder: pytest decides, as before


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


def resolve(config: pytest.Config, known: Iterable[str], metrics: Iterable[str] | None = None) -> Settings:
    """Resolve the command line and ini keys into :class:`Settings`, validating as it goes.

    ``metrics``: the known similarity metrics (loaded only when ``llmport_metric`` names one).
    """
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
    threshold: float | str | None = None
    if threshold_text and threshold_text == _calibrated():
        threshold = _calibrated()
    elif threshold_text:
        try:
            number: object = float(threshold_text)
        except ValueError:
            number = threshold_text
        threshold = threshold_value(number, f"ini llmport_threshold={threshold_text!r}")
    examples_text = str(config.getini("llmport_max_examples")).strip() or "10"
    if not examples_text.isdigit() or int(examples_text) < 1:
        raise ConfigError(f"ini llmport_max_examples={examples_text!r} must be a whole number >= 1")
    metric = str(config.getini("llmport_metric")).strip() or None
    if metric and metrics is not None and metric not in metrics:
        raise ConfigError(
            f"ini llmport_metric={metric!r} is not a known metric; known: {', '.join(sorted(metrics))}"
        )
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
        metric=metric,
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
        xdist_controller=bool(getattr(config.option, "numprocesses", None))
        and not hasattr(config, "workerinput"),
        judge=_judge(config, known),
        escape_ids=not config.getini("disable_test_id_escaping_and_forfeit_all_rights_to_community_support"),
        collect_only=bool(config.getoption("collectonly", False)),
        **_sampling(config),
    )


def _calibrated() -> str:
    # Read where a threshold is given: a run without one (or without marked tests) never imports samples.py.
    from .samples import CALIBRATED

    return CALIBRATED


def threshold_value(value: object, source: str, alternative: str = "") -> float:
    """A similarity threshold from the marker, an ini key or a call: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(
            f"{source} must be a number between 0 and 1" + (f", or {alternative}" if alternative else "")
        )
    return float(value)


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


def _sampling(config: pytest.Config) -> dict[str, Any]:
    """``samples`` and ``pass_rate`` from the command line, else the ini keys, else 1 and 1."""
    given: dict[str, tuple[object, str]] = {}
    for name in ("samples", "pass_rate"):
        option = config.getoption(f"llmport_{name}")
        dashed = name.replace("_", "-")
        if option is not None:
            given[name] = (option, f"--llmport-{dashed}={option}")
            continue
        text = str(config.getini(f"llmport_{name}")).strip()
        if text:
            given[name] = (text, f"ini llmport_{name}={text!r}")
    if not given:
        return {}  # samples.py is imported where sampling is asked for
    from .samples import check_pass_rate, check_samples

    checks = {"samples": check_samples, "pass_rate": check_pass_rate}
    return {name: checks[name](value, source) for name, (value, source) in given.items()}


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


def _marker_sampling(marker: pytest.Mark, usage: str) -> dict[str, Any]:
    from .samples import check_pass_rate, check_samples

    # In Python code a string is a mistake (samples="5"), so only the ini and command line parse text.
    checks = {"samples": check_samples, "pass_rate": check_pass_rate}
    return {
        name: check(marker.kwargs[name], usage, text=False)
        for name, check in checks.items()
        if name in marker.kwargs
    }


def marker_options(
    marker: pytest.Mark, known: Sequence[str], where: str, metrics: Iterable[str] | None = None
) -> MarkerOptions:
    """Validate ``@pytest.mark.llm_portable(...)`` arguments once, at collection."""
    from .testsettings import MarkerOptions

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
    if threshold is not None and threshold != _calibrated():
        threshold = threshold_value(
            threshold,
            f"{usage}(threshold={threshold!r}): threshold",
            alternative=f"{_calibrated()!r} (calibrated on the baseline's samples)",
        )
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
        "threshold": threshold,
        "metric": metric,
        "facts": facts,
        **_marker_sampling(marker, usage),
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


ITEM_SETTINGS: pytest.StashKey[ItemSettings] = pytest.StashKey()
# The parameter each marked test is parametrised over (the provider's name).
PARAM = "llm_provider_name"


def provider_of(item: pytest.Item) -> str | None:
    """The provider an ``llm_portable`` item runs on, or None for any other item."""
    # Only marked tests are parametrised over PARAM (pytest_generate_tests), so the parameter alone says
    # it; this runs several times per test, and a marker lookup walks the node chain.
    callspec = getattr(item, "callspec", None)
    name = callspec.params.get(PARAM) if callspec is not None else None
    return name if isinstance(name, str) else None


def function_key(node: pytest.Item) -> str:
    """The same for a test function's definition (``pytest_generate_tests``) and each of its items."""
    parent = node.parent.nodeid if node.parent is not None else ""
    return f"{parent}::{getattr(node, 'originalname', node.name)}"


def portable_test(
    node: pytest.Item,
    settings: Settings,
    registry: Mapping[str, Provider],
    metrics: Iterable[str] | None = None,
) -> PortableTest | None:
    """Read ``node``'s ``llm_portable`` marker once (None without one) and pick its providers."""
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return None
    return plan_providers(
        marker_options(marker, list(registry), node.nodeid, metrics), settings, registry, node.nodeid
    )


def plan_providers(
    options: MarkerOptions, settings: Settings, registry: Mapping[str, Provider], nodeid: str = ""
) -> PortableTest:
    from .samples import unreachable
    from .testsettings import PortableTest

    names = tuple(n for n in settings.providers if options.providers is None or n in options.providers)
    lacking = {}
    for name in names:
        missing = [cap for cap in options.requires if cap not in registry[name].capabilities]
        if missing:
            lacking[name] = f"{name} lacks {', '.join(missing)} (requires={list(options.requires)})"
    no_provider = (
        ""
        if names
        else f"providers={list(options.providers or ())} selects none of {', '.join(settings.providers)}"
    )
    count = options.samples or settings.samples
    rate = options.pass_rate or settings.pass_rate
    problem = unreachable(count, rate, nodeid) if count > 1 else None
    if problem:
        raise ConfigError(problem)
    return PortableTest(options, names, lacking, no_provider, count, rate)


def item_settings(item: pytest.Item, test: PortableTest, provider: str, settings: Settings) -> ItemSettings:
    """Resolve one item's settings, once every plugin's ``pytest_collection_modifyitems`` added its marks."""
    from .coexist import OTHER_RECORDER_MARKS, conflict
    from .metrics import DEFAULT_METRIC
    from .testsettings import ItemSettings

    options = test.options
    models = options.models
    if settings.embedding_provider and settings.embedding_model:
        models += (settings.embedding_model,)  # the embedding metric's requests land in the test's cassette
    # One walk up the node chain for every mark asked about (get_closest_marker walks it once per name).
    carried = {mark.name for mark in item.iter_markers()}
    marks = [name for name in OTHER_RECORDER_MARKS if name in carried]
    return ItemSettings(
        provider=provider,
        providers=test.providers,
        skipped="skip" in carried,
        skip_reason=test.lacking.get(provider, ""),
        requires=options.requires,
        baseline=options.baseline or settings.baseline,
        threshold=options.threshold if options.threshold is not None else settings.threshold,
        metric=options.metric or settings.metric or DEFAULT_METRIC,
        facts=settings.check_facts if options.facts is None else options.facts,
        record_mode=settings.record_mode,
        strict_model=settings.strict_model,
        models=models,
        conflict=conflict(item.nodeid, provider, getattr(item, "fixturenames", ()), marks),
        judge=options.judge or settings.judge,
    )


def resolve_item(
    item: pytest.Item,
    provider: str,
    tests: Mapping[str, PortableTest],
    settings: Settings,
    registry: Mapping[str, Provider],
    metrics: Iterable[str] | None = None,
) -> ItemSettings:
    """One item's settings, from its function's :class:`PortableTest` (parsed by pytest_generate_tests)."""
    test = tests.get(function_key(item))
    if test is None:  # parametrised over llm_provider_name by hand, or added after collection
        from .testsettings import MarkerOptions

        test = portable_test(item, settings, registry, metrics) or plan_providers(
            MarkerOptions(), settings, registry
        )
    return item_settings(item, test, provider, settings)


def settings_of(item: pytest.Item) -> ItemSettings:
    """The settings of an ``llm_portable`` item, resolved at collection (KeyError for any other item)."""
    return item.stash[ITEM_SETTINGS]
