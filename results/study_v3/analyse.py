"""Study v3, step 5 (PLAN.md): the analysis of the held-out benches.

    python results/study_v3/analyse.py [TASK:SETTING ...] > results/study_v3/RESULTS.md

Default: the pre-registered settings, in the plan's order (walker2d:mixed hopper:mixed
lm:mixed, the last by amendment 3);
Holm's correction always runs over every pre-registered setting (those not given or
not finished count with p = 1). For each setting it reads
heldout-TASK-SETTING.json (written by heldout.py: which loss is in which bench) and the
benches' results.json, takes each loss's per-dataset score (the mean over the dataset's
3 seeds) and computes, with discover.study: the primary search-averaged effect of the K
winners over B* (crossed random effects of search and dataset), the sensitivity analyses,
the secondary comparison (the best of the K winners by its own search's held-out score),
each winner's own interval and bootstrap intervals over datasets. Prints a markdown
report and writes results/study_v3/analysis.json. A setting whose benches have not all
finished is listed as pending: the others' verdicts are then provisional. A training run
that failed scores 0 (PLAN.md, amendment 2), read from the bench row's ``run_scores``;
their count is reported. A failed loss whose bench did not record ``run_scores`` stops
the analysis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, ROOT)

from discover import stats, study  # noqa: E402

sys.path.insert(0, HERE)
import heldout  # noqa: E402
from discover.run_views import numbered_losses  # noqa: E402
from discover.store import RunStore  # noqa: E402

SETTINGS = ("walker2d:mixed", "hopper:mixed", "lm:mixed")  # PLAN.md and its amendment 3
RESULTS = os.path.join(ROOT, "results")


def scores(task: str, setting: str, here: str = HERE, results: str = RESULTS) -> dict | None:
    """One setting's {"scores": {role: per-dataset scores}, "about": {role: its bench name,
    closed form, recipe}, "episodes", "data_seeds"}, or None while a bench is missing;
    every bench checked to use the plan's datasets and seeds."""
    path = os.path.join(here, f"heldout-{task}-{setting}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        plan = json.load(f)
    digests = {}  # bench name -> its datasets' content digests: every bench of a setting the same
    out = {"scores": {}, "finished": {}, "about": {}, "failed_runs": {}, "episodes": plan["episodes"],
           "data_seeds": plan["data_seeds"], "untuned_winners": plan.get("untuned_winners", []),
           "readout_met_threshold": plan.get("readout_met_threshold", True)}
    for b in plan["benches"]:
        res = os.path.join(results, b["name"], "results.json")
        if not os.path.exists(res):
            return None
        with open(res) as f:
            bench = json.load(f)
        if problem := heldout.mismatch(bench, plan, b):
            raise SystemExit(f"{b['name']}: not the plan's bench ({problem})")
        digests[b["name"]] = [(d or {}).get("digest") for d in bench.get("datasets") or []]
        rows = {r["name"]: r for r in bench["losses"]}
        for role, name in b["roles"].items():
            units, failed = unit_scores(rows[name], f"{b['name']}: {name} ({role})")
            out["scores"][role] = np.nan_to_num(units, nan=0.0).reshape(len(plan["data_seeds"]), -1).mean(axis=1)
            out["finished"][role] = units.reshape(len(plan["data_seeds"]), -1)  # failed runs NaN
            out["failed_runs"][role] = failed
            out["about"][role] = {"name": name, "form": rows[name]["closed_form"],
                                  "recipe": f"{b['steps']} steps, lr {b['lr']:g}"}
    # rows pair only on the very same datasets: equal seeds on another CPU family (or an
    # accelerator) can build other draws, which only the digests show
    first = next(iter(digests))
    for name, have in digests.items():
        if len(have) != len(plan["data_seeds"]) or None in have:
            raise SystemExit(f"{name}: its results do not record every dataset's digest, which pairing needs")
        if have != digests[first]:
            raise SystemExit(f"{name}: its datasets' digests differ from {first}'s: its rows do not pair with "
                             "that bench's; rerun it on the machine that built the others")
    return out


def unit_scores(row: dict, label: str) -> tuple[np.ndarray, int]:
    """A bench row's per-unit scores (NaN for a failed run, which the analysis scores 0, a
    random policy's level: PLAN.md, amendment 2) and how many of its training runs failed."""
    if not row.get("reason"):
        return np.array(row["per_seed"], float), 0
    if row.get("run_scores") is None:  # a bench written before rows recorded them
        raise SystemExit(f"{label} failed ({row['reason']}) and its bench did not record the scores of its runs "
                         "(run_scores): rerun that bench before analysing")
    units = np.array([np.nan if v is None else v for v in row["run_scores"]], float)
    return units, int(np.isnan(units).sum())


def _finished_means(finished: dict, role: str) -> np.ndarray:
    """A role's per-dataset mean over its finished runs (NaN where none finished)."""
    runs = finished[role]
    done = np.isfinite(runs).sum(axis=1)
    return np.where(done > 0, np.nansum(runs, axis=1) / np.maximum(done, 1), np.nan)


def failures_dropped(finished: dict, searches: list[int], against: str = "b_star") -> dict | None:
    """A sensitivity analysis made after seeing failures (not pre-registered, never the
    verdict): each loss's per-dataset mean over its runs that finished, the winners' mean
    over the winners that finished one; winners minus ``against`` (a role) with the
    datasets as units (t over datasets: the spread between searches is not in it), and
    the datasets where some winner finished no run. None where a dataset is left with no
    finished run of ``against`` or of every winner."""
    base = _finished_means(finished, against)
    per = np.stack([_finished_means(finished, f"winner {k}") for k in searches])
    have = np.isfinite(per)
    winners = np.where(have.any(axis=0), np.nansum(per, axis=0) / np.maximum(have.sum(axis=0), 1), np.nan)
    if not (np.isfinite(base).all() and np.isfinite(winners).all()):
        return None
    return {**stats.paired_difference(winners, base), "thinned": np.flatnonzero(~have.all(axis=0)).tolist()}


def pick(task: str, setting: str, searches: list[int], results: str = RESULTS) -> int:
    """The position in ``searches`` of the winner that its own search scored best on its
    held-out seeds (loss 1's held-out score)."""
    best = [numbered_losses(RunStore.open(f"study-{task}-{setting}-{i}", results))[0] for i in searches]
    for i, b in zip(searches, best):
        if b.basis != "held-out score":
            raise SystemExit(f"study-{task}-{setting}-{i}: loss 1 has no held-out score ({b.basis})")
    # a loss 1 that failed its held-out re-scoring (no fitness) is never the pick
    scored = [-np.inf if b.row["fitness"] is None else b.row["fitness"] for b in best]
    if not np.isfinite(max(scored)):
        raise SystemExit(f"{task} {setting}: no search's loss 1 has a held-out score")
    return int(np.argmax(scored))


def nearest_relatives(task: str, setting: str, here: str = HERE, top: int = 2) -> dict[int, tuple[str, str]]:
    """search -> (its winner's ``top`` nearest zoo losses with constants and cosine, its
    cosine with B*), from relatives-TASK-SETTING.json (relatives.py); {} if not measured."""
    path = os.path.join(here, f"relatives-{task}-{setting}.json")
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as f:
        entries = json.load(f)["searches"]
    for entry in entries:
        if "error" in entry:
            out[entry["search"]] = (f"not measured: {entry['error']}", "")
            continue
        shown = [f"{r['name']} ({', '.join(f'{k}={v:.3g}' for k, v in sorted(r['constants'].items()))}) "
                 f"{r['cosine']:.3f}" for r in entry["relatives"][:top]]
        out[entry["search"]] = ("; ".join(shown), f"{entry['b_star_cosine']:.3f}")
    return out


def _ci(r: dict) -> str:
    return f"{r['mean']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}], p {r['p']:.3g}"


def main(settings: list[str], here: str = HERE, results: str = RESULTS) -> None:
    if unknown := [s for s in settings if s not in SETTINGS]:
        raise SystemExit(f"not a pre-registered setting: {', '.join(unknown)} (PLAN.md: {', '.join(SETTINGS)})")
    commits = subprocess.run(["git", "log", "--format=%h %cs", "--", "results/study_v3/PLAN.md"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split("\n")
    commits = [c for c in commits if c.strip()] or ["(not committed)"]
    print("# Study v3: results\n")
    print(f"Plan: `results/study_v3/PLAN.md`, pre-registered at {commits[-1]}, last amended at {commits[0]} "
          f"({len(commits)} commits; the amendments and deviations are listed in it). Command: "
          f"`python results/study_v3/analyse.py {' '.join(settings)}`.\n")
    found = {s: scores(*s.split(":"), here, results) for s in settings}
    done = [s for s in settings if found[s] is not None]
    effects, winners_of = {}, {}
    for s in done:
        x = found[s]["scores"]
        k = sorted(int(r.split()[1]) for r in x if r.startswith("winner "))
        winners_of[s] = np.stack([x[f"winner {i}"] for i in k])
        effects[s] = study.setting_effect(winners_of[s], x["b_star"], pick(*s.split(":"), k, results))
        effects[s]["search_numbers"] = k  # position i of the winners is search k[i]
        if "best_pick" in effects[s]:
            effects[s]["best_pick"]["search"] = k[effects[s]["best_pick"]["search"]]
    pending = [s for s in SETTINGS if s not in done]  # not finished, or not analysed in this call
    verdicts = dict(zip(done, study.verdicts([effects[s] for s in done], family=len(SETTINGS)))) if done else {}
    if pending:
        floor = dict(zip(done, study.verdicts([effects[s] for s in done], family=len(SETTINGS), pending_p=0.0)))
        stays = [s for s in done if floor[s]["verdict"] == verdicts[s]["verdict"]]
        print(f"**Pending** (held-out benches not finished, or not analysed in this call): {', '.join(pending)}. "
              f"Holm's correction below counts them with p = 1; once they are in, the adjusted p values can only "
              f"fall, at most to what they would be if the pending settings gave p = 0: "
              + "; ".join(f"{s} Holm p {floor[s]['p_holm']:.3g}, TOST {floor[s]['p_tost_holm']:.3g}" for s in done)
              + ". " + (f"So the verdicts of {', '.join(stays)} are final whatever the pending settings give"
                        if stays else "")
              + ("" if len(stays) == len(done) else
                 f"{'; those of ' if stays else 'The verdicts of '}"
                 f"{', '.join(s for s in done if s not in stays)} may still change") + ".\n")
    print("| setting | primary effect (winners - B*) [95% CI], p | Holm p | TOST p (Holm) | verdict | MDE at "
          "Holm's first alpha | by searches | by datasets |")
    print("|---|---|---|---|---|---|---|---|")
    for s in done:
        e, v = effects[s], verdicts[s]
        p, mde = e["primary"], v["mde"][f"{v['alpha_first_step']:g}"]
        print(f"| {s} | {_ci(p)} ({p['method']}, {p['df']:.3g} df) | {v['p_holm']:.3g} | "
              f"{v['p_tost_holm']:.3g} | **{v['verdict']}** | {mde:.1f} | "
              f"{_ci(e['by_searches'])} | {_ci(e['by_datasets'])} |")
    for s in done:
        e, x, about, p = effects[s], found[s]["scores"], found[s]["about"], effects[s]["primary"]
        print(f"\n## {s}\n")
        b = about["b_star"]
        print(f"B*: {b['name']}, `{b['form']}` ({b['recipe']}); {e['searches']} searches x {e['datasets']} held-out "
              f"datasets x 3 seeds, {found[s]['episodes']} evaluation episodes. Standard deviations: between searches "
              f"{p['sd_search']:.1f}, between datasets {p['sd_dataset']:.1f}, residual {p['sd_residual']:.1f} "
              f"(moments SE {p['se_moments']:.2f} vs {p['method']} {p['se']:.2f}; REML optimiser "
              f"{p.get('optimizer')}, converged: {p.get('converged')}"
              + (f"; its warnings: {'; '.join(p['fit_warnings'])}" if p.get("fit_warnings") else "") + ").\n")
        if not found[s]["readout_met_threshold"]:
            print(f"The readout ({found[s]['episodes']}) did not reach the 2-point rule (PLAN.md, amendment 5).\n")
        if found[s]["untuned_winners"]:
            print(f"Winners that failed at every tuning recipe, benched at their search's recipe (PLAN.md, amendment "
                  f"4): {', '.join(found[s]['untuned_winners'])}.\n")
        failed = {r: n for r, n in found[s]["failed_runs"].items() if n}
        runs = found[s]["finished"]["b_star"].size
        print("Failed training runs (scored 0): " + (", ".join(f"{r} {n} of {runs}" for r, n in failed.items())
                                                      if failed else "none") + ".\n")
        if any(n for r, n in failed.items() if r.startswith("winner ") or r == "b_star"):
            fin, ks = found[s]["finished"], e["search_numbers"]
            drop = failures_dropped(fin, ks)
            text = ("Sensitivity, decided after the failures were seen (not pre-registered; not the verdict): failed "
                    "runs dropped instead of scored 0, each loss's per-dataset mean over its finished runs, t over "
                    "datasets (the spread between searches left out). This favours a loss that fails: a run that "
                    "diverged is removed, not counted. Winners minus B*: ")
            if drop is None:
                text += "not computable (a dataset has no finished run)"
            else:
                text += _ci(drop)
                if drop["thinned"]:
                    seeds = [str(found[s]["data_seeds"][j]) for j in drop["thinned"]]
                    text += f" (on data seeds {', '.join(seeds)} some winner finished no run; the mean there is of the others)"
                for role in (r for r, n in failed.items() if r.startswith("zoo ") and n):
                    name = about[role]["name"]
                    zoo_vs = stats.paired_difference(_finished_means(fin, role), _finished_means(fin, "b_star"))
                    text += f"; {name} minus B*, treated alike: {_ci(zoo_vs)}"
                    if (vs := failures_dropped(fin, ks, role)) is not None:
                        text += f"; winners minus {name}: {_ci(vs)}"
            print(text + ".\n")
        if s.startswith("lm:"):  # PLAN.md, amendment 9: B*'s held-out level and headroom beside the verdict
            level = float(np.mean(x["b_star"]))
            mde = verdicts[s]["mde"][f"{verdicts[s]['alpha_first_step']:g}"]
            print(f"B*'s held-out score {level:.1f} of 100 leaves {100 - level:.1f} points of headroom; the MDE "
                  f"({mde:.1f}) {'exceeds' if mde > 100 - level else 'is within'} it"
                  + (", so a *better* verdict was out of reach by design" if mde > 100 - level else "")
                  + " (PLAN.md, amendments 8 and 9: the setting was kept against the plan's entry rule).\n")
        b = e["best_pick"]
        print(f"Secondary, the best of the {e['searches']} winners by its own search's held-out score (search "
              f"{b['search']}): {_ci(b)} over {b['n']} datasets, TOST p {b['p_tost']:.3g} (p values unadjusted; "
              f"not used for the verdict).\n")
        left_out = sorted(set(range(heldout.K)) - set(e["search_numbers"]))
        if left_out:
            print(f"Searches left out (could not finish; PLAN.md, amendment 2): {', '.join(map(str, left_out))}.\n")
        near = nearest_relatives(*s.split(":"), here)
        print("Each winner against B* (p values unadjusted; not used for the verdict), with its nearest zoo "
              "relatives by gradient-field cosine on tuning data "
              + (f"(`relatives-{s.replace(':', '-')}.json`)" if near else
                 f"(not measured: `python results/study_v3/relatives.py {s.replace(':', ' ')}`)") + ":\n")
        print("| search | winner | recipe | vs B* over datasets [95% CI], p | nearest relatives (cosine) | "
              "cosine with B* |")
        print("|---|---|---|---|---|---|")
        for k, r in zip(e["search_numbers"], e["per_search"]):
            w = about[f"winner {k}"]
            rel, to_b = near.get(k, ("", ""))
            print(f"| {k} | `{w['form']}` | {w['recipe']} | {_ci(r)} | {rel} | {to_b} |")
        star = about["b_star"]["name"]  # also one of the zoo rows: listed once, as B*
        named = {f"B* ({star})": x["b_star"],
                 f"winners (mean of these {e['searches']} searches)": winners_of[s].mean(axis=0),
                 **{about[r]["name"]: x[r] for r in x if r.startswith("zoo ") and about[r]["name"] != star}}
        print("\nInterval estimates over datasets (percentile bootstrap, 10,000 resamples; datasets resampled, the "
              "searches held fixed, so the winners' row is conditional on these searches; absolute scores, not "
              "paired differences: overlapping intervals are not a test):\n")
        print("| loss | mean [95% CI] | IQM [95% CI] |")
        print("|---|---|---|")
        for name, r in study.dataset_intervals(named).items():
            m, q = r["mean"], r["iqm"]
            print(f"| {name} | {m['value']:.1f} [{m['low']:.1f}, {m['high']:.1f}] | "
                  f"{q['value']:.1f} [{q['low']:.1f}, {q['high']:.1f}] |")
        print("\nPer dataset:\n\n| dataset | B* | winners (mean) | effect |\n|---|---|---|---|")
        columns = (found[s]["data_seeds"], *(e["per_dataset"][c] for c in ("b_star", "winners_mean", "effect")))
        for seed, a, w, d in zip(*columns):
            print(f"| {seed} | {a:.1f} | {w:.1f} | {d:+.1f} |")
    with open(os.path.join(here, "analysis.json"), "w") as f:
        json.dump({"settings": settings, "pending": pending, "effects": effects, "verdicts": verdicts,
                   "failed_runs": {s: found[s]["failed_runs"] for s in done}}, f, indent=1,
                  default=float)


if __name__ == "__main__":
    main(sys.argv[1:] or list(SETTINGS))
