"""The run's secrets: which key variables it knows, the scrubbers built from them, and the scrubbing of
reports, test ids and messages (the rules themselves are :mod:`pytest_llmport.scrub`'s).

One :class:`Redaction` lives for the run. Scrubbers are cached by the secrets they hold, so the tests of
a run that all see the same keys share one; the output scrubber also keeps every key seen earlier in the
run, because a key a test set and removed again still leaves traces in what outlives the test.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .environ import environment_reader as environment_reader
from .environ import environment_snapshot
from .placeholders import PLACEHOLDER_KEYS

if TYPE_CHECKING:
    from .providers import Provider
    from .scrub import Scrubber


class Redaction:
    """The run-wide scrubber caches: per-recording scrubbers, the output scrubber, shape redaction."""

    def __init__(self, providers: Collection[Provider], secret_env: Collection[str] = ()) -> None:
        self._providers = providers  # read at the first scrubber, as the registry is then
        self._secret_env = secret_env
        self._scrubbers: dict[frozenset[tuple[str, str]], Scrubber] = {}
        self._names: list[str] | None = None
        self._read: Callable[[], dict[str, str]] = dict
        self._snapshot: Callable[[], tuple[Any, ...]] = tuple
        # The scrubber of each state of the key variables (and hook secrets) seen: a test finds its own
        # without reading the variables one by one.
        self._by_snapshot: dict[tuple[Any, ...], Scrubber] = {}
        # Every key value a scrubber of this run was built with (value -> variable).
        self._seen: dict[str, str] = {}
        self._output: tuple[int, Scrubber] | None = None
        self._passwords: list[tuple[str, str]] = []

    def scrubber(self, extra_key: str = "", extra: Mapping[str, str] | None = None) -> Scrubber:
        """The scrubber for what one test records: every key variable set now, ``extra_key`` and ``extra``
        (a configure_recording hook's secrets, by name)."""
        if self._names is None:
            # Every variable that holds a secret: the providers' key variables and ``secret_env``.
            names = {spec.api_key_env for spec in self._providers}
            names |= {spec.secret_key_env for spec in self._providers if spec.secret_key_env}
            self._names = sorted(names | set(self._secret_env))
            self._read = environment_reader(self._names)
            self._snapshot = environment_snapshot(self._names)
            self._passwords = gateway_passwords(self._providers)
        state = (self._snapshot(), extra_key, tuple(extra.items()) if extra else ())
        known = self._by_snapshot.get(state)
        if known is not None:
            return known
        secrets = self._read()
        for name, value in self._passwords:
            secrets.setdefault(name, value)
        if extra_key and extra_key not in PLACEHOLDER_KEYS:
            secrets.setdefault("API_KEY", extra_key)
        for name, value in (extra or {}).items():
            secrets.setdefault(name, value)
        cache_key = frozenset(secrets.items())
        scrubber = self._scrubbers.get(cache_key)
        if scrubber is None:
            from .scrub import Scrubber

            scrubber = self._scrubbers[cache_key] = Scrubber(secrets)
            for name, value in secrets.items():
                self._seen.setdefault(value, name)
        if len(self._by_snapshot) >= 1024:  # a suite that sets a new key per test: keep it small
            self._by_snapshot.clear()
        self._by_snapshot[state] = scrubber
        return scrubber

    def output(self, refresh: bool = True) -> Scrubber:
        """The scrubber for what the plugin writes or prints: every key seen in this run, and those set now.

        A key a test set and removed again (``monkeypatch.setenv``) still leaves its traces in the
        failure text and report data that outlive the test. ``refresh=False`` skips reading the
        environment again (it costs more than the scrubbing of a passed test's report).
        """
        from .scrub import Scrubber

        if refresh or self._output is None:
            self.scrubber()  # registers the keys set now
        if self._output is None or self._output[0] != len(self._seen):
            pairs = [(name, value) for value, name in self._seen.items()]
            self._output = (len(self._seen), Scrubber(pairs))
        return self._output[1]

    def known(self) -> list[tuple[str, str]]:
        """What ``--llmport-scan`` looks for, as (variable, value): the key variables set now (once a
        scrubber was built) and every secret this run's scrubbers were built with."""
        from .scan import known_secrets

        return [*known_secrets(self._names or ()).items(), *((n, v) for v, n in self._seen.items())]

    def is_secret(self, text: str) -> bool:
        """True when ``text`` holds a known key or has the shape of a provider's credential."""
        return self.redact(text) != text

    def redact(self, text: str) -> str:
        """``text`` with known keys and credential-shaped strings replaced by their markers."""
        from .scan import redact_shapes

        return redact_shapes(self.output().text(text))

    def clean_record(self, record: logging.LogRecord) -> None:
        """Take known keys, and the masked prefixes SDKs print of them, out of a log record (in place).

        Nothing before this run's first scrubber: until then no secret is known.
        """
        if not self._seen:
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format is logging's to report, when a handler formats it
            return
        clean = self.output(refresh=False).text(message)
        if "**" in clean:
            clean = _MASKED.sub(self._unmask, clean)
        if clean != message:
            record.msg, record.args = clean, None

    def _unmask(self, match: re.Match[str]) -> str:
        # The shown part may follow other characters (``ak=sk-llm***``): its longest tail that starts a
        # known secret is the prefix.
        from .placeholders import marker
        from .scrub import MIN_SECRET

        shown = match.group(1)
        for start in range(len(shown) - _MIN_PREFIX + 1):
            tail = shown[start:]
            for value, name in self._seen.items():
                if len(value) >= MIN_SECRET and value not in PLACEHOLDER_KEYS and value.startswith(tail):
                    return shown[:start] + marker(name) + match.group(2)
        return match.group(0)

    def scrub_report(
        self,
        report: pytest.TestReport,
        scrubber: Scrubber | None = None,
        clean: Collection[tuple[str, Any]] = (),
    ) -> None:
        """Take the secrets out of a marked test's report: failure text, captured output, properties.

        The plugin's own report data was scrubbed when the report hook completed it
        (``LlmportRun.report_data``), and so were the JUnit properties built from it: ``clean`` holds
        those (the very tuples), which are kept as they are. ``scrubber``: the output scrubber the caller
        has just taken (:meth:`output`), so the environment is not read again.
        """
        wasxfail = getattr(report, "wasxfail", None)
        if report.longrepr is None and not report.sections and not report.user_properties and not wasxfail:
            return  # most phases of a passing test: nothing to read (checked before any set is built)
        from .report import PROPERTY

        ours = {id(prop) for prop in clean}  # the very tuples: a user's property of the same text is not

        def built_here(prop: tuple[str, Any]) -> bool:
            return prop[0] == PROPERTY or id(prop) in ours

        properties = [prop for prop in report.user_properties if not built_here(prop)]
        if report.longrepr is None and not report.sections and not properties and not wasxfail:
            return  # a passed phase with no output: nothing to read
        scrubber = scrubber or self.output()
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
            report.longrepr = (longrepr[0], longrepr[1], scrubber.text(str(longrepr[2])))
        elif longrepr is not None:
            text = report.longreprtext
            clean_text = scrubber.text(text)
            if clean_text != text:
                report.longrepr = clean_text  # pytest prints a text longrepr as it is; JUnit XML writes it
        report.sections = [(title, scrubber.text(content)) for title, content in report.sections]
        report.user_properties = [
            prop if built_here(prop) else (prop[0], scrubber.value(prop[1]))
            for prop in report.user_properties
        ]
        if isinstance(wasxfail, str):
            report.wasxfail = scrubber.text(wasxfail)


class WarningScrubber:
    """Takes known keys out of a warning before pytest's warnings summary or xdist's channel reads it.

    A plugin object of its own: ``pytest_warning_recorded`` gets no ``config`` to find the run with.
    """

    def __init__(self, redaction: Redaction) -> None:
        self.redaction = redaction

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        text = str(warning_message.message)
        clean = self.redaction.output().text(text)
        if clean != text:
            # A plain Warning holding the clean text: the app's own instance may be in use elsewhere, and
            # its class may need other arguments or format itself. The category (printed) stays.
            warning_message.message = Warning(clean)


# How SDKs mask a key they log: its first characters, then asterisks (qianfan: ``ak `sk-llm***```).
_MASKED = re.compile(r"([\w.\-]+)(\*{2,})")
_MIN_PREFIX = 4  # fewer characters of a key say nothing about it (and would match too much)


class LogScrubber(logging.Filter):
    """Takes known keys and their printed prefixes out of log records before anything shows them.

    A plugin object of its own, like :class:`WarningScrubber`. At session start it filters pytest's log
    handlers (``caplog``, the report's "Captured log" section, live logging, the log file), and the
    loggers of SDKs that log a key's prefix and print their records themselves (qianfan's own stderr
    handler, shown as "Captured stderr"); at unconfigure it lets go. Records are cleaned in place, so
    every handler after the first sees the clean one.
    """

    SDK_LOGGERS = ("qianfan",)
    HANDLERS = ("caplog_handler", "report_handler", "log_cli_handler", "log_file_handler")

    def __init__(self, redaction: Redaction) -> None:
        super().__init__()
        self.redaction = redaction
        self._attached: list[logging.Filterer] = []

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        plugin = session.config.pluginmanager.get_plugin("logging-plugin")
        targets = [getattr(plugin, name, None) for name in self.HANDLERS]
        targets += [logging.getLogger(name) for name in self.SDK_LOGGERS]
        for target in targets:
            if isinstance(target, logging.Filterer) and self not in target.filters:
                target.addFilter(self)
                self._attached.append(target)

    def pytest_unconfigure(self) -> None:
        for target in self._attached:
            target.removeFilter(self)
        self._attached.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        self.redaction.clean_record(record)
        return True


def gateway_passwords(providers: Collection[Provider]) -> list[tuple[str, str]]:
    """The passwords in providers' base URLs (a gateway's ``user:password@host``), as (variable, value).

    They are secrets like the keys: an app that prints ``llm_provider.base_url`` would print them. The
    decoded value, as for a key: the scrubber finds its percent-encoded and escaped spellings too.
    """
    from urllib.parse import unquote, urlsplit

    found = []
    for spec in providers:
        try:
            password = urlsplit(spec.base_url).password
        except ValueError:
            continue
        if password:
            found.append((f"{spec.env_prefix}_BASE_URL", unquote(password)))
    return found
