"""Search throughput: candidates scored per minute and compilations per run.

Runs a short search (``--generations``) in a temporary directory, exactly as
``discover run`` does (the held-out re-scoring excluded), and prints the figures.

    python benchmarks/search.py [--task hopper] [--generations 3] [--population 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import jax

from evaluators.fitness import EvalConfig
from evaluators.mujoco import MujocoConfig, MujocoEvaluator
from evaluators.trainer import TrainConfig
from discover.search import Search, SearchConfig
from discover.store import RunStore
from evaluators import trainer
from grammar import load as load_grammar


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="hopper")
    ap.add_argument("--setting", default="noisy")
    ap.add_argument("--grammar", default="mirror.yaml")
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--episodes", type=int, default=EvalConfig.episodes, help="evaluation episodes per trained policy")
    args = ap.parse_args()

    g = load_grammar(args.grammar)
    exp_cfg = MujocoConfig().with_options(task=args.task, setting=args.setting, steps=args.steps,
                                          episodes=args.episodes)
    cfg = SearchConfig(population=args.population, generations=args.generations)
    exp = MujocoEvaluator(exp_cfg)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(tmp, "bench", {"search": cfg.to_dict()}, g.path)
        search = Search(g, exp, cfg, store)
        t0 = time.perf_counter()
        search.run()
        wall = time.perf_counter() - t0
    trained = search.stats["trained"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()})")
    print(f"{args.generations} generations x {args.population} candidates on {args.task} {args.setting}: "
          f"{wall:.1f} s including the one compilation")
    for h in search.history:
        print(f"  generation {h['generation'] + 1}: {h['seconds']:.1f} s (propose {h['propose_s']:.1f}, "
              f"train {h['train_s']:.1f}, score {h['score_s']:.1f})")
    print(f"candidates scored per minute: {60 * trained / wall:.1f} overall, "
          f"{60 * args.population / search.history[-1]['seconds']:.1f} in the last generation")
    print(f"compilations of the population trainer: {trainer.compilations()} "
          f"(one per array shape; {trained} candidates trained, {search.stats['cache_hits']} cache hits, "
          f"{search.stats['rejected']} rejected)")


if __name__ == "__main__":
    main()
