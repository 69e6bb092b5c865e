"""Selection accuracy of successive halving against its cost.

Takes one generation of a committed search (its trained candidates: a realistic
population, not a random one), trains every candidate with ``--seeds`` seeds on the
search's datasets, and takes the mean over those seeds as the truth. It then replays
the choices a generation makes, once with each seed as the screening seed:

- halving (what ``discover run`` does by default): rank on the screening seed alone,
  promote the best k, give them the other S - 1 inner seeds, pick the best by its S-seed
  mean; cost P + k (S - 1) runs (the search pads this to 2P);
- all seeds (``--no-halving``): every candidate on S seeds, pick the best by its mean;
  cost P x S runs.

For each (and for a random pick, for scale) it prints how often the true best candidate
survives the screening, the recall of the true top 3, and the regret of the pick (true
best minus the true score of the picked candidate, in fitness points), averaged over the
screening seeds. The truth is measured on the seeds not used to pick, so a pick is not
scored on its own noise.

    python benchmarks/halving.py [--run results/v2-hopper-mixed] [--generation -1] [--seeds 12]

Writes ``results/benchmarks/halving.txt`` and the score matrix ``halving_scores.json``
(``--scores`` replays a saved one without training).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def replay(scores: np.ndarray, screen: int, inner: int, promoted: int) -> dict:
    """One generation replayed on a (P, K) score matrix (nan: failed), screening on column
    ``screen`` and using ``inner`` columns (the screening one and the next) per candidate.

    Returns, for halving and for all seeds: whether the true best was kept, the recall of
    the true top 3, and the regret of the pick, with the truth taken over the columns not
    used by that pick's procedure."""
    P, K = scores.shape
    cols = [(screen + j) % K for j in range(inner)]
    truth_cols = [c for c in range(K) if c not in cols]
    truth = np.nanmean(scores[:, truth_cols], axis=1)
    ok = ~np.isnan(scores).any(axis=1)
    truth = np.where(ok, truth, -np.inf)
    best = int(np.argmax(truth))
    top3 = set(np.argsort(-truth)[:3].tolist())
    screened = np.where(ok, scores[:, screen], -np.inf)
    kept = set(np.argsort(-screened)[:promoted].tolist())
    mean_inner = np.where(ok, scores[:, cols].mean(axis=1), -np.inf)
    pick_half = max(kept, key=lambda i: mean_inner[i])
    pick_all = int(np.argmax(mean_inner))
    return {
        "halving": {"best_kept": best in kept, "top3_recall": len(top3 & kept) / 3,
                    "regret": float(truth[best] - truth[pick_half]), "runs": P + promoted * (inner - 1)},
        "all": {"best_kept": True, "top3_recall": 1.0, "regret": float(truth[best] - truth[pick_all]),
                "runs": P * inner},
        "random": {"best_kept": 1.0 / ok.sum(), "top3_recall": 3.0 / ok.sum(),
                   "regret": float(np.mean(truth[best] - truth[ok])), "runs": 0},
    }


def summarise(scores: np.ndarray, inner: int, promoted: int) -> dict:
    """:func:`replay` averaged over every column as the screening seed (``regret_se``: the
    standard error of the regret over those choices, which share their candidates)."""
    out = {}
    for screen in range(scores.shape[1]):
        for name, r in replay(scores, screen, inner, promoted).items():
            acc = out.setdefault(name, {k: [] for k in r})
            for k, v in r.items():
                acc[k].append(float(v))
    return {name: {**{k: float(np.mean(v)) for k, v in acc.items()},
                   "regret_se": float(np.std(acc["regret"], ddof=1) / np.sqrt(len(acc["regret"])))
                   if len(acc["regret"]) > 1 else 0.0}
            for name, acc in out.items()}


def population(run: str, generation: int) -> tuple[list, list, dict]:
    """The trained candidates of one generation of a committed run: expressions, constants,
    and the run's configuration."""
    from discover import records
    from discover.store import RunStore

    store = RunStore.open(run)
    cfg = store.config()
    rows = [r for r in store.candidates(latest=False) if r["trained"] and not r.get("reevaluations")]
    gens = sorted({r["generation"] for r in rows})
    gen = gens[generation]
    chosen = [r for r in rows if r["generation"] == gen]
    return [records.expression_of(r) for r in chosen], [r["constants"] for r in chosen], {**cfg, "generation": gen}


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=os.path.join("results", "v2-hopper-mixed"))
    ap.add_argument("--generation", type=int, default=-1, help="which generation (index; -1: the last)")
    ap.add_argument("--seeds", type=int, default=12, help="seeds per candidate (the truth)")
    ap.add_argument("--out", default=os.path.join("results", "benchmarks"))
    ap.add_argument("--scores", help="reuse the score matrix of an earlier run (its halving_scores.json)")
    args = ap.parse_args(argv)

    import jax

    from discover.search import SearchConfig
    from evaluators import registry

    exprs, constants, cfg = population(args.run, args.generation)
    search = SearchConfig.from_dict(cfg["search"])
    name = registry.of_store(cfg)
    exp_cfg = registry.config_from_dict(name, cfg["experiment"])
    P, S = len(exprs), len(search.inner_seeds)
    seeds = list(range(args.seeds))  # seed s trains on dataset s mod D, as the search's seeds do
    t0 = time.perf_counter()
    if args.scores:
        with open(args.scores) as f:
            scores = np.array(json.load(f)["scores"], float)
        seeds = list(range(scores.shape[1]))
    else:
        evaluator = registry.get(name)(exp_cfg, log=print)
        scores = np.array(evaluator.evaluate(exprs, constants, seeds).per_seed, float)
    wall = time.perf_counter() - t0
    lines = [f"halving benchmark on {platform.node() or 'unknown'}, {time.strftime('%Y-%m-%d')}: JAX "
             f"{jax.__version__} ({jax.default_backend()}), {os.cpu_count()} CPU cores",
             f"population: generation {cfg['generation'] + 1} of {args.run} ({P} trained candidates, "
             f"{int(np.isnan(scores).any(axis=1).sum())} failed), {len(seeds)} seeds each on data seeds "
             f"{sorted({s % max(len(exp_cfg.seeds_of_data), 1) for s in seeds})} "
             + (f"(scores replayed from {args.scores})" if args.scores else
                f"({P * len(seeds)} runs in {wall:.0f} s)") + f"; S = {S} inner seeds",
             f"truth: mean over the {args.seeds - S} seeds a procedure did not use; averaged over the "
             f"{args.seeds} choices of screening seed",
             "",
             f"{'procedure':<46}{'runs':>6}{'cost':>7}{'true best kept':>16}{'top-3 recall':>14}{'regret':>14}"]
    def regret(r):
        return f"{r['regret']:.1f} ± {r['regret_se']:.1f}"

    summary = summarise(scores, S, P)
    full, rand = summary["all"], summary["random"]
    lines.append(f"{'a random pick (for scale)':<46}{0:>6}{0.0:>7.2f}{rand['best_kept']:>16.2f}"
                 f"{rand['top3_recall']:>14.2f}{regret(rand):>14}")
    lines.append(f"{'all seeds (--no-halving)':<46}{full['runs']:>6.0f}{1.0:>7.2f}{full['best_kept']:>16.2f}"
                 f"{full['top3_recall']:>14.2f}{regret(full):>14}")
    # The default promotes (population - elites) // (S - 1) of the population's new candidates
    # (13 of 32 with 6 elites); at this population's size that share is default_k.
    share = ((search.population - search.reevaluate) // (S - 1)) / search.population
    default_k = max(int(round(P * share)), 1)
    for k in sorted({max(P // 8, 1), P // 4, default_k, P // (S - 1)}):
        r = summarise(scores, S, k)["halving"]
        label = f"halving, promote {k}" + (
            f" (the default's share, {share:.0%})" if k == default_k else " (no elites)" if k == P // (S - 1) else "")
        lines.append(f"{label:<46}{r['runs']:>6.0f}{r['runs'] / full['runs']:>7.2f}{r['best_kept']:>16.2f}"
                     f"{r['top3_recall']:>14.2f}{regret(r):>14}")
    lines += ["", f"'true best kept' and 'top-3 recall': shares of the {scores.shape[1]} screening-seed choices "
              "within this one generation; regret: mean ± standard error over those choices (they share their "
              "candidates, so the error understates the uncertainty); the truth is itself a mean of "
              f"{scores.shape[1] - S} seeds.",
              f"The default generation promotes (P - R) // (S - 1) of its P new candidates ({share:.0%} with P = "
              f"{search.population}, R = {search.reevaluate} elites) and trains 2P runs (padded) instead of P x S."]
    text = "\n".join(lines)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    if not args.scores:
        with open(os.path.join(args.out, "halving_scores.json"), "w") as f:
            json.dump({"run": args.run, "generation": cfg["generation"], "seeds": seeds,
                       "scores": [[None if np.isnan(v) else float(v) for v in row] for row in scores]}, f)
    path = os.path.join(args.out, "halving.txt")
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


if __name__ == "__main__":
    main()
