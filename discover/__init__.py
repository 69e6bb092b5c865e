"""mpo-discover: symbolic discovery of preference-optimisation losses.

``discover.run(...)`` runs a search (as ``discover run`` does) and ``discover.load(RUN)`` opens a run; both return a
:class:`Discovery` whose losses, numbered as ``discover show`` numbers them, come as a table
(``.equations``), sympy, LaTeX, in-memory JAX or PyTorch functions, files or a TRL trainer.
"""

from discover.api import Discovery, load, run

__all__ = ["Discovery", "load", "run"]
