"""MJX backend: batched closed-loop rollouts as jitted programs (for accelerators).

The same task functions as the native backend (``xp=jax.numpy``); every environment runs
its control steps inside ``lax.scan`` (``frame_skip`` physics steps each), in chunks of
control steps until the horizon or until every episode of the batch has ended, with
episodes that end frozen out of the return by an ``alive`` mask. Scoring pads its batch
to a few sizes (:func:`bucket`), so a search compiles a rollout once per size. On a CPU this is several
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

import evaluators.mujoco.policies as policy_io
from evaluators.device import accelerated, bucket
from evaluators.mujoco.tasks import Task


def import_mjx():
    """``from mujoco import mjx`` without its "Failed to import warp" line on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        from mujoco import mjx
    return mjx


class MjxSimulator:
    """Batched simulation of one task on MJX. An episode runs in chunks of ``chunk`` control
    steps, each one jitted call on the whole batch; once every episode of the batch has
    ended, the rest is not simulated (its rewards are 0 and its alive mask 0, as a full
    rollout would give them)."""

    def __init__(self, task: Task, chunk: int = 100):
        mjx = import_mjx()
        self.task = task
        self.model = task.mj_model()
        self.mx = mjx.put_model(self.model)
        self.dt = float(self.model.opt.timestep * task.frame_skip)
        self.chunk = chunk
        self._mjx = mjx

    @functools.partial(jax.jit, static_argnums=0)
    def _start(self, qpos0, qvel0):
        mjx, mx = self._mjx, self.mx

        def one_env(qpos, qvel):
            return mjx.forward(mx, mjx.make_data(mx).replace(qpos=qpos, qvel=qvel))

        return jax.vmap(one_env)(qpos0, qvel0)

    @functools.partial(jax.jit, static_argnums=(0, 4, 5))
    def _steps(self, params, data, alive, steps, spec):
        mjx, mx, task = self._mjx, self.mx, self.task

        def one_env(p, data, alive):
            def control_step(carry, _):
                data, alive = carry
                obs = task.observation(data.qpos, data.qvel, jnp)
                action = policy_io.mode_action(p, obs, spec, jnp)
                qpos_before = data.qpos
                data = data.replace(ctrl=action * task.action_scale)
                data = jax.lax.fori_loop(0, task.frame_skip, lambda _, d: mjx.step(mx, d), data)
                reward = task.reward(qpos_before, data.qpos, data.qvel, action, self.dt, jnp)
                out = (jnp.where(alive > 0, reward, 0.0), alive, data.qpos)  # a NaN after the end stays out
                alive = alive * task.healthy(data.qpos, data.qvel, jnp).astype(jnp.float32)
                return (data, alive), out

            (data, alive), outs = jax.lax.scan(control_step, (data, alive), None, steps)
            return data, alive, outs

        # params: one policy per environment (leading axis), states likewise.
        return jax.vmap(one_env)(params, data, alive)

    def run(self, stacked: dict, spec: policy_io.PolicySpec, qpos0: np.ndarray, qvel0: np.ndarray,
            horizon: int, stop_early: bool = True):
        """Deterministic rollouts; environment i uses policy i of ``stacked``.

        Returns (rewards, alive, qpos) arrays shaped (N, horizon[, nq]); once every episode
        of the batch has ended (``stop_early``), qpos repeats the last simulated position.
        """
        params = {k: jnp.asarray(v, jnp.float32) for k, v in stacked.items()}
        data = self._start(jnp.asarray(qpos0, jnp.float32), jnp.asarray(qvel0, jnp.float32))
        alive = jnp.ones(len(qpos0), jnp.float32)
        chunk = min(self.chunk, int(horizon))
        rewards, alives, qpos = [], [], []
        done = 0
        while done < horizon and (done == 0 or not stop_early or bool(alive.any())):
            # every chunk has one length (one compilation); the last may run past the horizon
            data, alive, (r, a, q) = self._steps(params, data, alive, chunk, spec)
            rewards.append(np.asarray(r))
            alives.append(np.asarray(a))
            qpos.append(np.asarray(q))
            done += chunk
        r, a, q = (np.concatenate(x, axis=1)[:, :horizon] for x in (rewards, alives, qpos))
        if done < horizon:  # every episode had ended: the rest is what a full rollout would give
            pad = horizon - done
            r = np.concatenate([r, np.zeros((len(r), pad), r.dtype)], axis=1)
            a = np.concatenate([a, np.zeros((len(a), pad), a.dtype)], axis=1)
            q = np.concatenate([q, np.repeat(q[:, -1:], pad, axis=1)], axis=1)
        return r, a, q

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


# On an accelerator, scoring batches are padded to at least this many environments: they
# cost about what one does, and every small batch shares one compilation.
MIN_ENVS = 64


def batch_size(n: int) -> int:
    """The padded batch of ``n`` environments: :func:`evaluators.device.bucket`, at least
    :data:`MIN_ENVS` on an accelerator (on a CPU, where large MJX batches are slow, only the
    bucket)."""
    return bucket(n, least=MIN_ENVS if accelerated() else 1)

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
    from evaluators.mujoco.backends.native import initial_qpos_qvel

    stacked = policy_io.stack(policies) if not isinstance(policies, dict) else policies
    P = np.asarray(stacked["obs_mean"]).shape[0]
    qpos, qvel = initial_qpos_qvel(task, task.mj_model(), episodes, np.random.default_rng(seed))
    qpos, qvel = np.tile(qpos, (P, 1)), np.tile(qvel, (P, 1))
    per_env = {k: np.repeat(np.asarray(v), episodes, axis=0) for k, v in stacked.items()}
    n = P * episodes
    pad = batch_size(n) - n  # copies of the first environment, dropped from the returns
    if pad:
        qpos, qvel = (np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) for x in (qpos, qvel))
        per_env = {k: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) for k, v in per_env.items()}
    rewards, _, _ = simulator(task).run(per_env, spec, qpos, qvel, horizon or task.episode_length)
    return rewards[:n].sum(axis=1).reshape(P, episodes)
