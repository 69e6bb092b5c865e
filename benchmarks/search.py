"""Search throughput: seconds per generation and candidates per minute, with successive
halving (the default) and without it, measured in the same run.

Runs two short searches (``--generations``) in a temporary directory as ``discover run``
does on its default datasets (the held-out re-scoring excluded) and prints the figures
and the ratio of their generation times.

    python benchmarks/search.py [--task hopper] [--setting mixed] [--generations 3] [--population 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time

import jax

from discover.search import Search, SearchConfig
from discover.store import RunStore
from evaluators import registry, trainer
from evaluators.seeds import SEARCH_DATA
from evaluators.trainer import TrainConfig
from grammar import load as load_grammar


def one_search(g, evaluator, cfg: SearchConfig) -> tuple[Search, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(tmp, "bench", {"search": cfg.to_dict()}, g.path)
        search = Search(g, evaluator, cfg, store)
        t0 = time.perf_counter()
        search.run()
        return search, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="hopper")
    ap.add_argument("--setting", default="mixed")
    ap.add_argument("--grammar", default="mirror.yaml")
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    args = ap.parse_args()

    g = load_grammar(args.grammar)
    name = registry.for_task(args.task)
    exp_cfg = registry.get(name).Config().with_options(task=args.task, setting=args.setting, steps=args.steps,
                                                       program_length=max(TrainConfig.program_length,
                                                                          g.limits.max_size))
    exp_cfg = exp_cfg.with_data_seeds(SEARCH_DATA).validate()
    evaluator = registry.get(name)(exp_cfg)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()})")
    base = SearchConfig(population=args.population, generations=args.generations)
    per_gen = {}
    for label, cfg in (("halving (default)", base), ("all seeds (--no-halving)",
                                                     dataclasses.replace(base, halving=False))):
        before = trainer.compilations()
        search, wall = one_search(g, evaluator, cfg)
        trained = search.stats["trained"]
        print(f"{label}: {args.generations} generations x {args.population} candidates on {args.task} "
              f"{args.setting} ({len(SEARCH_DATA)} datasets): {wall:.1f} s, {cfg.runs_per_generation()} runs "
              f"per generation, {trainer.compilations() - before} compilation(s)")
        for h in search.history:
            print(f"  generation {h['generation'] + 1}: {h['seconds']:.1f} s (propose {h['propose_s']:.1f}, "
                  f"train {h['train_s']:.1f}, score {h['score_s']:.1f})")
        later = search.history[1:] or search.history
        per_gen[label] = sum(h["seconds"] for h in later) / len(later)
        print(f"  candidates per minute: {60 * trained / wall:.1f} overall; {trained} trained "
              f"({search.stats.get('halted', 0)} stopped after one seed), {search.stats['cache_hits']} cache hits, "
              f"{search.stats['rejected']} rejected")
    a, b = per_gen.values()
    print(f"seconds per generation after the first: {a:.1f} with halving, {b:.1f} without: ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
