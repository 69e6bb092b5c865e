"""Rollout throughput: the native backend with a policy in the loop vs raw mujoco.rollout.

Both simulate the same model and batch for the same number of physics steps, in one run
on this machine: raw ``mujoco.rollout`` open loop (controls fixed in advance, the
ceiling), and the native backend closed loop (the policy, a batch of MLPs, evaluated
once per control step for the whole batch, then ``frame_skip`` physics steps in
threads). Termination is switched off so both run every step. Optionally, MJX on this
machine (small batch: MJX on a CPU is slow and can stall at large batches).

    python benchmarks/rollouts.py [--task hopper] [--envs 64] [--steps 1000] [--mjx]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import jax
import mujoco
import numpy as np
from mujoco import rollout

from evaluators.mujoco import policies as policy_io
from evaluators.mujoco.backends import native
from evaluators.mujoco.tasks import get_task


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="hopper")
    ap.add_argument("--envs", type=int, default=256, help="default: one generation's scoring batch (32 x 2 seeds x 4 episodes)")
    ap.add_argument("--steps", type=int, default=1000, help="control steps per environment")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--mjx", action="store_true", help="also time MJX (8 envs, 200 steps)")
    args = ap.parse_args()

    task = dataclasses.replace(get_task(args.task), healthy=lambda q, v, xp: xp.ones(q.shape[:-1], bool))
    sim = native.NativeSimulator(task, args.threads)
    model, n, fs = sim.model, args.envs, task.frame_skip
    physics_steps = n * args.steps * fs
    rng = np.random.default_rng(0)
    init = sim.initial_states(n, rng)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, mujoco {mujoco.__version__}, "
          f"{sim.nthread} threads; {args.task}: {n} envs x {args.steps} control steps x {fs} physics steps")

    # raw: open loop, all controls known in advance, one call
    controls = rng.uniform(-1, 1, size=(n, args.steps * fs, model.nu)) * task.action_scale
    datas = [mujoco.MjData(model) for _ in range(sim.nthread)]
    with rollout.Rollout(nthread=sim.nthread) as r:
        r.rollout(model, datas, init, controls[:, :10])  # warm up the pool
        t0 = time.perf_counter()
        r.rollout(model, datas, init, controls)
        raw = time.perf_counter() - t0

    # closed loop: a population of MLP policies (2 x 64, swish), 4 per batch of envs
    obs_dim = len(task.observation(model.qpos0, np.zeros(model.nv), np))
    pols = [jax.tree.map(np.asarray, policy_io.init_params(jax.random.PRNGKey(i), obs_dim, model.nu))
            for i in range(n // 4)]
    actor = native.PopulationActor(policy_io.stack(pols), 4, policy_io.PolicySpec())
    sim.run(actor, n, rng, horizon=5, initial=init)  # warm up
    t0 = time.perf_counter()
    sim.run(actor, n, rng, horizon=args.steps, initial=init)
    closed = time.perf_counter() - t0
    sim.close()

    print(f"{'raw mujoco.rollout, open loop':44s}{physics_steps / raw:12,.0f} physics steps/s")
    print(f"{'native backend, policy in the loop':44s}{physics_steps / closed:12,.0f} physics steps/s")
    print(f"ratio closed/raw: {raw / closed:.2f} (target >= 0.70)")

    if args.mjx:
        from evaluators.mujoco.backends import mjx

        m_envs, m_steps = 8, 200
        stacked = {k: np.repeat(v[:2], 4, axis=0) for k, v in policy_io.stack(pols).items()}
        qpos, qvel = native.initial_qpos_qvel(task, model, m_envs, rng)
        msim = mjx.MjxSimulator(task)
        t0 = time.perf_counter()
        msim.run(stacked, policy_io.PolicySpec(), qpos, qvel, m_steps)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        msim.run(stacked, policy_io.PolicySpec(), qpos, qvel, m_steps)
        mj = time.perf_counter() - t0
        print(f"{'MJX on ' + jax.default_backend() + f' ({m_envs} envs x {m_steps} steps)':44s}"
              f"{m_envs * m_steps * fs / mj:12,.0f} physics steps/s (compile {first - mj:.1f} s)")


if __name__ == "__main__":
    main()
