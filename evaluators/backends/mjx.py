"""MJX backend: batched closed-loop rollouts as one jitted program (for accelerators).

The same task functions as the native backend (``xp=jax.numpy``); every environment runs
``horizon`` control steps inside ``lax.scan`` (``frame_skip`` physics steps each), with
episodes that end frozen out of the return by an ``alive`` mask. On a CPU this is several
times slower than native MuJoCo (benchmarks/rollouts.py measures both) and large batches can stall MJX's batched
solver on the 2-thread pool, so the CPU tests use small batches and short horizons.
"""

from __future__ import annotations

import contextlib
import functools
import io

import jax
import jax.numpy as jnp
import numpy as np

from evaluators import policies as policy_io
from evaluators.tasks import Task


def import_mjx():
    """``from mujoco import mjx`` without its "Failed to import warp" line on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        from mujoco import mjx
    return mjx


class MjxSimulator:
    """Batched simulation of one task on MJX."""

    def __init__(self, task: Task):
        mjx = import_mjx()
        self.task = task
        self.model = task.mj_model()
        self.mx = mjx.put_model(self.model)
        self.dt = float(self.model.opt.timestep * task.frame_skip)
        self._mjx = mjx

    @functools.partial(jax.jit, static_argnums=(0, 5, 6))
    def _rollout(self, params, qpos0, qvel0, noise_key, horizon, spec):
        mjx, mx, task = self._mjx, self.mx, self.task

        def one_env(p, qpos, qvel):
            data = mjx.make_data(mx).replace(qpos=qpos, qvel=qvel)
            data = mjx.forward(mx, data)

            def control_step(carry, _):
                data, alive = carry
                obs = task.observation(data.qpos, data.qvel, jnp)
                action = policy_io.mode_action(p, obs, spec, jnp)
                qpos_before = data.qpos
                data = data.replace(ctrl=action * task.action_scale)
                data = jax.lax.fori_loop(0, task.frame_skip, lambda _, d: mjx.step(mx, d), data)
                reward = task.reward(qpos_before, data.qpos, data.qvel, action, self.dt, jnp)
                out = (reward * alive, alive, data.qpos)
                alive = alive * task.healthy(data.qpos, data.qvel, jnp).astype(jnp.float32)
                return (data, alive), out

            _, (rewards, alive, qpos_traj) = jax.lax.scan(control_step, (data, jnp.float32(1.0)), None, horizon)
            return rewards, alive, qpos_traj

        # params: one policy per environment (leading axis), states likewise.
        return jax.vmap(one_env)(params, qpos0, qvel0)

    def run(self, stacked: dict, spec: policy_io.PolicySpec, qpos0: np.ndarray, qvel0: np.ndarray,
            horizon: int):
        """Deterministic rollouts; environment i uses policy i of ``stacked``.

        Returns (rewards, alive, qpos) arrays shaped (N, horizon[, nq]).
        """
        params = {k: jnp.asarray(v, jnp.float32) for k, v in stacked.items()}
        r, a, q = self._rollout(params, jnp.asarray(qpos0, jnp.float32), jnp.asarray(qvel0, jnp.float32),
                                jax.random.PRNGKey(0), int(horizon), spec)
        return np.asarray(r), np.asarray(a), np.asarray(q)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


_SIMULATORS: dict[str, MjxSimulator] = {}


def simulator(task: Task) -> MjxSimulator:
    """One simulator (and so one compiled rollout per shape) per task and process."""
    if task.name not in _SIMULATORS:
        _SIMULATORS[task.name] = MjxSimulator(task)
    return _SIMULATORS[task.name]


def evaluate_returns(task: Task, policies, spec: policy_io.PolicySpec, episodes: int, seed: int,
                     horizon: int | None = None) -> np.ndarray:
    """(P, episodes) deterministic returns, the MJX counterpart of ``native.evaluate_returns``.

    Every policy starts from the same ``episodes`` initial states, drawn as the native
    backend draws them for the same seed.
    """
    from evaluators.backends.native import initial_qpos_qvel

    stacked = policy_io.stack(policies) if not isinstance(policies, dict) else policies
    P = np.asarray(stacked["obs_mean"]).shape[0]
    qpos, qvel = initial_qpos_qvel(task, task.mj_model(), episodes, np.random.default_rng(seed))
    qpos, qvel = np.tile(qpos, (P, 1)), np.tile(qvel, (P, 1))
    per_env = {k: np.repeat(np.asarray(v), episodes, axis=0) for k, v in stacked.items()}
    rewards, _, _ = simulator(task).run(per_env, spec, qpos, qvel, horizon or task.episode_length)
    return rewards.sum(axis=1).reshape(P, episodes)
