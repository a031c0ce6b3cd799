"""Log records never carry a known secret, nor the prefix of one an SDK prints to "mask" it.

qianfan logs ``trying to refresh access_token for ak `<first 6 characters>***``` at INFO while it
exchanges its AK/SK for a token (``trying to refresh token for ak ...``): pytest shows that in a failing test's "Captured log" section, in
``caplog`` and with live logging. Recorded with the real qianfan SDK through the fake ERNIE provider.
"""

from __future__ import annotations

import logging

import pytest

from pytest_llmport.redaction import LogScrubber, Redaction
from pytest_llmport.testing import FakeProvider

from .conftest import KEY, RunModes

pytest.importorskip("qianfan")

SECRET = "qianfan-secret-key-0123456789"  # QIANFAN_SK, the OAuth client secret
PREFIX = KEY[:6]  # what qianfan prints of the AK

APP = """
import logging

import qianfan

PROMPT = [{"role": "user", "content": "我的订单三天了还没发货"}]


def test_chat_fails_after_the_token_exchange(llm_provider):
    chat = qianfan.ChatCompletion(endpoint=llm_provider.model)
    assert chat.do(messages=PROMPT).body["result"].endswith("还没发货")
    logging.getLogger("app").warning("calling with key %s", llm_provider.api_key)
    assert False, "the app's own failure"


def test_caplog_holds_no_secret(llm_provider, caplog):
    caplog.set_level(logging.INFO)
    chat = qianfan.ChatCompletion(endpoint=llm_provider.model)
    chat.do(messages=PROMPT)
    logging.getLogger("app").warning("calling with key %s", llm_provider.api_key)
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "token for ak `" in text and "calling with key" in text
    assert llm_provider.api_key[:6] not in text and llm_provider.api_key not in text
"""


@pytest.fixture
def ernie(monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    server = FakeProvider(api_key=KEY, dialect="ernie")
    server.start()
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("LLMPORT_ERNIE_NATIVE_BASE_URL", server.url)
    monkeypatch.setenv("QIANFAN_AK", KEY)
    monkeypatch.setenv("QIANFAN_SK", SECRET)
    yield server
    server.stop()


def marked(source: str) -> str:
    return "import pytest\n" + source.replace(
        "\ndef test_", "\n@pytest.mark.llm_portable(providers=['ernie-native'])\ndef test_"
    )


def leaks(result: pytest.RunResult) -> list[str]:
    out = result.stdout.str() + result.stderr.str()
    assert "token for ak `" in out, out  # the SDK's line is kept, without the prefix
    assert "calling with key" in out
    return [secret for secret in (KEY, SECRET, PREFIX) if secret in out]


def test_no_captured_log_or_stderr_shows_the_key_or_its_printed_prefix(
    pytester: pytest.Pytester, ernie: FakeProvider, run_modes: RunModes
) -> None:
    pytester.makepyfile(test_app=marked(APP))
    result = run_modes("--providers=ernie-native", "-p", "no:cacheprovider", subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Captured stderr call*", "*Captured log call*"], consecutive=False)
    assert leaks(result) == []


def test_live_logging_shows_neither_the_key_nor_its_printed_prefix(
    pytester: pytest.Pytester, ernie: FakeProvider
) -> None:
    pytester.makepyfile(test_app=marked(APP))
    result = pytester.runpytest_subprocess(
        "--providers=ernie-native", "-p", "no:cacheprovider", "--log-cli-level=INFO"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*live log call*"])
    assert leaks(result) == []


def test_a_masked_prefix_is_redacted_only_when_it_starts_a_known_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_llmport.providers import BUILTIN_PROVIDERS

    monkeypatch.setenv("QIANFAN_AK", KEY)
    redaction = Redaction(BUILTIN_PROVIDERS)
    redaction.scrubber()
    record = logging.LogRecord("qianfan", logging.INFO, __file__, 1, "for ak `%s`", (f"{PREFIX}***",), None)
    other = logging.LogRecord("app", logging.INFO, __file__, 1, "progress %d%% of `abcdef***`", (42,), None)
    scrub = LogScrubber(redaction)
    assert scrub.filter(record) and scrub.filter(other)
    assert PREFIX not in record.getMessage() and "for ak `" in record.getMessage()
    assert other.getMessage() == "progress 42% of `abcdef***`"
