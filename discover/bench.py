"""`discover bench`: the zoo (or a list of losses) with identical data, seeds and budget."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import time
from typing import Callable, Sequence

import jax
import numpy as np

from discover import plots
from discover.stats import paired_difference
from discover.store import atomic_write_json
from evaluators import seeds as seed_spaces
from evaluators import trainer
from evaluators.interface import Evaluator
from evaluators.mujoco import MujocoConfig, MujocoEvaluator
from grammar import symbolic, zoo


# Seeds the search never uses; tuning the baselines' constants uses yet others
# (evaluators/seeds.py keeps every namespace disjoint).
BENCH_SEED_BASE = seed_spaces.BENCH_TRAIN_BASE
BENCH_EVAL_SEED = seed_spaces.BENCH_EVAL
TUNE_SEEDS = seed_spaces.TUNE_TRAIN
TUNE_EVAL_SEED = seed_spaces.TUNE_EVAL
TUNE_POINTS = (0.1, 0.3, 0.5, 0.7, 0.9)  # positions in each constant's range, on its scale


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "zoo" or "discovered"
    expr: object
    constants: dict
    source: str = ""


def zoo_entries(names: Sequence[str]) -> list[Entry]:
    return [Entry(z.name, "zoo", z.expr, dict(z.constants), z.reference) for z in (zoo.get(n) for n in names)]


def run_entries(specs: Sequence[str], results_dir: str) -> list[Entry]:
    """``RUN`` or ``RUN:RANK`` -> the run's rank-th loss (by held-out score when finished)."""
    from discover.errors import RunError
    from discover.run_views import ranked_entry
    from discover.store import RunStore

    out = []
    for spec in specs:
        run, _, rank = spec.partition(":")
        try:
            r = int(rank) if rank else 1
        except ValueError:
            raise RunError(f"bad --include {spec!r}: use RUN or RUN:RANK") from None
        store = RunStore.open(run, results_dir)
        expr, constants, provenance = ranked_entry(store, r)
        out.append(Entry(f"{store.name}#{r}", "discovered", expr, dict(constants), provenance))
    return out


def static_ablations(entries: Sequence[Entry], points: Sequence[float] = (0.0, 1.0)) -> list[Entry]:
    """For each discovered loss that uses training progress t: the same formula with t frozen
    at each of ``points`` (0: its early-training form all along; 1: its late form). Scored
    alongside the scheduled loss, they show what the schedule itself buys."""
    from grammar.expr import Expr

    out = []
    for e in entries:
        if e.kind != "discovered" or "t" not in e.expr.terminals:
            continue
        for p in points:
            frozen = e.expr.substitute({("var", "t"): Expr.num(p)})
            out.append(Entry(f"{e.name} @ t={p:g}", "discovered", frozen, dict(e.constants),
                             f"{e.source}; training progress t frozen at {p:g}"))
    return out


@functools.lru_cache(maxsize=1)
def _mirror_constants() -> dict:
    from grammar import load as load_grammar

    return load_grammar("mirror.yaml").constants


def tuning_grid(constants: dict) -> list[dict]:
    """The default and five points across each constant's range (mirror.yaml's bounds and
    scales), all combinations."""
    import itertools

    bounds = _mirror_constants()
    axes = []
    for name, default in constants.items():
        c = bounds[name]
        axes.append(sorted({float(default)} | {round(c.from_unit(u), 6) for u in TUNE_POINTS}))
    return [dict(zip(constants, combo)) for combo in itertools.product(*axes)]


def tune_zoo(evaluator: Evaluator, names: Sequence[str], log: Callable[[str], None] = print) -> dict[str, dict]:
    """Best constants of each zoo loss on the tuning seeds (grid search, one population)."""
    jobs = []
    for n in names:
        z = zoo.get(n)
        for consts in tuning_grid(z.constants) if z.constants else []:
            jobs.append((n, z.expr, consts))
    log(f"tuning the constants of {len(names)} baselines: {len(jobs)} settings x {len(TUNE_SEEDS)} seeds ...")
    scores = evaluator.evaluate([j[1] for j in jobs], [j[2] for j in jobs], TUNE_SEEDS, eval_seed=TUNE_EVAL_SEED)
    best: dict[str, tuple[float, dict]] = {}
    for (n, _, consts), f in zip(jobs, scores.fitness):
        if f is not None and (n not in best or f > best[n][0]):
            best[n] = (f, consts)
    return {n: c for n, (_, c) in best.items()}


def run_bench(config: MujocoConfig, entries: Sequence[Entry], seeds: Sequence[int], out_dir: str,
              log: Callable[[str], None] = print, tune: bool = False) -> dict:
    started = time.perf_counter()
    evaluator = MujocoEvaluator(config, log=log)
    prepared = time.perf_counter()
    tuned: dict[str, dict] = {}
    if tune:
        names = [e.name for e in entries if e.kind == "zoo" and e.constants]
        tuned = tune_zoo(evaluator, names, log)
        extra = []
        for e in entries:
            if e.kind == "zoo" and e.name in tuned and tuned[e.name] != e.constants:
                consts = ", ".join(f"{k}={v:.3g}" for k, v in tuned[e.name].items())
                extra.append(Entry(f"{e.name} (tuned: {consts})", "zoo", e.expr, tuned[e.name],
                                   e.source + "; constants tuned on seeds " + ", ".join(map(str, TUNE_SEEDS))))
        entries = list(entries) + extra
    tuned_at = time.perf_counter()
    log(f"training {len(entries)} losses x {len(seeds)} seeds ({config.train.steps} steps, "
        f"{config.train.batch_pairs} pairs per batch) ...")
    scores = evaluator.evaluate([z.expr for z in entries], [z.constants for z in entries], seeds)
    ref_mean, ref_std = evaluator.baseline()
    about = evaluator.describe()
    zoo_forms = {symbolic.canonical_hash(z.expr): n for n, z in zoo.ZOO.items()}
    rows = []
    for i, z in enumerate(entries):
        same = zoo_forms.get(symbolic.canonical_hash(z.expr))
        rows.append({
            "name": z.name, "kind": z.kind, "source": z.source,
            "same_form_as": same if z.kind == "discovered" else None,
            "closed_form": symbolic.text(z.expr), "expression": str(z.expr), "constants": z.constants,
            "fitness": scores.fitness[i], "spread": scores.spread[i],
            "per_seed": scores.seed_scores(i),
            "reason": scores.reasons[i],
            "train_accuracy": scores.mean("train_accuracy", i),
            "final_loss": [float(v) for v in scores.diagnostics["final_loss"][i]],
        })
    baselines = [r for r in rows if r["kind"] == "zoo" and r["fitness"] is not None]
    best = max(baselines, key=lambda r: r["fitness"]) if baselines else None
    for r in rows:
        if best is not None and r is not best and r["fitness"] is not None:
            r["vs_best_baseline"] = {"baseline": best["name"],
                                     **paired_difference(r["per_seed"], best["per_seed"])}
    out = {
        "task": config.dataset.task, "setting": config.dataset.setting,
        "best_baseline": best["name"] if best else None,
        "config": config.to_dict(), "seeds": list(seeds),
        "dataset": about["dataset"],
        "reference": {"mean": ref_mean, "std": ref_std},
        "behaviour": about["behaviour"],
        "losses": rows,
        "tuned": tuned,
        "timing": {"prepare_s": prepared - started, "tune_s": tuned_at - prepared, **scores.timing,
                   "total_s": time.perf_counter() - started},
        "compilations": trainer.compilations(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax_backend": jax.default_backend(),
                    "devices": [str(d) for d in jax.local_devices()]},
    }
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_json(os.path.join(out_dir, "results.json"), out)
    title = f"{config.dataset.task} {config.dataset.setting}" + (
        f" (eps {config.dataset.eps:g})" if config.dataset.setting == "noisy" else "")
    plots.bench_bars([r["name"] for r in rows], [r["fitness"] for r in rows], [r["spread"] for r in rows],
                     ref_mean, title, os.path.join(out_dir, "bench.png"))
    return out


def default_losses() -> list[str]:
    return [n for n in zoo.ZOO]


def load_results(path: str) -> dict:
    with open(path) as f:
        return json.load(f)
