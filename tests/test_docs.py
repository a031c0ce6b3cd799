"""The documentation is tested: its examples run, its reference tables match the code.

Runnable examples are marked in ``docs/*.md`` with HTML comments, which rendered pages do not show.

``<!-- example: NAME -->``
    Starts an example; everything up to the next ``example:`` (or the end of the page) belongs to it.
    Each example is one test, run in a fresh pytester directory with a fresh
    :class:`pytest_llmport.testing.FakeProvider` (any key accepted; it answers ``shipping`` to a ticket
    about 发货 and a JSON object to a prompt containing ``JSON``, see ``FAKE_REPLIES``, and a judge's
    verdict to ``llm_equiv.judge``, see ``fake_reply``) standing in for every built-in provider: ``LLMPORT_<NAME>_BASE_URL``
    points at it. No key variable is set and ``CI`` is unset, so an
    example sets the keys it needs, as a reader would.
``<!-- file: PATH -->``
    The next fenced block is written to ``PATH`` in the example directory (test modules, ``conftest.py``,
    ``pyproject.toml``, ``pytest.ini``, even a cassette).
``<!-- excerpt: PATH -->``
    The next fenced block is an excerpt of the file ``PATH`` as it is now: every non-blank line of the
    block must occur, in order, inside a line of the file (see *line matching* below).
``<!-- console -->``
    The next fenced block is a shell session that is replayed: ``$ [VAR=value ...] pytest ARGS`` runs
    pytest in-process (the ``VAR=value`` words apply to that run only), ``$ python -m pytest_llmport
    ARGS`` runs the plugin's command line in-process, ``$ export VAR=value`` and
    ``$ unset VAR`` change the environment for the rest of the example, and every other line is output
    the previous command must print (line matching). Any other command is an error.
``<!-- edit: PATH OLD => NEW -->``
    Replaces ``OLD`` by ``NEW`` in the file ``PATH`` (which must contain ``OLD``), as a reader editing it.
``<!-- run: ARGS -->``
    Runs pytest with ``ARGS`` (split like a shell would) without showing it.
``<!-- env: VAR=value VAR= -VAR -->``
    Sets, empties or unsets variables for the rest of the example; ``{fake}`` in a value is the fake
    provider's base URL (for providers that are not built in).
``<!-- fake: stop -->`` / ``<!-- fake: start -->``
    Stops the fake providers (so a replay provably needs no network) or starts them again.
``<!-- fake: DIALECT -->``
    Starts one more fake provider, speaking ``anthropic``, ``gemini``, ``dashscope`` or ``ernie``, and
    points the built-in providers of that dialect at it (their base URL's path kept: ``.../v1``).
``<!-- requires: MODULE ... -->``
    Skips the example unless every module imports (clients too heavy for CI; run where installed).
``<!-- expect: passed=2 skipped=1 -->``
    ``RunResult.assert_outcomes`` of the last run; ``exit=N`` checks the exit code instead.
``<!-- expect-lines: ... -->``
    The comment's remaining lines are ``fnmatch`` patterns for the last run's output (stdout, then
    stderr), as for ``LineMatcher.fnmatch_lines``.
``<!-- expect-files: PATH ... -->``
    Exactly these ``*.yaml`` files exist below the example directory (paths relative to it).

Line matching (``console`` output and ``excerpt``): each shown line must occur, in order, within a line
of the real text; ``...`` stands for any text, and a line that is only ``...`` is skipped.

Besides the examples, this module checks that ``docs/configuration.md`` names every option, ini key,
marker argument, ``[tool.llmport]`` key, hook, exported variable and public attribute of the
``llm_provider`` object, that every option and ini key is used by at least one example, and that the table
in ``docs/providers.md`` equals ``BUILTIN_PROVIDERS``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_llmport import LLMProvider, hookspecs
from pytest_llmport import config as cfg
from pytest_llmport.providers import _OVERRIDABLE, BUILTIN_PROVIDERS, DEFAULT_CAPABILITIES
from pytest_llmport.testing import FakeProvider

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = (
    "quickstart.md",
    "configuration.md",
    "providers.md",
    "cassettes.md",
    "equivalence.md",
    "testing.md",
    "limitations.md",
    "property-based.md",
    "report.md",
    "similarity.md",
    "clients.md",
    "hooks.md",
)
# What the fake "model" answers when the last user message contains the key (else it echoes the message).
FAKE_REPLIES = {
    "发货": "shipping",
    "退款": "refund",
    "发票": "other",
    "JSON": '{"category": "shipping", "urgent": false}',
}
KEY_VARIABLES = sorted({provider.api_key_env for provider in BUILTIN_PROVIDERS})


def fake_reply(payload: dict[str, Any]) -> Any:
    """``FAKE_REPLIES``; but a judge's request (llm_equiv.judge) gets a verdict by a rule that can fail:
    ``not_equivalent`` with the facts that differ (:func:`pytest_llmport.facts.conflicts`), else
    ``equivalent``."""
    from pytest_llmport.facts import conflicts
    from pytest_llmport.judge import read_request

    asked = read_request(payload)
    if asked is not None:
        found = conflicts(asked.baseline, asked.candidate)
        verdict = "not_equivalent" if found else "equivalent"
        return {"verdict": verdict, "reason": "; ".join(found) or "the same facts"}
    messages = (
        payload.get("messages")
        or (payload.get("input") or {}).get("messages")
        or [
            {"role": "user", "content": content.get("parts", [])} for content in payload.get("contents") or []
        ]
    )  # OpenAI, anthropic and ERNIE; dashscope's native input; gemini's contents
    text = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    text = text if isinstance(text, str) else "".join(p.get("text", "") for p in text if isinstance(p, dict))
    return next((reply for key, reply in FAKE_REPLIES.items() if key in text), f"[fake] {text}")


# -- parsing ----------------------------------------------------------------------------------------
@dataclass
class Step:
    kind: str  # the directive (see the module documentation)
    argument: str  # what follows the colon
    body: str = ""  # the fenced block, for file, excerpt and console
    line: int = 0  # where the directive is, for error messages


@dataclass
class Example:
    page: str
    name: str
    line: int
    steps: list[Step] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.name}"


NEEDS_BLOCK = ("file", "excerpt", "console")
DIRECTIVES = (
    *NEEDS_BLOCK,
    "edit",
    "run",
    "env",
    "fake",
    "requires",
    "expect",
    "expect-lines",
    "expect-files",
)
_COMMENT = re.compile(r"<!--\s*([a-z-]+)\s*:?(.*?)-->", re.DOTALL)


def parse(page: str, text: str) -> list[Example]:
    """The examples of one page, in order."""
    examples: list[Example] = []
    pending: Step | None = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            end = index + 1
            while end < len(lines) and not lines[end].strip().startswith(fence):
                end += 1
            if pending is not None:
                indent = len(line) - len(line.lstrip())
                pending.body = "\n".join(body[indent:] for body in lines[index + 1 : end]) + "\n"
                pending = None
            index = end + 1
            continue
        if stripped.startswith("<!--"):
            end = index
            while "-->" not in lines[end]:
                end += 1
            comment = "\n".join(lines[index : end + 1]).strip()
            match = _COMMENT.fullmatch(comment)
            index = end + 1
            if match is None:
                continue
            kind, argument = match.group(1), match.group(2).strip()
            if kind == "example":
                examples.append(Example(page, argument, index))
                continue
            if kind not in DIRECTIVES:
                continue
            if not examples:
                raise AssertionError(f"{page}:{index}: <!-- {kind} --> before any <!-- example: -->")
            if pending is not None:
                raise AssertionError(f"{page}:{pending.line}: <!-- {pending.kind} --> has no code block")
            step = Step(kind, argument, line=index)
            examples[-1].steps.append(step)
            if kind in NEEDS_BLOCK:
                pending = step
            continue
        if pending is not None and stripped:
            raise AssertionError(f"{page}:{pending.line}: <!-- {pending.kind} --> must precede a code block")
        index += 1
    if pending is not None:
        raise AssertionError(f"{page}:{pending.line}: <!-- {pending.kind} --> has no code block")
    return examples


def all_examples() -> list[Example]:
    examples = [
        example
        for page in PAGES
        if (DOCS / page).is_file()
        for example in parse(page, (DOCS / page).read_text(encoding="utf-8"))
    ]
    ids = [example.id for example in examples]
    duplicates = sorted({name for name in ids if ids.count(name) > 1})
    assert not duplicates, f"example names must be unique per page: {duplicates}"
    return examples


EXAMPLES = all_examples()


# -- running ----------------------------------------------------------------------------------------
def pattern(shown: str) -> str:
    """A shown line as an fnmatch pattern matching any line that contains it; ``...`` is any text."""
    escaped = re.sub(r"[][*?]", lambda m: f"[{m.group(0)}]", shown.strip())
    return "*" + escaped.replace("...", "*") + "*"


def match_lines(actual: list[str], shown: str, what: str) -> None:
    wanted = [pattern(line) for line in shown.splitlines() if line.strip() and line.strip() != "..."]
    try:
        pytest.LineMatcher(actual).fnmatch_lines(wanted)
    except pytest.fail.Exception as exc:
        raise AssertionError(f"{what}: {exc}") from None


class Runner:
    def __init__(self, example: Example, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.example = example
        self.pytester = pytester
        self.monkeypatch = monkeypatch
        self.fake = FakeProvider(fake_reply)
        self.fakes = [self.fake]  # with those of <!-- fake: DIALECT -->
        self.result: pytest.RunResult | None = None

    def __enter__(self) -> Runner:
        self.fake.start()
        self.monkeypatch.delenv("CI", raising=False)
        for variable in KEY_VARIABLES:
            self.monkeypatch.delenv(variable, raising=False)
        for provider in BUILTIN_PROVIDERS:
            self.monkeypatch.setenv(f"{provider.env_prefix}_BASE_URL", self.fake.base_url)
        return self

    def __exit__(self, *exc: object) -> None:
        for fake in self.fakes:
            fake.stop()

    def start_dialect(self, dialect: str, where: str) -> None:
        from urllib.parse import urlsplit

        specs = [provider for provider in BUILTIN_PROVIDERS if provider.dialect == dialect]
        assert specs and dialect != "openai", (
            f"{where}: fake: stop, start or a native dialect, not {dialect!r}"
        )
        fake = FakeProvider(fake_reply, dialect=dialect)
        fake.start()
        self.fakes.append(fake)
        for provider in specs:
            base = fake.url + urlsplit(provider.base_url).path.rstrip("/")
            self.monkeypatch.setenv(f"{provider.env_prefix}_BASE_URL", base)

    @property
    def output(self) -> list[str]:
        assert self.result is not None, "no pytest run yet"
        return self.result.outlines + self.result.errlines

    def where(self, step: Step) -> str:
        return f"{self.example.page}:{step.line} ({step.kind})"

    def set_env(self, assignment: str, monkeypatch: pytest.MonkeyPatch) -> None:
        if assignment.startswith("-"):
            monkeypatch.delenv(assignment[1:], raising=False)
            return
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value.replace("{fake}", self.fake.base_url))

    def pytest(self, args: list[str]) -> None:
        self.result = self.pytester.runpytest(*args)

    def command(self, args: list[str]) -> None:
        """``python -m pytest_llmport ARGS``, in the example directory (pytester's working directory)."""
        import contextlib
        import io
        import time

        from pytest_llmport.__main__ import main

        out, err = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        lines = out.getvalue().splitlines(), err.getvalue().splitlines()
        self.result = pytest.RunResult(code, *lines, duration=time.perf_counter() - started)

    def console(self, step: Step) -> None:
        pending: list[str] = []

        def check() -> None:
            if pending:
                match_lines(self.output, "\n".join(pending), f"{self.where(step)} output of the command")
                pending.clear()

        for line in step.body.splitlines():
            if not line.startswith("$ "):
                pending.append(line)
                continue
            check()
            words = shlex.split(line[2:], comments=True)
            if words[:1] == ["export"]:
                for assignment in words[1:]:
                    self.set_env(assignment, self.monkeypatch)
            elif words[:1] == ["unset"]:
                for name in words[1:]:
                    self.monkeypatch.delenv(name, raising=False)
            else:
                assignments = []
                while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                    assignments.append(words.pop(0))
                if words[:3] == ["python", "-m", "pytest_llmport"]:
                    self.command(words[3:])
                    continue
                if words[:1] != ["pytest"]:
                    raise AssertionError(f"{self.where(step)}: cannot replay {line!r}")
                with self.monkeypatch.context() as scoped:
                    for assignment in assignments:
                        self.set_env(assignment, scoped)
                    self.pytest(words[1:])
        check()

    def step(self, step: Step) -> None:
        where = self.where(step)
        if step.kind == "file":
            path = self.pytester.path / step.argument
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(step.body, encoding="utf-8")
        elif step.kind == "excerpt":
            text = (self.pytester.path / step.argument).read_text(encoding="utf-8")
            match_lines(text.splitlines(), step.body, f"{where} excerpt of {step.argument}")
        elif step.kind == "edit":
            name, _, change = step.argument.partition(" ")
            old, _, new = change.partition(" => ")
            path = self.pytester.path / name
            text = path.read_text(encoding="utf-8")
            assert old and old in text, f"{where}: {old!r} is not in {name}"
            path.write_text(text.replace(old, new), encoding="utf-8")
        elif step.kind == "console":
            self.console(step)
        elif step.kind == "run":
            self.pytest(shlex.split(step.argument))
        elif step.kind == "env":
            for assignment in step.argument.split():
                self.set_env(assignment, self.monkeypatch)
        elif step.kind == "fake":
            if step.argument == "stop":
                for fake in self.fakes:
                    fake.stop()
            elif step.argument == "start":
                for fake in self.fakes:
                    fake.start()
            else:
                self.start_dialect(step.argument, where)
        elif step.kind == "requires":
            for module in step.argument.split():
                pytest.importorskip(module, reason=f"{where}: the example needs {module}")
        elif step.kind == "expect":
            outcomes = {
                name: int(value) for name, value in (part.split("=") for part in step.argument.split())
            }
            assert self.result is not None, f"{where}: nothing ran"
            if "exit" in outcomes:
                assert int(self.result.ret) == outcomes.pop("exit"), f"{where}: exit code\n" + "\n".join(
                    self.output
                )
            if outcomes:
                try:
                    self.result.assert_outcomes(**outcomes)
                except AssertionError as exc:
                    raise AssertionError(f"{where}: {exc}\n" + "\n".join(self.output)) from None
        elif step.kind == "expect-lines":
            patterns = [line.strip() for line in step.argument.splitlines() if line.strip()]
            try:
                pytest.LineMatcher(self.output).fnmatch_lines(patterns)
            except pytest.fail.Exception as exc:
                raise AssertionError(f"{where}: {exc}") from None
        elif step.kind == "expect-files":
            found = sorted(str(p.relative_to(self.pytester.path)) for p in self.pytester.path.rglob("*.yaml"))
            assert found == sorted(step.argument.split()), f"{where}: cassettes on disk: {found}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_example(example: Example, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    assert example.steps, f"{example.id} has no steps"
    with Runner(example, pytester, monkeypatch) as runner:
        for step in example.steps:
            runner.step(step)


# -- reference checks -------------------------------------------------------------------------------
class _RecordingParser:
    """Stands in for ``pytest.Parser`` to learn what ``config.add_options`` registers."""

    def __init__(self) -> None:
        self.options: list[str] = []
        self.ini: list[str] = []

    def getgroup(self, *args: Any, **kwargs: Any) -> _RecordingParser:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.extend(names)

    def addini(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.ini.append(name)


def registered() -> _RecordingParser:
    parser = _RecordingParser()
    cfg.add_options(parser)  # type: ignore[arg-type]
    return parser


def table_cells(text: str) -> set[str]:
    """Every backticked name in the first cell of a Markdown table row (``--opt=VALUE`` counts as ``--opt``)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            names.update(name.split("=")[0] for name in re.findall(r"`([^`]+)`", first))
    return names


def test_option_registration_is_seen() -> None:
    parser = registered()
    assert "--providers" in parser.options and "llmport_providers" in parser.ini


def test_configuration_reference_lists_every_option_and_ini_key() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    first_cells = table_cells(text)
    parser = registered()
    missing = [name for name in [*parser.options, *parser.ini] if name not in first_cells]
    assert not missing, f"docs/configuration.md: add a reference-table row for {missing}"
    for keyword in cfg.MARKER_KEYWORDS:
        assert f"`{keyword}" in text, f"docs/configuration.md: document marker argument {keyword}="
    for key in cfg.TOOL_KEYS:
        assert f"[tool.llmport.{key}" in text
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "LLMPORT_PROVIDER", "LLMPORT_MODEL"):
        assert f"`{variable}`" in text, f"docs/configuration.md: document exported variable {variable}"


def test_exported_variables_are_the_documented_ones() -> None:
    handle = LLMProvider(BUILTIN_PROVIDERS[0], "k", Path("x.yaml"), "once", False)
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for variable in handle.env:
        assert f"`{variable}`" in text, f"docs/configuration.md: document exported variable {variable}"


def _sample_provider() -> LLMProvider:
    """An instance, whose attributes are the public data of the fixture object."""
    from pytest_llmport.providers import BUILTIN_PROVIDERS

    return LLMProvider(BUILTIN_PROVIDERS[0], "k", Path("c.yaml"), "none", True)


def test_configuration_documents_the_fixture_and_the_hook() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    public = [name for name in [*vars(_sample_provider()), *vars(LLMProvider)] if not name.startswith("_")]
    missing = sorted({name for name in public if f"`{name}" not in text and f".{name}" not in text})
    assert not missing, f"docs/configuration.md: document LLMProvider.{missing}"
    hooks = [name for name in vars(hookspecs) if name.startswith("pytest_")]
    for hook in hooks:
        assert f"`{hook}" in text, f"docs/configuration.md: document the hook {hook}"
    providers_page = (DOCS / "providers.md").read_text(encoding="utf-8")
    for key in _OVERRIDABLE:
        assert f"`{key}`" in providers_page, f"docs/providers.md: document the override key {key}"


def test_hooks_page_documents_every_hook_setting_and_recording_option() -> None:
    import dataclasses

    from pytest_llmport.config import ItemSettings, RecordingOptions

    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    for hook in (name for name in vars(hookspecs) if name.startswith("pytest_")):
        assert f"| `{hook}(" in text, f"docs/hooks.md: list the hook {hook} in the table"
    for field_ in dataclasses.fields(ItemSettings):
        if field_.name != "conflict":  # fails the test at setup before any hook could act on it
            assert f"`{field_.name}`" in text, f"docs/hooks.md: document settings.{field_.name}"
    for field_ in dataclasses.fields(RecordingOptions):
        assert f"`recording.{field_.name}`" in text, f"docs/hooks.md: document recording.{field_.name}"


def test_equivalence_page_documents_the_fixture_report_and_defaults() -> None:
    from pytest_llmport.dialects.result import ERROR_CATEGORIES, FINISH_REASONS
    from pytest_llmport.equivalence import Equivalence
    from pytest_llmport.similarity import DEFAULT_METRIC, DEFAULT_THRESHOLD, METRICS

    text = (DOCS / "equivalence.md").read_text(encoding="utf-8")
    public = [name for name in vars(Equivalence) if not name.startswith("_")]
    missing = [name for name in public if f"`{name}" not in text]
    assert not missing, f"docs/equivalence.md: document llm_equiv.{missing}"
    for name in (*METRICS, "embedding", *FINISH_REASONS, *ERROR_CATEGORIES):
        assert f"`{name}`" in text, f"docs/equivalence.md: name `{name}`"
    assert f"`{DEFAULT_METRIC}` and `{DEFAULT_THRESHOLD}`" in text, (
        "docs/equivalence.md: the defaults changed"
    )
    config_text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert f"| `llmport_threshold` | `{DEFAULT_THRESHOLD}` |" in config_text
    assert f"| `llmport_metric` | `{DEFAULT_METRIC}` |" in config_text
    for word in (
        "ok",
        "differs",
        "schema",
        "recording-problem",
        "no-baseline",
        "app:",
        "skip",
        "error",
        "code_fence",
    ):
        assert f"`{word}" in text, f"docs/equivalence.md: explain the matrix word {word}"


def test_providers_page_documents_the_vocabularies() -> None:
    from pytest_llmport.providers import AUTH_SCHEMES, CAPABILITIES, DIALECTS

    text = (DOCS / "providers.md").read_text(encoding="utf-8")
    for name in (*AUTH_SCHEMES, *CAPABILITIES, *DIALECTS):
        assert f"`{name}`" in text, f"docs/providers.md: document `{name}`"
    for provider in BUILTIN_PROVIDERS:
        if provider.capabilities != DEFAULT_CAPABILITIES:
            assert f"`{provider.name}`" in text.split("## Capabilities", 1)[1], provider.name


def test_testing_page_documents_the_fake_dialects_and_quirks() -> None:
    from pytest_llmport.fake import ERROR_KINDS, FAKE_DIALECTS, QUIRKS

    text = (DOCS / "testing.md").read_text(encoding="utf-8")
    for name in (*FAKE_DIALECTS, *QUIRKS, *ERROR_KINDS):
        assert f"`{name}`" in text, f"docs/testing.md: document `{name}`"


def test_property_based_page_documents_every_strategy() -> None:
    from pytest_llmport import strategies

    text = (DOCS / "property-based.md").read_text(encoding="utf-8")
    missing = [name for name in strategies.__all__ if f"`{name}" not in text]
    assert not missing, f"docs/property-based.md: document pytest_llmport.strategies.{missing}"
    assert "`llmport_max_examples`" in text


def example_sources() -> str:
    """Everything the examples run: commands and the files they write."""
    parts = []
    for example in EXAMPLES:
        for step in example.steps:
            if step.kind == "run":
                parts.append(step.argument)
            elif step.kind == "console":
                parts.extend(line for line in step.body.splitlines() if line.startswith("$ "))
            elif step.kind == "file":
                parts.append(step.body)
    return "\n".join(parts)


def test_every_option_and_ini_key_has_a_running_example() -> None:
    sources = example_sources()
    parser = registered()
    missing = [
        name
        for name in [*parser.options, *parser.ini]
        if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", sources)
    ]
    assert not missing, f"no example in docs/ uses {missing}; add one"


def test_every_record_mode_has_a_running_example() -> None:
    sources = example_sources()
    for mode in cfg.RECORD_MODES:
        assert f"--llmport-record-mode={mode}" in sources or f"llmport_record_mode = {mode}" in sources, mode


def provider_table() -> str:
    rows = [
        "| Name | Default base URL | Default model | Key variable | Auth | Notes |",
        "|------|------------------|---------------|--------------|------|-------|",
    ]
    for provider in BUILTIN_PROVIDERS:
        note = provider.description + ("; no key needed to record" if not provider.key_required else "")
        rows.append(
            f"| `{provider.name}` | `{provider.base_url}` | `{provider.model}` | `{provider.api_key_env}` "
            f"| `{provider.auth}` | {note} |"
        )
    return "\n".join(rows)


def test_providers_table_equals_the_builtin_providers() -> None:
    text = (DOCS / "providers.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- builtin-providers -->\n(.*?)\n<!-- /builtin-providers -->", text, re.DOTALL)
    assert match, "docs/providers.md: the table must sit between <!-- builtin-providers --> markers"
    assert match.group(1).strip() == provider_table(), (
        "docs/providers.md is out of date; replace the table with:\n" + provider_table()
    )


def test_every_page_exists_and_has_examples() -> None:
    pages_with_examples = {example.page for example in EXAMPLES}
    for page in PAGES:
        assert (DOCS / page).is_file(), page
    assert {
        "quickstart.md",
        "configuration.md",
        "providers.md",
        "cassettes.md",
        "equivalence.md",
        "testing.md",
        "property-based.md",
        "similarity.md",
    } <= pages_with_examples


def test_the_example_syntax_is_understood() -> None:
    text = """
<!-- example: one -->
<!-- file: test_a.py -->
```python
x = 1
```
<!-- run: -q --providers=qwen -->
<!-- expect: passed=1 -->
<!-- expect-lines:
*a*
*b* -->
"""
    (example,) = parse("t.md", text)
    assert [(s.kind, s.argument) for s in example.steps] == [
        ("file", "test_a.py"),
        ("run", "-q --providers=qwen"),
        ("expect", "passed=1"),
        ("expect-lines", "*a*\n*b*"),
    ]
    assert example.steps[0].body == "x = 1\n"
    assert pattern("t.py::t[qwen] ... (x?)") == "*t.py::t[[]qwen[]] * (x[?])*"
    with pytest.raises(AssertionError, match="must precede a code block"):
        parse("t.md", "<!-- example: e -->\n<!-- file: a.py -->\ntext\n```\n```\n")


def _iter_links() -> Iterator[tuple[str, str]]:
    for page in (*PAGES, "changelog.md"):
        path = DOCS / page
        if path.is_file():
            for target in re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
                yield page, target


def test_links_between_pages_resolve() -> None:
    broken = [(page, target) for page, target in _iter_links() if not (DOCS / target).resolve().is_file()]
    assert not broken, broken


def test_in_process_runs_keep_the_plugin_after_a_client_imports_importlib_metadata(
    pytester: pytest.Pytester, llm_env: FakeProvider
) -> None:
    # litellm (docs/clients.md) imports the importlib_metadata backport, which disables the stdlib's
    # distribution finder; tests/conftest.py imports it first, so a later in-process run (an example's
    # replay) still finds this plugin's entry point. Here, in a module that does not import litellm
    # itself (tests/test_clients.py does, at collection, which would hide the bug when run alone).
    pytester.makepyfile(
        test_app="""
import importlib_metadata
import pytest

@pytest.mark.llm_portable
def test_x(llm_provider):
    pass
"""
    )
    for _ in range(2):
        pytester.runpytest("--providers=deepseek").assert_outcomes(passed=1)
