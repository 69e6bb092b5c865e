"""Scored candidates as records: keys, the best record per structure, the hall of fame.

A record is the JSON dict that the run store logs for every candidate (see
:func:`discover.proposals.record`); everything here is a pure function of records, shared by the search,
the CLI and the report.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable

from discover.errors import RunError
from grammar.derivation import Node
from grammar.errors import GrammarError
from grammar.expr import Expr, Scope, parse
from grammar.losses import Loss
from grammar.primitives import TERMINALS


@dataclasses.dataclass
class Candidate:
    """A loss proposed by the search: its derivation, expression, constants and origin."""

    node: Node
    expr: Expr
    constants: dict[str, float]
    hash: str
    origin: str
    parents: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The candidate's key: its structure's hash and its constants."""
        return candidate_key(self.hash, self.constants)


def candidate_key(h: str, constants: dict[str, float]) -> str:
    """The identity of a trained candidate: canonical hash and constants (5 digits)."""
    return h + "|" + ",".join(f"{k}={constants[k]:.5g}" for k in sorted(constants))


def penalised(rec: dict, penalty: float) -> float:
    """Fitness minus ``penalty`` x complexity (the selection score); -inf if unscored."""
    if rec.get("fitness") is None:
        return -math.inf
    return rec["fitness"] - penalty * rec["complexity"]


def best_per_structure(records: Iterable[dict], need_constants: bool = False) -> dict[str, dict]:
    """The highest-fitness scored record of each canonical structure (hash)."""
    best: dict[str, dict] = {}
    for rec in records:
        if rec.get("fitness") is None or (need_constants and not rec["constants"]):
            continue
        if rec["hash"] not in best or rec["fitness"] > best[rec["hash"]]["fitness"]:
            best[rec["hash"]] = rec
    return best


def hall_of_fame(records: Iterable[dict], top: int = 20) -> dict:
    """Best candidate per structure by fitness, and the Pareto front of fitness vs complexity."""
    best = best_per_structure(records)
    ranked = sorted(best.values(), key=lambda r: -r["fitness"])
    front, best_so_far = [], -math.inf
    for r in sorted(best.values(), key=lambda r: (r["complexity"], -r["fitness"])):
        if r["fitness"] > best_so_far:
            front.append(r)
            best_so_far = r["fitness"]
    return {"ranked": ranked[:top], "pareto": front, "structures": len(best)}


def expression_of(row: dict) -> Expr:
    """The scored expression of a stored row (its text form uses terminals and constants only).
    Raises :class:`RunError` naming the row where the text does not parse."""
    try:
        return parse(row["expression"], Scope(terminals=TERMINALS, constants=tuple(row["constants"])))
    except GrammarError as e:
        who = row.get("name") or row.get("key") or "a row"
        raise RunError(f"the stored expression of {str(who)[:60]!r} does not parse: {e.message}") from None


def loss_of(row: dict, name: str) -> Loss:
    """A stored discovered row (a candidate record, or a held-out row) as a loss named ``name``."""
    return Loss(name, expression_of(row), dict(row["constants"]), "discovered", row.get("derivation") or "")
