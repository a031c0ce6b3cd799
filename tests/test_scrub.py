"""A secret never reaches disk, and cassettes stay readable."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from pytest_llmport.providers import BUILTIN_PROVIDERS
from pytest_llmport.scrub import Scrubber
from pytest_llmport.testing import FakeProvider

from .conftest import RunModes, cassettes

LEAKY = """
import pytest

@pytest.mark.llm_portable
def test_leaks(llm_provider):
    key = llm_provider.api_key
    client = llm_provider.httpx_client()
    # The key in a query parameter, in a header of our own, in the body; the fake echoes it back.
    client.post(
        "chat/completions",
        params={"key": key, "access_token": "tok-" + key, "keep": "1"},
        headers={"X-Debug-Key": key, "Cookie": "session=abc123456"},
        json={"model": llm_provider.model, "messages": [{"role": "user", "content": "我的钥匙是 " + key}]},
    )
    stream = llm_provider.openai_client().chat.completions.create(
        model=llm_provider.model, stream=True, messages=[{"role": "user", "content": "流式 " + key}]
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).endswith(key)
"""


def test_no_key_of_any_builtin_provider_reaches_disk(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_modes: RunModes
) -> None:
    monkeypatch.delenv("CI", raising=False)
    keys = {}
    with FakeProvider() as server:
        for index, provider in enumerate(BUILTIN_PROVIDERS):
            key = f"sk-{provider.name}-secret/{index:02d}+Zz9876543210"
            keys[provider.name] = key
            monkeypatch.setenv(provider.api_key_env, key)
            monkeypatch.setenv(f"{provider.env_prefix}_BASE_URL", server.base_url)
        pytester.makepyfile(test_leak=LEAKY)
        # The fake speaks the OpenAI protocol, which is not ERNIE native's API (its paths differ).
        pytester.makepyprojecttoml('[tool.llmport.providers.ernie-native]\ndialect = "openai"\n')
        names = ",".join(keys)
        run_modes(f"--providers={names}").assert_outcomes(passed=len(keys))
        sent = [request for request in server.requests if request.query]
    assert len(sent) == len(keys), "every provider sent its key in the URL"
    files = cassettes(pytester.path)
    assert len(files) == len(keys)
    for name, key in keys.items():
        text = files[f"cassettes/test_leak/test_leaks/{name}.yaml"]
        for spelling in (key, quote(key, safe=""), json.dumps(key)[1:-1], key.split("/")[1]):
            assert spelling not in text, f"{name}: {spelling!r} leaked"
        assert "session=abc123456" not in text
        assert "<REDACTED:" in text and "keep=1" in text
        assert "我的钥匙是 <REDACTED:" in text, "Chinese stays readable next to the marker"


def test_cassette_is_readable(pytester: pytest.Pytester, llm_env: FakeProvider) -> None:
    pytester.makepyfile(
        test_read="""
import pytest

@pytest.mark.llm_portable
def test_read(llm_provider):
    client = llm_provider.openai_client()
    client.chat.completions.create(model=llm_provider.model, messages=[{"role": "user", "content": "退款怎么办"}])
    list(client.chat.completions.create(
        model=llm_provider.model, stream=True, messages=[{"role": "user", "content": "流式"}]))
"""
    )
    pytester.runpytest("--providers=qwen").assert_outcomes(passed=1)
    text = cassettes(pytester.path)["cassettes/test_read/test_read/qwen.yaml"]
    assert "\\u" not in text
    assert re.search(r'\n +"content": "退款怎么办",?\n', text), (
        "JSON request bodies are pretty-printed, one line each"
    )
    assert '"content": "[fake] 退款怎么办"' in text, "JSON response bodies too"
    assert "string: |" in text and "\n        data: [DONE]\n" in text, "SSE bodies are text, line by line"
    for noisy in ("date:", "server:", "x-stainless", "content-length"):
        assert noisy not in text.lower()


def test_scrubber_unit_cases() -> None:
    scrubber = Scrubber({"ZHIPUAI_API_KEY": "abcdef.0123456789", "SHORT": "abc"})
    assert scrubber.uri("https://h/x?key=zzz&client_secret=s&ok=1") == (
        "https://h/x?key=REDACTED&client_secret=REDACTED&ok=1"
    )
    assert scrubber.uri("https://user:pw@h/p") == "https://REDACTED@h/p"
    assert scrubber.text("Bearer abcdef.0123456789 and abc") == "Bearer <REDACTED:ZHIPUAI_API_KEY> and abc"
    body = scrubber.body(b'{"access_token":"24.xyz","expires_in":2592000}')
    assert body == b'{"access_token":"REDACTED","expires_in":2592000}'
    headers = scrubber.request_headers(
        {"Authorization": "Bearer x", "x-stainless-os": "Linux", "X-Api-Key": "k"}
    )
    assert headers == {"Authorization": "REDACTED", "X-Api-Key": "REDACTED"}
    response = scrubber.response(
        {
            "status": {"code": 200},
            "headers": {"Set-Cookie": ["a=b"], "x-request-id": ["r1"]},
            "body": {"string": b"x"},
        }
    )
    assert response["headers"] == {"x-request-id": ["r1"]}
    assert scrubber.body({"content": "abcdef.0123456789"}) == b'{"content":"<REDACTED:ZHIPUAI_API_KEY>"}'


# -- every spelling, every shape (units; tests/test_secrets.py records the same through real sockets) ----
def test_known_values_in_every_spelling() -> None:
    import base64

    from tests.hostile import SPELLINGS, jwt

    key = 'sk-ev/il"KEY+0123=456'
    zhipu = "0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp"
    scrubber = Scrubber({"OPENAI_API_KEY": key, "ZHIPUAI_API_KEY": zhipu})
    for name, spell in SPELLINGS.items():
        for prefix in ("", "x", "ab", "user:"):
            text = (
                "before "
                + (spell(prefix + key) if name.startswith("base64") else prefix + spell(key))
                + " after"
            )
            assert scrubber.text(text).startswith("before "), name
            assert "<REDACTED:OPENAI_API_KEY>" in scrubber.text(text), (name, prefix, text)
    assert scrubber.text("t=" + jwt(zhipu)) == "t=<REDACTED:ZHIPUAI_API_KEY>"
    other = jwt("fedcba9876543210fedcba9876543210.ZzZzZzZzZzZzZzZz")
    assert scrubber.text("t=" + other) == "t=" + other, "a JWT of another key is not this key's"
    assert scrubber.text("Authorization: Bearer " + other) == "Authorization: Bearer <REDACTED>"
    urlsafe = base64.urlsafe_b64encode(b"\xff\xfe" + key.encode()).decode()
    assert "REDACTED" in scrubber.text(urlsafe)


def test_shapes_and_names_in_text() -> None:
    scrubber = Scrubber({})
    assert scrubber.text("Basic dXNlcjpwYXNzd29yZDEyMw==") == "Basic <REDACTED>"
    assert scrubber.text("the most basic representations") == "the most basic representations"
    assert scrubber.text('{"access_token": "24.abc123def456", "x": 1} <junk>') == (
        '{"access_token": "REDACTED", "x": 1} <junk>'
    )
    assert scrubber.text("client = OpenAI(api_key=llm_provider.api_key)") == (
        "client = OpenAI(api_key=llm_provider.api_key)"
    ), "code in a traceback is not a token"
    assert scrubber.text("err: client_secret=9f8e7d6c5b&x=1") == "err: client_secret=REDACTED&x=1"
    headers = scrubber.response_headers({"Location": ["https://app/cb?access_token=tok123&state=1"]})
    assert headers == {"Location": ["https://app/cb?access_token=REDACTED&state=1"]}


def test_bodies_by_kind() -> None:
    key = "sk-split-0123456789"
    scrubber = Scrubber({"K": key})
    form = scrubber.body(b"grant_type=x&client_secret=s3cr3t&note=a+b&k=" + key.encode())
    assert form == b"grant_type=x&client_secret=REDACTED&note=a+b&k=<REDACTED:K>", (
        "other pairs keep their spelling"
    )
    assert scrubber.body(b'{"k": "sk-split-0123456789"}') == b'{"k":"<REDACTED:K>"}'
    clean = b'{"a": 1,  "b": "x"}'
    assert scrubber.body(clean) is clean, "a clean body is kept byte for byte"
    events = [
        {"choices": [{"delta": {"content": piece}}]} for piece in ("my key: sk-spl", "it-0123", "456789 ok")
    ]
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    response = scrubber.response(
        {
            "status": {"code": 200},
            "headers": {"content-type": ["text/event-stream"]},
            "body": {"string": stream.encode()},
            "llmport": {"chunks": [len(stream)], "sha256": "x", "length": 1},
        }
    )
    out = response["body"]["string"].decode()
    contents = [
        json.loads(line[6:])["choices"][0]["delta"]["content"] for line in out.splitlines() if "{" in line
    ]
    assert contents == ["my key: <REDACTED:K>", "", " ok"]
    assert out.endswith("data: [DONE]\n\n")
    meta = response["llmport"]
    assert "chunks" not in meta and meta["length"] == len(out.encode())


def test_placeholder_keys_are_never_secrets() -> None:
    from pytest_llmport.placeholders import PLACEHOLDER_KEYS

    scrubber = Scrubber({f"K{i}": key for i, key in enumerate(PLACEHOLDER_KEYS)})
    for key in PLACEHOLDER_KEYS:
        assert scrubber.known(key) == key


def test_replay_keys_have_the_shape_each_sdk_demands() -> None:
    from zhipuai.core._jwt_token import generate_token

    from pytest_llmport.placeholders import replay_key

    assert generate_token(replay_key("ZHIPUAI_API_KEY")).count(".") == 2, "zhipuai signs a JWT from id.secret"
    assert re.fullmatch(r"bce-v3/ALTAK-[A-Za-z0-9]+/[A-Za-z0-9]+", replay_key("QIANFAN_API_KEY"))
    assert len(replay_key("QIANFAN_AK")) == 24 and len(replay_key("QIANFAN_SK")) == 32
    assert replay_key("OPENAI_API_KEY") == "llmport-replay-key"


def test_report_values_are_scrubbed_at_every_depth_and_in_every_container() -> None:
    key = "sk-report0123456789abcdef"
    scrubber = Scrubber({"OPENAI_API_KEY": key})

    class Text(str):
        pass

    class Frozen(dict):  # type: ignore[type-arg]
        pass

    data = {
        "provider": "openai",
        key: "a key as a mapping's key",
        3: ("tuple", key, 1.5, None, True),
        "exchanges": [{"url": f"http://h/v1?x={key}", "usage": {"total_tokens": 14}, "api_key": "secret"}],
        "checks": [[Text(f"said {key}")], Frozen(token="keep", session_key="drop", note=key)],
        "Api_Key": 42,  # a secret name holding no text: walked as it is
        "empty": "",
    }
    marker = "<REDACTED:OPENAI_API_KEY>"
    expected = {
        "provider": "openai",
        marker: "a key as a mapping's key",
        3: ["tuple", marker, 1.5, None, True],
        "exchanges": [
            {"url": f"http://h/v1?x={marker}", "usage": {"total_tokens": 14}, "api_key": "REDACTED"}
        ],
        "checks": [[f"said {marker}"], {"token": "keep", "session_key": "REDACTED", "note": marker}],
        "Api_Key": 42,
        "empty": "",
    }
    # Twice: the second walk answers from the remembered texts, and must say the same.
    assert scrubber.value(data) == expected
    assert scrubber.value(data) == expected
    assert key in data[3] and data["checks"][1]["session_key"] == "drop", "the value itself is not changed"
    assert Scrubber({}).value(data)["exchanges"][0]["api_key"] == "REDACTED"  # by name, with no key known
