"""Ray's cost against the in-process path: the same population scored by this process and
by Ray actors on a local cluster started here, and what a shard costs beyond its work.

    python benchmarks/ray_overhead.py [--actors 2] [--population 16] [--seeds 2]

Measures, in one run on one machine (the ratios are what count on a shared machine):
1. in-process: ``evaluate`` of the population (first call compiles, the second is timed);
2. Ray: starting the actors, each building the evaluator and compiling (the first call),
   then the same population in shards (timed), with the slowest shard's own time, so the
   call's excess over it is Ray's overhead per generation;
3. a round trip to an actor with no work (the floor of a shard's overhead).
Both paths must give identical scores; the benchmark checks it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import ray

from evaluators import remote
from evaluators.mujoco import MujocoConfig, MujocoEvaluator
from grammar import zoo


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--task", default="hopper")
    args = ap.parse_args(argv)

    cfg = MujocoConfig().with_options(task=args.task, setting="noisy", backend="native")
    local = MujocoEvaluator(cfg)
    names = (list(zoo.ZOO) * 4)[: args.population]
    exprs, consts = [zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names]
    seeds = list(range(args.seeds))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; {args.task} noisy, {len(names)} losses x "
          f"{len(seeds)} seeds, {cfg.train.steps} steps x {cfg.train.batch_pairs} pairs, {cfg.eval.episodes} "
          f"episodes; Ray {ray.__version__}, {args.actors} actors", flush=True)

    local.evaluate(exprs, consts, seeds)  # compile
    t0 = time.perf_counter()
    single = local.evaluate(exprs, consts, seeds)
    t_single = time.perf_counter() - t0
    print(f"in-process        {t_single:6.1f} s  (train {single.timing['train_s']:.1f}, score "
          f"{single.timing['score_s']:.1f})", flush=True)

    t0 = time.perf_counter()
    ray.init(num_cpus=args.actors, logging_level="ERROR", log_to_driver=False, include_dashboard=False)
    pool = remote.RayPool(None, args.actors)
    t_start = time.perf_counter() - t0
    on_ray = remote.RayEvaluator(local, pool, "mujoco", cfg.to_dict())
    t0 = time.perf_counter()
    on_ray.evaluate(exprs, consts, seeds)  # each actor builds the evaluator and compiles
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = on_ray.evaluate(exprs, consts, seeds)
    t_ray = time.perf_counter() - t0
    over = ev.timing["remote_s"] - ev.timing["shard_s"]
    print(f"  slowest shard: train {ev.timing.get('train_s', 0):.1f} s, score {ev.timing.get('score_s', 0):.1f} s", flush=True)
    print(f"Ray, {args.actors} actors     {t_ray:6.1f} s  (slowest shard {ev.timing['shard_s']:.1f} s; Ray's "
          f"overhead {over * 1000:.0f} ms per call, its shards in parallel)", flush=True)
    print(f"Ray start         {t_start:6.1f} s  cluster + actors; first call {t_first:.1f} s (evaluator built and "
          f"compiled in each actor)", flush=True)

    trips = []
    for _ in range(20):
        t0 = time.perf_counter()
        ray.get([a.pid.remote() for a in pool.actors])
        trips.append(time.perf_counter() - t0)
    print(f"empty round trip  {np.median(trips) * 1000:6.2f} ms (median of 20, all actors at once)")
    same = np.array_equal(ev.per_seed, single.per_seed, equal_nan=True)
    print(f"ratio Ray / in-process: {t_ray / t_single:.2f} (same scores: {same})")
    ray.shutdown()
    if not same:
        raise SystemExit("Ray and in-process scores differ")


if __name__ == "__main__":
    main()
