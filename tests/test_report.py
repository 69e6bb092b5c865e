"""Report verdicts and paired statistics, on synthetic results; the committed reports
regenerated from the committed results."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from discover import markdown_report
from discover.rows import derived_row, scored_row, variant_of
from discover.stats import paired_difference
from discover.store import RunStore


def test_paired_difference_interval():
    rng = np.random.default_rng(0)
    base = rng.normal(50, 5, 10)
    better = base + 3 + rng.normal(0, 0.5, 10)
    d = paired_difference(better, base)
    assert d["n"] == 10 and d["low"] > 0 and d["low"] < d["mean"] < d["high"]
    same = paired_difference(base, base)
    assert same["mean"] == 0 and same["low"] == 0 and same["high"] == 0
    assert paired_difference([1.0], [0.0])["low"] is None


def bench_json(diff_low, diff_high, same=None):
    row = {"name": "run#1", "kind": "discovered", "fitness": 60.0, "spread": 1.0, "reason": None,
           "closed_form": "softplus(beta*(r_l - r_w))", "expression": "softplus(-beta * (logp_w - logp_l))",
           "constants": {"beta": 0.3}, "same_form_as": same,
           "vs_best_baseline": {"baseline": "dpo", "mean": (diff_low + diff_high) / 2, "low": diff_low,
                                "high": diff_high, "n": 10}}
    base = {"name": "dpo", "kind": "zoo", "fitness": 55.0, "spread": 2.0, "reason": None,
            "closed_form": "-log_sigmoid(beta*(-r_l + r_w))", "expression": "x", "constants": {"beta": 0.1}}
    return {"task": "hopper", "setting": "noisy", "best_baseline": "dpo", "seeds": list(range(10)),
            "config": {"dataset": {"eps": 0.2}}, "reference": {"mean": 40.0, "std": 3.0}, "losses": [row, base]}


@pytest.mark.parametrize("low,high,word", [(1.0, 5.0, "**Yes**"), (-5.0, -1.0, "**No**"),
                                           (-1.0, 3.0, "**Not beyond the seed spread**")])
def test_verdicts(low, high, word):
    b = bench_json(low, high)
    assert markdown_report.verdict(b["losses"][0], b).startswith(word)


# The fields every held-out row of a run's final.json has (the run reader checks them).
ROW = {"constants": {}, "closed_form": "softplus(-r_w + r_l)", "latex": r"\operatorname{softplus}",
       "expression": "softplus(logp_l - ref_l - (logp_w - ref_w))", "complexity": 8}


def test_report_from_results(tmp_path):
    results = tmp_path / "results"
    store = RunStore(str(results / "run"))
    (results / "run" / "checkpoints").mkdir(parents=True)
    store.write("config.json", {"grammar_name": "mirror", "search": {"population": 32, "generations": 10,
                                                                      "inner_seeds": [0, 1]}, "experiment": {}})
    store.write("final.json", {"holdout_seeds": [100, 101], "wall_s": 480, "generations_run": 10,
                               "reference": {"mean": 50.0, "std": 5.0}, "rows": [
        {**ROW, "kind": "discovered", "name": "#1", "heldout_mean": 60.0, "heldout_std": 2.0,
         "latex": r"\operatorname{softplus}", "complexity": 8}]})
    (results / "cmp").mkdir()
    (results / "cmp" / "results.json").write_text(json.dumps(bench_json(1.0, 5.0, same="dpo")))
    spec = tmp_path / "report.yaml"
    spec.write_text("title: T\nsearches:\n  - {label: noisy, run: run, bench: cmp}\ntransfer: [cmp]\n")
    text = markdown_report.build(str(spec), str(results))
    assert "**Yes**" in text and "same form as the zoo's dpo" in text
    assert "| run#1 | 60.0 (+3.0 [+1.0, +5.0]) |" in text
    assert "wall time 8.0 min" in text


def test_final_json_of_older_runs_reads_in_the_shared_schema(tmp_path):
    store = RunStore(str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    old = {**ROW, "kind": "discovered", "name": "#1", "heldout_mean": 60.0, "heldout_std": 2.0,
           "heldout_per_seed": [58.0, 62.0], "reason": None, "search_fitness": 55.0}
    store.write("final.json", {"rows": [old, scored_row(old)], "reference": {"mean": 50.0, "std": 5.0},
                               "holdout_seeds": [100, 101]})
    rows = store.final()["rows"]
    assert rows[0] == rows[1] == {**ROW, "kind": "discovered", "name": "#1", "fitness": 60.0, "spread": 2.0,
                                  "per_seed": [58.0, 62.0], "reason": None, "search_fitness": 55.0}


def test_schedule_lines_compare_the_frozen_forms():
    b = bench_json(1.0, 5.0)
    row = b["losses"][0]
    row["per_seed"] = [60.0 + i for i in range(10)]
    frozen0 = dict(row, name="run#1 @ t=0", fitness=50.0, per_seed=[50.0 + i for i in range(10)])
    frozen1 = dict(row, name="run#1 @ t=1", fitness=None, reason="non-finite loss at step 3", per_seed=[None] * 10)
    b["losses"] += [frozen0, frozen1]
    (line,) = markdown_report.schedule_lines(row, b)
    assert "frozen at t=0 it scores 50.0" in line and "schedule minus frozen +10.0" in line
    assert "with t=1 it fails to train (non-finite loss at step 3)" in line
    assert markdown_report.schedule_lines(b["losses"][1], b) == []  # a zoo row has no frozen forms


def suite_bench(setting, eps, scores, units):
    """A v2 bench whose losses have the given per-unit scores."""
    rows = []
    for name, per in scores.items():
        rows.append({"name": name, "kind": "zoo", "fitness": float(np.mean(per)), "spread": float(np.std(per, ddof=1)),
                     "per_seed": list(map(float, per)), "per_dataset": [float(np.mean(per))], "reason": None,
                     "train_accuracy": 0.6, "reward_w": -0.5, "reward_l": -1.0, "beta_margin": 0.05,
                     "closed_form": name, "expression": name, "constants": {}})
    best = max(rows, key=lambda r: r["fitness"])["name"]
    return {"task": "hopper", "setting": setting, "config": {"dataset": {"eps": eps}}, "seeds": list(range(len(units))),
            "data_seeds": [100], "units": units, "best_baseline": best, "reference": {"mean": 30.0, "std": 2.0},
            "losses": rows}


def test_suite_report_corrects_every_verdict_together(tmp_path):
    import json

    from discover import stats, suite_report

    rng = np.random.default_rng(0)
    n = 20
    units = [[100, s] for s in range(n)]
    base = rng.normal(50, 5, n)
    clean = {"sft": base, "dpo": base + 8 + rng.normal(0, 2, n), "ipo": base + rng.normal(0, 1, n)}
    control = {"sft": base - 1, "dpo": base - 20 + rng.normal(0, 2, n)}
    control["ipo"] = clean["ipo"] + 0.5  # does not use the preference: no lower at eps 0.5
    for name, bench in (("clean", suite_bench("clean", 0.0, clean, units)),
                        ("eps05", suite_bench("noisy", 0.5, control, units))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(bench))
    spec = tmp_path / "suite.yaml"
    spec.write_text("title: test suite\nclean: clean\ncontrol: eps05\n")
    text = suite_report.build(str(spec), str(tmp_path))
    # dpo beats sft by about 8 points: "better"; ipo is within +-5 of sft with little noise: "tie"
    assert "| dpo - sft |" in text and "**better**" in text and "**tie**" in text
    assert "Preference losses that beat sft beyond the spread after correction: dpo." in text
    # the family: 2 comparisons with sft + 3 clean-minus-control; Holm over all 5
    raw = [stats.paired_difference(clean[a], clean["sft"])["p"] for a in ("dpo", "ipo")]
    raw += [stats.paired_difference(clean[a], control[a])["p"] for a in ("sft", "dpo", "ipo")]
    assert "All 5 comparisons" in text
    assert max(stats.holm(raw)) >= max(raw)
    assert "Preference losses scoring lower at eps 0.5 than on clean labels: 1 of 2 (not: ipo)." in text


@pytest.mark.parametrize("schema", ["names", "fields"])
def test_headline_report_pairs_winners_variants_and_transfer_in_one_family(tmp_path, schema):
    """Two settings, each with its search and bench; the mixed winner's t-frozen twin has its
    scores (identical), an extra bench adds the noisy winner on the mixed units (transfer).
    Then a third setting on the mixed data (a wider search) and a transfer target (another
    task); rows in the schema before and after bench rows named their variants."""
    from discover import headline_report

    rng = np.random.default_rng(1)
    n = 20
    units = [[100, s] for s in range(n)]
    base = rng.normal(40, 5, n)
    mixed = {"dpo": base, "ipo": base - 3 + rng.normal(0, 1, n)}
    noisy = {"dpo": base + 1, "ipo": base + 2 + rng.normal(0, 1, n)}
    benches = {
        "mixed": suite_bench("mixed", 0.3, mixed, units), "noisy": suite_bench("noisy", 0.2, noisy, units),
        "extra": suite_bench("mixed", 0.3, {"dpo": base}, units),
        "wide": suite_bench("mixed", 0.3, mixed, units),  # a wider search of the same setting
        "cheetah": suite_bench("mixed", 0.3, {"dpo": base - 5}, units)}
    benches["cheetah"]["task"] = "half_cheetah"
    for name, bench, rows in (("mixed", benches["mixed"], {"run-mixed#1": base + 10 + rng.normal(0, 1, n)}),
                              ("noisy", benches["noisy"], {"run-noisy#1": base + 2 + rng.normal(0, 1, n)}),
                              ("extra", benches["extra"], {"run-noisy#1": base + 1 + rng.normal(0, 1, n)}),
                              ("wide", benches["wide"], {"run-wide#1": base + 9 + rng.normal(0, 1, n),
                                                         "run-mixed#1": base + 10 + rng.normal(0, 1, n)}),
                              ("cheetah", benches["cheetah"], {"run-mixed#1": base - 4 + rng.normal(0, 1, n)})):
        for row_name, per in rows.items():
            bench["losses"].append({**bench["losses"][0], "name": row_name, "kind": "discovered",
                                    "fitness": float(np.mean(per)), "per_seed": list(map(float, per)),
                                    "constants": {"beta": 0.1}})
    benches["mixed"]["losses"].append({**benches["mixed"]["losses"][-1], "name": "run-mixed#1 @ t=0"})
    twin = "run-mixed#1 @ t=0"
    if schema == "fields":  # rows name base and variant; the display name is then free text
        for bench in benches.values():
            for r in bench["losses"]:
                r["base"], r["variant"] = variant_of(r)
        twin = benches["mixed"]["losses"][-1]["name"] = "run-mixed#1, schedule frozen early"
    for bench in benches.values():
        bench["tuned"] = {"dpo": {"beta": 0.05}}
        bench["config"]["train"] = {"steps": 200}
    for name in ("extra", "cheetah"):
        benches[name]["best_baseline"] = "dpo"
    benches["wide"]["best_baseline"] = "ipo"
    for name, bench in benches.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(bench))
    for run in ("run-mixed", "run-noisy", "run-wide"):
        store = RunStore(str(tmp_path / run))
        (tmp_path / run / "checkpoints").mkdir(parents=True)
        store.write("config.json", {"grammar_name": "mirror", "search": {"population": 100, "generations": 1,
                                                                          "inner_seeds": [0, 1, 2]},
                                    "experiment": {"data_seeds": [0, 1, 2]}})
        store.write_checkpoint(0, {"generation": 0, "stats": {"trained": 100, "reevaluated": 10}, "history": []})
    spec = tmp_path / "headline.yaml"
    spec.write_text("title: H\nsettings:\n  - {label: mixed, run: run-mixed, bench: mixed}\n"
                    "  - {label: noisy, run: run-noisy, bench: noisy}\nextra_benches: [extra]\n")
    text = headline_report.build(str(spec), str(tmp_path))
    # 2 x 2 baselines, 1 t-frozen twin, 1 transfer (the noisy winner on mixed): one family of 6
    assert "All 6 comparisons" in text
    assert "| mixed | " in text and "**better**" in text
    assert f"{twin} - run-mixed#1 (identical scores)" in text and "**tie**" in text
    assert "run-noisy#1 (" in text and "- ipo (" not in text.split("## Transfer")[1].split("\n")[4]
    assert "trained 100 candidates x 3 seeds" in text and "330 training runs" in text
    assert "tuning the baselines trained" in text
    # a wider search of the mixed setting (same data: its bench also holds the mixed winner,
    # which is not a transfer) and a task no search ran on (transfer target): + 2 baselines
    # of the wide winner, + the mixed winner on HalfCheetah = 9
    spec.write_text("title: H\nsettings:\n  - {label: mixed, run: run-mixed, bench: mixed}\n"
                    "  - {label: noisy, run: run-noisy, bench: noisy}\n  - {label: wide, run: run-wide, bench: wide}\n"
                    "extra_benches: [extra]\ntransfer_targets:\n  - {label: cheetah, bench: cheetah}\n")
    text = headline_report.build(str(spec), str(tmp_path))
    assert "All 9 comparisons" in text
    transfer = text.split("## Transfer")[1]
    assert "run-mixed#1 (" in transfer and "), cheetah |" in transfer and "), wide |" not in transfer


@pytest.mark.parametrize("name, variant", [("run#1", None), ("run#1 @ t=0", "t=0"), ("run#1 @ t=1", "t=1"),
                                           ("run#1 (effective)", "effective"),
                                           ("dpo (tuned: beta=0.02)", "tuned")])
def test_rows_name_their_base_and_variant_in_either_schema(name, variant):
    """Bench rows written before 2026-12-01 carried the variant in their display name only."""
    base = "dpo" if variant == "tuned" else "run#1"
    assert variant_of({"name": name}) == (base, variant)
    assert variant_of({"name": "renamed", "base": base, "variant": variant}) == (base, variant)
    bench = {"losses": [{"name": "run#1"}, {"name": name}]}
    assert derived_row(bench, base, variant) == {"name": name}
    assert derived_row(bench, "other", variant) is None


RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")


@pytest.mark.parametrize("kind, spec, committed", [("headline", "headline_v2.yaml", "REPORT-v2-2026-12-02.md"),
                                                   ("suite", "suite_v2.yaml", "SUITE_V2.md"),
                                                   ("v1", "report.yaml", "REPORT-v1-2026-11-27.md")])
def test_committed_reports_regenerate_from_the_committed_results(kind, spec, committed, monkeypatch):
    """Every committed report is what `discover report` makes of the committed runs and
    benches, in whichever schema each was written (and the readers' fallbacks stay tested)."""
    from discover import headline_report, suite_report

    monkeypatch.chdir(os.path.dirname(RESULTS))  # specs name their intros from the repository root
    build = {"headline": headline_report.build, "suite": suite_report.build, "v1": markdown_report.build}[kind]
    with open(os.path.join(RESULTS, committed)) as f:
        assert build(os.path.join(RESULTS, spec), RESULTS) == f.read()


def test_extra_rows_join_only_benches_of_the_same_datasets():
    """Rows pair by unit only on the very same datasets: the same seeds built where
    floating-point kernels differ have other digests and do not merge."""
    from discover import headline_report
    from discover.errors import RunError

    units = [[100, s] for s in range(4)]

    def bench(digest, name):
        b = suite_bench("mixed", 0.3, {name: np.arange(4.0)}, units)
        b["datasets"] = [{"digest": digest}]
        return b

    headline = {"a": bench("aaaa", "dpo")}
    headline_report._merge_extra(headline, [bench("aaaa", "ipo")])
    assert [r["name"] for r in headline["a"]["losses"]] == ["dpo", "ipo"]
    with pytest.raises(RunError, match="matches no headline bench"):
        headline_report._merge_extra(headline, [bench("bbbb", "hinge")])


@pytest.mark.slow
def test_a_report_spec_with_aliases_or_the_wrong_shape_is_one_error(tmp_path):
    from discover.errors import RunError
    from discover.markdown_report import load_spec

    cases = {"bomb.yaml": "a: &a [1, 2]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", "list.yaml": "[1, 2]\n",
             "bad.yaml": "a: [1,\n", "deep.yaml": "[" * 1200 + "]" * 1200 + "\n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(RunError, match="report spec"):
            load_spec(str(tmp_path / name))
