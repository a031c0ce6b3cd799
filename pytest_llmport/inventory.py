"""The cassette inventory: ``--llmport-cassettes=report|prune`` and ``python -m pytest_llmport cassettes``.

From the collected tests it lists cassettes no test uses any more (orphans; ``prune`` deletes them),
marked tests without a cassette for a selected provider, and cassettes that are old or were recorded by
an older plugin, cassette format or SDK (the cassette's top-level ``llmport:`` block, when it has one).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .run import LlmportRun


@dataclass
class Inventory:
    orphans: list[Path] = field(default_factory=list)
    missing: list[tuple[str, str, Path]] = field(default_factory=list)  # (node id, provider, path)
    outdated: dict[Path, list[str]] = field(default_factory=dict)  # path -> why
    without_metadata: int = 0
    pruned: list[Path] = field(default_factory=list)
    refused: str = ""
    roots: list[Path] = field(default_factory=list)

    def lines(self, root: Path) -> list[str]:
        def rel(path: Path) -> str:
            try:
                return str(path.relative_to(root))
            except ValueError:
                return str(path)

        lines = [f"orphaned cassettes (no collected test uses them): {len(self.orphans)}"]
        lines += [f"  {rel(p)}{' (deleted)' if p in self.pruned else ''}" for p in self.orphans]
        if self.refused:
            lines.append(f"  not pruned: {self.refused}")
        lines.append(f"marked tests without a cassette for a selected provider: {len(self.missing)}")
        lines += [
            f"  {nodeid}: no {provider} cassette at {rel(path)}" for nodeid, provider, path in self.missing
        ]
        reasons = Counter(reason.split(":", 1)[0] for why in self.outdated.values() for reason in why)
        summary = ", ".join(f"{name} {count}" for name, count in sorted(reasons.items()))
        lines.append(f"outdated cassettes: {len(self.outdated)}" + (f" ({summary})" if summary else ""))
        lines += [f"  {rel(p)}: {'; '.join(why)}" for p, why in sorted(self.outdated.items())]
        if self.without_metadata:
            lines.append(
                "cassettes without an llmport: block (recorded before it existed; age and versions "
                f"unknown): {self.without_metadata}"
            )
        return lines


def _is_marked(item: pytest.Item) -> bool:
    from .lifecycle import PARAM

    callspec = getattr(item, "callspec", None)
    return callspec is not None and PARAM in callspec.params


def _older(recorded: str, installed: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(recorded) < Version(installed)
    except InvalidVersion:
        return recorded != installed


def cassette_metadata(path: Path) -> Mapping[str, Any] | None:
    """The cassette's top-level ``llmport:`` mapping, or None when it has none."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    block = data.get("llmport") if isinstance(data, dict) else None
    return block if isinstance(block, dict) else None


def why_outdated(block: Mapping[str, Any], max_age_days: int, today: dt.date | None = None) -> list[str]:
    from . import __version__

    reasons = []
    recorded = block.get("recorded")
    if recorded:
        try:
            day = dt.date.fromisoformat(str(recorded)[:10])
        except ValueError:
            day = None
        age = ((today or dt.date.today()) - day).days if day else None
        if age is not None and age > max_age_days:
            reasons.append(f"old: recorded {day}, {age} days ago (limit {max_age_days})")
    plugin = block.get("plugin")
    if plugin and _older(str(plugin), __version__):
        reasons.append(f"plugin: recorded with pytest-llmport {plugin}, now {__version__}")
    from . import cassettes

    current_format = getattr(cassettes, "FORMAT_VERSION", None) or getattr(cassettes, "FORMAT", None)
    fmt = block.get("format")
    if isinstance(fmt, int) and isinstance(current_format, int) and fmt < current_format:
        reasons.append(f"format: cassette format {fmt}, now {current_format}")
    sdks = block.get("sdk")
    for name, version in sdks.items() if isinstance(sdks, dict) else []:
        try:
            installed = metadata.version(str(name))
        except metadata.PackageNotFoundError:
            continue
        if _older(str(version), installed):
            reasons.append(f"sdk: recorded with {name} {version}, now {installed}")
    return reasons


def take(
    run: LlmportRun,
    items: Iterable[pytest.Item],
    deselected: Iterable[pytest.Item],
    selected: Iterable[str],
    today: dt.date | None = None,
) -> Inventory:
    """What the cassettes below the collected test modules' cassette folders look like."""
    inventory = Inventory()
    items, deselected = list(items), list(deselected)
    known: set[Path] = set()
    roots: set[Path] = set()
    for item in [*items, *deselected]:
        if not _is_marked(item):
            continue
        for provider in run.registry:
            path = run.paths.path_for(item, provider)
            known.add(path)
        roots.add(Path(item.path).parent / run.settings.cassette_dir / Path(item.path).stem)
    selected = set(selected)
    for item in items:
        from .config import ITEM_SETTINGS

        settings = item.stash.get(ITEM_SETTINGS, None)
        if settings is None or settings.provider not in selected or settings.skipped:
            continue
        name = settings.provider
        path = run.paths.path_for(item, name)
        if not path.is_file():
            inventory.missing.append((item.nodeid, name, path))
    for root in sorted(roots):
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            base = path.with_name(path.name.replace(".observations.json", ".yaml"))
            ours = path.suffix == ".yaml" or path.name.endswith(".observations.json")
            if ours and base not in known:
                inventory.orphans.append(path)
                continue
            if path.suffix == ".yaml":
                block = cassette_metadata(path)
                if block is None:
                    inventory.without_metadata += 1
                    continue
                reasons = why_outdated(block, run.settings.cassette_max_age, today)
                if reasons:
                    inventory.outdated[path] = reasons
    inventory.roots = sorted(roots)
    return inventory


def prune(inventory: Inventory, invocation: Iterable[str], roots: Iterable[Path]) -> None:
    """Delete the orphans, unless the run selected single tests (their siblings would look orphaned)."""
    if any("::" in arg for arg in invocation):
        inventory.refused = "the run selected tests by node id; prune from a run over whole files or folders"
        return
    roots = set(roots)
    for path in inventory.orphans:
        path.unlink(missing_ok=True)
        inventory.pruned.append(path)
    for path in inventory.orphans:  # test and case folders left empty, never the module's folder itself
        folder = path.parent
        while (
            folder not in roots
            and any(root in folder.parents for root in roots)
            and not any(folder.iterdir())
        ):
            folder.rmdir()
            folder = folder.parent


def main(argv: list[str]) -> int:
    """``python -m pytest_llmport cassettes [report|prune] [pytest arguments]``: collect only, then list."""
    mode = "report"
    if argv and argv[0] in ("report", "prune"):
        mode, argv = argv[0], argv[1:]
    elif argv and argv[0] in ("-h", "--help"):
        print(
            "usage: python -m pytest_llmport cassettes [report|prune] [pytest arguments]\n\n"
            "Collects the tests (nothing runs) and lists orphaned cassettes, marked tests without a\n"
            "cassette for a selected provider (--providers=...) and outdated cassettes; prune deletes\n"
            "the orphans."
        )
        return 0
    # A fresh interpreter: pytest must import (and assertion-rewrite) the plugin itself.
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist"]
    code = subprocess.call([*command, f"--llmport-cassettes={mode}", *argv])  # noqa: S603 - our own command
    return 0 if code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) else code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
