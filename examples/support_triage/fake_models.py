"""Rule-based stand-ins for four providers' models, served by ``pytest_llmport.testing.FakeProvider``.

Each "model" reads the ticket with keyword rules, so its answers are right for the example tickets and
identical on every run. What differs between providers is the shape of the answer, which is what the
app has to be portable across:

* openai: the category as a bare word, the fields as bare JSON;
* zhipu: the JSON inside a Markdown ```json fence;
* qwen: a lead-in sentence before the JSON, a trailing newline after the category;
* deepseek: the category in upper case with a full-width full stop (``SHIPPING。``).

Replies are drafted from templates with a per-provider greeting and sign-off, and streamed in pieces of
a different size per provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# First matching rule wins, so the specific complaints come before the generic "where is it".
_CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("account", ("登录", "密码", "验证码", "账号", "账户")),
    ("refund", ("退款", "退货", "退钱")),
    ("product_defect", ("坏了", "破损", "质量", "故障", "不加热", "碎了", "漏水")),
    ("shipping", ("发货", "物流", "快递", "没收到", "到货")),
)
_PRODUCTS = ("电热水壶", "连衣裙", "蓝牙耳机", "运动鞋", "手机壳", "衣服")
_NEGATIVE = ("怎么回事", "太差", "生气", "失望", "投诉", "不了", "着急")
_POSITIVE = ("满意", "很好", "喜欢", "点赞")
_NUMERALS = {digit: value for value, digit in enumerate("一二三四五六七八九十", start=1)} | {"两": 2}
_DAYS = re.compile(r"(\d+|[一两二三四五六七八九十])\s*天")
_ORDER_ID = re.compile(r"[A-Z]\d{4,}")

_REPLY_BODIES = {
    "shipping": "非常抱歉让您久等了{order}。我们已请仓库优先处理，发货后会第一时间短信通知您物流单号。",
    "refund": "已收到您的退货退款诉求{order}。请在订单详情页点击“申请售后”并选择退货退款，"
    "商品寄回验收后，款项将在 1 至 3 个工作日内原路退回。",
    "product_defect": "很抱歉商品给您带来了不好的体验{order}。请拍下商品问题的照片并在订单页提交售后，"
    "核实后我们会为您免费换新或退款。",
    "account": "请在登录页选择“手机号已停用”，完成身份验证后即可绑定新手机号，之后就能正常接收验证码了。",
    "other": "感谢您的咨询，您的问题已记录，专属客服会在 24 小时内与您联系。",
}


def category_of(ticket: str) -> str:
    for category, keywords in _CATEGORY_RULES:
        if any(word in ticket for word in keywords):
            return category
    return "other"


def fields_of(ticket: str) -> dict[str, Any]:
    order = _ORDER_ID.search(ticket)
    days = _DAYS.search(ticket)
    day_count: int | None = None
    if days:
        text = days.group(1)
        day_count = int(text) if text.isdigit() else _NUMERALS[text]
    negative = any(word in ticket for word in _NEGATIVE)
    positive = any(word in ticket for word in _POSITIVE)
    return {
        "order_id": order.group(0) if order else None,
        "days_waiting": day_count,
        "product": next((name for name in _PRODUCTS if name in ticket), None),
        "sentiment": "negative" if negative else "positive" if positive else "neutral",
    }


def reply_body(ticket: str) -> str:
    order = _ORDER_ID.search(ticket)
    return _REPLY_BODIES[category_of(ticket)].format(order=f"（订单 {order.group(0)}）" if order else "")


@dataclass(frozen=True)
class Personality:
    """How one provider's fake model words its answers."""

    category: Callable[[str], str]
    fields: Callable[[dict[str, Any]], str]
    greeting: str
    sign_off: str
    chunk_chars: int

    def __call__(self, payload: dict[str, Any]) -> str:
        """The reply to one chat-completions request (FakeProvider's reply callable)."""
        messages = payload["messages"]
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        ticket = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        # Like a real model, the task is read from the instructions, not from a private protocol.
        if payload.get("response_format") or "JSON" in system:
            return self.fields(fields_of(ticket))
        if "类别" in system:
            return self.category(category_of(ticket))
        return f"{self.greeting}{reply_body(ticket)}{self.sign_off}"


def _compact(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False)


def _pretty(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, indent=2)


PERSONALITIES: dict[str, Personality] = {
    "openai": Personality(
        category=lambda c: c,
        fields=_compact,
        greeting="您好！",
        sign_off="如有其他问题，欢迎随时联系我们。",
        chunk_chars=4,
    ),
    "zhipu": Personality(
        category=lambda c: c,
        fields=lambda f: f"```json\n{_pretty(f)}\n```",
        greeting="亲，您好～",
        sign_off="祝您购物愉快！",
        chunk_chars=2,
    ),
    "qwen": Personality(
        category=lambda c: f"{c}\n",
        fields=lambda f: f"以下是提取结果：\n{_pretty(f)}",
        greeting="尊敬的顾客，您好。",
        sign_off="感谢您的耐心与理解。",
        chunk_chars=6,
    ),
    "deepseek": Personality(
        category=lambda c: f"{c.upper()}。",
        fields=_compact,
        greeting="您好，",
        sign_off="\n\n如需进一步帮助，请直接回复此消息。",
        chunk_chars=3,
    ),
}
