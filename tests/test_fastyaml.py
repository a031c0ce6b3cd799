"""The fast YAML reading (yaml-rs) gives exactly PyYAML's objects, or steps aside for PyYAML.

yaml-rs reads YAML 1.2, PyYAML 1.1; each difference between the two (``yes``, ``017``, ``0o17``, ``1e3``,
``2026-12-01``, ``1:30``, ``<<`` ...) must either read the same or make :func:`fastyaml.load` return None,
in every position a plain scalar can take, in the cassettes this plugin writes and in hand-edited ones.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmport import fastyaml
from pytest_llmport.cassettes import CorruptCassetteError, ReadableYamlSerializer, _Dumper, parse_cassette

pytestmark = pytest.mark.skipif(not fastyaml.available(), reason="the fast extra (yaml-rs) is not installed")

ROOT = Path(__file__).resolve().parents[1]
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Plain scalars YAML 1.1 and 1.2 (or yaml-rs, which is lenient) read differently, and neighbours of them.
TOKENS = [
    "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "n", "true", "False",
    "null", "Null", "~", "", "<<", "=", "017", "09", "0o17", "0b101", "0x1F", "+0x1F", "1_000", "_1", "-_1",
    "._1", "1e3", "1e3_", "1.5e3", "1.5E+3", "1.0e+3", "+.5", ".5", "-.inf", ".Inf", ".nan", ".NaN", "1.",
    "-0", "+12", "12:30", "1:30:00", "190:20:30.15", "0:30", "2026-12-01", "2026-1-5 10:00:00",
    "2026-12-01T10:00:00Z", "2026-12-01 10:00:00 +08:00", "0.1.0", "1e77c5ebf917828d", "1e77123456789012",
    "8.64s", "123456789012345678901234567890", "1.0e+400", "3.3", "200", "0", "017 items", "1,000",
    "chatcmpl-1", "a: b", "-1", "- 1",
]  # fmt: skip


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (== takes 1 for True and 1.0) and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(same(k, k2) and same(a[k], b[k2]) for k, k2 in zip(a, b, strict=True))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def pyyaml(text: str) -> Any:
    return yaml.load(text, Loader=LOADER)


def check(text: str) -> Any:
    """fastyaml.load(text) is None or exactly PyYAML's reading; return it."""
    fast = fastyaml.load(text)
    if fast is not None:
        assert same(fast, pyyaml(text)), text
    return fast


def cassettes() -> list[Path]:
    found = sorted((ROOT / "examples").rglob("cassettes/**/*.yaml"))
    assert len(found) > 50
    return found


def test_every_bundled_cassette_reads_as_pyyaml_reads_it_and_most_take_the_fast_way() -> None:
    fast = [path for path in cassettes() if check(path.read_text(encoding="utf-8")) is not None]
    assert len(fast) >= 0.9 * len(cassettes())  # the check can fail: a fast way never taken proves nothing


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "fixtures").rglob("*.yaml")), ids=lambda p: p.name)
def test_recorded_fixtures_read_as_pyyaml_reads_them(path: Path) -> None:
    check(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "shape",
    ["k: {t}\n", "- {t}\n", "k: [{t}]\n", "k: [a, {t}, b]\n", "k: {{a: {t}}}\n", "{t}: v\n", "k:\n  {t}\n",
     "k: {t} # note\n", "a:\n- x\n- {t}\n", "k: 'q'\nv: {t}\n"],
)  # fmt: skip
@pytest.mark.parametrize("token", TOKENS)
def test_a_plain_scalar_either_reads_alike_or_is_left_to_pyyaml(shape: str, token: str) -> None:
    text = shape.format(t=token)
    try:
        expected = pyyaml(text)
    except yaml.YAMLError:
        assert fastyaml.load(text) is None  # PyYAML's error is the one users see
        return
    fast = fastyaml.load(text)
    assert fast is None or same(fast, expected), (text, fast, expected)


def test_the_scalars_that_differ_are_the_ones_left_to_pyyaml() -> None:
    """Where the two readers disagree, the fast reading is refused (so the tests above can fail)."""
    import yaml_rs

    for token in ("yes", "on", "017", "0o17", "1e3", "_1", "+.5", "2026-12-01", "12:30", "09"):
        text = f"k: {token}\n"
        assert not same(yaml_rs.loads(text, parse_datetime=False), pyyaml(text)), token
        assert fastyaml.load(text) is None, token
    assert same(fastyaml.load("k: 200\nv: 3.3\nw: 0.1.0\n"), {"k": 200, "v": 3.3, "w": "0.1.0"})


@pytest.mark.parametrize(
    "text",
    [
        "k: !!binary aGk=\n",  # a tag
        "a: &x [1]\nb: *x\n",  # an anchor: PyYAML shares the object
        "? [a, b]\n: c\n",  # a complex key
        "--- \nk: 1\n",  # a document marker
        "%YAML 1.1\n---\nk: 1\n",  # a directive
        "k: a\x85b\n",  # NEL: a line break in YAML 1.1 only
        "k: a\u2028b\n",
        "k: a\x07b\n",  # a character PyYAML refuses
        "k: |\n  a",  # a block scalar at the end of a file without a line break
        "k: 1\nk: 2\n",  # a duplicate key (PyYAML keeps the last, yaml-rs refuses)
        "k: |\n  a\n   \n  b\n",  # a line of spaces alone inside a block scalar
        "k: |\n  a\n \nv: 1\n",
    ],
)
def test_constructs_read_differently_are_left_to_pyyaml(text: str) -> None:
    assert fastyaml.load(text) is None


_text = st.text(
    st.sampled_from(list("ab yn0179e.:-_+#'\"\n\t,[]{}!&?*%~<=中文")) | st.characters(codec="utf-8"),
    max_size=24,
)
_scalars = st.one_of(
    st.sampled_from(TOKENS), _text, st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(TOKENS) | _text, inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(TOKENS) | _text, _values, min_size=1, max_size=6))
def test_whatever_our_writer_writes_reads_back_the_same(data: dict[str, Any]) -> None:
    """The cassette writer's YAML (ReadableYamlSerializer's dumper), read by the fast way, is the data."""
    try:
        text = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
    except yaml.YAMLError:
        return  # PyYAML cannot write it (a lone surrogate)
    fast = check(text)
    if fast is not None:
        assert same(fast, data)


def test_a_body_edited_after_sealing_fails_on_the_fast_way_too(tmp_path: Path) -> None:
    text = (
        (ROOT / "examples" / "support_triage" / "cassettes" / "test_triage" / "test_classify")
        .joinpath("case=invoice", "openai.yaml")
        .read_text(encoding="utf-8")
    )
    assert fastyaml.load(text) is not None
    edited = text.replace('"content": "other"', '"content": "Other"', 1)  # as long: only the hash tells
    assert edited != text and fastyaml.load(edited) is not None  # the edit is read the fast way
    with pytest.raises(CorruptCassetteError, match="does not match its sha256 seal"):
        parse_cassette(tmp_path / "openai.yaml", edited, ReadableYamlSerializer)


def test_without_the_extra_every_cassette_is_read_by_pyyaml() -> None:
    code = (
        "import sys; sys.modules['yaml_rs'] = None\n"
        "from pytest_llmport import fastyaml\n"
        "print(fastyaml.available(), fastyaml.load('k: 1\\n'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "None"]


@settings(max_examples=300, deadline=None)
@given(
    st.text("0123456789abcdef", min_size=1, max_size=40).map(
        lambda tail: f"{tail[0] if tail[0].isdigit() else '1'}{tail}"
    )
)
def test_a_digest_taken_for_a_string_without_asking_is_one_in_both_readers(token: str) -> None:
    """Seals and ids (hex digits with a, c, d or f) are not asked about: both readers must agree."""
    if fastyaml._DIGEST.fullmatch(token):
        assert fastyaml._read_alike(token), token
        assert same(pyyaml(f"k: {token}\n"), {"k": token}), token


def test_the_digest_shortcut_takes_no_token_either_reader_reads_as_a_number() -> None:
    for token in ("0b101", "0b1_0", "1e5", "12e34", "0x1f", "017", "1_000", "2026-12-01", "1:30", "1e77123"):
        assert not fastyaml._DIGEST.fullmatch(token), token
    assert fastyaml._DIGEST.fullmatch("56125b200b1548c195ee24cb1d4054c5")
    # Digests are not asked about (the cache of answers stays as it was) and the cassette reads the same.
    text = "llmport:\n  head: 56125b200b1548c195ee24cb1d4054c5\n  sha: 2b48548e4d01e5ea48310233416\n"
    fastyaml._ASKED.clear()
    assert check(text) == {
        "llmport": {"head": "56125b200b1548c195ee24cb1d4054c5", "sha": "2b48548e4d01e5ea48310233416"}
    }
    assert not fastyaml._ASKED
