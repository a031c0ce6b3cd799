"""The fake models of ../support_triage/fake_models.py, with one provider quirk added on purpose.

qwen's fake model reads a short ticket that opens with a greeting (``您好``) as small talk and classifies
it as ``other``, the kind of quirk a metamorphic test ("adding polite words does not change the
category") exists to find. Long tickets, and tickets without the greeting, are classified as before, so
the relation breaks for some generated tickets only, and hypothesis shrinks to the smallest one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fake_models import PERSONALITIES, Personality

# A greeting followed by at most this many characters reads as small talk to qwen's fake model.
SMALL_TALK_CHARS = 24


def _ticket_and_system(payload: dict[str, Any]) -> tuple[str, str]:
    messages = payload["messages"]
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    ticket = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return ticket, system


def greeting_is_small_talk(personality: Personality) -> Callable[[dict[str, Any]], str]:
    def reply(payload: dict[str, Any]) -> str:
        ticket, system = _ticket_and_system(payload)
        if "类别" in system and ticket.startswith("您好") and len(ticket) <= SMALL_TALK_CHARS:
            return personality.category("other")
        return personality(payload)

    return reply


MODELS: dict[str, Callable[[dict[str, Any]], str]] = {
    **PERSONALITIES,
    "qwen": greeting_is_small_talk(PERSONALITIES["qwen"]),
}
CHUNK_CHARS = {name: personality.chunk_chars for name, personality in PERSONALITIES.items()}
