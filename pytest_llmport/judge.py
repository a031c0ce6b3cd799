"""The LLM judge: asks a configured provider whether a candidate's answer is equivalent to the baseline's.

``llm_equiv.judge(key, text, rubric=...)`` sends one chat request (see :func:`messages`) to the judge
provider named by ``llmport_judge`` / ``--llmport-judge`` / the marker's ``judge=`` (``<provider>[:model]``),
through the test's own recorded HTTP path: the judge's exchange lands in the test's cassette, so CI
replays the verdict offline with the network guard on.

The prompt's version (:func:`prompt_version`, a hash of the prompt templates and the rubric) travels in
the request itself, so a replay can tell a changed prompt or rubric from any other unrecorded request and
ask for re-recording with the command (:meth:`Judge.check_recorded`).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, LlmportError

if TYPE_CHECKING:
    from .handle import LLMProvider

__all__ = [
    "DEFAULT_RUBRIC",
    "PLACEHOLDERS",
    "Judge",
    "JudgeAnswerError",
    "JudgeError",
    "JudgeRequest",
    "JudgeVerdict",
    "messages",
    "parse_verdict",
    "prompt_version",
    "read_request",
    "render_rubric",
    "split_judge",
]

PLACEHOLDERS = ("question", "baseline", "candidate")
"""What a rubric template may name in braces; ``{{`` and ``}}`` stand for literal braces."""

SYSTEM_TEMPLATE = (
    "You judge whether two answers to the same request are equivalent under a rubric.\n"
    "你负责按照评判标准判断同一请求的两个回答是否等价。\n"
    "The answers may be written in Chinese or in English, or one in each: judge what they mean, not their "
    "wording, length or language.\n"
    "回答可能用中文或英文写成，也可能一中一英：请依据含义判断，而不是措辞、长度或语言。\n"
    "Reply with one JSON object and nothing else / 只输出一个 JSON 对象，不要输出其他内容:\n"
    '{{"verdict": "equivalent" | "not_equivalent", "reason": "<one sentence, in the language of the '
    'baseline answer / 用基准回答的语言写一句理由>"}}\n'
    "(pytest-llmport judge prompt {version})"
)
USER_TEMPLATE = (
    "Rubric / 评判标准:\n{rubric}\n\n"
    "{question_block}"
    "Baseline answer / 基准回答:\n<<<\n{baseline}\n>>>\n\n"
    "Candidate answer / 候选回答:\n<<<\n{candidate}\n>>>"
)
QUESTION_BLOCK = "Question / 问题:\n{question}\n\n"

DEFAULT_RUBRIC = (
    "The candidate is equivalent when a user would act on it as on the baseline: the same facts (numbers, "
    "amounts, dates, times, names), the same yes or no, the same steps or conclusion. Wording, length, "
    "order, formatting and language may differ.\n"
    "若用户会依据候选回答采取与基准回答相同的行动，则二者等价：事实相同（数字、金额、日期、时间、名称），"
    "肯定或否定相同，步骤或结论相同；措辞、长度、顺序、格式和语言可以不同。"
)

# The version line of the system message, as recorded requests carry it.
_VERSION_IN_BODY = re.compile(r"pytest-llmport judge prompt ([0-9a-f]{12})")
_EQUIVALENT = frozenset({"equivalent", "equal", "same", "yes", "等价", "相同", "一致"})
_NOT_EQUIVALENT = frozenset(
    {"not_equivalent", "non_equivalent", "inequivalent", "different", "no", "不等价", "不相同", "不一致"}
)


class JudgeError(LlmportError):
    """The judge could not give a verdict: no judge configured, an error answer, an unreadable reply."""


class JudgeAnswerError(JudgeError):
    """The judge answered, but not with a verdict this module can read (never taken for a pass)."""


@dataclass(frozen=True)
class JudgeVerdict:
    """What the judge said about one candidate answer."""

    equivalent: bool
    reason: str
    provider: str = ""
    model: str = ""
    prompt_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "verdict": "equivalent" if self.equivalent else "not_equivalent",
            "reason": self.reason,
        }


def split_judge(text: str) -> tuple[str, str | None]:
    """``"openai:gpt-4o-mini"`` -> ``("openai", "gpt-4o-mini")``; ``"openai"`` -> ``("openai", None)``."""
    name, _, model = text.strip().partition(":")
    return name.strip(), model.strip() or None


def _fields(rubric: str, where: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(rubric) if name is not None]
    except ValueError as exc:
        raise ConfigError(
            f"{where}: the rubric is not a valid template ({exc}); write a literal brace as {{{{ or }}}}, "
            f"placeholders as {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
        ) from None


def render_rubric(rubric: str, values: Mapping[str, str], where: str) -> str:
    """Fill the rubric's placeholders; an unknown one (or ``{question}`` without a question) is an error."""
    known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    for name in _fields(rubric, where):
        if name not in PLACEHOLDERS:
            shown = "{" + name + "}" if name else "{}"
            raise ConfigError(
                f"{where}: the rubric has the unknown placeholder {shown}; known: {known} "
                f"(write a literal brace as {{{{ or }}}})"
            )
        if name == "question" and not values.get("question"):
            raise ConfigError(
                f"{where}: the rubric uses {{question}}, but judge() got no question=; pass "
                f"question=<the request the answers reply to>, or drop {{question}} from the rubric"
            )
    return rubric.format_map(dict(values))


def prompt_version(rubric: str) -> str:
    """12 hex digits of the SHA-256 of the prompt templates and the (unfilled) rubric."""
    material = json.dumps([SYSTEM_TEMPLATE, USER_TEMPLATE, QUESTION_BLOCK, rubric], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


def messages(
    rubric: str, baseline: str, candidate: str, question: str | None, where: str
) -> list[dict[str, str]]:
    """The judge's chat messages (OpenAI style; the chat client converts them per dialect)."""
    values = {"question": question or "", "baseline": baseline, "candidate": candidate}
    filled = render_rubric(rubric, values, where)
    block = QUESTION_BLOCK.format(question=question) if question else ""
    user = USER_TEMPLATE.format(rubric=filled, question_block=block, baseline=baseline, candidate=candidate)
    return [
        {"role": "system", "content": SYSTEM_TEMPLATE.format(version=prompt_version(rubric))},
        {"role": "user", "content": user},
    ]


@dataclass(frozen=True)
class JudgeRequest:
    """What a judge is asked, read back from a request :func:`messages` built (for fake judges in tests)."""

    rubric: str  # filled in
    question: str | None
    baseline: str
    candidate: str
    prompt_version: str


_USER = re.compile(
    r"Rubric / 评判标准:\n(?P<rubric>.*?)\n\n(?:Question / 问题:\n(?P<question>.*?)\n\n)?"
    r"Baseline answer / 基准回答:\n<<<\n(?P<baseline>.*?)\n>>>\n\n"
    r"Candidate answer / 候选回答:\n<<<\n(?P<candidate>.*)\n>>>",
    re.DOTALL,
)


def read_request(payload: Mapping[str, Any]) -> JudgeRequest | None:
    """The judge's question in an OpenAI-style chat request body, or None for any other request.

    A :class:`~pytest_llmport.testing.FakeProvider` whose ``replies`` is a callable can act as a judge
    with it: read the question, decide as the test says, answer ``{"verdict": ..., "reason": ...}``.
    """
    chat = payload.get("messages")
    if not isinstance(chat, list) or len(chat) < 2 or not all(isinstance(m, dict) for m in chat):
        return None
    system, user = chat[0].get("content"), chat[-1].get("content")
    if not isinstance(system, str) or not isinstance(user, str):
        return None
    version = _VERSION_IN_BODY.search(system)
    found = _USER.fullmatch(user)
    if version is None or found is None:
        return None
    return JudgeRequest(
        found["rubric"], found["question"], found["baseline"], found["candidate"], version.group(1)
    )


def _word(value: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower())


def parse_verdict(text: str) -> tuple[bool, str]:
    """``(equivalent, reason)`` from the judge's reply: JSON, bare or in a fence or prose.

    Raises :class:`JudgeAnswerError` for anything else: a reply that is not a verdict is never a pass.
    """
    from .compare import SchemaError, extract_json

    try:
        value = extract_json(text, lenient=True).value
    except SchemaError as exc:
        raise JudgeAnswerError(
            f"the judge's reply holds no JSON verdict ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(value, dict):
        raise JudgeAnswerError(f"the judge's reply is JSON but not an object: {_clip(json.dumps(value))}")
    verdict = value.get("verdict")
    if verdict is None and isinstance(value.get("equivalent"), bool):
        verdict = "equivalent" if value["equivalent"] else "not_equivalent"
    word = _word(verdict) if isinstance(verdict, str) else None
    if word not in _EQUIVALENT and word not in _NOT_EQUIVALENT:
        raise JudgeAnswerError(
            f'the judge\'s reply has no "verdict" of "equivalent" or "not_equivalent": '
            f"{_clip(json.dumps(value, ensure_ascii=False))}"
        )
    reason = value.get("reason")
    return word in _EQUIVALENT, reason.strip() if isinstance(
        reason, str
    ) and reason.strip() else "(no reason given)"


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def recorded_versions(requests: Sequence[Any]) -> set[str]:
    """The judge prompt versions the recorded requests carry."""
    found: set[str] = set()
    for request in requests:
        body = request.body
        if isinstance(body, (bytes, bytearray)):
            body = bytes(body).decode("utf-8", "replace")
        if isinstance(body, str):
            # The version sits in a JSON string: escaped Chinese around it does not matter.
            found.update(_VERSION_IN_BODY.findall(body))
    return found


def is_judge_request(request: Any) -> bool:
    return bool(recorded_versions([request]))


class WithoutJudge:
    """A cassette as the candidate's own exchanges see it, the judge's left out.

    The report's exchanges (finish reasons, errors, timings, cost) and models describe the provider under
    test; a judge's 429 or its latency must not be charged to it. Offers what
    :func:`pytest_llmport.observe.summarize_exchanges` and :func:`pytest_llmport.identity.model_report` read.
    """

    def __init__(self, cassette: Any) -> None:
        loaded = cassette.loaded_count
        counts = cassette.play_counts
        kept = [(index, pair) for index, pair in enumerate(cassette.data) if not is_judge_request(pair[0])]
        self.data = [pair for _, pair in kept]
        self.loaded_count = sum(1 for index, _ in kept if index < loaded)
        self.play_counts = {new: counts[old] for new, (old, _) in enumerate(kept) if counts.get(old)}
        self.mark_changed = cassette.mark_changed


class Judge:
    """One test's judge on one provider: the judge provider's handle, and what replay needs to check."""

    def __init__(
        self,
        *,
        handle: LLMProvider,
        model: str,
        recorded: Callable[[], Sequence[Any]],
        replaying: bool,
        record_command: str,
        problem: Callable[[str], None],
        unusable: str | None = None,
        asking: Callable[[], None] = lambda: None,
    ) -> None:
        self.handle = handle
        self.model = model
        self._recorded = recorded
        self._replaying = replaying
        self._record_command = record_command
        self._problem = problem
        self._unusable = unusable  # why asking cannot be recorded (a key not set), if it cannot
        self._asking = asking  # before each request: the cassette notes where the judge was recorded

    @property
    def label(self) -> str:
        return f"{self.handle.name}:{self.model}"

    def check_recorded(self, version: str, where: str) -> None:
        """While replaying: fail with the re-record command when the cassette holds another prompt version."""
        if not self._replaying:
            return
        versions = recorded_versions(self._recorded())
        if versions and version not in versions:
            message = (
                f"{where}: the judge's prompt or rubric changed since the cassette was recorded (recorded "
                f"prompt version {', '.join(sorted(versions))}, now {version}), so the recorded verdict does "
                f"not answer this question. Re-record the test: {self._record_command}"
            )
            self._problem(message)  # a recording problem, not the provider's failure
            raise JudgeError(message)

    def ask(
        self, rubric: str, baseline: str, candidate: str, question: str | None, where: str
    ) -> JudgeVerdict:
        if self._unusable is not None:
            raise ConfigError(self._unusable)
        chat_messages = messages(rubric, baseline, candidate, question, where)
        version = prompt_version(rubric)
        self.check_recorded(version, where)
        self._asking()
        result = self.handle.chat(chat_messages, model=self.model, temperature=0)
        judge = f"the judge {self.label}"
        if result.error is not None or result.content_filtered:
            category = result.error.category if result.error is not None else "content_filter"
            raise JudgeError(
                f"{where}: {judge} answered HTTP {result.status} ({category}) instead of a verdict: "
                f"{_clip(result.raw_body)}. Check its key, model and quota, then re-record the test: "
                f"{self._record_command}"
            )
        try:
            equivalent, reason = parse_verdict(result.text)
        except JudgeAnswerError as exc:
            raise JudgeAnswerError(
                f"{where}: {judge}: {exc}. Its reply: {_clip(result.text)!r}. A judge model must follow the "
                f"JSON instruction; pick another with --llmport-judge=<provider>:<model>"
            ) from None
        return JudgeVerdict(equivalent, reason, self.handle.name, self.model, version)
