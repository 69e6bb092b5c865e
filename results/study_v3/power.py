"""Minimum detectable effects of the study v3 design, from the committed measurements.

The primary statistic of a setting is the search-averaged effect: each of K searches'
winner minus B*, averaged over the 3 seeds of each of J held-out datasets, then over
datasets and searches. All searches' winners are scored on the same J datasets, so the
estimate's variance has a search part, a dataset part and a residual:

    Var = s_search^2 / K + s_dataset^2 / J + (s_seed^2 / 2) / (3 J) + (s_seed^2 / 2) / (3 K J)

s_dataset (how much one dataset favours a winner over B*, beyond seed noise; taken as
shared by all K winners, the conservative case) and s_seed (one training seed's noise on
the difference) come from the Walker2d confound benches (v2 winner minus dpo_tsallis, 5
datasets x 4 seeds, six recipes; separated by a one-way random-effects ANOVA per bench,
then pooled); half of s_seed^2 is B*'s, whose runs on a dataset are shared by all K
winners (so averaging over searches does not shrink it), half the winner's. s_search is the spread of the effect between independent searches of one
setting; the committed v2 searches bound it: the two Walker2d mixed searches' winners
differ by 10.9 points on the same units (s ~ 10.9 / sqrt 2 = 7.7), and over all eight
MuJoCo searches winner minus best baseline has a 95% interval of about [-3.2, +4.2] (s ~
4.4); both rest on few searches (7.7 on two), so 11.0 is shown as well. The MDE uses t quantiles with K - 1 degrees of freedom (conservative: the
search part dominates) at two-sided alpha, power 0.8 (scipy.stats).

    python results/study_v3/power.py
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np
from scipy import stats

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SEEDS = 3  # per held-out dataset in the plan


def dataset_components() -> tuple[float, float]:
    """(between-dataset variance, seed variance) of the winner-minus-dpo_tsallis difference,
    pooled over the Walker2d confound benches (one-way random-effects ANOVA per bench)."""
    between, within = [], []
    for path in sorted(glob.glob(os.path.join(RESULTS, "v3-confound-walker2d-*", "results.json"))):
        with open(path) as f:
            bench = json.load(f)
        n = len(bench["data_seeds"])
        rows = {r["name"]: np.asarray(r["per_seed"], float).reshape(n, -1) for r in bench["losses"]}
        d = rows["v2-walker2d-mixed#1"] - rows["dpo_tsallis"]
        s = d.shape[1]
        msw = float(np.mean(d.var(axis=1, ddof=1)))
        msb = float(s * d.mean(axis=1).var(ddof=1))
        within.append(msw)
        between.append(max((msb - msw) / s, 0.0))
    return float(np.mean(between)), float(np.mean(within))


def mde(se: float, df: int, alpha: float, power: float = 0.8) -> float:
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def main() -> None:
    var_b, var_w = dataset_components()
    print(f"s_dataset {np.sqrt(var_b):.1f}, s_seed {np.sqrt(var_w):.1f} points (one winner's paired difference "
          f"on one dataset with {SEEDS} seeds: sd {np.sqrt(var_b + var_w / SEEDS):.1f})")
    print()
    print("| searches K | held-out datasets J | s_search | SE | MDE, alpha 0.05 | MDE, alpha 0.025 (Holm, 2 settings) |")
    print("|---|---|---|---|---|---|")
    for k in (8, 12, 16):
        for j in (20, 30):
            for s_search in (4.4, 7.7, 11.0):
                se = float(np.sqrt(s_search**2 / k + var_b / j + var_w / 2 / (SEEDS * j)
                                   + var_w / 2 / (SEEDS * k * j)))
                print(f"| {k} | {j} | {s_search} | {se:.2f} | {mde(se, k - 1, 0.05):.1f} | "
                      f"{mde(se, k - 1, 0.025):.1f} |")


if __name__ == "__main__":
    main()
