"""Inner loop: wall time of one generation (train + score) with the default budget.

Trains and scores two different populations of ``--population`` losses x ``--seeds``
inner seeds on the task's default dataset, with the default training budget of
``discover run``; the first population pays the one compilation, the second shows the
steady state of every later generation. Compile time is the difference.

    python benchmarks/inner_loop.py [--task hopper] [--population 32] [--seeds 3] [--datasets 3]

It also prints the trainer's achieved GFLOP/s next to a large float32 matmul's, measured
in the same run (the ratio is what counts on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from evaluators.fitness import EvalConfig
from evaluators.mujoco import MujocoConfig, MujocoEvaluator
from evaluators.trainer import TrainConfig
from evaluators import trainer
from evaluators.seeds import SEARCH_DATA, SEARCH_TRAIN
from grammar import derivation, symbolic, zoo
from grammar import load as load_grammar


def population(g, rng, n, seen):
    out = []
    for name in g.seeds:
        if len(out) < n // 2 and name in zoo.ZOO and symbolic.canonical_hash(zoo.ZOO[name].expr) not in seen:
            seen.add(symbolic.canonical_hash(zoo.ZOO[name].expr))
            out.append((zoo.ZOO[name].expr, zoo.ZOO[name].constants))
    while len(out) < n:
        for node in derivation.ramped_half_and_half(g, rng, n):
            e = derivation.expand(g, node)
            h = symbolic.canonical_hash(e)
            if h not in seen and len(out) < n:
                seen.add(h)
                out.append((e, {c: g.constants[c].default for c in e.constants}))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="hopper")
    ap.add_argument("--setting", default="noisy")
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--seeds", type=int, default=len(SEARCH_TRAIN), help="training seeds (one per search dataset)")
    ap.add_argument("--datasets", type=int, default=len(SEARCH_DATA), help="datasets the runs spread over")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch_pairs)
    ap.add_argument("--episodes", type=int, default=EvalConfig.episodes, help="evaluation episodes per trained policy")
    args = ap.parse_args()

    cfg = MujocoConfig().with_options(task=args.task, setting=args.setting, steps=args.steps, batch=args.batch,
                                      episodes=args.episodes).with_data_seeds(range(args.datasets))
    t0 = time.perf_counter()
    exp = MujocoEvaluator(cfg)
    prep = time.perf_counter() - t0
    g = load_grammar("mirror.yaml")
    rng, seen = np.random.default_rng(0), set()
    pops = [population(g, rng, args.population, seen) for _ in range(2)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} "
          f"({jax.default_backend()}), population mode {cfg.train.resolved_mode()}; {args.task} {args.setting}: "
          f"{args.population} losses x {args.seeds} seeds, {args.steps} steps x {args.batch} pairs x "
          f"{cfg.dataset.segment} steps, {args.episodes} evaluation episodes")
    print(f"dataset + reference ready in {prep:.1f} s (cached after the first run)")
    timings = []
    for pop in pops:
        t0 = time.perf_counter()
        timing = exp.evaluate([e for e, _ in pop], [c for _, c in pop], list(range(args.seeds))).timing
        timings.append((time.perf_counter() - t0, timing))
    (first, t_first), (second, t_second) = timings
    compile_s = t_first["train_s"] - t_second["train_s"]
    runs = args.population * args.seeds
    print(f"first generation  {first:6.1f} s  (train {t_first['train_s']:.1f} s incl. compilation, score "
          f"{t_first['score_s']:.1f} s)")
    print(f"later generations {second:6.1f} s  (train {t_second['train_s']:.1f} s, score {t_second['score_s']:.1f} s)"
          f"  -> {60 * args.population / second:.0f} candidates/min, {runs / t_second['train_s']:.1f} trainings/s")
    if compile_s > 0:
        print(f"compilation       {compile_s:6.1f} s  (once per run); compilations so far: {trainer.compilations()}")
    else:  # the populations differ in cost by more than the compilation (or it came from JAX's cache)
        print(f"compilation       not separable: the second population trained {-compile_s:.1f} s slower than the "
              f"first including its compilation; compilations so far: {trainer.compilations()}")
    print(f"target: a generation in 60 s or less: {'met' if second <= 60 else 'NOT met'} ({second:.1f} s)")
    achieved = trainer_flops(cfg, exp) * runs / t_second["train_s"] / 1e9
    peak = matmul_gflops()
    print(f"trainer: {achieved:.2f} GFLOP/s (policy forward and backward only); a 2048 x 2048 float32 matmul "
          f"on this machine: {peak:.1f} GFLOP/s; ratio {achieved / peak:.3f}")


def trainer_flops(cfg, exp) -> float:
    """Floating-point operations of one training run: the policy MLP's forward and backward
    pass (about 3x the forward's 2 x weights multiply-adds) over every step of both
    segments of every pair of every batch; the loss itself is negligible next to it."""
    weights = sum(int(np.prod(np.shape(v))) for k, v in exp.reference.items() if k.startswith("w"))
    per_step = 3 * 2 * weights
    return float(cfg.train.steps * cfg.train.batch_pairs * 2 * cfg.dataset.segment * per_step)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Achieved GFLOP/s of a large float32 matmul with JAX on this machine, now."""
    import jax.numpy as jnp

    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeats):
        f(a).block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


if __name__ == "__main__":
    main()
