"""Support-ticket triage for a Chinese e-commerce shop, built on the official ``openai`` SDK.

Works with any OpenAI-compatible provider: pass a client pointed at it and the model name::

    client = openai.OpenAI(base_url="https://open.bigmodel.cn/api/paas/v4", api_key=...)
    print(triage(client, "glm-4-flash", "我的订单 #A1234 已经三天了还没发货，怎么回事？"))
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, get_args

import openai

Category = Literal["shipping", "refund", "product_defect", "account", "other"]
Sentiment = Literal["negative", "neutral", "positive"]
CATEGORIES: tuple[Category, ...] = get_args(Category)
SENTIMENTS: tuple[Sentiment, ...] = get_args(Sentiment)

CLASSIFY_PROMPT = """你是电商客服工单分类助手。请把用户工单归入以下类别之一：
shipping（发货、物流、快递）
refund（退货、退款）
product_defect（商品质量问题、损坏、故障）
account（账号、登录、密码、验证码）
other（其他问题）
只回答类别的英文单词，不要任何解释或标点。"""

EXTRACT_PROMPT = """从用户工单中提取信息，只输出一个 JSON 对象，包含以下字段：
order_id：订单号字符串（如 "A1234"，不带 #），没有则为 null
days_waiting：用户已经等待的天数（整数），没有提到则为 null
product：涉及的商品名称，没有则为 null
sentiment：用户情绪，取 "negative"、"neutral"、"positive" 之一"""

REPLY_PROMPT = """你是一家电商平台的客服。请用礼貌、简洁的中文回复下面的用户工单：
先致歉或致谢，再说明下一步如何处理。不要编造物流或退款进度，回复不超过 120 字。"""

# Models that were told "no punctuation" still end with 。 or answer in full-width letters.
_STRAY = re.compile(r"[\s`'\"“”‘’.,;:!?。，、；：！？*]+")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class TicketFields:
    order_id: str | None
    days_waiting: int | None
    product: str | None
    sentiment: Sentiment


@dataclass(frozen=True)
class Triage:
    category: Category
    fields: TicketFields
    reply: str


def normalize_category(answer: str) -> Category:
    """Map a model's answer (``"SHIPPING。"``, ``" Refund\\n"``, ``"ｒｅｆｕｎｄ"``) to a category."""
    word = _STRAY.sub(" ", unicodedata.normalize("NFKC", answer)).strip().lower()
    word = re.sub(r"[\s-]+", "_", word)
    if word in CATEGORIES:
        return word
    # A chatty answer ("类别：refund") still names exactly one category somewhere.
    named = [category for category in CATEGORIES if category in word]
    return named[0] if len(named) == 1 else "other"


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: bare, inside a ```json fence, or after a lead-in sentence.

    ``response_format=json_object`` is advisory on several OpenAI-compatible providers, so the reply is
    not always pure JSON.
    """
    fenced = _FENCE.search(text)
    candidate = fenced.group(1) if fenced else text
    start = candidate.find("{")
    if start < 0:
        raise ValueError(f"no JSON object in the model's reply: {text[:80]!r}")
    value, _ = json.JSONDecoder().raw_decode(candidate[start:])
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _optional_text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lstrip("#＃").strip()
    return text or None


def _optional_int(value: object) -> int | None:
    # Some models quote numbers ("3"); bool is an int subclass and is never a day count.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def fields_from_json(data: dict[str, Any]) -> TicketFields:
    sentiment = str(data.get("sentiment") or "").strip().lower()
    return TicketFields(
        order_id=_optional_text(data.get("order_id")),
        days_waiting=_optional_int(data.get("days_waiting")),
        product=_optional_text(data.get("product")),
        sentiment=sentiment if sentiment in SENTIMENTS else "neutral",
    )


def _ask(client: openai.OpenAI, model: str, system: str, ticket: str, **options: Any) -> Any:
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": ticket}],
        temperature=0,
        **options,
    )


def classify(client: openai.OpenAI, model: str, ticket: str) -> Category:
    response = _ask(client, model, CLASSIFY_PROMPT, ticket, max_tokens=10)
    return normalize_category(response.choices[0].message.content or "")


def extract_fields(client: openai.OpenAI, model: str, ticket: str) -> TicketFields:
    response = _ask(client, model, EXTRACT_PROMPT, ticket, response_format={"type": "json_object"})
    return fields_from_json(parse_json_object(response.choices[0].message.content or ""))


def draft_reply(client: openai.OpenAI, model: str, ticket: str, *, stream: bool = False) -> str:
    if not stream:
        response = _ask(client, model, REPLY_PROMPT, ticket)
        return str(response.choices[0].message.content or "").strip()
    parts: list[str] = []
    with _ask(client, model, REPLY_PROMPT, ticket, stream=True) as chunks:
        for chunk in chunks:
            # Usage-only chunks at the end of a stream have no choices.
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    return "".join(parts).strip()


def triage(client: openai.OpenAI, model: str, ticket: str) -> Triage:
    return Triage(
        category=classify(client, model, ticket),
        fields=extract_fields(client, model, ticket),
        reply=draft_reply(client, model, ticket),
    )
