"""The hooks (hookspecs.py) and the per-test settings they see, resolved once at collection (config.py)."""

from __future__ import annotations

import json

import pytest

from pytest_llmport.testing import FakeProvider
from tests.conftest import KEY, RunModes, cassettes

SETTINGS_HOOK = """
import json, pathlib

def pytest_llmport_configure_recording(config, provider, settings, recording):
    out = pathlib.Path(config.rootpath, "settings-" + provider + ".json")
    out.write_text(json.dumps({
        "provider": settings.provider, "providers": list(settings.providers), "baseline": settings.baseline,
        "threshold": settings.threshold, "metric": settings.metric, "facts": settings.facts,
        "record_mode": settings.record_mode, "models": list(settings.models),
    }))
"""


def test_settings_follow_the_precedence_and_reach_the_hook(
    pytester: pytest.Pytester, llm_env: FakeProvider, run_modes: RunModes
) -> None:
    pytester.makeconftest(SETTINGS_HOOK)
    pytester.makeini(
        "[pytest]\nllmport_threshold = 0.5\nllmport_baseline = zhipu\nllmport_metric = rouge_l\n"
        "llmport_record_mode = all\nllmport_check_facts = true\n"
    )
    pytester.makepyfile(
        test_it="""
import pytest

@pytest.mark.llm_portable(providers=["openai", "zhipu", "qwen"], threshold=0.7, facts=False,
                          models=["glm-4-plus"])
def test_it(llm_provider):
    pass
"""
    )
    # marker > command line > ini > default for facts about the test; command line > ini for run modes.
    result = run_modes("--providers=openai,zhipu", "--llmport-baseline=qwen", "--llmport-record-mode=once")
    result.assert_outcomes(passed=2)
    for provider in ("openai", "zhipu"):
        seen = json.loads((pytester.path / f"settings-{provider}.json").read_text())
        assert seen == {
            "provider": provider,
            "providers": ["openai", "zhipu"],
            "baseline": "qwen",
            "threshold": 0.7,
            "metric": "rouge_l",
            "facts": False,
            "record_mode": "once",
            "models": ["glm-4-plus"],
        }


def test_a_mark_a_conftest_adds_at_collection_is_honoured(
    pytester: pytest.Pytester, run_modes: RunModes
) -> None:
    # Settings are resolved after every plugin's pytest_collection_modifyitems, so a skip added there
    # still spares the test its cassette, as when the marks were read at setup.
    pytester.makeconftest(
        """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        if "zhipu" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason="zhipu is down today"))
"""
    )
    pytester.makepyfile(
        test_it="import pytest\n\n@pytest.mark.llm_portable\ndef test_it(llm_provider):\n    pass\n"
    )
    result = run_modes("--providers=openai,zhipu", "--llmport-record-mode=none", "-rs")
    result.assert_outcomes(errors=1, skipped=1)
    result.stdout.fnmatch_lines(["*no cassette for provider 'openai'*", "*zhipu is down today*"])


SHARED_SETTINGS = """
from pytest_llmport.config import ITEM_SETTINGS

def pytest_collection_finish(session):
    first = {}
    for item in session.items:
        settings = item.stash[ITEM_SETTINGS]
        name = first.setdefault(id(settings), item.name)
        print("SETTINGS", item.name, "shares", name, settings.provider, settings.skipped, settings.threshold)
"""


def test_items_with_equal_settings_share_one_object_and_no_other(pytester: pytest.Pytester) -> None:
    # pytest keeps every item to the end of the session: one ItemSettings per distinct value, not per item
    # (bench/scale.py). Sharing is by value, so an item whose settings differ in anything keeps its own.
    pytester.makeconftest(SHARED_SETTINGS)
    pytester.makepyfile(
        test_it="""
import pytest

@pytest.mark.llm_portable
@pytest.mark.parametrize("x", [1, 2, pytest.param(3, marks=pytest.mark.skip(reason="not today"))])
def test_a(llm_provider, x):
    pass

@pytest.mark.llm_portable
def test_same_marker(llm_provider):
    pass

@pytest.mark.llm_portable(threshold=0.9)
def test_other_marker(llm_provider):
    pass
"""
    )
    result = pytester.runpytest("-s", "--collect-only", "-q", "--providers=openai,qwen")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "SETTINGS test_a[[]openai-1[]] shares test_a[[]openai-1[]] openai False None",
            "SETTINGS test_a[[]openai-2[]] shares test_a[[]openai-1[]] openai False None",
            "SETTINGS test_a[[]openai-3[]] shares test_a[[]openai-3[]] openai True None",
            "SETTINGS test_a[[]qwen-1[]] shares test_a[[]qwen-1[]] qwen False None",
            "SETTINGS test_a[[]qwen-2[]] shares test_a[[]qwen-1[]] qwen False None",
            "SETTINGS test_a[[]qwen-3[]] shares test_a[[]qwen-3[]] qwen True None",
            "SETTINGS test_same_marker[[]openai[]] shares test_a[[]openai-1[]] openai False None",
            "SETTINGS test_same_marker[[]qwen[]] shares test_a[[]qwen-1[]] qwen False None",
            "SETTINGS test_other_marker[[]openai[]] shares test_other_marker[[]openai[]] openai False 0.9",
            "SETTINGS test_other_marker[[]qwen[]] shares test_other_marker[[]qwen[]] qwen False 0.9",
        ],
        consecutive=True,
    )


def test_configure_recording_scrubs_and_ignores_what_the_hook_says(
    pytester: pytest.Pytester, llm_env: FakeProvider, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    pytester.makeconftest(
        """
def pytest_llmport_configure_recording(config, provider, settings, recording):
    recording.secrets["TENANT_TOKEN"] = "tenant-secret-4f1c9e"
    recording.ignore_query.add("ts")
    recording.ignore_body.update({"trace.id", "trace.n"})
"""
    )
    pytester.makepyfile(
        test_it="""
import time, uuid
import pytest

@pytest.mark.llm_portable
def test_models(llm_provider):
    client = llm_provider.httpx_client()
    response = client.get("models", params={"ts": str(time.time_ns()), "tenant": "tenant-secret-4f1c9e"})
    assert response.status_code == 200

def chat(llm_provider, trace):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": "发货"}], extra_body={"trace": trace}
    )
    assert reply.choices[0].message.content == "[fake] 发货"

@pytest.mark.llm_portable
def test_chat(llm_provider):
    chat(llm_provider, {"id": str(uuid.uuid4()), "n": time.time_ns()})

@pytest.mark.llm_portable
def test_changed(llm_provider):
    chat(llm_provider, {"id": str(uuid.uuid4()), "n": time.time_ns(), "seq": time.time_ns()})
"""
    )
    report = pytester.path / "report.json"
    run_modes("--providers=zhipu", f"--llmport-report={report}").assert_outcomes(passed=3)
    recorded = cassettes(pytester.path)
    assert len(recorded) == 3
    text = "\n".join(recorded.values())
    assert "tenant-secret-4f1c9e" not in text and "<REDACTED:TENANT_TOKEN>" in text
    assert "ts=REDACTED" in text and '"id": "REDACTED"' in text and '"n": "REDACTED"' in text
    assert "tenant-secret-4f1c9e" not in report.read_text(encoding="utf-8")
    # Another timestamp, trace id and number on replay: ignored. The trace's seq was not: a new request.
    llm_env.stop()
    monkeypatch.setenv("CI", "true")
    result = run_modes("--providers=zhipu")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_changed*zhipu*", "*body differs*", "*$.trace.seq: recorded *"])
    assert "trace.n" not in result.stdout.str() and "trace.id" not in result.stdout.str()


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("recording.secrets['my token'] = 'value-123456'", "secrets must map a NAME*'my token'"),
        (
            "recording.secrets['PIN'] = '1234'",
            "secrets[[]'PIN'[]] is shorter than 6 characters, too short to scrub*",
        ),
        ("recording.ignore_body.add('')", "ignore_body must hold non-empty field names*"),
    ],
)
def test_a_hook_that_sets_a_bad_value_fails_the_test_naming_it(
    pytester: pytest.Pytester, llm_env: FakeProvider, assignment: str, message: str
) -> None:
    pytester.makeconftest(f"def pytest_llmport_configure_recording(recording):\n    {assignment}\n")
    pytester.makepyfile(
        test_it="import pytest\n\n@pytest.mark.llm_portable\ndef test_it(llm_provider):\n    pass\n"
    )
    result = pytester.runpytest("--providers=zhipu")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*test_it.py::test_it[[]zhipu[]]: pytest_llmport_configure_recording: {message}"]
    )
    assert not cassettes(pytester.path)


def test_result_hook_is_called_once_per_result_where_the_matrix_is_merged(
    pytester: pytest.Pytester, llm_env: FakeProvider, run_modes: RunModes
) -> None:
    pytester.makeconftest(
        """
import json, pathlib, pytest

def pytest_llmport_result(config, nodeid, provider, when, data):
    line = {"nodeid": nodeid, "provider": provider, "when": when, "kind": data["kind"],
            "worker": hasattr(config, "workerinput")}
    with open(pathlib.Path(config.rootpath, "results.jsonl"), "a") as out:
        out.write(json.dumps(line) + "\\n")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")
"""
    )
    pytester.makepyfile(
        test_it=f"""
import pytest

@pytest.mark.llm_portable
def test_ok(llm_provider):
    pass

@pytest.mark.llm_portable
def test_app(llm_provider):
    raise ValueError("the app broke {KEY}")

@pytest.mark.llm_portable
def test_teardown(llm_provider, broken_teardown):
    pass
"""
    )
    run_modes("--providers=openai,zhipu").assert_outcomes(passed=4, failed=2, errors=2)
    lines = [json.loads(line) for line in (pytester.path / "results.jsonl").read_text().splitlines()]
    seen = sorted((line["nodeid"].split("::")[1], line["when"], line["kind"]) for line in lines)
    assert seen == sorted(
        [
            (f"test_{name}[{provider}]", "call", kind)
            for name, kind in (("ok", "passed"), ("app", "app-failure"), ("teardown", "passed"))
            for provider in ("openai", "zhipu")
        ]
        + [(f"test_teardown[{provider}]", "teardown", "app-failure") for provider in ("openai", "zhipu")]
    )
    assert not any(line["worker"] for line in lines)
    assert KEY not in (pytester.path / "results.jsonl").read_text()


def test_a_hook_with_an_unknown_argument_is_refused_at_startup(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("def pytest_llmport_result(config, nodeid, outcome):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*pytest_llmport_result*outcome*"])


def test_the_marker_ini_keys_and_options_are_read_in_config_only() -> None:
    # Settings are resolved once (config.py); a module that read them again could disagree with it.
    from pathlib import Path

    import pytest_llmport

    package = Path(pytest_llmport.__file__).parent
    readers = (
        "get_closest_marker(",
        "iter_markers(",
        "getini(",
        "getoption(",
        ".option.",
        "known_args_namespace",
    )
    found = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        if path.name != "config.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(reader in line for reader in readers)
    ]
    assert not found, "read in config.py only:\n" + "\n".join(found)
