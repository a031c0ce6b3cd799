"""The package's layout holds: imports flow one way, every module imports on its own, the dialect layer
needs no pytest, the fake provider shares nothing with the client it checks, and old import paths still
work (with a DeprecationWarning naming the new home)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_llmport"
# The modules of the wire-protocol layer: no import cycle may touch them, deferred imports included.
DIALECT_LAYER = ("chat", "dialects", "fake", "fake_dialects", "normalize", "providers", "testing")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, deferred: bool) -> set[str]:
    """The package modules ``name`` imports at run time: at module level, or anywhere with ``deferred``."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt], top: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse, top)
                continue
            if isinstance(node, ast.Import) and (top or deferred):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (top or deferred):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                subs = {f"{module}.{alias.name}" for alias in node.names} & MODULES.keys()
                found.update(subs or {module})
                if len(subs) < len(node.names):
                    found.add(module)
            inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for block in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, block, None)
                if isinstance(children, list):
                    visit([c for c in children if isinstance(c, ast.stmt)], inner)
                    for handler in children:
                        if isinstance(handler, ast.ExceptHandler):
                            visit(handler.body, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")).body, True)
    # A submodule's parent package is always initialised first: that edge is no cycle.
    return {m for m in found if m in MODULES and m != name and not name.startswith(m + ".")}


def _cycles(deferred: bool) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph = {name: _imports(name, deferred) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return components


def _in_layer(name: str) -> bool:
    short = name.removeprefix("pytest_llmport.")
    return any(short == layer or short.startswith(layer + ".") for layer in DIALECT_LAYER)


def test_the_graph_walk_sees_module_level_deferred_and_type_checking_imports() -> None:
    assert "pytest_llmport.dialects.common" in _imports("pytest_llmport.dialects.openai", deferred=False)
    assert "pytest_llmport.fake.openai" in _imports("pytest_llmport.fake", deferred=False)
    # A submodule importing its own package (always initialised first) is no edge.
    assert "pytest_llmport.fake" not in _imports("pytest_llmport.fake.server", deferred=False)
    # handle.py imports chat inside a method, and only for typing at module level.
    assert "pytest_llmport.chat" not in _imports("pytest_llmport.handle", deferred=False)
    assert "pytest_llmport.chat" in _imports("pytest_llmport.handle", deferred=True)


def test_no_module_level_import_cycle() -> None:
    assert _cycles(deferred=False) == []


def test_no_import_cycle_touches_the_dialect_layer_even_through_deferred_imports() -> None:
    touching = [c for c in _cycles(deferred=True) if any(_in_layer(m) for m in c)]
    assert touching == []


def test_the_fake_shares_no_constant_with_the_client_it_checks() -> None:
    client = (
        "pytest_llmport.dialects",
        "pytest_llmport.chat",
        "pytest_llmport.normalize",
        "pytest_llmport.providers",
    )

    def reaches(prefixes: tuple[str, ...], module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    fake = [m for m in MODULES if reaches(("pytest_llmport.fake", "pytest_llmport.testing"), m)]
    assert len(fake) >= 8
    for module in fake:
        shared = sorted(m for m in _imports(module, deferred=True) if reaches(client, m))
        assert not shared, f"{module} imports {shared}: the fake must follow the providers, not the client"
    for module in (m for m in MODULES if reaches(("pytest_llmport.dialects",), m)):
        assert not any(
            reaches(("pytest_llmport.fake", "pytest_llmport.testing"), m) for m in _imports(module, True)
        )


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PACKAGE.parent,
        check=False,
    )


def test_every_module_imports_on_its_own() -> None:
    # One interpreter, the package forgotten before each import: a cycle that only works in one import order
    # fails here. Optional extras (the semantic encoder) may be missing; nothing else may.
    result = _run(
        f"""
        import importlib, sys
        failed = []
        for name in {sorted(MODULES)!r}:
            for loaded in [m for m in sys.modules if m == "pytest_llmport" or m.startswith("pytest_llmport.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
        print("\\n".join(failed) or "ALL IMPORTED")
        """
    )
    assert result.stdout.strip() == "ALL IMPORTED", result.stdout + result.stderr


class _Blocked:
    """The source of the subprocess's import blocker, kept beside its use."""

    code = """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pytest", "_pytest", "pluggy"):
                    raise ImportError(f"{name} is blocked in this test")

        sys.meta_path.insert(0, Block())
        """


@pytest.mark.parametrize(
    "statement",
    [
        "import pytest_llmport.similarity",
        "from pytest_llmport.dialects.normalizer import normalize",
        "from pytest_llmport.providers import BUILTIN_PROVIDERS",
        "from pytest_llmport.chat import chat",
    ],
)
def test_the_library_layers_import_without_pytest(statement: str) -> None:
    result = _run(
        _Blocked.code
        + f"""
        {statement}
        try:
            import pytest
        except ImportError:
            print("PYTEST BLOCKED", "pytest" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "PYTEST BLOCKED False"


OLD_NAMES = [
    ("pytest_llmport.normalize", "normalize", "pytest_llmport.dialects.normalizer", "normalize"),
    ("pytest_llmport.normalize", "Accumulator", "pytest_llmport.dialects.normalizer", "Accumulator"),
    ("pytest_llmport.normalize", "NormalizedResult", "pytest_llmport.dialects.result", "NormalizedResult"),
    ("pytest_llmport.normalize", "DIALECTS", "pytest_llmport.dialects", "DIALECTS"),
    ("pytest_llmport.normalize", "categorize", "pytest_llmport.dialects.common", "categorize"),
    ("pytest_llmport.normalize", "iter_sse_events", "pytest_llmport.sse", "iter_events"),
    ("pytest_llmport.dialects", "OPENAI_FINISH", "pytest_llmport.dialects.openai", "FINISH"),
    ("pytest_llmport.dialects", "ERNIE_CODES", "pytest_llmport.dialects.ernie", "CODES"),
    ("pytest_llmport.chat", "DEFAULT_MAX_TOKENS", "pytest_llmport.dialects.anthropic", "DEFAULT_MAX_TOKENS"),
    ("pytest_llmport.fake_dialects", "QUIRKS", "pytest_llmport.fake", "QUIRKS"),
    ("pytest_llmport.fake_dialects", "error_body", "pytest_llmport.fake", "error_body"),
    ("pytest_llmport.fake_dialects", "ernie_access_token", "pytest_llmport.fake", "ernie_access_token"),
    ("pytest_llmport.fake_dialects", "doubled_version", "pytest_llmport.fake.server", "doubled_version"),
    (
        "pytest_llmport.providers",
        "pytest_llmport_add_providers",
        "pytest_llmport.plugin",
        "pytest_llmport_add_providers",
    ),
]


@pytest.mark.parametrize(("old", "name", "new", "new_name"), OLD_NAMES)
def test_old_import_paths_warn_and_serve_the_new_object(old: str, name: str, new: str, new_name: str) -> None:
    import importlib

    with pytest.warns(
        DeprecationWarning, match=rf"{old}\.{name} is deprecated: import {new_name} from {new}"
    ):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), new_name)


def test_old_parsers_table_still_parses() -> None:
    import pytest_llmport.dialects as dialects
    from pytest_llmport.dialects.normalizer import Accumulator

    with pytest.warns(DeprecationWarning, match="PARSERS is deprecated"):
        parsers = dialects.PARSERS  # type: ignore[attr-defined]
    assert set(parsers) == set(dialects.DIALECTS)
    acc = Accumulator(status=200, streamed=False)
    parsers["openai"].json(acc, {"choices": [{"message": {"content": "好"}, "finish_reason": "stop"}]}, {})
    assert acc.build().text == "好"


def test_an_unknown_old_name_is_an_attribute_error() -> None:
    import pytest_llmport.normalize as old

    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        old.nothing_here  # type: ignore[attr-defined]  # noqa: B018


def test_the_fake_and_the_client_know_the_same_dialects_each_on_its_own() -> None:
    from pytest_llmport.dialects import DIALECTS
    from pytest_llmport.fake import FAKE_DIALECTS

    assert FAKE_DIALECTS == DIALECTS


def _layer_modules() -> Iterator[str]:
    yield from (m for m in MODULES if _in_layer(m))


def test_the_dialect_layer_is_what_this_test_checks() -> None:
    layer = set(_layer_modules())
    for dialect in ("openai", "dashscope", "ernie", "anthropic", "gemini"):
        assert f"pytest_llmport.dialects.{dialect}" in layer
        assert f"pytest_llmport.fake.{dialect}" in layer


def test_loading_the_plugin_reads_no_answer_machinery() -> None:
    # Every provider's URL is checked against its dialect at start-up, so the dialect records load then;
    # the result types, the normaliser and the SSE splitter wait for the first answer to read.
    result = _run(
        """
        import sys
        import pytest_llmport.plugin
        from pytest_llmport.providers import check_dialect_url, BUILTIN_PROVIDERS
        for provider in BUILTIN_PROVIDERS:
            check_dialect_url(provider)
        late = ("pytest_llmport.dialects.result", "pytest_llmport.dialects.normalizer", "pytest_llmport.sse")
        print(sorted(m for m in late if m in sys.modules), "pytest_llmport.dialects.openai" in sys.modules)
        """
    )
    assert result.stdout.strip() == "[] True", result.stdout + result.stderr


def test_architecture_page_names_every_module() -> None:
    """docs/architecture.md's table stays true: a module added or renamed must be placed there."""
    package = PACKAGE
    page = (package.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = {p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    names |= {f"{p.name}/" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    shims = {"normalize.py", "fake_dialects.py"}  # deprecated import paths (see deprecation.py)
    missing = sorted(name for name in names - shims if f"`{name}`" not in page)
    assert not missing, f"docs/architecture.md: say what {missing} own(s)"


def test_only_the_plugin_imports_the_run_and_the_lifecycle_knows_nothing_above_it() -> None:
    """The run-wide object delegates down; what it holds never imports it (deferred imports included)."""
    importers = sorted(m for m in MODULES if "pytest_llmport.run" in _imports(m, deferred=True))
    assert importers == ["pytest_llmport.plugin"]
    above = {"pytest_llmport.run", "pytest_llmport.plugin", "pytest_llmport.llmequiv"}
    held = ("lifecycle", "redaction", "refusals", "recording")
    for module in (f"pytest_llmport.{name}" for name in held):
        assert not _imports(module, deferred=True) & above, module
