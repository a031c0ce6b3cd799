"""Prices per million tokens by provider and model, and the cost of one recorded exchange.

The built-in table is ``data/prices.toml`` (each figure with its currency, check date and public source);
``[tool.llmport.prices]`` overrides or extends it and sets the exchange rate. A model without a price has
an *unknown* cost, never zero: a missing price must not make a provider look free.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

CURRENCIES = ("USD", "CNY")
# An approximate rate, for display only; set [tool.llmport.prices] cny_per_usd to your own.
DEFAULT_CNY_PER_USD = 7.1
PRICE_FIELDS = ("input", "output", "cached_input")
TEXT_FIELDS = ("currency", "checked", "source")
WHERE = "[tool.llmport.prices]"
# Dated snapshots bill like their alias: gpt-4o-mini-2024-07-18, qwen-plus-2025-01-25, glm-4-0520.
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{6}|\d{4})$")


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    currency: str
    cached_input: float | None = None
    checked: str = ""
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""}


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, Mapping[str, Price]]
    cny_per_usd: float = DEFAULT_CNY_PER_USD

    def lookup(self, provider: str, *models: str | None) -> tuple[str, Price] | None:
        """The price of the first of ``models`` (served model first, then requested) that has one."""
        table = self.prices.get(provider, {})
        for exact in (True, False):
            for model in models:
                if not model:
                    continue
                name = model if exact else _SNAPSHOT.sub("", model)
                if name in table:
                    return name, table[name]
        return None

    def cost(self, provider: str, exchange: Mapping[str, Any]) -> dict[str, Any]:
        """``{"model", "usd", "cny"}`` for one exchange summary, or ``{"unknown": reason}``."""
        usage = exchange.get("usage") or {}
        prompt, completion = usage.get("prompt"), usage.get("completion")
        if prompt is None and completion is None:
            status = exchange.get("status")
            if isinstance(status, int) and status >= 400:
                return {"usd": 0.0, "cny": 0.0, "model": None}  # a refused request is not billed
            return {"unknown": "no token usage recorded"}
        found = self.lookup(provider, exchange.get("response_model"), exchange.get("request_model"))
        if found is None:
            model = exchange.get("response_model") or exchange.get("request_model") or "?"
            return {"unknown": f"no price for {provider} {model}"}
        model, price = found
        cached = min(int(usage.get("cached") or 0), int(prompt or 0))
        cached_price = price.input if price.cached_input is None else price.cached_input
        amount = (
            (int(prompt or 0) - cached) * price.input
            + cached * cached_price
            + int(completion or 0) * price.output
        ) / 1_000_000
        usd = amount if price.currency == "USD" else amount / self.cny_per_usd
        cny = amount if price.currency == "CNY" else amount * self.cny_per_usd
        return {"model": model, "usd": usd, "cny": cny}

    def describe(self) -> dict[str, Any]:
        """What the report records about the prices it used (merged reports must agree on it)."""
        return {
            "cny_per_usd": self.cny_per_usd,
            "models": {
                provider: {model: price.as_dict() for model, price in sorted(models.items())}
                for provider, models in sorted(self.prices.items())
            },
        }


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} = {value!r} is not a number; write a price per million tokens, e.g. 0.8")
    if value < 0:
        raise ConfigError(f"{where} = {value!r} is negative; a price per million tokens is 0 or more")
    return float(value)


def _entry(provider: str, model: str, entry: object, base: Price | None, source: str) -> Price:
    where = f'{source}.{provider}."{model}"'
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table with input, output and currency, got {entry!r}")
    unknown = sorted(set(entry) - set(PRICE_FIELDS) - set(TEXT_FIELDS))
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(PRICE_FIELDS + TEXT_FIELDS)}"
        )
    values: dict[str, Any] = {}
    for key in PRICE_FIELDS:
        if key in entry:
            values[key] = _number(entry[key], f"{where}.{key}")
    for key in TEXT_FIELDS:
        if key in entry:
            if not isinstance(entry[key], str):
                raise ConfigError(f"{where}.{key} = {entry[key]!r} must be a string")
            values[key] = entry[key]
    if "currency" in values and values["currency"] not in CURRENCIES:
        raise ConfigError(
            f"{where}.currency = {values['currency']!r} is not a known currency; use one of "
            f"{', '.join(CURRENCIES)}"
        )
    if base is not None:
        # An overridden figure is the user's, not the built-in source's.
        values.setdefault("source", "pyproject.toml")
        values.setdefault("checked", "")
        return replace(base, **values)
    missing = [key for key in ("input", "output", "currency") if key not in values]
    if missing:
        raise ConfigError(f"{where} is a new price but lacks {', '.join(missing)}")
    values.setdefault("source", "pyproject.toml")
    return Price(**values)


def builtin_table() -> dict[str, dict[str, Price]]:
    text = resources.files(__package__).joinpath("data/prices.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {
        provider: {
            model: _entry(provider, model, entry, None, "prices.toml") for model, entry in models.items()
        }
        for provider, models in data.items()
    }


def load(overrides: Mapping[str, Any] | None = None) -> PriceTable:
    """The built-in table with ``[tool.llmport.prices]`` applied; bad entries are a :class:`ConfigError`."""
    table = builtin_table()
    overrides = dict(overrides or {})
    rate = overrides.pop("cny_per_usd", DEFAULT_CNY_PER_USD)
    rate_value = _number(rate, f"{WHERE} cny_per_usd")
    if rate_value == 0:
        raise ConfigError(f"{WHERE} cny_per_usd = {rate!r} must be more than 0 (CNY for one USD, e.g. 7.1)")
    for provider, models in overrides.items():
        if not isinstance(models, Mapping):
            raise ConfigError(
                f"{WHERE}.{provider} must be a table of models, e.g. "
                f'[tool.llmport.prices.{provider}."model-name"] with input, output and currency'
            )
        current = table.setdefault(provider, {})
        for model, entry in models.items():
            current[model] = _entry(provider, model, entry, current.get(model), WHERE)
    return PriceTable(table, rate_value)
