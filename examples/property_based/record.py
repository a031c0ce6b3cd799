"""Re-record this example's cassettes from the bundled fake provider (no network, no real keys).

    python examples/property_based/record.py [provider ...]

For each provider, a FakeProvider runs that provider's fake model (quirky_models.py: the personalities of
../support_triage plus qwen's greeting quirk), the suite is run against it in record mode ``all``, and the
recorded URLs are rewritten from the fake server's address to the provider's real default base URL, so
the cassettes replay with the default configuration. The recording itself is ../support_triage/record.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# fake_models.py (imported by quirky_models.py) and record.py, whose record_with_fake this script uses;
# inserted first, so that ``record`` is ../support_triage/record.py and not this script.
sys.path.insert(0, str(HERE.parent / "support_triage"))

from quirky_models import CHUNK_CHARS, MODELS  # noqa: E402
from record import main_for, record_with_fake  # noqa: E402


def record(name: str) -> None:
    record_with_fake(HERE, name, MODELS[name], CHUNK_CHARS[name], unset_env=["CI"])


def main(argv: list[str]) -> int:
    return main_for(argv, MODELS, record)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
