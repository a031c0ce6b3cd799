"""``python -m pytest_llmport merge a.json b.json ... [--html PATH] [--json PATH]``: one report from shards.

CI scales out by running one job per provider (or per shard); each writes ``--llmport-report``. Merging
gives what a single run over all providers would have written. Reports from another format version, with
another baseline or other prices cannot be merged; the same cell reported differently by two inputs is a
conflict: each is named, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .report import REPORT_FORMAT, REPORT_VERSION, Matrix, dump, schema_errors, write_atomic
from .samples import combine, shortfalls, unreported


class MergeError(Exception):
    """The inputs cannot be merged; the message names every problem."""


def load(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MergeError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MergeError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise MergeError(f"{path}: not a pytest-llmport report (written with --llmport-report=PATH?)")
    if report.get("version") != REPORT_VERSION:
        raise MergeError(
            f"{path}: report format version {report.get('version')!r}, but this pytest-llmport reads version "
            f"{REPORT_VERSION}; re-run that shard with the same pytest-llmport as the others"
        )
    errors = schema_errors(report)
    if errors:
        raise MergeError(f"{path}: does not match the report schema:\n  " + "\n  ".join(errors[:10]))
    return report


def merge(reports: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Combine reports (name, report) into one; :class:`MergeError` lists every incompatibility."""
    if not reports:
        raise MergeError("give at least one report to merge")
    problems: list[str] = []
    first_name, first = reports[0]
    for name, report in reports[1:]:
        if report["baseline"] != first["baseline"]:
            problems.append(
                f"{name} compares against baseline {report['baseline']!r}, {first_name} against "
                f"{first['baseline']!r}: merge reports of the same baseline"
            )
        if report.get("prices") != first.get("prices"):
            problems.append(
                f"{name} and {first_name} were priced with different tables or exchange rates "
                f"([tool.llmport.prices]): run every shard with the same configuration"
            )
    providers: list[str] = []
    capabilities: dict[str, list[str]] = {}
    owner: dict[tuple[str, str], str] = {}
    tests: dict[str, dict[str, Any]] = {}
    # A samples=N cell, by (test, provider): every distinct report of it, one per shard of its samples.
    sampled: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for name, report in reports:
        for provider in report["providers"]:
            if provider not in providers:
                providers.append(provider)
        for provider, declared in (report.get("capabilities") or {}).items():
            known = capabilities.setdefault(provider, declared)
            if known != declared:
                problems.append(f"{name} declares other capabilities for {provider} than an earlier report")
        for label, row in report["tests"].items():
            merged_row = tests.setdefault(label, {})
            for provider, cell in row.items():
                key = (label, provider)
                if key in owner and merged_row[provider] == cell:
                    continue  # the same cell twice (a report given twice): no conflict
                if cell.get("samples") and (key not in owner or merged_row[provider].get("samples")):
                    sampled.setdefault(key, []).append((name, cell))
                elif key in owner:
                    problems.append(
                        f"{label} [{provider}] differs between {owner[key]} and {name} "
                        f"(outcome {merged_row[provider]['outcome']} vs {cell['outcome']}): "
                        f"keep one shard per test and provider"
                    )
                    continue
                owner.setdefault(key, name)
                merged_row[provider] = cell
    for (label, provider), parts in sampled.items():
        # Shards may split a test's samples: its pass rate is counted again over all of them, and the
        # pass_rate gate decided as the run decides it (samples.combine), never copied from one shard.
        try:
            tests[label][provider] = combine(parts, f"{label} [{provider}]")
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise MergeError("\n".join(problems))
    plugins = sorted({str(report["plugin"]) for _, report in reports})
    merged: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "plugin": ", ".join(plugins),
        "providers": providers,
        "baseline": first["baseline"],
    }
    if any("capabilities" in report for _, report in reports):
        merged["capabilities"] = {p: capabilities.get(p, []) for p in providers}
    if "prices" in first:
        merged["prices"] = first["prices"]
    merged["merged_from"] = [name for name, _ in reports]
    merged["tests"] = {label: tests[label] for label in sorted(tests)}
    return merged


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmport merge",
        description="Combine --llmport-report JSON files from separate runs (CI shards) into one report.",
    )
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="write the merged JSON report")
    parser.add_argument("--html", dest="html_path", metavar="PATH", help="write the merged HTML report")
    parser.add_argument("--matrix", default="50", metavar="ROWS|all", help="rows of the printed matrix")
    args = parser.parse_args(argv)
    try:
        merged = merge([(str(path), load(path)) for path in args.reports])
        from .html import render_html
        from .verdict import render

        # Everything is rendered before anything is written: a bad input leaves no file behind.
        outputs = []
        if args.json_path:
            outputs.append((args.json_path, dump(merged), "merged JSON report"))
        if args.html_path:
            outputs.append((args.html_path, render_html(merged), "merged HTML report"))
        for path, text, what in outputs:
            write_atomic(path, text, what)
    except (MergeError, ConfigError) as exc:
        print(f"merge: {exc}", file=sys.stderr)
        return 1
    rows = None if args.matrix == "all" else int(args.matrix) if args.matrix.isdigit() else 50
    print(f"== verdict per provider (baseline {merged['baseline']}, {len(args.reports)} reports merged)")
    print("\n".join(render(merged)))
    matrix = Matrix.from_report(merged)
    print("== portability matrix")
    print("\n".join(matrix.render(rows)))
    short = shortfalls(matrix.cells)
    if short:
        print("== pass rate below pass_rate (the run fails)")
        print("\n".join(short))
    absent = unreported(matrix.cells)
    if absent:
        print("== samples missing from the merged reports")
        print("\n".join(absent))
    return 0
