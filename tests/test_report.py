"""The per-provider verdict, the matrix at any size, prices and costs, JUnit properties, the JSON schema."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_llmport.errors import ConfigError
from pytest_llmport.observe import request_features
from pytest_llmport.prices import Price, PriceTable, builtin_table, load
from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.report import SHORT, Matrix, compact, group_discarded, schema_errors
from pytest_llmport.testing import FakeProvider

from .conftest import RunModes
from .report_suite import SUITE

PROVIDERS = "--providers=openai,zhipu,qwen"


def run_suite(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_app=SUITE)
    pytester.runpytest("-q", "--providers=openai").assert_outcomes(passed=5)  # the baseline's observations
    return pytester.runpytest(PROVIDERS, *args)


def test_every_run_ends_with_a_verdict_per_provider(
    pytester: pytest.Pytester, llm_env: object, xdist_args: list[str]
) -> None:
    result = run_suite(pytester, "-q", "--llmport-report=report.json", "--junitxml=junit.xml", *xdist_args)
    result.assert_outcomes(passed=13, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*= llmport: verdict per provider (baseline openai) =*",
            "openai (baseline): 5/5 passed",
            "  changes:  none",
            "  latency:  first token p50 * ms, p95 * ms; total p50 * ms, p95 * ms (5 exchanges)",
            "  tokens:   * in (0 cached), * out",
            "  cost:     $0.0000* / ¥0.000*",
            "  features: json_mode (1), seed (3)",
            "zhipu vs openai: 4/5 equivalent",
            "  changes:  the app's own failures 1",
            "  cost:     $0.000000 / ¥0.000000",
            "qwen vs openai: 4/5 equivalent",
            "  changes:  equivalence findings 1",
            "*token counts differ between tokenizers*",
            "*= llmport: portability matrix =*",
        ]
    )
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    assert report["format"] == "pytest-llmport-report" and report["version"] == 2
    assert report["tests"]["test_app.py::test_parse"]["zhipu"]["kind"] == "app-failure"
    assert report["tests"]["test_app.py::test_reply"]["qwen"]["kind"] == "equivalence"
    exchange = report["tests"]["test_app.py::test_parse"]["openai"]["exchanges"][0]
    assert exchange["request_model"] == "gpt-4o-mini" and exchange["features"] == ["json_mode"]
    assert exchange["cost"]["model"] == "gpt-4o-mini" and exchange["cost"]["usd"] > 0
    assert report["capabilities"]["zhipu"] == sorted(
        next(p for p in BUILTIN_PROVIDERS if p.name == "zhipu").capabilities
    )
    check_junit_properties(pytester.path / "junit.xml")


def test_features_the_tests_rely_on_beside_declared_capabilities(
    pytester: pytest.Pytester, llm_env: object, run_modes: RunModes
) -> None:
    pytester.makepyfile(
        test_schema="""
import pytest

SCHEMA = {"name": "t", "schema": {"type": "object", "properties": {"c": {"type": "string"}}}}

@pytest.mark.llm_portable
def test_structured(llm_provider):
    llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "JSON please"}],
        response_format={"type": "json_schema", "json_schema": SCHEMA},
    )

@pytest.mark.llm_portable(requires=["json_schema"])
def test_needs_schema(llm_provider):
    test_structured(llm_provider)
"""
    )
    result = run_modes("--providers=openai,deepseek", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "  features: json_schema (2)",
            "deepseek vs openai: 1/1 equivalent, 1 skipped",
            "  features: json_schema (1); NOT declared by deepseek: json_schema",
            "*deepseek lacks json_schema (requires=[[]'json_schema'[]])",
        ]
    )


@pytest.mark.parametrize(
    ("body", "path", "expected"),
    [
        ({"response_format": {"type": "json_object"}}, "/v1/chat/completions", ["json_mode"]),
        (
            {"response_format": {"type": "json_schema"}, "seed": 1},
            "/v1/chat/completions",
            ["json_schema", "seed"],
        ),
        (
            {
                "stream": True,
                "stream_options": {"include_usage": True},
                "tools": [{}],
                "parallel_tool_calls": True,
            },
            "/v1/chat/completions",
            ["parallel_tool_calls", "stream_options", "streaming", "tools"],
        ),
        (
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": [{"type": "image_url"}]},
                ]
            },
            "/v1/chat/completions",
            ["system_role", "vision"],
        ),
        (
            {"contents": [{"parts": [{"inline_data": {}}]}], "generationConfig": {"responseSchema": {}}},
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            ["json_schema", "streaming", "vision"],
        ),
        ({"system": "be brief", "messages": []}, "/v1/messages", ["system_role"]),
    ],
)
def test_request_features_use_capability_names(
    body: dict[str, object], path: str, expected: list[str]
) -> None:
    from pytest_llmport.providers import CAPABILITIES

    assert request_features(body, path) == expected
    assert set(expected) <= set(CAPABILITIES)


def test_several_tool_calls_in_an_answer_rely_on_parallel_tool_calls() -> None:
    assert request_features({"tools": [{}]}, "/v1/chat/completions", tool_calls=2) == [
        "parallel_tool_calls",
        "tools",
    ]


ROWS = """
import pytest

@pytest.mark.llm_portable
@pytest.mark.parametrize("n", range(52))
def test_many(llm_provider, n):
    assert n != 7 or llm_provider.name != "zhipu"
"""


def test_a_big_matrix_shows_only_rows_with_a_difference(
    pytester: pytest.Pytester, llm_env: object, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_rows=ROWS)
    result = run_modes("--providers=openai,zhipu", "-q")  # rows in order, whatever order workers send them
    result.assert_outcomes(passed=103, failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_rows.py::test_many[[]7[]]  ok      app:AssertionError",
            "... and 51 more rows where every provider passed with no finding (--llmport-matrix=all shows them)",
        ]
    )
    assert "test_many[8]" not in result.stdout.str()
    if run_modes.xdist:
        return  # the rest reads options, which xdist does not change
    result = pytester.runpytest("--providers=openai,zhipu", "-q", "--llmport-matrix=all")
    assert "test_rows.py::test_many[51]" in result.stdout.str() and "more rows" not in result.stdout.str()
    pytester.makeini("[pytest]\nllmport_matrix_rows = 100\n")
    assert "test_rows.py::test_many[51]" in pytester.runpytest("--providers=openai,zhipu", "-q").stdout.str()
    result = pytester.runpytest("--llmport-matrix=many")
    result.stderr.fnmatch_lines(["*--llmport-matrix=many: give a number of rows or 'all'*"])


def test_cassettes_not_saved_are_grouped_by_reason_in_full() -> None:
    def entry(test: str, reason: str) -> dict[str, str]:
        return {
            "nodeid": test,
            "path": f"cassettes/{test}.yaml",
            "reason": reason,
            "hint": "To record it: ...",
        }

    cut = "the test failed after exchange #1 POST http://h/v1/chat/completions was cut short (HTTP 200): x"
    lines = group_discarded(
        [
            entry("t.py::a[zhipu]", cut),
            entry("t.py::b[qwen]", "the run was interrupted during the test"),
            entry("t.py::c[zhipu]", cut.replace("#1", "#2")),
        ]
    )
    keeps = "(--llmport-record-on-failure keeps a broken recording):"
    assert lines == [
        f"2 x a response was cut short and the test failed {keeps}",
        f"  t.py::a[zhipu]: cassettes/t.py::a[zhipu].yaml: {cut}",
        "    To record it: ...",
        f"  t.py::c[zhipu]: cassettes/t.py::c[zhipu].yaml: {cut.replace('#1', '#2')}",
        "    To record it: ...",
        f"1 x the run was interrupted during the test {keeps}",
        "  t.py::b[qwen]: cassettes/t.py::b[qwen].yaml: the run was interrupted during the test",
        "    To record it: ...",
    ]


# -- prices ------------------------------------------------------------------------------------------------


def test_every_builtin_price_names_its_source_and_check_date() -> None:
    table = builtin_table()
    names = {p.name for p in BUILTIN_PROVIDERS}
    assert set(table) <= names
    for provider, models in table.items():
        for model, price in models.items():
            assert price.source.startswith("https://"), (provider, model)
            assert len(price.checked) == 10, (provider, model)
    defaults = {p.name: p.model for p in BUILTIN_PROVIDERS}
    for provider in ("openai", "zhipu", "qwen", "deepseek", "moonshot", "anthropic", "gemini"):
        assert defaults[provider] in table[provider], provider


def test_cost_uses_cached_price_and_both_currencies() -> None:
    table = PriceTable({"p": {"m": Price(input=2.0, output=8.0, cached_input=0.5, currency="CNY")}}, 8.0)
    cost = table.cost(
        "p", {"response_model": "m", "usage": {"prompt": 1_000_000, "cached": 400_000, "completion": 500_000}}
    )
    # 600k x 2 + 400k x 0.5 + 500k x 8 = 1.2 + 0.2 + 4.0 = 5.4 CNY
    assert cost == {"model": "m", "cny": pytest.approx(5.4), "usd": pytest.approx(5.4 / 8.0)}


def test_a_dated_snapshot_bills_like_its_alias_and_an_unknown_model_is_unknown() -> None:
    table = load()
    usage = {"prompt": 1000, "completion": 1000}
    dated = table.cost(
        "openai", {"response_model": "gpt-4o-mini-2024-07-18", "request_model": "x", "usage": usage}
    )
    assert dated["model"] == "gpt-4o-mini"
    unknown = table.cost("openai", {"response_model": "gpt-9-preview", "usage": usage})
    assert unknown == {"unknown": "no price for openai gpt-9-preview"}
    assert table.cost("yi", {"request_model": "yi-lightning", "usage": usage})["unknown"]
    assert table.cost("openai", {"response_model": "gpt-4o-mini"})["unknown"] == "no token usage recorded"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"zhipu": {"glm-4-flash": {"input": -1}}}, 'zhipu."glm-4-flash".input = -1 is negative'),
        ({"zhipu": {"glm-4-flash": {"output": "cheap"}}}, "output = 'cheap' is not a number"),
        (
            {"qwen": {"qwen-plus": {"currency": "EUR"}}},
            "currency = 'EUR' is not a known currency; use one of USD, CNY",
        ),
        (
            {"yi": {"yi-lightning": {"input": 1}}},
            'yi."yi-lightning" is a new price but lacks output, currency',
        ),
        ({"cny_per_usd": 0}, "cny_per_usd = 0 must be more than 0"),
        ({"qwen": {"qwen-plus": {"inputs": 1}}}, "unknown key(s) inputs"),
        ({"qwen": 3}, "[tool.llmport.prices].qwen must be a table of models"),
    ],
)
def test_bad_prices_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert message in str(info.value)


def test_prices_and_exchange_rate_from_pyproject(
    pytester: pytest.Pytester, llm_env: object, run_modes: RunModes
) -> None:
    pytester.makepyprojecttoml(
        """
[tool.llmport.prices]
cny_per_usd = 10.0

[tool.llmport.prices.zhipu."glm-4-flash"]
input = 1000000
output = 0
currency = "CNY"
"""
    )
    pytester.makepyfile(test_app=SUITE)
    result = run_modes("--providers=zhipu", "-k", "test_case", "--llmport-report=r.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*10.0 CNY per USD*"])
    report = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    cost = report["tests"]["test_app.py::test_case[a]"]["zhipu"]["exchanges"][0]["cost"]
    tokens = report["tests"]["test_app.py::test_case[a]"]["zhipu"]["exchanges"][0]["usage"]["prompt"]
    assert cost["cny"] == pytest.approx(tokens) and cost["usd"] == pytest.approx(tokens / 10)
    assert report["prices"]["models"]["zhipu"]["glm-4-flash"]["source"] == "pyproject.toml"
    pytester.makepyprojecttoml('[tool.llmport.prices.zhipu."glm-4-flash"]\ninput = -2\n')
    result = pytester.runpytest("--providers=zhipu")
    result.stderr.fnmatch_lines(['*[[]tool.llmport.prices[]].zhipu."glm-4-flash".input = -2 is negative*'])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


# -- report files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--llmport-report", "--llmport-html"])
def test_an_unwritable_report_path_is_refused_before_the_tests_run(
    pytester: pytest.Pytester, option: str
) -> None:
    (pytester.path / "afile").write_text("not a folder")
    pytester.mkdir("adir")
    result = pytester.runpytest(f"{option}=afile/report.out")
    result.stderr.fnmatch_lines(
        [f"*{option}=afile/report.out: cannot write the * there (* is not writable)*"]
    )
    result = pytester.runpytest(f"{option}=adir")
    result.stderr.fnmatch_lines([f"*{option}=adir: * is a folder; give a file path for the *"])
    assert not list(pytester.path.glob("**/*.tmp"))


def test_the_schema_rejects_what_it_must() -> None:
    good = {
        "format": "pytest-llmport-report",
        "version": 2,
        "plugin": "0.1.0",
        "providers": ["openai"],
        "baseline": "openai",
        "tests": {
            "t.py::a": {
                "openai": {
                    "outcome": "passed",
                    "kind": "passed",
                    "checks": [],
                    "observations": {},
                    "problems": [],
                    "longrepr": "",
                    "exchanges": [
                        {
                            "endpoint": "POST /x",
                            "finish_reason": "stop",
                            "usage": {},
                            "cost": {"usd": 0, "cny": 0},
                        }
                    ],
                }
            }
        },
    }
    assert schema_errors(good) == []
    bad = json.loads(json.dumps(good))
    cell = bad["tests"]["t.py::a"]["openai"]
    cell["kind"] = "fine"
    cell["exchanges"][0]["cost"] = {"usd": -1, "cny": 0}
    errors = schema_errors(bad)
    assert any("kind" in e for e in errors) and any("cost" in e for e in errors)


# -- JUnit -------------------------------------------------------------------------------------------------


def check_junit_properties(path: Path) -> None:
    """Each marked test's provider, kind, model and scores are flat string properties in JUnit XML."""
    tree = ET.parse(path)
    props: dict[str, dict[str, str]] = {}
    for case in tree.iter("testcase"):
        name = case.get("name", "")
        props[name] = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    assert props["test_parse[zhipu]"]["llmport.provider"] == "zhipu"
    assert props["test_parse[zhipu]"]["llmport.kind"] == "app-failure"
    assert props["test_parse[zhipu]"]["llmport.model"] == "glm-4-flash"
    assert props["test_reply[qwen]"]["llmport.kind"] == "equivalence"
    assert float(props["test_reply[qwen]"]["llmport.score.reply"]) < float(
        props["test_reply[qwen]"]["llmport.score.reply.threshold"]
    )
    assert props["test_case[openai-a]"]["llmport.kind"] == "passed"
    values = [v for case in props.values() for v in case.values()]
    assert values and not any(v.startswith("{") for v in values)  # no dict dumped as a string
    assert all(name.startswith("llmport.") for case in props.values() for name in case)


# What each process keeps once a report has been reported: pytest keeps every item and report to the end of
# the session, so the cell and the JUnit properties must not stay on them (bench/scale.py measures it).
KEPT_CONFTEST = """
import json
import os

import pytest

SEEN = []


def pytest_runtest_logreport(report):
    if report.when == "call":  # what any reporter reads while the report is reported
        SEEN.append(sorted(getattr(report, "llmport", {})))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    who = getattr(session.config, "workerinput", {}).get("workerid", "main")
    stats = session.config.pluginmanager.get_plugin("terminalreporter").stats
    reports = [r for kept in stats.values() for r in kept if hasattr(r, "when")]
    kept = {
        "seen": SEEN,
        "reports": len(reports),
        "with_cell": [r.nodeid for r in reports if hasattr(r, "llmport")],
        "properties": sorted({name for item in session.items for name, _ in item.user_properties}),
    }
    with open(os.path.join(str(session.config.rootpath), f"kept-{who}.json"), "w") as out:
        json.dump(kept, out)
"""

KEPT_SUITE = """
import pytest


@pytest.mark.llm_portable
@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_reply(llm_provider, case):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": case}]
    )
    assert reply.choices[0].message.content
"""


@pytest.mark.parametrize("junit", [False, True], ids=["no-junitxml", "junitxml"])
def test_reports_and_items_keep_no_cell_and_junit_properties_only_with_junitxml(
    pytester: pytest.Pytester, llm_env: object, run_modes: RunModes, junit: bool
) -> None:
    pytester.makeconftest(KEPT_CONFTEST)
    pytester.makepyfile(test_app=KEPT_SUITE)
    args = ["--providers=openai,zhipu", "--llmport-report=report.json"]
    result = run_modes(*args, *(["--junitxml=junit.xml"] if junit else []))
    result.assert_outcomes(passed=6)
    kept = {path.stem: json.loads(path.read_text()) for path in pytester.path.glob("kept-*.json")}
    assert sorted(kept) == (["kept-gw0", "kept-gw1", "kept-main"] if run_modes.xdist else ["kept-main"])
    # Every process held reports, and none of them still carries its cell once it was reported ...
    assert all(k["reports"] and k["with_cell"] == [] for k in kept.values()), kept
    # ... but every reporter saw the cell while the report was reported, on the controller too.
    seen = kept["kept-main"]["seen"]
    assert len(seen) == 6 and all({"provider", "kind", "exchanges", "model"} <= set(s) for s in seen), seen
    cells = json.loads((pytester.path / "report.json").read_text())["tests"]
    assert sorted(cells) == [f"test_app.py::test_reply[{c}]" for c in "abc"]
    assert all(row[p]["kind"] == "passed" and row[p]["exchanges"] for row in cells.values() for p in row)
    ran = [k for who, k in kept.items() if who != "kept-main" or not run_modes.xdist]  # items run here
    properties = {name for k in ran for name in k["properties"]}
    if junit:
        assert {"llmport.provider", "llmport.kind", "llmport.model"} <= properties
        (case, *_) = ET.parse(pytester.path / "junit.xml").iter("testcase")
        assert {p.get("name") for p in case.iter("property")} >= {"llmport.provider", "llmport.kind"}
    else:
        assert properties == set(), "JUnit properties on items of a run without --junitxml"


def test_report_paths_are_written_whole(
    pytester: pytest.Pytester, llm_env: object, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_app=SUITE)
    result = run_modes("--providers=openai", "--llmport-report=out/r.json", "--llmport-html=out/r.html")
    result.assert_outcomes(passed=5)
    files = sorted(p.name for p in (pytester.path / "out").iterdir())
    assert files == ["r.html", "r.json"]
    assert Path(pytester.path / "out" / "r.html").stat().st_mode & 0o044  # an ordinary, readable file


# -- cell kinds ----------------------------------------------------------------------------------------------


def test_a_fixture_error_has_the_same_kind_in_junit_as_in_the_report(
    pytester: pytest.Pytester, llm_env: object, xdist_args: list[str]
) -> None:
    # JUnit once re-derived the kind of a setup error on its own (and called it a recording problem).
    pytester.makepyfile(
        test_setup="""
import pytest

@pytest.fixture
def order():
    raise LookupError("no such order")

@pytest.mark.llm_portable
def test_lookup(llm_provider, order):
    pass
"""
    )
    result = pytester.runpytest(
        "--providers=openai", "--llmport-report=report.json", "--junitxml=junit.xml", *xdist_args
    )
    result.assert_outcomes(errors=1)
    cell = json.loads((pytester.path / "report.json").read_text())["tests"]
    (kind,) = [c["openai"]["kind"] for c in cell.values()]
    assert kind == "app-failure"
    (case,) = ET.parse(pytester.path / "junit.xml").iter("testcase")
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["llmport.kind"] == kind


CELLS = [
    ({"outcome": "skipped"}, "skipped"),
    ({"outcome": "passed", "problems": ["cut short"]}, "recording-problem"),
    ({"outcome": "error", "problems": ["no cassette"]}, "recording-problem"),
    ({"outcome": "passed"}, "passed"),
    ({"outcome": "failed", "longrepr": "MissingBaselineError: record the baseline"}, "no-baseline"),
    ({"outcome": "failed", "checks": [{"kind": "same", "passed": False}]}, "equivalence"),
    ({"outcome": "failed", "exchanges": [{"error": {"category": "rate_limit"}}]}, "provider-error"),
    ({"outcome": "failed", "exchanges": [{"content_filtered": True}]}, "provider-error"),
    ({"outcome": "error"}, "app-failure"),
    ({"outcome": "failed", "kind": "equivalence"}, "equivalence"),
]


@pytest.mark.parametrize(("cell", "kind"), CELLS)
def test_a_cell_without_a_kind_is_decided_in_the_live_order(cell: dict[str, object], kind: str) -> None:
    from pytest_llmport.outcome import kind_of_cell

    assert kind_of_cell(cell) == kind


def test_verdict_cell_kind_is_the_one_in_outcome() -> None:
    from pytest_llmport import verdict

    # By name, not identity: an earlier in-process test may have imported the package afresh.
    assert (verdict.cell_kind.__module__, verdict.cell_kind.__qualname__) == (
        "pytest_llmport.outcome",
        "kind_of_cell",
    )


KINDS_SUITE = """
import pytest


def ask(llm_provider, prompt, model=None):
    reply = llm_provider.openai_client().chat.completions.create(
        model=model or llm_provider.model, messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content


@pytest.mark.llm_portable
def test_wrapped(llm_provider, llm_equiv):
    llm_equiv.schema(ask(llm_provider, "JSON"), {"type": "object"}, lenient=True)


@pytest.mark.llm_portable
def test_limited(llm_provider):
    assert ask(llm_provider, "限流")


@pytest.mark.llm_portable
def test_filtered(llm_provider):
    assert ask(llm_provider, "审核")


@pytest.mark.llm_portable
def test_model(llm_provider):
    assert ask(llm_provider, "模型", model="glm-4-plus" if llm_provider.name == "zhipu" else None)


@pytest.mark.llm_portable
def test_new_key(llm_provider, llm_equiv):
    llm_equiv.similar("reply" if llm_equiv.is_baseline else "new", ask(llm_provider, "你好"))
"""


def test_the_verdict_groups_every_kind_of_change(pytester: pytest.Pytester, llm_env: FakeProvider) -> None:
    def reply(payload: dict[str, object]) -> object:
        prompt = str(payload["messages"][0]["content"])  # type: ignore[index]
        if payload["model"] == "gpt-4o-mini":  # the baseline answers everything plainly
            return '{"a": 1}' if prompt == "JSON" else "您好"
        return {
            "JSON": '```json\n{"a": 1}\n```',
            "限流": {"error": "rate_limit"},
            "审核": {"content_filter": True},
        }.get(prompt, "您好")

    llm_env.replies = reply
    pytester.makepyfile(test_app=KINDS_SUITE)
    pytester.runpytest("--providers=openai").assert_outcomes(passed=5)
    result = pytester.runpytest("--providers=openai,zhipu", "-q", "--llmport-report=report.json")
    result.assert_outcomes(passed=7, failed=3)
    # Failures by kind, then the findings that pass but matter when switching; the matrix below.
    result.stdout.fnmatch_lines(
        [
            "zhipu vs openai: 2/5 equivalent",
            "  changes:  provider errors and content filters 2, missing baselines 1",
            "  notes:    wrapped JSON 1, model mismatches 1, content filtered 1",
            # The free model costs 0; the model without a price is unknown, never counted as 0.
            "  cost:     $0.000000 / ¥0.000000 + unknown for 1 of * exchanges (no price for zhipu glm-4-plus: 1)",
            "*= llmport: portability matrix =*",
            "test_app.py::test_filtered  ok      content_filter",
            "test_app.py::test_limited   ok      rate_limit",
            "test_app.py::test_model     ok      ok wrong-model",
            "test_app.py::test_new_key   ok      no-baseline",
            "test_app.py::test_wrapped   ok      ok*",
        ]
    )
    cells = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))["tests"]
    kinds = {test.split("::")[1]: row["zhipu"]["kind"] for test, row in cells.items()}
    assert kinds == {
        "test_filtered": "provider-error",
        "test_limited": "provider-error",
        "test_model": "passed",
        "test_new_key": "no-baseline",
        "test_wrapped": "passed",
    }


def _as_sent(text: str) -> str:
    """A string equal to ``text`` but not the same object, as an xdist worker's report delivers it."""
    return "".join(list(text))


def _cell_data(provider: str, long_text: str) -> dict[str, object]:
    return {
        _as_sent("provider"): _as_sent(provider),
        _as_sent("kind"): _as_sent("passed"),
        _as_sent("checks"): [{_as_sent("kind"): _as_sent("similar"), _as_sent("score"): 0.9}],
        _as_sent("problems"): [_as_sent(long_text)],
        _as_sent("exchanges"): [{_as_sent("request_model"): _as_sent("gpt-4o-mini"), "usage": {"total": 15}}],
        _as_sent("model"): {_as_sent("sent"): [_as_sent("gpt-4o-mini")], "mismatch": False},
        _as_sent("cassette"): {_as_sent("path"): _as_sent(long_text), "source": _as_sent("replayed")},
    }


def test_a_controller_keeps_cells_compact_and_equal() -> None:
    # An xdist controller's cells come from deserialised reports: keys and short values are kept once
    # (interned), long ones as they came; the cells read exactly as without compaction, and no two cells
    # share a container (the report build writes into a cell's cassette entry).
    long_text = "x" * (SHORT + 1)
    plain, compacted = Matrix(["openai"], "openai"), Matrix(["openai"], "openai", compact=True)
    for matrix in (plain, compacted):
        for index, provider in enumerate(("openai", "qwen")):
            matrix.add(
                f"t.py::test_{index}[{provider}]", "call", "passed", _cell_data(provider, long_text), ""
            )
    assert plain.as_dict() == compacted.as_dict()
    first, second = compacted.cells["t.py::test_0"]["openai"], compacted.cells["t.py::test_1"]["qwen"]
    assert first.exchanges[0]["request_model"] is second.exchanges[0]["request_model"]
    assert next(iter(first.model)) is next(iter(second.model))
    assert first.extra["cassette"]["path"] == long_text and first.extra["cassette"]["path"] is not long_text
    assert first.extra["cassette"] is not second.extra["cassette"]
    assert first.checks[0] is not second.checks[0]
    # Without compaction (one process: the data is our own objects) nothing is interned: the check can fail.
    raw = plain.cells["t.py::test_0"]["openai"], plain.cells["t.py::test_1"]["qwen"]
    assert raw[0].exchanges[0]["request_model"] is not raw[1].exchanges[0]["request_model"]


def test_compact_leaves_other_values_alone() -> None:
    value = {"n": 3, "f": 2.5, "none": None, "flag": True, "nested": [[{"a": "b"}]], 7: "seven"}
    assert compact(value) == value
    assert compact(value)["nested"] is not value["nested"]
