"""Scored rows: the schema that bench rows (``results.json``) and a search's held-out rows
(``final.json``) share, and how a row relates to the loss it is derived from.

A scored row holds ``name``, ``kind`` ("zoo" or "discovered"), ``fitness`` (mean over its
units, None if it failed), ``spread``, ``per_seed`` (one score per unit, None where it
failed) and ``reason``. Files written before these were shared read the same through
:func:`scored_row` and :func:`variant_of`, the only places that know the older forms.
"""

from __future__ import annotations

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
