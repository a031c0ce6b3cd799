"""``--llmport-html``: one self-contained page, checked in a real headless Chromium.

Screenshots land in ``$LLMPORT_SCREENSHOTS`` when set (CI keeps them), else in the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmport.html import _island, render_html

from .browser import Browser, chromium_path, must_run_browser
from .report_suite import SUITE


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if chromium_path() is None:
        if must_run_browser():
            pytest.fail("LLMPORT_REQUIRE_BROWSER=1 but there is no chromium: apt-get install -y chromium")
        pytest.skip("no chromium on this machine (CI installs it: see .ci/run)")
    with Browser() as chromium:
        yield chromium


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LLMPORT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def make_report(pytester: pytest.Pytester, *args: str) -> Path:
    pytester.makepyfile(test_app=SUITE)
    pytester.runpytest("--providers=openai").assert_outcomes(passed=5)
    result = pytester.runpytest(
        "--providers=openai,zhipu,qwen", "--llmport-html=report.html", "--llmport-report=report.json", *args
    )
    result.assert_outcomes(passed=13, failed=2)
    return pytester.path / "report.html"


def test_the_page_is_self_contained(
    pytester: pytest.Pytester, llm_env: object, xdist_args: list[str]
) -> None:
    page = make_report(pytester, *xdist_args).read_text(encoding="utf-8")  # from what workers sent, too
    assert not re.search(r"<(?:script|img|link|iframe)[^>]+(?:src|href)=", page)
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # the page itself forbids any load
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    assert render_html(report) == page  # the same page from the JSON report (what merge --html does)


def test_data_cannot_close_the_script_element() -> None:
    text = _island({"answer": "</script><script>alert(1)</script><!--"})
    assert "</" not in text and "<!--" not in text
    assert json.loads(text) == {"answer": "</script><script>alert(1)</script><!--"}


def test_in_chromium_filters_work_and_a_cell_opens_side_by_side(
    pytester: pytest.Pytester, llm_env: object, browser: Browser, shots: Path
) -> None:
    page = make_report(pytester)
    browser.open(page)
    assert browser.evaluate("performance.getEntriesByType('resource').length") == 0  # nothing loaded
    assert browser.evaluate("document.querySelectorAll('.card').length") == 3
    assert browser.evaluate("document.querySelectorAll('#grid tbody tr').length") == 5
    browser.screenshot(shots / "report-light.png")

    def select(element: str, value: str) -> None:
        browser.evaluate(
            f"(() => {{ const e = document.getElementById({element!r}); e.value = {value!r};"
            f" e.dispatchEvent(new Event(e.tagName === 'INPUT' ? 'input' : 'change')); }})()"
        )

    def rows() -> list[str]:
        value: list[str] = browser.evaluate(
            "Array.from(document.querySelectorAll('#grid tbody th')).map(e => e.textContent)"
        )
        return value

    select("f-provider", "zhipu")
    assert browser.evaluate(
        "Array.from(document.querySelectorAll('#grid thead th')).map(e => e.textContent)"
    ) == [
        "test",
        "openai (baseline)",
        "zhipu",
    ]
    select("f-kind", "app-failure")
    assert rows() == ["test_app.py::test_parse"]
    assert browser.evaluate("document.getElementById('status').textContent").startswith("1 of 5 tests match")
    select("f-provider", "")
    select("f-kind", "changed")
    assert rows() == ["test_app.py::test_parse", "test_app.py::test_reply"]
    select("f-kind", "")
    select("f-test", "case")
    browser.evaluate("new Promise(r => setTimeout(r, 300))")  # the name filter waits for typing to pause
    assert rows() == ["test_app.py::test_case[a]", "test_app.py::test_case[b]", "test_app.py::test_case[c]"]
    select("f-test", "")
    browser.evaluate("new Promise(r => setTimeout(r, 300))")

    # Keyboard: focus qwen's test_reply cell and press Enter.
    browser.evaluate(
        'document.querySelector(\'button[data-p="qwen"][aria-label^="test_app.py::test_reply "]\').focus()'
    )
    for kind in ("keyDown", "keyUp"):
        browser.send(
            "Input.dispatchKeyEvent",
            type=kind,
            key="Enter",
            code="Enter",
            windowsVirtualKeyCode=13,
            text="\r",
        )
    browser.wait_until("document.getElementById('detail').open")  # its detail block is unpacked first
    assert browser.evaluate("document.activeElement.id") == "close"
    body = browser.evaluate("document.getElementById('detail-body').innerHTML")
    assert "Outputs side by side" in body
    assert re.search(r"<del>[^<]*\[fake\][^<]*</del>", body)  # what only the baseline said
    assert re.search(
        r"<ins>[^<]*您好[^<]*</ins>", body
    )  # what only qwen said, compared character by character
    assert "0.61" in body  # the threshold beside the score
    assert "gpt-4o-mini" in body and "qwen-plus" in body  # each exchange's model
    browser.screenshot(shots / "report-cell.png")
    for kind in ("keyDown", "keyUp"):
        browser.send(
            "Input.dispatchKeyEvent", type=kind, key="Escape", code="Escape", windowsVirtualKeyCode=27
        )
    assert browser.evaluate("document.getElementById('detail').open") is False
    assert "test_reply" in browser.evaluate("document.activeElement.getAttribute('aria-label')")

    browser.dark(True)
    browser.screenshot(shots / "report-dark.png")
    assert browser.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
    browser.dark(False)
    assert browser.errors() == []


def test_the_character_diff_compares_chinese_and_emoji_whole(
    pytester: pytest.Pytester, llm_env: object, browser: Browser
) -> None:
    browser.open(make_report(pytester))
    assert browser.evaluate("llmportDiff('退款申请', '退货申请')") == [
        [0, "退"],
        [-1, "款"],
        [1, "货"],
        [0, "申"],
        [0, "请"],
    ]
    assert browser.evaluate("llmportDiff('好👍🏽', '好👍')") == [[0, "好"], [-1, "👍🏽"], [1, "👍"]]
    assert browser.evaluate("llmportDiff('', 'abc')") == [[1, "a"], [1, "b"], [1, "c"]]
    assert browser.errors() == []
