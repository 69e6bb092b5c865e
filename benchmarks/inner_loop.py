"""Inner loop: wall time of one generation (train + score) with the default budget.

Trains and scores two different populations of ``--population`` losses x ``--seeds``
inner seeds on the task's default dataset, with the default training budget of
``discover run``; the first population pays the one compilation, the second shows the
steady state of every later generation. Compile time is the difference.

    python benchmarks/inner_loop.py [--task hopper] [--population 32] [--seeds 3] [--datasets 3]
    python benchmarks/inner_loop.py --modes map,batched --repeats 2   # the CPU trainer's two layouts
    python benchmarks/inner_loop.py --modes map,batched:8,batched:16  # MODE:RUNS, runs per chunk

It also prints the trainer's achieved GFLOP/s next to a large float32 matmul's, measured
in the same run (the ratio is what counts on a shared machine), and next to the ceiling
of the policy's own matrix products: each layer's three products of a training step
(forward, input gradient, weight gradient) at the shapes one run has, timed bare, with
nothing between them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import jax
import numpy as np

from evaluators.mujoco.fitness import EvalConfig
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
    ap.add_argument("--modes", default="auto",
                    help="comma-separated trainer modes to compare (e.g. map,batched; MODE:N trains N runs per chunk)")
    ap.add_argument("--repeats", type=int, default=1, help="later generations per mode (alternating; best counts)")
    args = ap.parse_args()

    cfg = MujocoConfig().with_options(task=args.task, setting=args.setting, steps=args.steps, batch=args.batch,
                                      episodes=args.episodes).with_data_seeds(range(args.datasets))
    modes = [cfg.train.resolved_mode() if m == "auto" else m for m in args.modes.split(",")]
    for m in modes:
        mode, _, runs_per_chunk = m.partition(":")
        chunked = mode in trainer.CHUNK and runs_per_chunk.isdigit()
        if mode not in trainer.MODES or (runs_per_chunk and not chunked):
            raise SystemExit(f"--modes: {m!r} is not one of {', '.join(trainer.MODES)} (or "
                             f"{' or '.join(trainer.CHUNK)}:RUNS, runs per chunk)")
    t0 = time.perf_counter()
    exp = MujocoEvaluator(cfg)
    prep = time.perf_counter() - t0
    g = load_grammar("mirror.yaml")
    rng, seen = np.random.default_rng(0), set()
    pops = [population(g, rng, args.population, seen) for _ in range(2)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} "
          f"({jax.default_backend()}), trainer modes {', '.join(modes)} (auto: {cfg.train.resolved_mode()}); "
          f"{args.task} {args.setting}: {args.population} losses x {args.seeds} seeds, {args.steps} steps x "
          f"{args.batch} pairs x {cfg.dataset.segment} steps, {args.episodes} evaluation episodes; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"dataset + reference ready in {prep:.1f} s (cached after the first run)")
    runs = args.population * args.seeds
    flops = trainer_flops(cfg, exp) * runs

    chunks = dict(trainer.CHUNK)

    def generation(pop, spec):
        # The same evaluator (datasets, references, scoring) with only the trainer's layout changed.
        mode, _, runs_per_chunk = spec.partition(":")
        if mode in chunks:
            trainer.CHUNK[mode] = int(runs_per_chunk) if runs_per_chunk else chunks[mode]
        exp.config = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mode=mode))
        t0, c0 = time.perf_counter(), time.process_time()
        timing = exp.evaluate([e for e, _ in pop], [c for _, c in pop], list(range(args.seeds))).timing
        return {**timing, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}

    first = {mode: generation(pops[0], mode) for mode in modes}
    later = {mode: [] for mode in modes}
    for _ in range(args.repeats):
        for mode in modes:
            later[mode].append(generation(pops[1], mode))
    peak = matmul_gflops()
    ceiling = layer_ceiling_gflops(cfg, exp)
    best = {}
    for mode in modes:
        t = min(later[mode], key=lambda x: x["wall_s"])
        best[mode] = t
        compile_s = first[mode]["train_s"] - min(x["train_s"] for x in later[mode])
        achieved = flops / t["train_s"] / 1e9
        each = ", ".join(f"{x['wall_s']:.1f}" for x in later[mode])
        print(f"[{mode}] first generation {first[mode]['wall_s']:6.1f} s (train {first[mode]['train_s']:.1f} s incl. "
              f"compilation, score {first[mode]['score_s']:.1f} s); compilation about {compile_s:.1f} s")
        print(f"[{mode}] later generations {t['wall_s']:6.1f} s (train {t['train_s']:.1f} s, score "
              f"{t['score_s']:.1f} s; process CPU time {t['cpu_s']:.1f} s) -> "
              f"{60 * args.population / t['wall_s']:.0f} candidates/min, {runs / t['train_s']:.1f} trainings/s"
              f"  [each: {each} s]")
        print(f"[{mode}] trainer: {achieved:.2f} GFLOP/s (policy forward and backward only); ratio to the matmul "
              f"{achieved / peak:.3f}, to the layers' ceiling {achieved / ceiling:.3f}")
    print(f"a 2048 x 2048 float32 matmul on this machine: {peak:.1f} GFLOP/s (measured after the generations); "
          f"load average {os.getloadavg()[0]:.1f} at the end; compilations: {trainer.compilations()}")
    print(f"the layers' ceiling: the policy's matrix products of one run's training step, bare: {ceiling:.1f} "
          f"GFLOP/s, {ceiling / peak:.3f} of the large matmul (what these shapes allow with nothing else to do)")
    if len(modes) > 1:
        a, b = modes[0], modes[-1]
        print(f"{b} vs {a}: training {best[a]['train_s'] / best[b]['train_s']:.2f}x faster, generation "
              f"{best[a]['wall_s'] / best[b]['wall_s']:.2f}x faster (wall clock)")


def trainer_flops(cfg, exp) -> float:
    """Floating-point operations of one training run: the policy MLP's forward and backward
    pass (about 3x the forward's 2 x weights multiply-adds) over every step of both
    segments of every pair of every batch; the loss itself is negligible next to it."""
    weights = sum(int(np.prod(np.shape(v))) for k, v in exp.reference.items() if k.startswith("w"))
    per_step = 3 * 2 * weights
    return float(cfg.train.steps * cfg.train.batch_pairs * 2 * cfg.dataset.segment * per_step)


def layer_ceiling_gflops(cfg, exp, repeats: int = 200) -> float:
    """GFLOP/s of the policy's matrix products of one training step of one run, each timed
    bare (jitted alone, best of 3 x ``repeats``): per layer of K inputs and N outputs over
    M = pairs x 2 x segment rows, the forward (M, K) @ (K, N), the input gradient
    (M, N) @ (N, K) and the weight gradient (K, M) @ (M, N). The trainer does the same
    arithmetic and the rest (activations, the likelihood, the loss, Adam) besides."""
    import jax.numpy as jnp

    m = cfg.train.batch_pairs * 2 * cfg.dataset.segment
    flops = seconds = 0.0
    for k, v in exp.reference.items():
        if not k.startswith("w"):
            continue
        kk, n = np.shape(v)
        for a, b in (((m, kk), (kk, n)), ((m, n), (n, kk)), ((kk, m), (m, n))):
            x, y = jnp.ones(a, jnp.float32), jnp.ones(b, jnp.float32)
            f = jax.jit(lambda x, y: x @ y)
            f(x, y).block_until_ready()
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(repeats):
                    r = f(x, y)
                r.block_until_ready()
                best = min(best, (time.perf_counter() - t0) / repeats)
            flops += 2 * a[0] * a[1] * b[1]
            seconds += best
    return flops / seconds / 1e9


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
