"""What the plugin writes in place of a secret, and the keys it hands to SDKs while replaying.

Scrubbing (scrub.py), replay matching (cassettes.py) and the secret scanner (scan.py) must agree on
these strings, so they live here once.
"""

from __future__ import annotations

import re

#: A whole value redacted by its name (a header, a query parameter, a JSON or form field).
REDACTED = "REDACTED"
#: ``<REDACTED:VARIABLE>`` replaces a known key value; ``<REDACTED>`` a credential found by its shape.
MARKER = re.compile(r"<REDACTED(?::[A-Za-z0-9_.-]{0,64})?>")
ANY_MARKER = "<REDACTED>"


def marker(name: str) -> str:
    return f"<{REDACTED}:{name}>"


#: The key an SDK gets while replaying when its provider's key variable is not set.
REPLAY_KEY = "llmport-replay-key"
# Shapes some SDKs check before they send anything. zhipuai signs a JWT with the part after the dot of
# an ``id.secret`` key (PyJWT wants an HMAC key of 32 bytes or more); Qianfan's v2 keys are
# ``bce-v3/ALTAK-.../...`` and its native API takes an access key / secret key pair.
REPLAY_KEYS = {
    "ZHIPUAI_API_KEY": "llmport-replay.llmport-replay-secret-0123456789abcdef",
    "QIANFAN_API_KEY": "bce-v3/ALTAK-llmportreplay/llmportreplay0123456789abcdef",
    "QIANFAN_AK": "llmportReplayAccessKey00",
    "QIANFAN_SK": "llmportReplaySecretKey0000000000",
}
#: Every placeholder key; the scanner allows them, the scrubber never treats them as secrets.
PLACEHOLDER_KEYS = frozenset({REPLAY_KEY, *REPLAY_KEYS.values()})


def replay_key(variable: str) -> str:
    """The placeholder for the key variable ``variable``, shaped as that provider's SDK demands."""
    return REPLAY_KEYS.get(variable, REPLAY_KEY)
