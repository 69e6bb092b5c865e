"""The statistics behind every verdict: paired intervals, Holm's correction, equivalence
tests and the minimum detectable effect.

A comparison of loss A with loss B is paired: both are trained on the same (dataset,
seed) pairs, so the unit of analysis is the per-pair difference d = score_A - score_B.
Sample standard deviations use ddof = 1 throughout.

- ``paired_difference``: mean of d, its 95% t interval and the two-sided p-value of a
  one-sample t test of mean(d) = 0.
- ``holm``: Holm's step-down adjustment of a family of p-values (controls the family-wise
  error rate; a report's verdicts are one family).
- ``tost``: the two one-sided tests of equivalence within +-margin (Schuirmann 1987):
  "A and B are equivalent" is claimed only when both one-sided nulls (mean <= -margin,
  mean >= +margin) are rejected; its p-value is the larger of the two.
- ``minimum_detectable_effect``: the true mean difference that a two-sided paired t test
  at level alpha detects with the given power, for the observed spread and number of pairs.
- ``crossed_effect``: a study's primary statistic, the search-averaged effect of K
  searches' winners over J held-out datasets, with search and dataset as crossed random
  effects (statsmodels).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats as sps

# Differences smaller than this many points of normalised return are treated as ties when
# an equivalence test confirms them (a twentieth of the expert-random gap).
EQUIVALENCE_MARGIN = 5.0

# statsmodels' optimisers that fit the study's crossed model; the REML fit is the best of them
OPTIMIZERS = ("bfgs", "lbfgs", "nm", "powell")


def _clean(d: Sequence[float]) -> np.ndarray:
    d = np.asarray(d, float)
    return d[np.isfinite(d)]


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict:
    """Mean of a - b over paired units, its t interval, the p-value of mean = 0, and n, sd."""
    d = _clean(np.asarray(a, float) - np.asarray(b, float))
    n = len(d)
    if n < 2:
        return {"mean": float(d.mean()) if n else None, "low": None, "high": None, "p": None, "n": n, "sd": None}
    sd = float(d.std(ddof=1))
    se = sd / np.sqrt(n)
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * se)
    if se > 0:
        p = float(2 * sps.t.sf(abs(d.mean()) / se, n - 1))
    else:
        p = 0.0 if d.mean() != 0 else 1.0
    return {"mean": float(d.mean()), "low": float(d.mean() - half), "high": float(d.mean() + half), "p": p,
            "n": n, "sd": sd}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the input order (None stays None)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def tost(d: Sequence[float], margin: float = EQUIVALENCE_MARGIN) -> float | None:
    """p-value of equivalence within +-margin for paired differences ``d`` (None if n < 2)."""
    d = _clean(d)
    n = len(d)
    if n < 2:
        return None
    se = d.std(ddof=1) / np.sqrt(n)
    if se == 0:
        return 0.0 if abs(d.mean()) < margin else 1.0
    p_lower = sps.t.sf((d.mean() + margin) / se, n - 1)   # H0: mean <= -margin
    p_upper = sps.t.cdf((d.mean() - margin) / se, n - 1)  # H0: mean >= +margin
    return float(max(p_lower, p_upper))


def minimum_detectable_effect(sd: float | None, n: int, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest true mean difference a two-sided paired t test at ``alpha`` detects with ``power``."""
    if sd is None or n < 2:
        return None
    df = n - 1
    return float((sps.t.ppf(1 - alpha / 2, df) + sps.t.ppf(power, df)) * sd / np.sqrt(n))


def verdict(p_holm: float | None, p_tost_holm: float | None, mean: float | None, alpha: float = 0.05) -> str:
    """"better" / "worse" (difference significant after Holm), "tie" (equivalent within the
    margin after Holm), or "inconclusive" (neither)."""
    if p_holm is not None and p_holm < alpha and mean is not None:
        return "better" if mean > 0 else "worse"
    if p_tost_holm is not None and p_tost_holm < alpha:
        return "tie"
    return "inconclusive"


def crossed_effect(d: np.ndarray, margin: float = EQUIVALENCE_MARGIN, level: float = 0.95) -> dict:
    """A study's primary statistic: ``d`` (K searches, J datasets) holds each search's winner
    minus B* on each held-out dataset (the mean over the dataset's seeds). Fitted by REML as
    crossed random effects, d_kj = mu + a_k + b_j + e_kj (search and dataset random;
    statsmodels ``MixedLM`` with one group and a variance component for each), mu's
    standard error is referred to a t distribution with K - 1 degrees of freedom (the
    searches are the scarcer units). The fit is the highest restricted log-likelihood that
    any of :data:`OPTIMIZERS` reaches (statsmodels' default alone can stop short of it and
    still report convergence); where every fit fails, the balanced design's moments give
    the standard error (Satterthwaite's degrees of freedom; ``method`` says which;
    ``se_moments`` is reported either way). Returns mu, its interval, the two-sided p of
    mu = 0, the TOST p within +-``margin``, the three standard deviations, K and J, and the
    minimum detectable effect at 0.05 and power 0.8 for this standard error. Needs the
    ``study`` extra (statsmodels)."""
    import warnings

    import pandas as pd  # statsmodels' dependency; both lazily: the study extra only
    import statsmodels.formula.api as smf

    d = np.asarray(d, float)
    if d.ndim != 2 or min(d.shape) < 2 or not np.isfinite(d).all():
        raise ValueError(f"d must be a finite (searches, datasets) array with at least 2 of each, got {d.shape}")
    K, J = d.shape
    frame = pd.DataFrame({"d": d.ravel(), "search": np.repeat(np.arange(K), J), "dataset": np.tile(np.arange(J), K),
                          "group": 0})
    model = smf.mixedlm("d ~ 1", frame, groups="group", re_formula="0",
                        vc_formula={"search": "0 + C(search)", "dataset": "0 + C(dataset)"})
    moments_se, moments_df, moments_sds = _moments(d)
    converged, fit_warnings, optimizer, fits = None, [], None, []
    for name in OPTIMIZERS:
        # a variance component at 0 (on the boundary) is a result, not a failure: warnings are
        # kept for the report (with ``converged``), not acted on
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = model.fit(reml=True, method=name)
                se = float(fit.bse_fe["Intercept"])
            except Exception:  # noqa: BLE001 - an optimiser that breaks leaves the others
                continue
        if np.isfinite(fit.llf) and np.isfinite(se):
            fits.append((float(fit.llf), name, fit, sorted({f"{w.category.__name__}: {w.message}" for w in caught})))
    if fits:  # the REML estimate: the highest restricted log-likelihood any optimiser reached;
        # among fits that tie with it (to 1e-6), a converged one first, then the order of OPTIMIZERS
        top = max(f[0] for f in fits)
        tied = [f for f in fits if f[0] >= top - 1e-6]
        _, optimizer, fit, fit_warnings = min(tied, key=lambda f: (not f[2].converged, OPTIMIZERS.index(f[1])))
        converged = bool(fit.converged)
        mu, se, df, method = float(fit.fe_params["Intercept"]), float(fit.bse_fe["Intercept"]), K - 1, "mixedlm"
        vc = dict(zip(model.exog_vc.names, np.sqrt(np.maximum(np.asarray(fit.vcomp, float), 0.0))))
        sds = float(vc["search"]), float(vc["dataset"]), float(np.sqrt(fit.scale))
    else:  # the balanced design's moments instead (same estimand)
        mu, se, df, method, sds = float(d.mean()), moments_se, moments_df, "moments", moments_sds
    h = float(sps.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * sps.t.sf(abs(mu) / se, df)) if se > 0 else (0.0 if mu else 1.0)
    p_tost = float(max(sps.t.sf((mu + margin) / se, df), sps.t.cdf((mu - margin) / se, df))) if se > 0 else None
    return {"mean": mu, "se": se, "df": float(df), "method": method, "low": mu - h, "high": mu + h, "p": p,
            "p_tost": p_tost, "margin": margin, "sd_search": sds[0], "sd_dataset": sds[1], "sd_residual": sds[2],
            "se_moments": moments_se, "converged": converged, "optimizer": optimizer, "fit_warnings": fit_warnings,
            "searches": K, "datasets": J,
            "mde": float((sps.t.ppf(0.975, df) + sps.t.ppf(0.8, df)) * se)}


def _moments(d: np.ndarray) -> tuple[float, float, tuple[float, float, float]]:
    """Standard error of the grand mean of a balanced search x dataset table with crossed
    random effects, from its mean squares: SE^2 = s_search^2 / K + s_dataset^2 / J +
    s_residual^2 / (K J) with s_search^2 = (MS_search - MS_residual) / J and s_dataset^2 =
    (MS_dataset - MS_residual) / K, each set to 0 where negative (without that,
    (MS_search + MS_dataset - MS_residual) / (K J)); Satterthwaite's degrees of freedom for
    the resulting combination of mean squares; and the three standard deviations (search,
    dataset, residual) so estimated. With every component positive these are the REML
    estimates of a balanced design."""
    K, J = d.shape
    rows, cols, grand = d.mean(axis=1, keepdims=True), d.mean(axis=0, keepdims=True), d.mean()
    ms = np.array([J * rows.var(ddof=1), K * cols.var(ddof=1),
                   float(((d - rows - cols + grand) ** 2).sum() / ((K - 1) * (J - 1)))])
    dfs = np.array([K - 1, J - 1, (K - 1) * (J - 1)], float)
    kept = ms[:2] > ms[2]  # a component whose estimate is positive
    coef = np.array([*kept.astype(float), 1.0 - kept.sum()])  # K J SE^2 = coef . ms
    total = float(coef @ ms)
    sds = tuple(float(np.sqrt(max(v, 0.0))) for v in ((ms[0] - ms[2]) / J, (ms[1] - ms[2]) / K, ms[2]))
    if total <= 0:  # every mean square 0: no spread at all
        return 0.0, float(dfs[2]), sds
    df = total**2 / float(np.sum((coef * ms) ** 2 / dfs))
    return float(np.sqrt(total / (K * J))), float(df), sds
