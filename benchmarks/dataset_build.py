"""Where the seconds of one MuJoCo dataset go: building its pairs (MuJoCo physics, the
behaviour policies' forward passes, the rest) and fitting its behaviour-cloned reference.

Builds one dataset of the default configuration (``--task``, ``--setting``) from a data
seed that nothing caches (``datasets.build`` directly, no cache read or written), with the
simulator's steps and the policies' forward passes timed, then fits its reference. The
physics share bounds what any change that keeps the draws (the same physics steps) can
gain: the build cannot get faster than its physics.

    python benchmarks/dataset_build.py [--task walker2d] [--setting mixed] [--data-seed 900]
"""

from __future__ import annotations

import argparse
import os
import platform
import time


class Timed:
    """Wraps a function; adds up its wall seconds and calls."""

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="walker2d")
    ap.add_argument("--setting", default="mixed")
    ap.add_argument("--data-seed", type=int, default=900)
    args = ap.parse_args(argv)

    import jax

    from evaluators.mujoco import MujocoConfig, policies, reference
    from evaluators.mujoco import datasets
    from evaluators.mujoco.backends import native
    from evaluators.mujoco.behaviour import load_behaviour

    config = MujocoConfig().with_options(task=args.task, setting=args.setting, data_seed=args.data_seed)
    behaviour = load_behaviour(args.task)
    print(f"$ python benchmarks/dataset_build.py --task {args.task} --setting {args.setting} "
          f"--data-seed {args.data_seed}")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPU cores, JAX {jax.__version__} ({jax.default_backend()}); load average "
          f"{os.getloadavg()[0]:.1f} at start")
    d = config.dataset
    print(f"dataset: {d.pairs} pairs x {d.segment} steps, label horizon {d.label_horizon}, "
          f"{d.prompt_episodes} prompt episodes per behaviour policy ({len(behaviour.params)} policies)")

    step = Timed(native.NativeSimulator.step)
    forward = Timed(policies.forward)
    # a method: the wrapper must bind like one
    native.NativeSimulator.step = lambda self, *a, **k: step(self, *a, **k)
    policies.forward = forward
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        ds = datasets.build(d, behaviour)
    finally:
        native.NativeSimulator.step, policies.forward = step.fn, forward.fn
    build_s, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
    rest = build_s - step.seconds - forward.seconds
    print(f"build          {build_s:7.1f} s (process CPU {build_cpu:.1f} s), digest {ds.digest}")
    for name, s, calls in (("  physics", step.seconds, step.calls), ("  policies", forward.seconds, forward.calls)):
        print(f"{name:<14} {s:7.1f} s  {s / build_s:5.1%}  ({calls} calls)")
    print(f"  the rest     {rest:7.1f} s  {rest / build_s:5.1%}")

    wall = time.perf_counter()
    reference.behaviour_cloning(ds, config.reference)
    fit_s = time.perf_counter() - wall
    total = build_s + fit_s
    print(f"reference fit  {fit_s:7.1f} s (behaviour cloning, {config.reference.steps} steps, compilation included)")
    print(f"one dataset    {total:7.1f} s; physics {step.seconds / total:.0%} of it")
    print(f"bound: keeping the draws (the same physics steps), the build and fit together can get at most "
          f"{total / step.seconds:.2f}x faster on this machine")


if __name__ == "__main__":
    main()
