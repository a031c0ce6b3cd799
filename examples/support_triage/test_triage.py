"""The triage app's tests, run once per provider and replayed from cassettes.

Assertions check behaviour (the right category, the order id, a Chinese reply), not exact wording, so
the same suite holds on every provider and after re-recording against the real services.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import openai
import pytest
from triage import (
    TicketFields,
    classify,
    draft_reply,
    extract_fields,
    fields_from_json,
    normalize_category,
    parse_json_object,
    triage,
)

from pytest_llmport import LLMProvider
from pytest_llmport.equivalence import Equivalence

# Replies drafted by different providers share the facts but not the wording; 0.61 (the default, chosen
# on sentence-pair benchmarks) is meant for near-paraphrases, so the reply check is looser.
THRESHOLD = 0.5


@dataclass(frozen=True)
class Ticket:
    text: str
    category: str
    order_id: str | None
    days_waiting: int | None


# Keyed by a short ASCII name, which also names each case's cassette folder.
TICKETS = {
    "late_shipment": Ticket("我的订单 #A1234 已经三天了还没发货，怎么回事？", "shipping", "A1234", 3),
    "refund": Ticket("订单 B5678 的连衣裙尺码偏小，我想退货退款，请问怎么操作？", "refund", "B5678", None),
    "broken_kettle": Ticket(
        "上周收到的电热水壶（订单号 C9012）今天突然不加热了，质量太差了！", "product_defect", "C9012", None
    ),
    "login": Ticket("手机号换了，收不到验证码，现在登录不了账号，着急用。", "account", None, None),
    "invoice": Ticket("你们店铺可以开增值税专用发票吗？谢谢。", "other", None, None),
}
WITH_ORDER = [name for name, ticket in TICKETS.items() if ticket.order_id]
CJK = re.compile(r"[\u4e00-\u9fff]")


def assert_polite_chinese_reply(reply: str) -> None:
    assert len(CJK.findall(reply)) >= 10, reply
    assert "您" in reply, reply  # the polite form of address
    assert not reply.lstrip().startswith(("{", "```")), reply


@pytest.mark.llm_portable
@pytest.mark.parametrize("case", list(TICKETS))
def test_classify(llm_provider: LLMProvider, case: str) -> None:
    ticket = TICKETS[case]
    assert classify(llm_provider.openai_client(), llm_provider.model, ticket.text) == ticket.category


@pytest.mark.llm_portable
@pytest.mark.parametrize("case", WITH_ORDER)
def test_extract_fields(llm_provider: LLMProvider, llm_equiv: Equivalence, case: str) -> None:
    ticket = TICKETS[case]
    fields = extract_fields(llm_provider.openai_client(), llm_provider.model, ticket.text)
    assert fields.order_id == ticket.order_id
    assert fields.days_waiting == ticket.days_waiting
    assert fields.sentiment in ("negative", "neutral", "positive")
    # The same fields as the baseline provider extracted (product names may be worded differently).
    llm_equiv.same("fields", fields, exclude=["$.product"])


@pytest.mark.llm_portable
def test_angry_customer_is_negative(llm_provider: LLMProvider) -> None:
    fields = extract_fields(llm_provider.openai_client(), llm_provider.model, TICKETS["broken_kettle"].text)
    assert fields.sentiment == "negative"
    assert fields.product is not None
    assert "水壶" in fields.product


@pytest.mark.llm_portable(threshold=THRESHOLD)
def test_draft_reply_streaming(llm_provider: LLMProvider, llm_equiv: Equivalence) -> None:
    reply = draft_reply(
        llm_provider.openai_client(), llm_provider.model, TICKETS["late_shipment"].text, stream=True
    )
    assert_polite_chinese_reply(reply)
    # Free text differs in wording between providers; the score shows how far, the threshold how far is ok.
    llm_equiv.similar("reply", reply)


@pytest.mark.llm_portable
def test_triage_with_client_from_environment(llm_provider: LLMProvider) -> None:
    # The app's production wiring: a client built from OPENAI_BASE_URL / OPENAI_API_KEY, which the
    # plugin points at the provider under test.
    ticket = TICKETS["login"]
    with openai.OpenAI() as client:
        result = triage(client, os.environ["LLMPORT_MODEL"], ticket.text)
    assert result.category == "account"
    assert result.fields.order_id is None
    assert_polite_chinese_reply(result.reply)


# -- the parsing helpers, on the answer shapes different providers produce (no provider needed) -----
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("shipping", "shipping"),
        ("SHIPPING。", "shipping"),
        (" Refund\n", "refund"),
        ("ｒｅｆｕｎｄ", "refund"),
        ("product defect", "product_defect"),
        ("类别：account", "account"),
        ("不确定", "other"),
    ],
)
def test_normalize_category(answer: str, expected: str) -> None:
    assert normalize_category(answer) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"order_id": "A1234", "days_waiting": 3}',
        '```json\n{"order_id": "A1234", "days_waiting": 3}\n```',
        '以下是提取结果：\n{"order_id": "A1234", "days_waiting": 3}',
        '{"order_id": "A1234", "days_waiting": 3}\n希望对您有帮助。',
    ],
)
def test_parse_json_object(text: str) -> None:
    assert parse_json_object(text) == {"order_id": "A1234", "days_waiting": 3}


def test_parse_json_object_without_json() -> None:
    with pytest.raises(ValueError, match="no JSON object"):
        parse_json_object("抱歉，我无法提取信息。")


def test_fields_tolerate_loose_types() -> None:
    fields = fields_from_json({"order_id": "#A1234", "days_waiting": "3", "sentiment": "Negative"})
    assert fields == TicketFields(order_id="A1234", days_waiting=3, product=None, sentiment="negative")
