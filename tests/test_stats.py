"""The statistics of verdicts on inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from discover import stats


def test_paired_difference_matches_scipy_ttest():
    rng = np.random.default_rng(1)
    a, b = rng.normal(50, 8, 12), rng.normal(47, 8, 12)
    d = stats.paired_difference(a, b)
    ref = sps.ttest_rel(a, b)
    assert d["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert d["sd"] == pytest.approx(np.std(a - b, ddof=1))
    ci = ref.confidence_interval(0.95)
    assert (d["low"], d["high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_holm_on_a_textbook_family():
    # Holm (1979): sorted p 0.01, 0.02, 0.03, 0.04 with m = 4 -> 0.04, 0.06, 0.06, 0.06
    adjusted = stats.holm([0.03, 0.01, None, 0.04, 0.02])
    assert adjusted[1] == pytest.approx(0.04)
    assert adjusted[4] == pytest.approx(0.06)
    assert adjusted[0] == pytest.approx(0.06)
    assert adjusted[3] == pytest.approx(0.06)
    assert adjusted[2] is None
    assert stats.holm([0.2, 0.9]) == [pytest.approx(0.4), pytest.approx(0.9)]
    assert stats.holm([0.5, 0.9]) == [pytest.approx(1.0), pytest.approx(1.0)]


def test_tost_claims_equivalence_only_inside_the_margin():
    rng = np.random.default_rng(2)
    tight = rng.normal(0.5, 2.0, 40)     # mean near 0, well inside +-5
    assert stats.tost(tight, margin=5.0) < 0.001
    shifted = rng.normal(6.0, 2.0, 40)   # mean outside the margin
    assert stats.tost(shifted, margin=5.0) > 0.5
    noisy = rng.normal(0.0, 30.0, 5)     # too noisy to claim anything
    assert stats.tost(noisy, margin=5.0) > 0.05
    # the TOST p-value is the larger of two one-sided t tests
    d = rng.normal(1.0, 3.0, 15)
    lower = sps.ttest_1samp(d, -5.0, alternative="greater").pvalue
    upper = sps.ttest_1samp(d, 5.0, alternative="less").pvalue
    assert stats.tost(d, 5.0) == pytest.approx(max(lower, upper), rel=1e-10)


def test_minimum_detectable_effect_has_the_stated_power():
    sd, n = 10.0, 20
    mde = stats.minimum_detectable_effect(sd, n)
    # simulated power of the paired t test at that effect is about 0.8
    rng = np.random.default_rng(3)
    hits = sum(sps.ttest_1samp(rng.normal(mde, sd, n), 0.0).pvalue < 0.05 for _ in range(2000))
    assert 0.76 < hits / 2000 < 0.84
    assert stats.minimum_detectable_effect(None, 5) is None


def test_verdicts():
    assert stats.verdict(0.01, None, 3.0) == "better"
    assert stats.verdict(0.01, None, -3.0) == "worse"
    assert stats.verdict(0.3, 0.01, 0.5) == "tie"
    assert stats.verdict(0.3, 0.2, 0.5) == "inconclusive"


def test_crossed_effect_counts_the_spread_between_searches():
    """The study's primary statistic: on a balanced design the estimate is the grand mean,
    and its interval widens with the spread between searches, which an analysis over the
    datasets alone (search-averaged per-dataset effects) leaves out."""
    from discover.stats import crossed_effect

    rng = np.random.default_rng(3)
    K, J = 8, 20
    dataset, noise = rng.normal(0, 3.0, (1, J)), rng.normal(0, 4.0, (K, J))
    agree = 2.0 + dataset + noise
    differ = agree + rng.normal(0, 10.0, (K, 1))  # searches that return very different losses
    a, b = crossed_effect(agree), crossed_effect(differ)
    assert a["mean"] == pytest.approx(agree.mean()) and b["mean"] == pytest.approx(differ.mean())
    naive = differ.mean(axis=0).std(ddof=1) / np.sqrt(J)  # a t over datasets of the search-averaged effects
    assert b["se"] > 2 * naive and b["se"] > 2 * a["se"]
    assert b["sd_search"] > 5 and a["sd_search"] < 3 and a["searches"] == K and a["datasets"] == J
    assert a["low"] < a["mean"] < a["high"] and 0 <= a["p"] <= 1 and a["mde"] > 0
    assert a["method"] == "mixedlm" and b["se_moments"] == pytest.approx(b["se"], rel=0.1)  # two estimators agree
    assert a["converged"] is True and isinstance(a["fit_warnings"], list)  # reported, not acted on
    with pytest.raises(ValueError, match="searches, datasets"):
        crossed_effect(np.ones(5))


def test_the_moments_standard_error_sets_each_negative_component_to_zero():
    """The fallback's SE: the balanced formula where every component is positive, and where
    one is negative (searches that agree more than the residual suggests) not the floored
    sum, which can give a standard error near 0, but the other components' share."""
    from discover.stats import _moments

    rng = np.random.default_rng(2)
    K, J = 8, 20
    d = rng.normal(0, 1, (K, J)) + rng.normal(0, 2, (K, 1)) + rng.normal(0, 3, (1, J))
    rows, cols, grand = d.mean(axis=1, keepdims=True), d.mean(axis=0, keepdims=True), d.mean()
    ms_s, ms_d = J * rows.var(ddof=1), K * cols.var(ddof=1)
    ms_e = ((d - rows - cols + grand) ** 2).sum() / ((K - 1) * (J - 1))
    se, df, sds = _moments(d)
    assert se == pytest.approx(np.sqrt((ms_s + ms_d - ms_e) / (K * J)))
    assert sds == pytest.approx((np.sqrt((ms_s - ms_e) / J), np.sqrt((ms_d - ms_e) / K), np.sqrt(ms_e)))
    assert 1 < df < K * J
    flat = rng.normal(0, 1, (K, J))
    flat = flat - flat.mean(axis=1, keepdims=True) + rng.normal(0, 0.01, (K, 1))  # search means all but equal
    se, df, sds = _moments(flat)
    rows, cols = flat.mean(axis=1, keepdims=True), flat.mean(axis=0, keepdims=True)
    ms_d = K * cols.var(ddof=1)
    ms_e = ((flat - rows - cols + flat.mean()) ** 2).sum() / ((K - 1) * (J - 1))
    # the search component is dropped; what remains is the dataset and residual share
    want = (ms_d - ms_e) / K / J + ms_e / (K * J) if ms_d > ms_e else ms_e / (K * J)
    assert se == pytest.approx(np.sqrt(want)) and se > 0.5 * flat.std() / np.sqrt(K * J) and df >= 1
    assert sds[0] == 0.0  # the dropped component's standard deviation


def test_the_crossed_fit_is_the_reml_optimum_not_where_the_default_optimiser_stops():
    """On this draw statsmodels 0.15's default fit stops short of the REML optimum (standard
    error 1.105 against 1.306); the best of several optimisers reaches it, which on a
    balanced design with every component positive is the moments estimate."""
    from discover.stats import _moments, crossed_effect

    rng = np.random.default_rng(1)
    K, J = 8, 20
    d = 2 + rng.normal(0, 4.4, (K, 1)) + rng.normal(0, 3.6, (1, J)) + rng.normal(0, 6.7, (K, J))
    fit = crossed_effect(d)
    se, _, sds = _moments(d)
    assert fit["method"] == "mixedlm" and fit["converged"] is True and fit["optimizer"] in stats.OPTIMIZERS
    assert fit["se"] == pytest.approx(se, rel=1e-3) and se == pytest.approx(1.306, abs=1e-3)
    assert (fit["sd_search"], fit["sd_dataset"], fit["sd_residual"]) == pytest.approx(sds, rel=1e-3)


def test_a_study_setting_is_analysed_with_the_dataset_as_its_unit():
    """The study's per-setting statistics on planted scores: a clear effect over B* is
    "better" after Holm, a null one is not, and the secondary pick is compared on datasets."""
    from discover import study

    rng = np.random.default_rng(5)
    K, J = 8, 20
    b_star = 40 + rng.normal(0, 5, J)
    dataset = rng.normal(0, 3, J)
    clear = b_star + 12 + dataset + rng.normal(0, 2, (K, 1)) + rng.normal(0, 3, (K, J))
    null = b_star + dataset + rng.normal(0, 2, (K, 1)) + rng.normal(0, 3, (K, J))
    a, b = study.setting_effect(clear, b_star, pick=2), study.setting_effect(null, b_star)
    assert a["primary"]["mean"] == pytest.approx((clear - b_star).mean())
    assert a["by_searches"]["n"] == K and a["by_datasets"]["n"] == J and len(a["per_search"]) == K
    assert a["best_pick"]["search"] == 2 and a["best_pick"]["n"] == J
    assert a["best_pick"]["mean"] == pytest.approx((clear[2] - b_star).mean())
    assert a["per_dataset"]["effect"] == pytest.approx((clear - b_star).mean(axis=0))
    v = study.verdicts([a, b])
    assert v[0]["verdict"] == "better" and v[1]["verdict"] in ("tie", "inconclusive")
    assert v[0]["alpha_first_step"] == 0.025 and v[0]["mde"]["0.025"] > v[0]["mde"]["0.05"] > 0
    assert max(v[0]["p_holm"], v[1]["p_holm"]) == pytest.approx(max(a["primary"]["p"], b["primary"]["p"]))
    with pytest.raises(ValueError, match="missing"):
        study.setting_effect(np.where(np.eye(K, J, dtype=bool), np.nan, clear), b_star)


def test_dataset_intervals_bootstrap_over_datasets():
    from discover import study

    rng = np.random.default_rng(0)
    x = rng.normal(50, 10, 20)
    out = study.dataset_intervals({"a": x, "b": np.append(x[:19], 1000.0)}, resamples=2000)
    a, b = out["a"], out["b"]
    assert a["mean"]["value"] == pytest.approx(x.mean()) and a["datasets"] == 20
    assert a["mean"]["low"] < x.mean() < a["mean"]["high"]
    half = a["mean"]["high"] - a["mean"]["low"]
    assert half == pytest.approx(2 * 1.96 * x.std(ddof=1) / np.sqrt(20), rel=0.25)  # as the t interval, roughly
    assert b["iqm"]["value"] < b["mean"]["value"] - 30  # the IQM is not pulled by one outlying dataset


def test_settings_still_pending_count_in_holms_family():
    from discover import study

    rng = np.random.default_rng(1)
    b_star = 40 + rng.normal(0, 5, 20)
    e = study.setting_effect(b_star + 6 + rng.normal(0, 3, (8, 20)), b_star)
    alone, of_two = study.verdicts([e])[0], study.verdicts([e], family=2)[0]
    assert of_two["p_holm"] == pytest.approx(min(1.0, 2 * alone["p_holm"]))
    assert of_two["alpha_first_step"] == 0.025 and alone["alpha_first_step"] == 0.05
    # the lowest the adjusted p can reach once the pending setting is in: it comes in first (p = 0)
    floor = study.verdicts([e], family=2, pending_p=0.0)[0]
    assert floor["p_holm"] == pytest.approx(alone["p_holm"]) and floor["p_holm"] <= of_two["p_holm"]
