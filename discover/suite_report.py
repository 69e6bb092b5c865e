"""The diagnostic-suite report: what the zoo does on each setting, whether the suite can
tell preference losses apart, and every verdict corrected for multiplicity.

A spec (YAML) names the benches (``discover bench`` outputs, one setting each, on the
same held-out datasets and training seeds)::

    title: ...
    intro: results/suite_intro.md        # optional, verbatim
    clean: v2-bench-hopper-clean          # the clean-label bench
    control: v2-bench-hopper-eps05        # eps = 0.5: labels carry nothing
    shuffled: v2-bench-hopper-shuffled    # rejected responses from unrelated states
    settings: [v2-bench-hopper-noisy02, v2-bench-hopper-noisy04, v2-bench-hopper-mixed]

Statistics (``discover.stats``): every comparison is paired over (dataset, seed) units;
one family holds every verdict of the report and is Holm-corrected; "tie" needs a TOST
equivalence test within +-``EQUIVALENCE_MARGIN`` points (also Holm-corrected); each
comparison states its minimum detectable effect at 80% power.
"""

from __future__ import annotations

import numpy as np

from discover import stats
from discover.errors import RunError
from discover.rows import variant_of
from discover.markdown_report import _load_bench, _setting_label, load_spec

PREFERENCE_FREE = ("sft",)  # zoo losses that never look at the rejected response


def _units(row: dict) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in row["per_seed"]], float)


def _row(bench: dict, name: str) -> dict | None:
    return next((r for r in bench["losses"] if r["name"] == name), None)


def _score(r: dict | None) -> str:
    if r is None:
        return "-"
    return f"{r['fitness']:.1f} ± {r['spread']:.1f}" if r["fitness"] is not None else "failed"


class Family:
    """The report's comparisons, collected first and Holm-corrected together."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, label: str, a: dict, b: dict) -> dict:
        """Adds the paired comparison of bench rows ``a`` and ``b`` (interval, TOST, MDE)."""
        d = _units(a) - _units(b)
        diff = stats.paired_difference(_units(a), _units(b))
        item = {"label": label, **diff, "tost_p": stats.tost(d),
                "mde": stats.minimum_detectable_effect(diff["sd"], diff["n"])}
        self.items.append(item)
        return item

    def correct(self) -> None:
        """Holm-adjusts the family's p-values (difference and equivalence) and sets each verdict."""
        for key, out in (("p", "p_holm"), ("tost_p", "tost_p_holm")):
            for item, adj in zip(self.items, stats.holm([i[key] for i in self.items])):
                item[out] = adj
        for item in self.items:
            item["verdict"] = stats.verdict(item["p_holm"], item["tost_p_holm"], item["mean"])


def _p(v: float | None) -> str:
    return "-" if v is None else (f"{v:.3f}" if v >= 0.001 else "<0.001")


def _cells(item: dict) -> str:
    ci = "" if item["low"] is None else f"{item['mean']:+.1f} [{item['low']:+.1f}, {item['high']:+.1f}]"
    mde = "-" if item["mde"] is None else f"{item['mde']:.1f}"
    return f"{ci} | {_p(item['p_holm'])} | {_p(item['tost_p_holm'])} | {mde} | **{item['verdict']}**"


HEADER = ("| comparison | difference (95% CI) | p (Holm) | p equivalence ±{m:g} (Holm) | MDE | verdict |\n"
          "|---|---|---|---|---|---|")


def _bench_table(bench: dict) -> list[str]:
    ref = bench["reference"]
    n_data, n_seeds = len(bench.get("data_seeds", [0])), len(bench["seeds"])
    lines = [f"**{_setting_label(bench)}** ({n_data} datasets x {n_seeds} seeds; reference (BC) "
             f"{ref['mean']:.1f} ± {ref['std']:.1f} over datasets)", "",
             "| loss | score | per dataset | train acc. | r_w | r_l | β·D |", "|---|---|---|---|---|---|---|"]
    rows = sorted(bench["losses"], key=lambda r: -(r["fitness"] if r["fitness"] is not None else -1e9))
    for r in rows:
        per = ", ".join("-" if v is None else f"{v:.0f}" for v in r.get("per_dataset", []))
        bd = "" if r.get("beta_margin") is None else f"{r['beta_margin']:.2f}"
        lines.append(f"| {r['name']} | {_score(r)} | {per} | {r['train_accuracy']:.2f} | "
                     f"{r.get('reward_w', float('nan')):+.2f} | {r.get('reward_l', float('nan')):+.2f} | {bd} |")
    return lines


def summary_table(benches: list[dict]) -> list[str]:
    """Every zoo loss at the zoo's constants (rows) on every bench (columns), and the reference."""
    names = [r["name"] for r in benches[0]["losses"] if r["kind"] == "zoo" and variant_of(r)[1] != "tuned"]
    lines = ["| loss | " + " | ".join(_setting_label(b) for b in benches) + " |",
             "|---|" + "---|" * len(benches),
             "| reference (BC) | " + " | ".join(f"{b['reference']['mean']:.1f} ± {b['reference']['std']:.1f}"
                                                for b in benches) + " |"]
    order = sorted(names, key=lambda n: -(_row(benches[0], n)["fitness"] or -1e9))
    for n in order:
        lines.append(f"| {n} | " + " | ".join(_score(_row(b, n)) for b in benches) + " |")
    return lines


def _load(spec: dict, results_dir: str) -> tuple[dict, dict, dict | None, list[dict]]:
    """The spec's benches, checked to share the clean bench's (dataset, seed) units."""
    clean = _load_bench(results_dir, spec["clean"])
    control = _load_bench(results_dir, spec["control"])
    shuffled = _load_bench(results_dir, spec["shuffled"]) if spec.get("shuffled") else None
    settings = [_load_bench(results_dir, b) for b in spec.get("settings", [])]
    for b in [control] + ([shuffled] if shuffled else []) + settings:
        if b.get("units") != clean.get("units"):
            raise RunError(f"bench {_setting_label(b)} does not use the clean bench's (dataset, seed) units; "
                           "pairing needs the same --datasets, --data-seed and --seeds")
    return clean, control, shuffled, settings


def _comparisons(clean: dict, control: dict, settings: list[dict]) -> tuple[Family, list, list, list]:
    """Every comparison of the report, in one Holm family: preference losses against sft on
    clean labels; clean minus eps 0.5 per loss; each setting's losses against its best."""
    family = Family()
    sft = _row(clean, "sft")
    vs_sft = [(r["name"], family.add(f"{r['name']} - sft, clean", r, sft)) for r in clean["losses"]
              if sft is not None and r is not sft and r["kind"] == "zoo" and r["fitness"] is not None
              and variant_of(r)[0] not in PREFERENCE_FREE]
    uses = []
    for r in (r for r in clean["losses"] if r["kind"] == "zoo" and variant_of(r)[1] != "tuned"):
        c = _row(control, r["name"])
        if r["fitness"] is not None and c is not None and c["fitness"] is not None:
            uses.append((r, c, family.add(f"{r['name']}: clean - eps 0.5", r, c)))
    per_setting = []
    for b in settings:
        best = b.get("best_baseline")
        best_row = _row(b, best)
        items = [(r, family.add(f"{r['name']} - {best}, {_setting_label(b)}", r, best_row))
                 for r in b["losses"] if best_row is not None and r is not best_row and r["fitness"] is not None]
        per_setting.append((b, items))
    family.correct()
    return family, vs_sft, uses, per_setting


def build(spec_path: str, results_dir: str = "results") -> str:
    """The suite report of a spec (see the module docstring), as markdown."""
    spec = load_spec(spec_path)
    clean, control, shuffled, settings = _load(spec, results_dir)
    family, vs_sft, uses, per_setting = _comparisons(clean, control, settings)
    return _render(spec, family, vs_sft, uses, per_setting, [clean, control] + ([shuffled] if shuffled else [])
                   + settings, shuffled)


def report_header(spec: dict, title: str, made_by: str, script: str, family: Family) -> list[str]:
    """A report's title, where it comes from, the spec's intro and what its one family of
    comparisons means (Holm, TOST margin, MDE)."""
    out = [f"# {spec.get('title', title)}", "",
           f"_Generated by {made_by} under `results/`; `{script}` has the commands._", ""]
    if spec.get("intro"):
        with open(spec["intro"]) as f:
            out += [f.read().strip(), ""]
    return out + [f"All {len(family.items)} comparisons below are one family: the tests of a difference are "
                  f"Holm-corrected across all of them, and so are the TOST equivalence tests (within "
                  f"±{stats.EQUIVALENCE_MARGIN:g} points) that a tie needs; MDE is the difference a paired t test "
                  "would detect with 80% power at the observed spread."]


def _render(spec: dict, family: Family, vs_sft: list, uses: list, per_setting: list, benches: list[dict],
            shuffled: dict | None) -> str:
    m = stats.EQUIVALENCE_MARGIN
    out = report_header(spec, "Diagnostic suite", "`discover report --suite` from the committed benches",
                        "results/run_v2_benches.sh", family) + [""]
    out += summary_table(benches) + [""]
    out += ["## 1. Clean labels: preference losses against imitation of the chosen response (sft)", "",
            HEADER.format(m=m)]
    out += [f"| {name} - sft | {_cells(item)} |" for name, item in vs_sft]
    beats = [name for name, item in vs_sft if item["verdict"] == "better"]
    out += ["", (f"Preference losses that beat sft beyond the spread after correction: {', '.join(beats)}."
                 if beats else "No preference loss beats sft beyond the spread after correction."), ""]
    out += ["## 2. Controls: does each loss use the preference?", "",
            "Score on clean labels minus score at eps = 0.5 (labels carry nothing), same datasets, segments, "
            "references and seeds; a loss that uses the preference must fall at eps 0.5. "
            "sft's dependence on the rejected response is nil by construction, but it still imitates the "
            "chosen side, which at eps 0.5 is a random one of the two.", "",
            "| loss | clean | eps 0.5 | " + ("shuffled | " if shuffled else "")
            + "uses the preference: clean - eps 0.5 (95% CI) | p (Holm) | verdict |",
            "|---|---|---|" + ("---|" if shuffled else "") + "---|---|---|"]
    for r, c, item in uses:
        sh = f" {_score(_row(shuffled, r['name']))} |" if shuffled else ""
        ci = "" if item["low"] is None else f"{item['mean']:+.1f} [{item['low']:+.1f}, {item['high']:+.1f}]"
        says = {"better": "uses it (falls at eps 0.5)", "worse": "rises at eps 0.5",
                "tie": "no change (within ±5)"}.get(item["verdict"], "inconclusive")
        out.append(f"| {r['name']} | {_score(r)} | {_score(c)} |{sh} {ci} | {_p(item['p_holm'])} | {says} |")
    fall = [r["name"] for r, _, item in uses if item["mean"] is not None and item["mean"] > 0
            and r["name"] not in PREFERENCE_FREE]
    pref = [r["name"] for r, _, _ in uses if r["name"] not in PREFERENCE_FREE]
    sig = [r["name"] for r, _, item in uses if item["verdict"] == "better" and r["name"] not in PREFERENCE_FREE]
    out += ["", f"Preference losses scoring lower at eps 0.5 than on clean labels: {len(fall)} of {len(pref)}"
                + (f" (not: {', '.join(sorted(set(pref) - set(fall)))})." if len(fall) < len(pref) else ".")
                + f" Lower beyond the spread after correction: {len(sig)} of {len(pref)}.", ""]
    for b, items in per_setting:
        out += [f"## 3. {_setting_label(b)}: every loss against the best baseline ({b['best_baseline']})", "",
                HEADER.format(m=m)]
        out += [f"| {r['name']} - {b['best_baseline']} | {_cells(item)} |" for r, item in items]
        out.append("")
    out += ["## Scores and calibration per bench", "",
            "r_w, r_l: mean log-ratio log π − log π_ref of the chosen and rejected responses over the last "
            "tenth of training; β·D: the loss's β times their difference (DPO's argument).", ""]
    for b in benches:
        out += _bench_table(b) + [""]
    return "\n".join(out) + "\n"
