"""Properties of the triage app (../support_triage/triage.py) that must hold on every provider.

hypothesis generates the tickets; the plugin makes generation repeatable, so the committed cassettes hold
exactly the tickets a replay asks about. Each test runs once per provider in ``pytest.ini``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from triage import CATEGORIES, classify

from pytest_llmport import LLMProvider
from pytest_llmport.equivalence import Equivalence
from pytest_llmport.strategies import add_politeness, order_ids, swap_punctuation_width, templated

# What customers write after the order number, each naming one kind of problem.
COMPLAINTS = (
    "还没发货",
    "的快递三天了还没到。",
    "我想退货退款，怎么操作？",
    "收到的电热水壶坏了！",
    "物流信息一直没有更新，麻烦查一下。",
    "的连衣裙尺码不合适，能退款吗？",
)
# Tickets like "订单 JD8812345 还没发货，": a real-looking order id and a complaint, sometimes a lead-in.
TICKETS = templated(
    "{lead}订单 {order} {complaint}",
    lead=st.sampled_from(("", "请问，", "急！", "客服你好:")),
    order=order_ids(),
    complaint=st.sampled_from(COMPLAINTS),
)


def category_of(llm_provider: LLMProvider, ticket: str) -> str:
    return classify(llm_provider.openai_client(), llm_provider.model, ticket)


@pytest.mark.llm_portable
@given(ticket=TICKETS)
def test_every_ticket_gets_a_known_category(llm_provider: LLMProvider, ticket: str) -> None:
    assert category_of(llm_provider, ticket) in CATEGORIES


@pytest.mark.llm_portable
@given(ticket=TICKETS)
def test_politeness_keeps_the_category(
    llm_provider: LLMProvider, llm_equiv: Equivalence, ticket: str
) -> None:
    # "您好，<ticket>，谢谢！" is the same request: the category must not change.
    llm_equiv.relation("category", lambda text: category_of(llm_provider, text), ticket, add_politeness)


@pytest.mark.llm_portable
@given(ticket=TICKETS)
def test_punctuation_width_keeps_the_category(
    llm_provider: LLMProvider, llm_equiv: Equivalence, ticket: str
) -> None:
    # "，" <-> ","  "？" <-> "?"  "！" <-> "!": people type both; the category must not change.
    llm_equiv.relation(
        "category", lambda text: category_of(llm_provider, text), ticket, swap_punctuation_width
    )
