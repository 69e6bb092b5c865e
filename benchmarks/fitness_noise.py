"""Fitness noise: how much of a loss's spread comes from training seeds, evaluation
episodes and the readout, before and after the v2 recipe, in the same run.

Trains a few losses with ``--seeds`` training seeds on one dataset, scores each trained
policy on ``--episodes`` evaluation episodes, and splits the variance of the normalised
return into the part between trained policies (training seeds) and the part between
episodes of one policy. It does so for two readouts of the same training runs' recipe:

- ``last iterate``: the v1 recipe (constant learning rate, the parameters after the last step);
- ``v2``: warmup + linear decay, scored as the exponential moving average of the parameters.

From the components it prints the standard error of a fitness measured with S seeds x E
episodes, sqrt(between / S + within / (S E)), and the minimum detectable effect of a paired
comparison of two losses over 50 (dataset, seed) units (5 datasets x 10 seeds, the
default bench), assuming the between-policy variance of each is independent.

    python benchmarks/fitness_noise.py [--task hopper] [--setting noisy] [--eps 0.2]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np

from discover.bench import BENCH_EVAL_SEED, BENCH_SEED_BASE
from discover.stats import minimum_detectable_effect
from evaluators.mujoco import MujocoConfig, MujocoEvaluator
from grammar import zoo


def components(raw: np.ndarray, episodes: int) -> tuple[float, float]:
    """(between-policy variance, within-policy episode variance) of (seeds, episodes) scores."""
    within = float(raw.var(axis=1, ddof=1).mean())
    between = max(float(raw.mean(axis=1).var(ddof=1)) - within / episodes, 0.0)
    return between, within


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="hopper")
    ap.add_argument("--setting", default="noisy")
    ap.add_argument("--eps", type=float, default=0.2)
    ap.add_argument("--losses", default="orpo,sft,dpo,ipo")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--data-seed", type=int, default=100)
    args = ap.parse_args()

    names = [n.strip() for n in args.losses.split(",")]
    v2 = MujocoConfig().with_options(task=args.task, setting=args.setting, eps=args.eps, episodes=args.episodes,
                                     eval_seed=BENCH_EVAL_SEED, data_seed=args.data_seed)
    v1_train = dataclasses.replace(v2.train, schedule="constant", ema=0.0)
    seeds = [BENCH_SEED_BASE + i for i in range(args.seeds)]
    print(f"{args.task} {args.setting}" + (f" eps {args.eps:g}" if args.setting == "noisy" else "")
          + f" (data seed {args.data_seed}): {len(names)} losses x {args.seeds} seeds x {args.episodes} episodes; "
          f"{platform.processor() or platform.machine()}")
    print(f"{'readout':14s} {'loss':6s} {'mean':>6s} {'sd policies':>12s} {'sd episodes':>12s}   "
          "se of a fitness: 3 seeds x 16 ep | 10 x 16   MDE at 50 units")
    rows = {}
    for label, cfg in (("last iterate", dataclasses.replace(v2, train=v1_train)), ("v2 (EMA)", v2)):
        exp = MujocoEvaluator(cfg, log=lambda m: None)
        t0 = time.perf_counter()
        ev = exp.evaluate([zoo.get(n).expr for n in names], [zoo.get(n).constants for n in names], seeds)
        raw = np.asarray(exp.behaviour.normalise(ev.diagnostics["returns"]))  # (losses, seeds, episodes)
        for i, n in enumerate(names):
            between, within = components(raw[i], args.episodes)

            def se(S, E):
                return np.sqrt(between / S + within / (S * E))

            sd_unit = np.sqrt(2 * (between + within / args.episodes))  # a paired difference of two such losses
            rows.setdefault(n, {})[label] = between
            print(f"{label:14s} {n:6s} {raw[i].mean():6.1f} {np.sqrt(between):12.1f} {np.sqrt(within):12.1f}   "
                  f"{se(3, 16):31.1f} | {se(10, 16):7.1f}   {minimum_detectable_effect(sd_unit, 50):10.1f}")
        print(f"  ({time.perf_counter() - t0:.0f} s)")
    for n, r in rows.items():
        ratio = r["v2 (EMA)"] / r["last iterate"] if r["last iterate"] > 0 else float("nan")
        print(f"variance between trained policies, v2 / last iterate, {n}: {ratio:.2f}")


if __name__ == "__main__":
    main()
