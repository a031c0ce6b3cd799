"""Old import paths kept working: a module ``__getattr__`` that serves a moved name from its new home."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping


def moved(old_module: str, moves: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``old_module``: ``moves`` maps each old name to ``"new.module:name"``.

    Each access warns with a :class:`DeprecationWarning` that names the new import; unknown names raise
    the usual :class:`AttributeError`.
    """

    def __getattr__(name: str) -> object:
        target = moves.get(name)
        if target is None:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        module, _, attribute = target.partition(":")
        warnings.warn(
            f"{old_module}.{name} is deprecated: import {attribute} from {module} instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), attribute)

    return __getattr__
