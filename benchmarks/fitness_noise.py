"""Fitness noise: how much of a loss's spread over seeds comes from evaluation episodes.

Trains a few losses with ``--seeds`` inner seeds (as ``discover bench`` does), scores each
trained policy on ``--episodes`` evaluation episodes, and splits the variance of the
normalised return into the part between trained policies (training seeds) and the part
between episodes of one policy. From the two it prints the standard error of a fitness
measured with S seeds x E episodes, sqrt(between / S + within / (S E)), for the search's
2 seeds and a bench's 10, at 4 and 16 episodes: what more episodes buy, and what only
more seeds can.

    python benchmarks/fitness_noise.py [--task hopper] [--setting noisy] [--eps 0.2]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from discover.bench import BENCH_EVAL_SEED, BENCH_SEED_BASE
from evaluators.mujoco import MujocoConfig, MujocoEvaluator
from grammar import zoo


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="hopper")
    ap.add_argument("--setting", default="noisy")
    ap.add_argument("--eps", type=float, default=0.2)
    ap.add_argument("--losses", default="orpo,nca,sft,dpo")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=32)
    args = ap.parse_args()

    names = [n.strip() for n in args.losses.split(",")]
    cfg = MujocoConfig().with_options(task=args.task, setting=args.setting, eps=args.eps, episodes=args.episodes,
                                      eval_seed=BENCH_EVAL_SEED)
    exp = MujocoEvaluator(cfg, log=lambda m: None)
    seeds = [BENCH_SEED_BASE + i for i in range(args.seeds)]
    t0 = time.perf_counter()
    scores = exp.evaluate([zoo.get(n).expr for n in names], [zoo.get(n).constants for n in names], seeds)
    timing = scores.timing
    raw = np.asarray(exp.behaviour.normalise(scores.diagnostics["returns"]))  # (losses, seeds, episodes)
    print(f"{args.task} {args.setting}" + (f" eps {args.eps:g}" if args.setting == "noisy" else "")
          + f": {len(names)} losses x {args.seeds} seeds x {args.episodes} episodes; training "
          f"{timing['train_s']:.1f} s, scoring {timing['score_s']:.1f} s ({time.perf_counter() - t0:.0f} s); "
          f"{platform.processor() or platform.machine()}")
    print(f"{'loss':8s} {'mean':>6s} {'sd between policies':>20s} {'sd between episodes':>20s}   "
          "standard error of a fitness: 2 seeds x 4 ep | 2 x 16 | 10 x 4 | 10 x 16")
    for i, n in enumerate(names):
        r = raw[i]
        within = float(r.var(axis=1, ddof=1).mean())
        between = max(float(r.mean(axis=1).var(ddof=1)) - within / args.episodes, 0.0)

        def se(S, E):
            return np.sqrt(between / S + within / (S * E))

        print(f"{n:8s} {r.mean():6.1f} {np.sqrt(between):20.1f} {np.sqrt(within):20.1f}   "
              f"{se(2, 4):42.1f} | {se(2, 16):6.1f} | {se(10, 4):6.1f} | {se(10, 16):7.1f}")


if __name__ == "__main__":
    main()
