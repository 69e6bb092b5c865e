"""Scored rows: the schema that bench rows (``results.json``) and a search's held-out rows
(``final.json``) share, and how a row relates to the loss it is derived from.

A scored row holds ``name``, ``kind`` ("zoo" or "discovered"), ``fitness`` (mean over its
units, None if it failed), ``spread``, ``per_seed`` (one score per unit, None where it
failed) and ``reason``. Files written before these were shared read the same through
:func:`scored_row` and :func:`variant_of`, the only places that know the older forms.

:func:`loss_row` builds every scored row, bench's and search's, and :func:`score_fields`
its score fields (and those of the search's candidate records). ``spread`` is a standard
deviation over the row's units; files say which one in ``spread_ddof`` (see
:data:`SPREAD_DDOF`), and :func:`spread_ddof` reads files written before they did with
the meaning they were written with.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from grammar import symbolic
from grammar.expr import to_text
from grammar.losses import Loss

SPREAD_DDOF = 1
"""The spread of scored rows written from now on (``final.json``, ``results.json``): the
sample standard deviation over the row's units (ddof 1), the unbiased variance's root that
the paired comparisons of the reports also use; with 3 to 5 units, ddof 0 reads 10 to 20%
smaller."""

RECORD_SPREAD_DDOF = 0
"""The spread of the search's candidate records (``candidates.jsonl``,
``hall_of_fame.json``): ddof 0, as every committed run logged it. A resumed run appends to
its log, so changing it would mix both meanings in one file."""

# spread_ddof of files written before they recorded it
_SPREAD_DDOF_BEFORE = {"final.json": 0, "results.json": 1}

# final.json rows before the scored-row schema was shared with bench rows
_OLD_SCORE_KEYS = {"heldout_mean": "fitness", "heldout_std": "spread", "heldout_per_seed": "per_seed"}


def scored_row(row: dict) -> dict:
    """A held-out row in the scored-row schema (``fitness``, ``spread``, ``per_seed``,
    ``reason``), whichever schema it was written in."""
    return {_OLD_SCORE_KEYS.get(k, k): v for k, v in row.items()}


def variant_of(row: dict) -> tuple[str, str | None]:
    """(base loss, variant) of a bench row. A variant is how the row's loss was derived
    from the base: "tuned" (constants tuned on the tuning dataset), "t=0"/"t=1" (training
    progress frozen), "effective" (terms under 1% of the gradient removed); None for a
    loss as given. Benches written before rows recorded both (2026-12-01) carry them in
    the display name, read here and nowhere else."""
    if "variant" in row:
        return row["base"], row["variant"]
    name = row["name"]
    if " @ t=" in name:
        base, _, point = name.rpartition(" @ t=")
        return base, f"t={point}"
    if name.endswith(" (effective)"):
        return name[: -len(" (effective)")], "effective"
    if " (tuned: " in name:
        return name.split(" (tuned: ")[0], "tuned"
    return name, None


def t_frozen(row: dict) -> bool:
    """Whether the row is a loss with training progress t frozen (``discover bench --ablate-t``)."""
    return (variant_of(row)[1] or "").startswith("t=")


def derived_row(bench: dict, base: str, variant: str | None) -> dict | None:
    """The bench's row of ``base`` changed by ``variant`` (None: ``base`` itself), if it has one."""
    return next((r for r in bench["losses"] if variant_of(r) == (base, variant)), None)


def spread(values: Sequence[float] | np.ndarray, ddof: int) -> float:
    """The standard deviation of ``values`` with ``ddof`` (0 for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=ddof)) if len(values) > ddof else 0.0


def score_fields(units: Sequence[float | None] | np.ndarray, reason: str | None, ddof: int = SPREAD_DDOF) -> dict:
    """The score fields of a row over its units (nan or None where a unit failed):
    ``fitness`` (their mean), ``spread`` (their standard deviation with ``ddof``),
    ``per_seed`` and ``reason``. A row with a reason has no fitness, spread or unit score."""
    units = np.array([np.nan if v is None else v for v in units], dtype=np.float64)
    failed = reason is not None
    return {"fitness": None if failed else float(units.mean()),
            "spread": None if failed else spread(units, ddof),
            "per_seed": [None if failed or np.isnan(v) else float(v) for v in units],
            "reason": reason}


def spread_ddof(doc: dict, file: str) -> int:
    """The ddof of the spreads in ``doc``, the contents of ``file`` ("final.json" or
    "results.json"): as recorded, else as that file was written before it recorded it
    (ddof 0 in a search's final.json, ddof 1 in a bench's results.json)."""
    return int(doc.get("spread_ddof", _SPREAD_DDOF_BEFORE[file]))


def spread_label(ddof: int) -> str:
    """What a spread of ``ddof`` is, for a report: "sd over units, ddof 1"."""
    return f"sd over units, ddof {ddof}"


def loss_row(loss: Loss, units: Sequence[float | None] | np.ndarray, reason: str | None, **fields) -> dict:
    """The scored row of ``loss`` over its ``units`` (see :func:`score_fields`), with the
    writer's own ``fields`` (bench: variant, per dataset, diagnostics; search: search
    fitness, derivation)."""
    return {"name": loss.name, "kind": loss.kind, "closed_form": symbolic.text(loss.expr),
            "expression": to_text(loss.expr), "constants": loss.constants, **score_fields(units, reason), **fields}
