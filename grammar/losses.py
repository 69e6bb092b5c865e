"""A loss with its constants: the one type in which the zoo's entries, a run's ranked
losses and a bench's entries travel to an evaluator, a plot or an exporter."""

from __future__ import annotations

import dataclasses

from grammar.expr import Expr


@dataclasses.dataclass(frozen=True)
class Loss:
    """``expr`` at ``constants``, under a display ``name``; ``kind`` is "zoo" (hand-designed)
    or "discovered", ``source`` says where it comes from (a paper, a run and rank). A loss
    derived from another (constants tuned, training progress frozen, inert terms removed)
    names how as ``variant`` and the other as ``base``."""

    name: str
    expr: Expr
    constants: dict
    kind: str
    source: str = ""
    variant: str | None = None
    base: str | None = None

    def derive(self, variant: str, name: str, expr: Expr, constants: dict, source: str) -> "Loss":
        """This loss changed in one way (``variant``), under its own name."""
        return Loss(name, expr, constants, self.kind, source, variant, self.name)
