"""Marker, --providers, ini defaults and their errors."""

from __future__ import annotations

import zlib

import pytest

SUITE = """
import pytest

@pytest.mark.llm_portable
def test_everywhere(llm_provider):
    pass

@pytest.mark.llm_portable(providers=["qwen", "deepseek"])
def test_subset(llm_provider):
    pass

def test_plain():
    pass
"""


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line]


def test_marked_tests_are_parametrised_per_provider(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--providers=zhipu,qwen", "--collect-only", "-q")
    assert collected(result) == [
        "test_suite.py::test_everywhere[zhipu]",
        "test_suite.py::test_everywhere[qwen]",
        "test_suite.py::test_subset[qwen]",
        "test_suite.py::test_plain",
    ]


def test_ini_default_and_command_line_precedence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeini("[pytest]\nllmport_providers = deepseek, moonshot\n")
    assert collected(pytester.runpytest("--collect-only", "-q"))[:3] == [
        "test_suite.py::test_everywhere[deepseek]",
        "test_suite.py::test_everywhere[moonshot]",
        "test_suite.py::test_subset[deepseek]",
    ]
    assert collected(pytester.runpytest("--collect-only", "-q", "--providers=ernie"))[0] == (
        "test_suite.py::test_everywhere[ernie]"
    )


def test_default_provider_is_openai(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    assert (
        collected(pytester.runpytest("--collect-only", "-q"))[0] == "test_suite.py::test_everywhere[openai]"
    )


def test_subset_that_selects_nothing_is_skipped_with_a_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--providers=zhipu", "-rs", "-k", "subset")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*providers=[[]'qwen', 'deepseek'[]] selects none of zhipu"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--providers=zhipu,nope"],
            "*--providers=zhipu,nope: unknown provider(s) nope. Known providers: *zhipu*",
        ),
        (
            ["--providers="],
            "*--providers= is empty; give a comma-separated list, e.g. --providers=openai,zhipu.*",
        ),
        (["--providers=,"], "*--providers=, is empty*"),
        (["--llmport-record-mode=sometimes"], "*invalid choice: 'sometimes'*"),
    ],
)
def test_bad_command_line_is_a_usage_error(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_ini_record_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmport_record_mode = always\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini llmport_record_mode='always' is not one of none, once, new_episodes, all"]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            'providers="zhipu"',
            ': providers must be a list of provider names, e.g. providers=[[]"zhipu", "qwen"[]]',
        ),
        ("providers=[1]", ": providers must be a list of provider names*"),
        ('providers=["nope"]', ": unknown provider(s) nope. Known providers:*"),
        (
            '"zhipu"',
            " takes keyword arguments only (providers, baseline, threshold, metric, requires, facts, models, judge), got ('zhipu',)",
        ),
        (
            "threshold_typo=1",
            " got unknown keyword(s) threshold_typo; accepted: providers, baseline, threshold, metric, requires, facts, models, judge",
        ),
        ("threshold=1.5", "(threshold=1.5): threshold must be a number between 0 and 1"),
        ("threshold=True", "(threshold=True): threshold must be a number between 0 and 1"),
        (
            'metric="bleu"',
            "(metric='bleu'): unknown similarity metric; known: bigram_jaccard, chrf, chrf_lcs, *",
        ),
        ('baseline="nope"', "(baseline=...): unknown provider(s) nope. Known providers:*"),
        ("baseline=3", "(baseline=3): baseline must be a provider name"),
    ],
)
def test_bad_marker_arguments_name_the_test(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(
        test_bad=f"""
import pytest

@pytest.mark.llm_portable({marker})
def test_it(llm_provider):
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["test_bad.py::test_it: @pytest.mark.llm_portable*" + message])


def test_llm_provider_outside_marked_test_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(llm_provider):\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["*test_x.py::test_x: the llm_provider fixture needs @pytest.mark.llm_portable*"]
    )


def test_help_shows_the_option_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "LLM provider portability (pytest-llmport):",
            "*--providers=NAMES*",
            "*--llmport-record-mode=*",
            "*--llmport-record-on-failure*",
            "*--llmport-no-export-env*",
            "*--llmport-allow-network*",
            "*llmport_providers (string):*",
            "*llmport_cassette_dir (string):*",
        ]
    )


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.llm_portable(providers=None): run this test once per selected*"]
    )


def test_other_parameters_get_their_own_cassette(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", "sk-0123456789")
    pytester.makepyfile(
        test_params="""
import pytest

@pytest.mark.parametrize("ticket", ["退款", "refund", 3])
@pytest.mark.llm_portable
def test_it(llm_provider, ticket):
    print("PATH", llm_provider.cassette_path)
"""
    )
    result = pytester.runpytest("--providers=zhipu", "-s", "--llmport-record-mode=all")
    paths = sorted(line.split("PATH ")[1] for line in result.stdout.lines if "PATH " in line)
    root = str(pytester.path / "cassettes" / "test_params" / "test_it")
    # Non-ASCII values get a checksum so that two Chinese tickets of one length never share a cassette.
    chinese = f"/ticket=_-{zlib.crc32(repr('退款').encode()):08x}/zhipu.yaml"
    assert sorted(p.removeprefix(root) for p in paths) == sorted(
        ["/ticket=3/zhipu.yaml", "/ticket=refund/zhipu.yaml", chinese]
    )


def test_bad_boolean_ini_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmport_block_network = maybe\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini llmport_block_network: invalid truth value 'maybe', not a boolean: use true or false*"]
    )
