"""A faster reading of a cassette's YAML (the ``fast`` extra, yaml-rs) giving exactly PyYAML's objects.

Parsing is most of what replaying a test costs on a fresh checkout (every cassette read from YAML once):
libyaml's ``CSafeLoader`` spends about 80 % of it building PyYAML's event objects in Python, yaml-rs
(Rust) builds the result directly, about eight times faster; with the checks below, a cassette reads
about twice as fast. But yaml-rs reads YAML 1.2 and PyYAML YAML 1.1, and the two read some *plain*
(unquoted) scalars differently: ``yes``/``on`` (a bool in 1.1), ``017`` (octal 15 in 1.1, 17 in 1.2),
``0o17``, ``1e3``, ``_1``, ``1:30``, ``2026-12-01`` (a date in 1.1), ``<<``. PyYAML's writer quotes
only what 1.1 would read as something else, so a cassette we wrote can hold a plain ``1e3`` or ``09``
that yaml-rs would turn into a number. yaml-rs is also more lenient than libyaml.

:func:`load` returns yaml-rs' result only when it can show that PyYAML reads the text the same way, and
None otherwise (the caller then parses with PyYAML, whose error messages are the ones users see):

* every token where a plain scalar may begin that either reader could take for something other than
  a string (one starting with a digit, sign, ``.`` or ``_``; ``yes``/``no``/``on``/``off`` and their
  capitalisations; ``<<``, ``=``) must read the same in both: forms both read alike (``200``, ``3.3``,
  ``0.1.0``, a seal's hex digest) are known, the others are read by both on their own, once per process;
* left to PyYAML: tabs, the line breaks only 1.1 knows (NEL, LS, PS) and the characters PyYAML refuses;
  tags, anchors, complex or empty keys, directives, document markers; flow collections with something
  in them on their first line; block scalars with a blank first line, no content, or a line of spaces
  alone (the two part ways there); a text whose last line has no line break; and texts of long lines
  (streams, images), which libyaml reads about as fast;
* the result holds only the types both produce (mappings, lists, strings, numbers, booleans, None).

The scans look inside quoted and block scalars too, where such a token is only text: that costs a
fall-back at worst, never a wrong value. The cassette writer never writes what is left to PyYAML; what
it writes reads back the same (tests/test_fastyaml.py). Left open: YAML that PyYAML refuses inside a
flow collection spread over several lines (``[`` at a line's end, as in a JSON body's text), which
yaml-rs may read. The seals (``cassettes.verify_seal``) still check every body and head after either
reader.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

yaml_rs: Any
try:
    import yaml_rs
except ImportError:  # the extra is not installed: every cassette is read by PyYAML
    yaml_rs = None

# What PyYAML's reader refuses, or reads as a line break (NEL, LS, PS: YAML 1.1's alone).
_REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# Each pattern below begins with a set of characters, then looks behind at the one before: Python's
# regular expressions then skip quickly to the few places worth a closer look. They run over the text
# after a line break, so the first line counts as one too.
_WHERE = r"(?<=[\s\[{,:].)"  # where a plain scalar may begin: after a space, a line break, [ { , or :
_END = r"(?=[ \t]*(?:$|#|[,\]}]|:[ \t]|:$))"  # and where it ends
# One pass over the text finds what is left to PyYAML where a scalar may begin (a scalar's text may
# hold such a thing too: that only costs a fall-back):
_LEFT = re.compile(
    r"[!&?:|>\[{yYnNoO<=]" + _WHERE + "(?:"
    # a tag; an anchor (an alias shares its object in PyYAML); a complex key; ':' there (an empty key,
    # or a scalar YAML 1.1 does not let begin so)
    r"(?<=[!&:])|(?<=\?)(?=[\s,\[\]{}]|$)"
    # '|' or '>' that is no block scalar header (an error in flow context), or a header followed by a
    # blank line or by no content (libyaml and yaml-rs read those blocks' line breaks differently; the
    # cassette writer writes neither)
    r"|(?<=[|>])(?:(?![-+0-9]* *(?:#[^\n]*)?\n)|[-+0-9]* *(?:#[^\n]*)?\n(?:\n|(?! )))"
    # a flow collection with something in it (the writer writes only empty ones, and 1.1 refuses much
    # that 1.2 takes inside them; compact JSON in a body's text looks like one too)
    r"|(?<=[\[{])(?=[ \t]*[^\s\]}])"
    # the words only YAML 1.1 reads as booleans (PyYAML's own list), its merge and value keys
    r"|(?:(?<=y)es|(?<=Y)(?:es|ES)|(?<=n)o|(?<=N)[oO]|(?<=o)(?:n|ff)|(?<=O)(?:[nN]|ff|FF)|(?<=<)<|(?<==))"
    + _END
    + ")",
    re.MULTILINE,
)
# A line of spaces alone: libyaml and yaml-rs read it differently inside a block scalar.
_SPACES = re.compile(r"\n +(?=\n|\Z)")
# A token either reader may take for a number, a date or a time (a digit, sign, '.' or '_' first), up to
# where a plain scalar ends: through '1:30', and through the spaces of '2026-12-01 10:00:00 +08:00'.
_NUMERIC = re.compile(
    r"[-+._0-9]" + _WHERE + r"(?!(?<=[-+.])\s)(?:[^\s#,\[\]{}:]|:(?=\S)|[ \t]+(?=[-+0-9Z]))*" + _END,
    re.MULTILINE,
)
# Forms both read as the same value: decimal integers, floats with a dot (and a signed exponent, the
# only kind 1.1 has), and dotted versions (strings in both).
_ALIKE = re.compile(
    r"[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*(?:[eE][-+][0-9]+)?)?|[0-9]+(?:\.[0-9]+){2,}",
)
# A character no number, date, time or boolean of either reader holds: such a token is a string in both.
_TEXTUAL = re.compile(r"[^-+._0-9a-zA-Z: ]")
# A digest (a seal, an id): digits and lowercase hex letters, one of them a, c, d or f. Those four letters
# appear in no number of either reader but a hexadecimal one (``0x`` first: no ``x`` here), nor in a
# date, a time or a boolean (b is in 1.1's ``0b``, e in an exponent): a string in both, not asked about.
_DIGEST = re.compile(r"[0-9][0-9a-f]*[acdf][0-9a-f]*")
_SCALARS = (str, int, float, bool, type(None))
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the loader cassettes.py reads with
_STR = "tag:yaml.org,2002:str"
# Tokens already asked about in this process: token -> both read it alike.
_ASKED: dict[str, bool] = {}
_ASKED_MAX = 10_000
# Characters per line above which the scans below cost more than they spare.
_LONG_LINES = 64
# A text with more tokens to ask about than this is mostly numbers in prose or data: PyYAML reads it.
_ASK_LIMIT = 64


def available() -> bool:
    """Whether yaml-rs is installed (``pip install pytest-llmport[fast]``)."""
    return yaml_rs is not None


def load(text: str) -> Any:
    """The objects PyYAML's safe loader makes of ``text``, read by yaml-rs; None when not shown alike."""
    if yaml_rs is None or _LOADER.yaml_path_resolvers or not text.endswith("\n"):
        return None  # (a block scalar at the very end without a line break reads differently)
    if len(text) > _LONG_LINES * (text.count("\n") + 1):
        return None  # long lines (a stream, an image): few scalars, which libyaml reads about as fast
    scanned = "\n" + text
    if (
        "\t" in text
        or "\n%" in scanned  # a directive
        or "\n---" in scanned  # a document marker (and a document end but as the last line)
        or "\n..." in scanned[:-4]
        or _REFUSED.search(text)
        or (" \n" in text and _SPACES.search(scanned))  # (such a line ends in " \n": the text ends in one)
        or _LEFT.search(scanned)
    ):
        return None
    try:
        data = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # any refusal: PyYAML reads it and says what is wrong
        return None
    if not isinstance(data, dict) or not _plain_types(data) or not _tokens_alike(scanned):
        return None
    return data


def _plain_types(data: dict[str, Any]) -> bool:
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, _SCALARS):
                    return False
                if isinstance(value, (dict, list)):
                    stack.append(value)
                elif not isinstance(value, _SCALARS):
                    return False
        else:
            for value in node:
                if isinstance(value, (dict, list)):
                    stack.append(value)
                elif not isinstance(value, _SCALARS):
                    return False
    return True


def _tokens_alike(text: str) -> bool:
    asked = 0
    for token in set(_NUMERIC.findall(text)):
        if _ALIKE.fullmatch(token) or _TEXTUAL.search(token) or _DIGEST.fullmatch(token):
            continue
        known = _ASKED.get(token)
        if known is None:
            asked += 1
            if asked > _ASK_LIMIT:
                return False
            known = _read_alike(token)
            if len(_ASKED) >= _ASKED_MAX:
                _ASKED.clear()
            _ASKED[token] = known
        if not known:
            return False
    return True


def _read_alike(token: str) -> bool:
    """Whether PyYAML and yaml-rs read ``token`` as a plain scalar to the same value."""
    document = f"k: {token}\n"
    try:
        parsed: Any = yaml_rs.loads(document, parse_datetime=False)
        theirs = parsed["k"]
        if _plain_tag(token) == _STR:
            return isinstance(theirs, str) and theirs == token
        ours = yaml.load(document, Loader=_LOADER)["k"]  # noqa: S506 - a safe loader
    except Exception:  # either refuses it alone: not shown alike
        return False
    if type(ours) is not type(theirs):
        return False
    return bool(ours == theirs or (isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs)))


def _plain_tag(value: str) -> str:
    """The tag PyYAML's safe loader gives ``value`` as a plain scalar (its resolver's own rule)."""
    resolvers = _LOADER.yaml_implicit_resolvers
    found = resolvers.get(value[0] if value else "", []) + resolvers.get(None, [])
    return next((tag for tag, pattern in found if pattern.match(value)), _STR)
