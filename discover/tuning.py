"""Fair tuning for a study: every hand-designed loss tuned over its constants (a grid that
includes the search's own bounds) and, with the best of them and every discovered loss
alike, over the training recipe (learning rate x steps), on several tuning datasets x
seeds; the best hand-designed loss B* is fixed here, before any held-out run.

Stage 1 scores each zoo loss at every point of its constants' grid at the configuration's
own recipe (the grid reaches the search's bounds, beyond which no search goes either);
stage 2 scores the ``top`` best zoo losses (at their stage-1 constants), DPO and every
discovered loss (at its searched constants) at every recipe, and where a loss does best at
the largest learning rate of the grid, at twice that rate too (with each step count). A
loss's score is its mean over the tuning units (datasets x seeds); its choice is its best
point. B* is written to ``out_dir/B_STAR.json`` the first time; a later call (e.g. with
the searches' winners) refuses to go on if it would pick another. Every scored part is kept
as a JSON file under ``out_dir/parts/`` (named by a digest of what sets its scores), so the
same call after an interruption scores only what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
import time
from typing import Callable, Sequence

import numpy as np

from evaluators import atomic, registry
from evaluators import seeds as seed_spaces
from grammar import zoo
from grammar.losses import Loss

# positions in each constant's range, on its scale: both bounds and five points between
POINTS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
RECIPES = tuple((steps, lr) for steps in (200, 400) for lr in (3e-4, 6e-4, 12e-4, 24e-4))


@dataclasses.dataclass(frozen=True)
class TuningPlan:
    """Where and how losses are tuned: the tuning datasets, training seeds per dataset, the
    grid's positions, the recipes (steps, learning rate) and how many of the best zoo losses
    get the recipe grid (DPO always does)."""

    datasets: tuple[int, ...] = seed_spaces.TUNE_DATA_SEEDS
    seeds_per_dataset: int = 2
    points: tuple[float, ...] = POINTS
    recipes: tuple[tuple[int, float], ...] = RECIPES
    top: int = 5

    @property
    def seeds(self) -> list[int]:
        """Training seeds: consecutive, so that seed s trains on dataset s mod D and every
        dataset gets ``seeds_per_dataset`` of them."""
        n = len(self.datasets) * self.seeds_per_dataset
        if seed_spaces.TUNE_TRAIN[0] + n > seed_spaces.TUNE_TRAIN_END:
            raise ValueError(f"{n} tuning runs per loss leave the tuning seed namespace")
        return [seed_spaces.TUNE_TRAIN[0] + i for i in range(n)]


@functools.lru_cache(maxsize=1)
def mirror_constants() -> dict:
    """mirror.yaml's constants (bounds and scales): the zoo's constants and tuning grids live in them."""
    from grammar import load as load_grammar

    return load_grammar("mirror.yaml").constants


def constant_grid(constants: dict, bounds: dict, points: Sequence[float] = POINTS) -> list[dict]:
    """The default and ``points`` across each constant's range (``bounds``: the grammar's
    constants, with their bounds and scales), all combinations."""
    axes = [sorted({float(default)} | {round(bounds[name].from_unit(u), 6) for u in points})
            for name, default in constants.items()]
    return [dict(zip(constants, combo)) for combo in itertools.product(*axes)]


def _recipe_config(config, recipe: tuple[int, float]):
    steps, lr = recipe
    return config.with_options(steps=int(steps), lr=float(lr))


def score_part(config, plan: TuningPlan, recipe: tuple[int, float], jobs: Sequence[tuple[str, object, dict]],
               out_dir: str, log: Callable[[str], None] = print) -> np.ndarray:
    """(len(jobs), datasets) mean score over each tuning dataset's seeds of every job (name,
    expression, constants) at ``recipe``, NaN where training failed; read back from
    ``out_dir/parts/`` when this part was scored before."""
    cfg = _recipe_config(config, recipe).with_data_seeds(plan.datasets)
    what = {"config": cfg.to_dict(), "seeds": plan.seeds, "eval": seed_spaces.TUNE_EVAL,
            "jobs": [[n, str(e), c] for n, e, c in jobs]}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=float).encode()).hexdigest()[:16]
    path = os.path.join(out_dir, "parts", f"{digest}.json")
    if os.path.exists(path):
        with open(path) as f:
            return np.array(json.load(f)["per_dataset"], dtype=float)
    began = time.perf_counter()
    evaluator = registry.get(registry.for_task(cfg.dataset.task))(cfg, log=log)
    ev = evaluator.evaluate([e for _, e, _ in jobs], [c for _, _, c in jobs], plan.seeds,
                            eval_seed=seed_spaces.TUNE_EVAL)
    which = np.array(plan.seeds) % len(plan.datasets)  # the dataset each seed trained on
    # a failed run leaves its loss NaN (the interface: no fitness with any seed failed)
    per_dataset = np.stack([ev.per_seed[:, which == d].mean(axis=1) for d in range(len(plan.datasets))], axis=1)
    atomic.write_text(path, json.dumps({"what": what, "per_dataset": per_dataset.tolist(),
                                        "seconds": time.perf_counter() - began}, default=float))
    return per_dataset


def _mean(row: np.ndarray) -> float | None:
    return None if np.isnan(row).any() else float(np.mean(row))


def tune(config, zoo_names: Sequence[str], discovered: Sequence[Loss], bounds: dict, out_dir: str,
         plan: TuningPlan = TuningPlan(), log: Callable[[str], None] = print, part: int = 64) -> dict:
    """Both stages (module docstring); returns and writes ``out_dir/tuning.json``: each
    loss's stage-1 grid and stage-2 recipes with their scores, its choice, and B*."""
    recipe0 = (config.train.steps, config.train.learning_rate)
    stage1: dict[str, list[dict]] = {}
    jobs = [(n, zoo.get(n).expr, c) for n in zoo_names
            for c in (constant_grid(zoo.get(n).constants, bounds, plan.points) if zoo.get(n).constants else [{}])]
    log(f"tuning stage 1: {len(jobs)} settings of {len(zoo_names)} zoo losses x {len(plan.seeds)} runs "
        f"({len(plan.datasets)} datasets) at {recipe0[0]} steps, lr {recipe0[1]:g}")
    for k in range(0, len(jobs), part):
        scores = score_part(config, plan, recipe0, jobs[k:k + part], out_dir, log)
        for (n, _, c), row in zip(jobs[k:k + part], scores):
            stage1.setdefault(n, []).append({"constants": c, "per_dataset": row.tolist(), "score": _mean(row)})
        log(f"tuning stage 1: {min(k + part, len(jobs))}/{len(jobs)} settings scored")
    best1 = {n: _best(rows) for n, rows in stage1.items()}
    ranked = sorted((n for n, r in best1.items() if r is not None), key=lambda n: -best1[n]["score"])
    chosen = list(dict.fromkeys(ranked[:plan.top] + (["dpo"] if "dpo" in best1 and best1["dpo"] else [])))
    # the zoo's part and the discovered losses' part scored apart: B* is fixed before any
    # search has run, and the winners join later without re-scoring the zoo
    groups = [[(n, zoo.get(n).expr, best1[n]["constants"]) for n in chosen],
              [(d.name, d.expr, d.constants) for d in discovered]]
    log(f"tuning stage 2: {len(chosen)} zoo and {len(discovered)} discovered losses x {len(plan.recipes)} recipes")
    stage2: dict[str, list[dict]] = {}
    for recipe in plan.recipes:
        for jobs2 in (g for g in groups if g):
            scores = score_part(config, plan, recipe, jobs2, out_dir, log)
            for (n, _, c), row in zip(jobs2, scores):
                stage2.setdefault(n, []).append({"steps": recipe[0], "lr": recipe[1], "constants": c,
                                                 "per_dataset": row.tolist(), "score": _mean(row)})
        log(f"tuning stage 2: {recipe[0]} steps, lr {recipe[1]:g} scored")
    # where a loss is best at the grid's largest learning rate, twice that rate as well
    top_lr = max(lr for _, lr in plan.recipes)
    for group in groups:
        edge = [job for job in group if (best := _best(stage2[job[0]])) is not None and best["lr"] == top_lr]
        for recipe in ((steps, 2 * top_lr) for steps in sorted({s for s, _ in plan.recipes})):
            if not edge:
                break
            for (n, _, c), row in zip(edge, score_part(config, plan, recipe, edge, out_dir, log)):
                stage2[n].append({"steps": recipe[0], "lr": recipe[1], "constants": c, "per_dataset": row.tolist(),
                                  "score": _mean(row)})
            log(f"tuning stage 2: {len(edge)} losses best at lr {top_lr:g} also at {recipe[0]} steps, "
                f"lr {recipe[1]:g}")
    choice = {n: _best(rows) for n, rows in stage2.items()}
    zoo_choices = [(n, r) for n, r in choice.items() if n in chosen and r is not None]
    b_star = max(zoo_choices, key=lambda nr: nr[1]["score"], default=None)
    b_star = None if b_star is None else {"name": b_star[0], **b_star[1]}
    frozen = os.path.join(out_dir, "B_STAR.json")
    if b_star is not None and os.path.exists(frozen):
        with open(frozen) as f:
            fixed = json.load(f)
        if not _same_choice(fixed, b_star):
            raise RuntimeError(f"B* was fixed as {fixed['name']} ({frozen}); this tuning would pick {b_star['name']} "
                               f"{b_star['constants']} at {b_star['steps']} steps, lr {b_star['lr']:g}: the zoo's "
                               "scores changed (another configuration, code or machine); not going on")
    elif b_star is not None:
        atomic.write_text(frozen, json.dumps(b_star, indent=1, default=float))
    out = {"plan": dataclasses.asdict(plan), "config": config.to_dict(), "recipe": list(recipe0),
           "stage1": stage1, "stage2": stage2, "choice": choice, "b_star": b_star}
    atomic.write_text(os.path.join(out_dir, "tuning.json"), json.dumps(out, indent=1, default=float))
    return out


def _best(rows: Sequence[dict]) -> dict | None:
    return max((r for r in rows if r["score"] is not None), key=lambda r: r["score"], default=None)


def _same_choice(a: dict, b: dict) -> bool:
    """Whether two B* records pick the same loss, constants and recipe."""
    return (a["name"] == b["name"] and int(a["steps"]) == int(b["steps"]) and np.isclose(a["lr"], b["lr"])
            and a["constants"].keys() == b["constants"].keys()
            and all(np.isclose(a["constants"][k], b["constants"][k]) for k in a["constants"]))
