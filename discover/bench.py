"""`discover bench`: the zoo (or a list of losses) with identical data, seeds and budget."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from typing import Callable, Sequence

import jax
import numpy as np

from discover import plots
from discover.experiment import Experiment, ExperimentConfig
from discover.store import atomic_write_json
from evaluators import trainer
from grammar import symbolic, zoo


def run_bench(config: ExperimentConfig, losses: Sequence[str], seeds: Sequence[int], out_dir: str,
              log: Callable[[str], None] = print) -> dict:
    entries = [zoo.get(name) for name in losses]
    started = time.perf_counter()
    exp = Experiment(config, log=log)
    prepared = time.perf_counter()
    log(f"training {len(entries)} losses x {len(seeds)} seeds ({config.train.steps} steps, "
        f"{config.train.batch_pairs} pairs per batch) ...")
    scores, result, timing = exp.evaluate([z.expr for z in entries], [z.constants for z in entries], seeds)
    ref_mean, ref_std = exp.reference_score()
    rows = []
    for i, z in enumerate(entries):
        rows.append({
            "name": z.name, "closed_form": symbolic.text(z.expr), "constants": z.constants,
            "fitness": scores.fitness[i], "spread": scores.spread[i],
            "per_seed": [None if np.isnan(v) else float(v) for v in scores.per_seed[i]],
            "reason": scores.reasons[i],
            "train_accuracy": float(np.mean(result.train_accuracy[i])),
            "final_loss": [float(v) for v in result.final_loss[i]],
        })
    out = {
        "task": config.dataset.task, "setting": config.dataset.setting,
        "config": config.to_dict(), "seeds": list(seeds),
        "dataset": {"path": exp.dataset_path, **exp.dataset.summary()},
        "reference": {"mean": ref_mean, "std": ref_std},
        "behaviour": {"names": list(exp.behaviour.names), "returns": list(exp.behaviour.returns),
                      "random_return": exp.behaviour.random_return,
                      "expert_return": exp.behaviour.expert_return,
                      "normalised": [float(v) for v in exp.behaviour.normalise(exp.behaviour.returns)]},
        "losses": rows,
        "timing": {"prepare_s": prepared - started, **timing, "total_s": time.perf_counter() - started},
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


def experiment_config(task: str, setting: str, eps: float, pairs: int, segment: int, data_seed: int,
                      steps: int, batch: int, lr: float, episodes: int, backend: str) -> ExperimentConfig:
    from evaluators import datasets, fitness

    base = ExperimentConfig()
    return ExperimentConfig(
        dataset=datasets.DatasetConfig(task=task, setting=setting, eps=eps, pairs=pairs, segment=segment,
                                       seed=data_seed),
        train=dataclasses.replace(base.train, steps=steps, batch_pairs=batch, learning_rate=lr),
        eval=fitness.EvalConfig(episodes=episodes, backend=backend),
        reference=base.reference,
    )


def load_results(path: str) -> dict:
    with open(path) as f:
        return json.load(f)
