"""Setting process environment variables for a while, and putting back exactly what was there before."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["restore_variables", "set_variables"]


def set_variables(values: Mapping[str, str], saved: dict[str, str | None]) -> None:
    """Set ``values`` in ``os.environ``, noting in ``saved`` what each variable held before the first set."""
    for name, value in values.items():
        saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value


def restore_variables(saved: dict[str, str | None]) -> None:
    """Put back what ``saved`` noted (a variable that was not set is removed), then forget it."""
    for name, old in saved.items():
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
    saved.clear()
