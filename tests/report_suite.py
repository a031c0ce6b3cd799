"""A small app suite whose providers differ in known ways, for the report's tests (verdict, HTML, merge)."""

SUITE = """
import pytest

ANSWERS = {"qwen": "您好，很抱歉给您带来不便，退货请求需要先联系卖家审核"}


def ask(llm_provider, prompt, **extra):
    reply = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, messages=[{"role": "user", "content": prompt}], **extra
    )
    return reply.choices[0].message.content


@pytest.mark.llm_portable
def test_reply(llm_provider, llm_equiv):
    text = ask(llm_provider, "我想申请退款")
    llm_equiv.similar("reply", ANSWERS.get(llm_provider.name, text))


@pytest.mark.llm_portable
def test_parse(llm_provider):
    text = ask(llm_provider, "用JSON给工单分类：快递三天了还没到", response_format={"type": "json_object"})
    if llm_provider.name == "zhipu":
        raise ValueError("the app could not parse zhipu's answer")
    assert text


@pytest.mark.llm_portable
@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_case(llm_provider, case):
    assert ask(llm_provider, f"发货 {case}", seed=7)
"""
