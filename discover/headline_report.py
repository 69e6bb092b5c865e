"""The headline report: discovered losses against tuned hand-designed losses on datasets
the search never saw, every verdict in one Holm family.

A spec (YAML) names, per setting, the search and the bench that scored its winner on
held-out datasets (``discover bench --include RUN:1 --tune --ablate-t [--effective]``),
and optionally more benches on the same held-out units (other settings' winners for the
transfer rows, pruned forms from ``--effective``) whose rows join their setting's bench::

    title: ...
    intro: results/headline_v2_intro.md          # optional, verbatim
    settings:
      - {label: "Hopper, mixed quality", run: v2-hopper-mixed, bench: v2-headline-hopper-mixed}
    extra_benches: [v2-transfer-hopper-mixed]     # optional
    transfer_targets:                             # optional: benches of a task no search ran on
      - {label: "HalfCheetah, mixed quality", bench: v2-transfer-half_cheetah-mixed}

Comparisons (paired over (dataset, seed) units, ``discover.stats``): each winner against
every hand-designed loss of its bench, at the zoo's and at the tuned constants; what is
new in it (with t frozen at 0 and 1, and without its inert terms, against itself); each
winner on every other setting and transfer target against its best baseline (transfer;
two settings on the same data, e.g. a wider search of the same setting, are not transfer). One
family, Holm-corrected; a tie needs a TOST within the margin; each comparison states its
minimum detectable effect.
"""

from __future__ import annotations

import numpy as np

from discover import stats
from discover.errors import RunError
from discover.rows import derived_row, variant_of
from evaluators.registry import reference_label_of_task
from discover.markdown_report import _load_bench, load_spec
from discover.suite_report import HEADER, Family, _cells, _p, _row, _score, report_header

BUDGET_NOTE = ("Budgets: the search trained {trained} candidates {how} and re-trained elites {reeval} "
               "times ({runs} training runs, not counting padding and the final held-out re-scoring, on data "
               "seeds 0-{last_data}); tuning the baselines trained {tune_runs} runs ({tune_settings} constant "
               "settings x {tune_seeds} seeds, on data seed {tune_data}), "
               "{per_baseline:.0f} per baseline on average.")


def _winner(bench: dict, run: str) -> dict:
    row = next((r for r in bench["losses"] if r["kind"] == "discovered" and r["name"] == f"{run}#1"), None)
    if row is None:
        raise RunError(f"bench has no row for {run}#1: score it with discover bench --include {run}:1")
    return row


def _budget(run_store, bench: dict) -> str:
    from discover.bench import tuning_grid
    from evaluators.seeds import TUNE_DATA, TUNE_TRAIN
    from grammar import zoo

    cfg = run_store.read("config.json", "run configuration")
    state = run_store.latest_checkpoint() or {}
    st = state.get("stats", {})
    seeds = len(cfg["search"]["inner_seeds"])
    settings = sum(len(tuning_grid(zoo.get(n).constants)) for n in bench.get("tuned", {}))
    n_data = len(cfg["experiment"].get("data_seeds") or [0])
    how = (f"with successive halving over {seeds} seeds ({st.get('halted', 0)} stopped after one)"
           if cfg["search"].get("halving") else f"x {seeds} seeds")
    return BUDGET_NOTE.format(trained=st.get("trained", 0), how=how, reeval=st.get("reevaluated", 0),
                              runs=st.get("runs", seeds * (st.get("trained", 0) + st.get("reevaluated", 0))),
                              last_data=n_data - 1, tune_runs=settings * len(TUNE_TRAIN),
                              tune_settings=settings, tune_seeds=len(TUNE_TRAIN), tune_data=TUNE_DATA,
                              per_baseline=settings * len(TUNE_TRAIN) / max(len(bench.get("tuned", {})), 1))


def _merge_extra(benches: dict[str, dict], extra: list[dict]) -> None:
    """Rows of extra benches join every headline bench on the same units of the same data
    (the same dataset digests: two settings may share them, a wider search of one setting)."""
    for t in extra:
        key = _units_key(t)
        targets = [b for b in benches.values() if _units_key(b) == key]
        if not targets:
            raise RunError(f"extra bench on {t['setting']} matches no headline bench's datasets (their digests), "
                           "seeds and budget")
        for target in targets:
            names = {r["name"] for r in target["losses"]}
            target["losses"] += [r for r in t["losses"] if r["name"] not in names]
            target["effective_checked"] = effective_checked(target) + effective_checked(t)


def effective_checked(bench: dict) -> list[str]:
    """The discovered losses whose effective forms a bench measured: recorded since
    2026-11-28; for an older bench, every discovered loss if it holds any pruned twin
    (`--effective` measures every included loss), else none."""
    if "effective_checked" in bench:
        return list(bench["effective_checked"])
    rows = bench["losses"]
    if not any(variant_of(r)[1] == "effective" for r in rows):
        return []
    return [r["name"] for r in rows if r["kind"] == "discovered" and variant_of(r)[1] is None]


def _data_key(bench: dict) -> str:
    """The bench's setting and protocol: task, data configuration, units and recipe."""
    d = dict(bench["config"]["dataset"])
    d.pop("seed", None)
    return repr((bench["task"], sorted(d.items()), bench.get("units"), bench["config"].get("train"),
                 bench["config"].get("eval")))


def _units_key(bench: dict) -> str:
    """The setting and the very datasets (their content digests): rows of two benches pair
    by unit only if both agree. The same seeds built on CPU families whose floating-point
    kernels differ give other digests (other draws) for contact-rich tasks."""
    return repr((_data_key(bench), [d.get("digest") for d in bench.get("datasets") or []]))


def build(spec_path: str, results_dir: str = "results") -> str:
    """The headline report of a spec (see the module docstring), as markdown."""
    return _render(*_compare(spec_path, results_dir))


def build_with_summary(spec_path: str, results_dir: str = "results") -> tuple[str, list[str]]:
    """The report and its summary table alone (markdown lines, for the README)."""
    compared = _compare(spec_path, results_dir)
    return _render(*compared), _summary(compared[2], compared[5])


def winner_parts(store) -> str:
    """The run's rank-1 loss (by held-out score, as `discover bench --include RUN:1` takes
    it) in its grammar's terms: its derivation, template first."""
    from discover.run_views import ranked_loss

    try:
        derivation = ranked_loss(store, 1)[1]
    except RunError:  # a run without held-out scores has no rank 1 to describe
        return "-"
    return f"`{derivation}`" if derivation else "-"


def _compare(spec_path: str, results_dir: str):
    """Every comparison of a spec, Holm-corrected as one family."""
    from discover.store import RunStore

    spec = load_spec(spec_path)
    settings = spec.get("settings") or []
    if not settings:
        raise RunError(f"{spec_path}: no settings")
    benches = {s["label"]: _load_bench(results_dir, s["bench"]) for s in settings}
    _merge_extra(benches, [_load_bench(results_dir, t) for t in spec.get("extra_benches", [])])
    stores = {s["label"]: RunStore.open(s["run"], results_dir) for s in settings}
    family = Family()
    per_setting, novelty, winners = [], [], {}
    for s in settings:
        bench = benches[s["label"]]
        w = _winner(bench, s["run"])
        winners[s["label"]] = w
        baselines = [r for r in bench["losses"] if r["kind"] == "zoo" and r["fitness"] is not None
                     and w["fitness"] is not None]
        per_setting.append((s, bench, w, [(r, family.add(f"{w['name']} - {r['name']}, {s['label']}", w, r))
                                          for r in baselines]))
        for variant in ("t=0", "t=1", "effective"):
            d = derived_row(bench, w["name"], variant)
            if d is not None and d["fitness"] is not None:
                same = np.array_equal(np.array(d["per_seed"], float), np.array(w["per_seed"], float),
                                      equal_nan=True)
                novelty.append((s["label"], w, d, same, family.add(f"{d['name']} - {w['name']}", d, w)))
    transfer, moved = [], set()
    targets = dict(benches)
    for t in spec.get("transfer_targets", []):
        if t["label"] in targets:
            raise RunError(f"{spec_path}: transfer target {t['label']!r} has the label of another setting or target")
        targets[t["label"]] = _load_bench(results_dir, t["bench"])
    for label, w in winners.items():
        for other, bench in targets.items():
            row, best = _row(bench, w["name"]), _row(bench, bench.get("best_baseline"))
            data = _data_key(bench)
            if data == _data_key(benches[label]) or (w["name"], data) in moved:
                continue  # its own data, or data it was already moved to (two settings on the same data)
            if row is not None and best is not None and row["fitness"] is not None:
                moved.add((w["name"], data))
                transfer.append((label, other, row, best, family.add(f"{w['name']} - {best['name']}, {other}",
                                                                     row, best)))
    family.correct()
    return spec, family, per_setting, novelty, transfer, stores


def _summary(per_setting, stores) -> list[str]:
    out = ["| setting | winner (its derivation: template, then each part's production) | effective form "
           "(terms under 1% of the gradient removed) | discovered (held-out) | best baseline | difference (95% CI) "
           "| p (Holm) | verdict |",
           "|---|---|---|---|---|---|---|---|"]
    for s, bench, w, items in per_setting:
        best = bench.get("best_baseline")
        item = next((i for r, i in items if r["name"] == best), None)
        pruned = derived_row(bench, w["name"], "effective")
        parts = winner_parts(stores[s["label"]]) + " | " + (
            f"`{pruned['closed_form']}`" if pruned else "itself" if w["name"] in effective_checked(bench)
            else "not measured")
        if w["fitness"] is None:
            out.append(f"| {s['label']} | {parts} | failed on held-out data: {w.get('reason')} | {best} | | | |")
        elif item is not None:
            ci = "-" if item["low"] is None else f"{item['mean']:+.1f} [{item['low']:+.1f}, {item['high']:+.1f}]"
            out.append(f"| {s['label']} | {parts} | {_score(w)} | {best} {_score(_row(bench, best))} | {ci} | "
                       f"{_p(item['p_holm'])} | **{item['verdict']}** |")
    return out


def _render(spec, family, per_setting, novelty, transfer, stores) -> str:
    m = stats.EQUIVALENCE_MARGIN
    out = report_header(spec, "Discovered vs hand-designed losses",
                        "`discover report --spec SPEC` from the committed searches and benches",
                        "results/run_v2_headline.sh", family)
    out += ["", "## Summary", ""] + _summary(per_setting, stores) + [
            "", "Effective forms come from `discover bench --effective`: benches made before 2026-11-28 measured "
                "the terms' gradient shares at the reference policy only (t across [0, 1]); later ones also at "
                "the end of each loss's own training (t = 1), keeping a term that acts on either."]
    for s, bench, w, items in per_setting:
        ref = bench["reference"]
        out += ["", f"## {s['label']}: `{s['run']}` against every hand-designed loss", "",
                f"Held-out: {len(bench.get('data_seeds', [0]))} datasets (seeds "
                f"{', '.join(map(str, bench.get('data_seeds', [])))}) x {len(bench['seeds'])} training seeds; "
                f"reference ({reference_label_of_task(bench['task'])}) {ref['mean']:.1f} ± {ref['std']:.1f} over datasets. "
                + _budget(stores[s["label"]], bench), "",
                f"Winner: `{w['closed_form']}` ({', '.join(f'{k}={v:.3g}' for k, v in w['constants'].items())})",
                "", HEADER.format(m=m)]
        out += [f"| {w['name']} - {r['name']} ({_score(r)}) | {_cells(i)} |" for r, i in items]
    out += ["", "## What is new in each winner", "",
            "Each winner against itself with training progress t frozen at 0 and at 1 (a schedule that matters "
            "changes the score), and without its additive terms under 1% of the gradient norm (its effective "
            "form: equal scores confirm it). Identical per-unit scores mean the variant is the same function.",
            "", HEADER.format(m=m)]
    for label, w, d, same, item in novelty:
        note = " (identical scores)" if same else ""
        out.append(f"| {d['name']} - {w['name']}{note} | {_cells(item)} |")
    if not novelty:
        out.append("| (no winner uses t or has inert terms) | | | | | |")
    if transfer:
        out += ["", "## Transfer: each winner on the other settings", "",
                "Against the best baseline of the setting (or task) it is moved to, same held-out units.", "",
                HEADER.format(m=m)]
        out += [f"| {row['name']} ({_score(row)}) - {best['name']} ({_score(best)}), {other} | {_cells(item)} |"
                for label, other, row, best, item in transfer]
    return "\n".join(out) + "\n"

