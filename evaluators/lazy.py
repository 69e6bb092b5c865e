"""Lazy re-exports for a wing's package (PEP 562): its modules' public names, each module
imported on first use, so that reading a wing's configuration (as the command line does
for its options) does not import its evaluator and JAX."""

from __future__ import annotations

import importlib
from typing import Callable


def exports(package: str, modules: dict[str, tuple[str, ...]]) -> tuple[Callable[[str], object], list[str]]:
    """(``__getattr__``, ``__all__``) of ``package`` re-exporting ``modules`` (module name
    -> its public names)."""
    module_of = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name in module_of:
            return getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, list(module_of)
