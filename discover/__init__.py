"""mpo-discover: symbolic discovery of preference-optimisation losses.

``discover.run(...)`` runs a search (as ``discover run`` does) and ``discover.load(RUN)``
opens a run; both return a :class:`Discovery` whose losses, numbered as ``discover show``
numbers them, come as a table (``.equations``), sympy, LaTeX, in-memory JAX or PyTorch
functions, files or a TRL trainer (see ``discover/api.py``).
"""

import importlib

__all__ = ["Discovery", "load", "run"]


def __getattr__(name: str):
    # The API is imported on first use (PEP 562): importing the package, as every
    # ``discover.*`` module and the CLI do, stays free of it and of its imports.
    if name in __all__:
        return getattr(importlib.import_module("discover.api"), name)
    raise AttributeError(f"module 'discover' has no attribute {name!r}")
