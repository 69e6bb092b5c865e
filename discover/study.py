"""The analysis of a study of the engine (several independent searches per setting, their
winners and the best tuned hand-designed loss B* scored on the same held-out datasets),
with the dataset as the unit of replication.

- :func:`setting_effect`: one setting's statistics. Primary: the search-averaged effect
  of the winners over B* (:func:`discover.stats.crossed_effect`: search and dataset as
  crossed random effects). Sensitivity: a t over the searches of each search's
  dataset-averaged effect, and a t over the datasets of the search-averaged per-dataset
  effect. Secondary: the best of the winners (picked on its own search's data) against B*
  with a t over the datasets, and every winner's own dataset-level interval.
- :func:`verdicts`: Holm's correction over the settings (the family), the verdict of each
  (better, worse, tie or inconclusive) and the minimum detectable effect at the alpha of
  Holm's first step.
- :func:`dataset_intervals`: interval estimates over datasets in the style of rliable
  (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"): the mean and
  the interquartile mean of a loss's per-dataset scores with percentile-bootstrap intervals
  over datasets (``scipy.stats.bootstrap``; with one task per setting, rliable's
  stratified bootstrap is this one).

Scores are per dataset: the mean over the dataset's training seeds (the seeds of a dataset
share its data, reference and start states, so they are not independent units).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats as sps

from discover import stats


def setting_effect(winners: np.ndarray, b_star: np.ndarray, pick: int | None = None,
                   margin: float = stats.EQUIVALENCE_MARGIN) -> dict:
    """``winners`` (K searches, J datasets) and ``b_star`` (J,): per-dataset scores on the
    same held-out datasets; ``pick``: the index of the winner that its own search scored
    best (the secondary comparison's loss). Every score must be finite: a loss that failed
    on a held-out dataset has no per-dataset score, and the plan must say what it counts as."""
    winners, b_star = np.asarray(winners, float), np.asarray(b_star, float)
    if winners.ndim != 2 or b_star.shape != (winners.shape[1],):
        raise ValueError(f"winners must be (searches, datasets) and b_star (datasets,), got {winners.shape} "
                         f"and {b_star.shape}")
    if not (np.isfinite(winners).all() and np.isfinite(b_star).all()):
        raise ValueError("a score is missing (a loss failed on a held-out dataset)")
    d = winners - b_star
    K, J = d.shape
    out = {"primary": stats.crossed_effect(d, margin),
           "by_searches": stats.paired_difference(d.mean(axis=1), np.zeros(K)),
           "by_datasets": stats.paired_difference(d.mean(axis=0), np.zeros(J)),
           "per_search": [{**stats.paired_difference(winners[k], b_star), "p_tost": stats.tost(d[k], margin)}
                          for k in range(K)],
           "per_dataset": {"b_star": b_star.tolist(), "winners_mean": winners.mean(axis=0).tolist(),
                           "effect": d.mean(axis=0).tolist()},
           "searches": K, "datasets": J}
    if pick is not None:
        out["best_pick"] = {"search": int(pick), **stats.paired_difference(winners[pick], b_star),
                            "p_tost": stats.tost(d[pick], margin)}
    return out


def verdicts(effects: Sequence[dict], alpha: float = 0.05, power: float = 0.8, family: int | None = None,
             pending_p: float = 1.0) -> list[dict]:
    """For each setting's :func:`setting_effect` (the pre-registered family, in order):
    Holm-adjusted p of the primary effect and of its equivalence test, the verdict, and the
    minimum detectable effect (two-sided, ``power``) at Holm's first-step alpha (alpha / m,
    the strictest level a setting is tested at) and at ``alpha``, from the primary standard
    error and degrees of freedom. ``family``: the number of pre-registered settings when
    some have no result yet; they count with p = ``pending_p`` (1 by default, so the
    adjusted p values can only fall once they are in; 0 gives the lowest they can reach)."""
    m = max(len(effects), family or 0)
    pad = [float(pending_p)] * (m - len(effects))
    p_holm = stats.holm([e["primary"]["p"] for e in effects] + pad)[:len(effects)]
    # no equivalence test (a standard error of 0) counts as p = 1: the family stays m
    tost_holm = stats.holm([1.0 if e["primary"]["p_tost"] is None else e["primary"]["p_tost"] for e in effects]
                           + pad)[:len(effects)]
    out = []
    for e, p, pt in zip(effects, p_holm, tost_holm):
        prim = e["primary"]
        mde = {f"{a:g}": float((sps.t.ppf(1 - a / 2, prim["df"]) + sps.t.ppf(power, prim["df"])) * prim["se"])
               for a in (alpha / m, alpha)}
        out.append({"p_holm": p, "p_tost_holm": pt, "verdict": stats.verdict(p, pt, prim["mean"], alpha),
                    "alpha": alpha, "alpha_first_step": alpha / m, "mde": mde})
    return out


def interquartile_mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The mean of the middle half (rliable's IQM): the 25% trimmed mean."""
    return sps.trim_mean(x, 0.25, axis=axis)


def dataset_intervals(scores: dict[str, Sequence[float]], level: float = 0.95, resamples: int = 10_000,
                      seed: int = 0) -> dict[str, dict]:
    """Mean and interquartile mean over datasets of each named per-dataset score vector,
    each with its percentile-bootstrap interval (datasets resampled with replacement; each
    vector's resamples drawn from ``seed`` afresh, so equal scores give equal intervals
    wherever they stand in ``scores``)."""
    out = {}
    for name, values in scores.items():
        rng = np.random.default_rng(seed)
        x = np.asarray(values, float)
        row = {"datasets": int(x.size)}
        for what, fn in (("mean", np.mean), ("iqm", interquartile_mean)):
            ci = sps.bootstrap((x,), fn, confidence_level=level, n_resamples=resamples, method="percentile",
                               random_state=rng, vectorized=True, axis=-1).confidence_interval
            row[what] = {"value": float(fn(x, axis=-1)), "low": float(ci.low), "high": float(ci.high)}
        out[name] = row
    return out
