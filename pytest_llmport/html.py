"""``--llmport-html=PATH``: the migration report as one self-contained HTML page.

Everything is inline (styles, script, charts as SVG) so the file can be mailed or attached to a CI run and
opened offline. The verdicts and charts are rendered here, as HTML; the matrix and each cell's side-by-side
view are rendered by a small script from a JSON data island, a page of rows at a time, so a report of
10,000 tests x 5 providers opens quickly (see bench/html_report.py).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import string
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from typing import Any

from .outcome import KINDS
from .verdict import KIND_LABELS, NOTE_LABELS, Verdict, cell_notes, money, percentile, sampled_line, verdicts

# Nothing may load from anywhere: the page is complete as it is.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(f"data/{name}").read_text(encoding="utf-8")


def _island(data: object) -> str:
    # Every "<" escaped: the JSON can then never close the <script> element or open a comment.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _spread(values: list[float]) -> str:
    return f"p50 {_ms(percentile(values, 0.5))}, p95 {_ms(percentile(values, 0.95))}"


def _svg_open(name: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg class=chart role="img" aria-labelledby="{name}-t {name}-d" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">',
        f'<title id="{name}-t">{escape(title)}</title><desc id="{name}-d">{escape(desc)}</desc>',
    ]


def _verdict_card(verdict: Verdict) -> str:
    title = (
        f"{verdict.provider} <span class=badge>baseline</span>"
        if verdict.is_baseline
        else f"{escape(verdict.provider)} <span class=vs>vs {escape(verdict.baseline)}</span>"
    )
    ratio = f"{verdict.equivalent}/{verdict.compared}"
    word = "passed" if verdict.is_baseline else "equivalent"
    changes = [
        f"<li><a href='#matrix' data-provider='{escape(verdict.provider)}' data-kind='{kind}'>"
        f"{escape(KIND_LABELS.get(kind, kind))}: {verdict.kinds[kind]}</a></li>"
        for kind in [*KINDS, *sorted(set(verdict.kinds) - set(KINDS))]
        if kind != "passed" and verdict.kinds.get(kind)
    ]
    notes = [
        f"<li>{escape(NOTE_LABELS.get(note, note))}: {count}</li>"
        for note, count in sorted(verdict.notes.items())
    ]
    features = ", ".join(
        f"<span class='{'warn' if name in verdict.undeclared else ''}'>{escape(name)} ({count})</span>"
        for name, count in sorted(verdict.features.items())
    )
    undeclared = (
        f"<p class=warn>Used but not declared by {escape(verdict.provider)}: "
        f"{escape(', '.join(verdict.undeclared))}</p>"
        if verdict.undeclared
        else ""
    )
    tokens = verdict.tokens
    used_tokens = (
        f"{tokens.get('prompt', 0):,} in ({tokens.get('cached', 0):,} cached), "
        f"{tokens.get('completion', 0):,} out"
    )
    cells = ", ".join(f"{escape(k)} {v}" for k, v in sorted(verdict.cassettes.items()))
    return f"""<article class=card aria-labelledby="v-{escape(verdict.provider)}">
<h3 id="v-{escape(verdict.provider)}">{title}</h3>
<p class=big><strong>{ratio}</strong> {word}</p>
<h4>Changes</h4><ul class=changes>{"".join(changes) or "<li>none</li>"}</ul>
{f"<h4>Notes</h4><ul>{''.join(notes)}</ul>" if notes else ""}
<dl>
<dt>First token</dt><dd>{_spread(verdict.ttft_ms)}</dd>
<dt>Total</dt><dd>{_spread(verdict.total_ms)}</dd>
<dt>Tokens</dt><dd>{used_tokens}</dd>
<dt>Cost</dt><dd>{escape(money(verdict))}</dd>
<dt>Features used</dt><dd>{features or "none"}</dd>
<dt>Declared</dt><dd>{escape(", ".join(verdict.declared) or "nothing")}</dd>
{f"<dt>Cells</dt><dd>{cells}</dd>" if cells else ""}
{f"<dt>Samples</dt><dd>{escape(sampled_line(verdict.sampled))}</dd>" if verdict.sampled else ""}
</dl>{undeclared}
</article>"""


def _latency_chart(items: Sequence[Verdict]) -> str:
    """One histogram per provider of total latency, on shared logarithmic bins."""
    values = [v for verdict in items for v in verdict.total_ms if v > 0]
    if not values:
        return "<p>No latency recorded.</p>"
    low, high = math.log10(min(values)), math.log10(max(values))
    bins = 16
    span = (high - low) or 1.0
    width, row, label = 420, 34, 90
    height = row * len(items) + 24
    desc = "; ".join(f"{v.provider}: {_spread(v.total_ms)}" for v in items)
    parts = _svg_open("lat", "Total latency per provider", desc, width + label + 200, height)
    for index, verdict in enumerate(items):
        counts = [0] * bins
        for value in verdict.total_ms:
            if value > 0:
                counts[min(bins - 1, int((math.log10(value) - low) / span * bins))] += 1
        top = max(counts) or 1
        y = index * row + 4
        parts.append(f'<text x="0" y="{y + 18}" class=lbl>{escape(verdict.provider)}</text>')
        for b, count in enumerate(counts):
            h = 26 * count / top
            if count:
                x = label + b * width / bins
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 26 - h:.1f}" width="{width / bins - 2:.1f}" height="{h:.1f}" '
                    f"class=bar><title>{count} exchanges</title></rect>"
                )
        p50, p95 = percentile(verdict.total_ms, 0.5), percentile(verdict.total_ms, 0.95)
        parts.append(
            f'<text x="{label + width + 8}" y="{y + 18}" class=lbl>p50 {_ms(p50)} · p95 {_ms(p95)}</text>'
        )
    parts.append(f'<text x="{label}" y="{height - 4}" class=axis>{_ms(10**low)}</text>')
    parts.append(
        f'<text x="{label + width}" y="{height - 4}" class=axis text-anchor="end">'
        f"{_ms(10**high)} (log scale)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _cost_chart(items: Sequence[Verdict]) -> str:
    known = [v.cost_usd for v in items if not (v.exchanges and v.cost_unknown == v.exchanges)]
    top = max(known, default=0.0) or 1.0
    width, row, label = 360, 26, 90
    height = row * len(items) + 6
    desc = "; ".join(f"{v.provider}: {money(v)}" for v in items)
    parts = _svg_open("cost", "Cost per provider (USD)", desc, width + label + 260, height)
    for index, verdict in enumerate(items):
        y = index * row + 4
        parts.append(f'<text x="0" y="{y + 15}" class=lbl>{escape(verdict.provider)}</text>')
        unknown = verdict.exchanges and verdict.cost_unknown == verdict.exchanges
        if not unknown:
            w = max(1.0, width * verdict.cost_usd / top)
            parts.append(f'<rect x="{label}" y="{y + 2}" width="{w:.1f}" height="16" class=bar />')
        text = (
            "unknown"
            if unknown
            else f"${verdict.cost_usd:.6f}" + (" + unknown" if verdict.cost_unknown else "")
        )
        parts.append(f'<text x="{label + width + 8}" y="{y + 15}" class=lbl>{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


CHUNK = 500  # tests per compressed detail block: one block is unpacked when one of its cells opens


def page_data(report: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The matrix island (what the first screen needs) and the detail blocks, gzip + base64, by test chunk.

    The matrix holds per cell only its kind, word and notes; everything else (observations, answers,
    checks, exchanges) waits, compressed, until a cell of its chunk is opened. The page then parses a few
    hundred kilobytes when it opens, whatever the size of the report.
    """
    from .report import Cell

    providers = [str(p) for p in report.get("providers") or []]
    tests = report.get("tests") or {}
    labels = sorted(tests)
    kinds = [
        *KINDS,
        *sorted({str(c.get("kind")) for row in tests.values() for c in row.values()} - set(KINDS)),
    ]
    index = {kind: i for i, kind in enumerate(kinds)}
    rows: list[list[Any]] = []
    for label in labels:
        row: list[Any] = []
        for provider in providers:
            cell = tests[label].get(provider)
            if cell is None:
                row.append(0)
                continue
            notes = cell_notes(cell)
            entry: list[Any] = [index[str(cell.get("kind"))], Cell.from_dict(cell).word()]
            if notes:
                entry.append(notes)
            row.append(entry)
        rows.append(row)
    blocks = []
    for start in range(0, len(labels), CHUNK):
        chunk = {label: tests[label] for label in labels[start : start + CHUNK]}
        raw = json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        # mtime=0: the same report gives the same page, byte for byte.
        blocks.append(base64.b64encode(gzip.compress(raw, compresslevel=1, mtime=0)).decode("ascii"))
    matrix = {
        "providers": providers,
        "baseline": str(report.get("baseline") or ""),
        "kinds": kinds,
        "kindLabels": {kind: KIND_LABELS.get(kind, kind) for kind in kinds},
        "labels": labels,
        "cells": rows,
        "chunk": CHUNK,
    }
    return matrix, blocks


def render_html(report: Mapping[str, Any]) -> str:
    items = verdicts(report)
    rate = (report.get("prices") or {}).get("cny_per_usd")
    providers = [str(p) for p in report.get("providers") or []]
    options = "".join(f"<option value='{escape(p)}'>{escape(p)}</option>" for p in providers)
    kinds = "".join(
        f"<option value='{kind}'>{escape(KIND_LABELS.get(kind, kind))}</option>"
        for kind in KINDS
        if kind != "passed"
    )
    tests = len(report.get("tests") or {})
    matrix, blocks = page_data(report)
    page = string.Template(_asset("report.html"))
    return page.substitute(
        baseline=escape(str(report.get("baseline"))),
        summary=escape(
            f"{tests:,} tests · {len(providers)} providers · pytest-llmport {report.get('plugin', '')} · "
            f"report format {report.get('version', '')}"
        ),
        csp=CSP,
        css=_asset("report.css"),
        cards="".join(_verdict_card(v) for v in items),
        rate=f", at {rate} CNY per USD" if rate else "",
        latency=_latency_chart(items),
        cost=_cost_chart(items),
        providers=options,
        kinds=kinds,
        data=_island(matrix),
        details="".join(
            f'<script type="application/gzip-base64" id="detail-{i}">{block}</script>\n'
            for i, block in enumerate(blocks)
        ),
        script=_asset("report.js"),
    )
