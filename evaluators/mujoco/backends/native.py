"""Native MuJoCo backend: closed-loop batched rollouts on CPU threads.

Every control step the policy is evaluated once for the whole batch (numpy), then
``mujoco.rollout`` advances every live environment ``frame_skip`` physics steps in
parallel threads. Finished episodes leave the batch, so a population of poor policies
that fall early costs little.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

import evaluators.mujoco.policies as policy_io
from evaluators.mujoco.tasks import Task

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS


def default_threads() -> int:
    """Simulation threads: ``$MPO_DISCOVER_THREADS`` (a Ray actor sets its CPU share), else
    the machine's cores, at most 16."""
    if os.environ.get("MPO_DISCOVER_THREADS"):
        return max(1, int(os.environ["MPO_DISCOVER_THREADS"]))
    return max(1, min(os.cpu_count() or 1, 16))


@dataclasses.dataclass
class Trajectories:
    """Episodes of one batch; steps after termination are masked out (``alive`` = 0).

    obs[n, t] is the observation at which actions[n, t] was taken; rewards[n, t] the
    reward that followed; alive[n, t] = 1 while the episode had not ended before step t.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    alive: np.ndarray

    @property
    def returns(self) -> np.ndarray:
        """(N,) sum of each episode's rewards over its live steps."""
        return (self.rewards * self.alive).sum(axis=1)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) live steps of each episode."""
        return self.alive.sum(axis=1)


def initial_qpos_qvel(task: Task, model, n: int, rng: np.random.Generator):
    """``n`` initial (qpos, qvel) with the task's uniform reset noise (both backends)."""
    s = task.reset_noise_scale
    qpos = model.qpos0[None] + rng.uniform(-s, s, size=(n, model.nq))
    qvel = rng.uniform(-s, s, size=(n, model.nv))
    return qpos, qvel


class NativeSimulator:
    """Batched simulation of one task on native MuJoCo."""

    def __init__(self, task: Task, nthread: int | None = None):
        self.task = task
        self.model = task.mj_model()
        self.nthread = nthread or default_threads()
        self.datas = [mujoco.MjData(self.model) for _ in range(self.nthread)]
        self.runner = mj_rollout.Rollout(nthread=self.nthread)
        self.nstate = mujoco.mj_stateSize(self.model, STATE_SPEC)
        self.dt = self.model.opt.timestep * task.frame_skip
        nq, nv = self.model.nq, self.model.nv
        # FULLPHYSICS = [time, qpos, qvel, act, ...]
        self.qpos_slice = slice(1, 1 + nq)
        self.qvel_slice = slice(1 + nq, 1 + nq + nv)
        self._out: np.ndarray | None = None

    def close(self):
        """Releases the rollout threads."""
        self.runner.close()

    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Initial physics states with the task's uniform reset noise."""
        return self.states_from(*initial_qpos_qvel(self.task, self.model, n, rng))

    def states_from(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Full physics states (``mj_forward``-consistent) from (N, nq) positions and (N, nv)
        velocities."""
        data = self.datas[0]
        out = np.empty((len(qpos), self.nstate))
        for i in range(len(qpos)):
            mujoco.mj_resetData(self.model, data)
            data.qpos[:] = qpos[i]
            data.qvel[:] = qvel[i]
            mujoco.mj_forward(self.model, data)
            mujoco.mj_getState(self.model, data, out[i], STATE_SPEC)
        return out

    def step(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Advances each state one control step (``frame_skip`` physics steps)."""
        n, fs = len(states), self.task.frame_skip
        ctrl = np.repeat((actions * self.task.action_scale)[:, None, :], fs, axis=1)
        if self._out is None or self._out.shape[0] != n:
            self._out = np.empty((n, fs, self.nstate))
        # One chunk per thread: mujoco.rollout's default (n / (10 threads)) schedules many
        # tiny chunks, which costs ~15% at these batch sizes.
        self.runner.rollout(self.model, self.datas, states, ctrl, nstep=fs, state=self._out,
                            chunk_size=max(1, -(-n // self.nthread)))
        return self._out[:, -1].copy()

    def run(
        self,
        act: Callable[[np.ndarray], np.ndarray],
        n: int,
        rng: np.random.Generator,
        horizon: int | None = None,
        initial: np.ndarray | None = None,
        record: bool = False,
        on_step: Callable[[int, int], None] | None = None,
    ) -> Trajectories:
        """Rolls out ``n`` episodes with ``act(obs[batch, obs_dim]) -> actions``;
        ``on_step(t, horizon)``, if given, hears of each control step before it is taken.

        ``act`` receives only the live episodes' observations, with their indices
        available as ``act.live`` when it has that attribute (set here before each call).
        """
        task = self.task
        horizon = horizon or task.episode_length
        states = self.initial_states(n, rng) if initial is None else np.array(initial, copy=True)
        obs_dim = None
        live = np.arange(n)
        rewards = np.zeros((n, horizon), np.float32)
        alive = np.zeros((n, horizon), np.float32)
        obs_rec = actions_rec = None
        for t in range(horizon):
            if live.size == 0:
                break
            if on_step is not None:
                on_step(t, horizon)
            s = states[live]
            qpos, qvel = s[:, self.qpos_slice], s[:, self.qvel_slice]
            obs = task.observation(qpos, qvel, np)
            if record and obs_rec is None:
                obs_dim = obs.shape[-1]
                obs_rec = np.zeros((n, horizon, obs_dim), np.float32)
            if hasattr(act, "live"):
                act.live = live
            a = np.clip(np.asarray(act(obs), dtype=np.float64), -1.0, 1.0)
            if record:
                if actions_rec is None:
                    actions_rec = np.zeros((n, horizon, a.shape[-1]), np.float32)
                obs_rec[live, t] = obs
                actions_rec[live, t] = a
            nxt = self.step(s, a)
            qpos2, qvel2 = nxt[:, self.qpos_slice], nxt[:, self.qvel_slice]
            rewards[live, t] = task.reward(qpos, qpos2, qvel2, a, self.dt, np)
            alive[live, t] = 1.0
            states[live] = nxt
            live = live[task.healthy(qpos2, qvel2, np).astype(bool)]
        if not record:
            return Trajectories(np.zeros((n, 0, 0), np.float32), np.zeros((n, 0, 0), np.float32), rewards, alive)
        return Trajectories(obs_rec, actions_rec, rewards, alive)


class PopulationActor:
    """Acts for ``episodes`` episodes of each of P stacked policies.

    Deterministic (the mode) unless ``rng`` is given, in which case actions are sampled.
    """

    def __init__(self, stacked: dict, episodes: int, spec: policy_io.PolicySpec,
                 rng: np.random.Generator | None = None):
        self.params = {k: np.asarray(v, np.float32) for k, v in stacked.items()}
        self.spec = spec
        self.P = self.params["obs_mean"].shape[0]
        self.E = episodes
        self.rng = rng
        self.live = np.arange(self.P * self.E)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        # Evaluate every policy on a dense (P, E, obs) block, then keep the live rows.
        full = np.zeros((self.P * self.E, obs.shape[-1]), np.float32)
        full[self.live] = obs
        block = full.reshape(self.P, self.E, -1)
        if self.rng is None:
            a = policy_io.mode_action(self.params, block, self.spec, np)
        else:
            loc, std = policy_io.forward(self.params, block, self.spec, np)
            a = policy_io.noisy_action(loc, std, self.rng.standard_normal(loc.shape), self.spec)
        return a.reshape(self.P * self.E, -1)[self.live]


def evaluate_returns(
    task: Task,
    policies: Sequence[dict],
    spec: policy_io.PolicySpec,
    episodes: int,
    seed: int,
    nthread: int | None = None,
    horizon: int | None = None,
) -> np.ndarray:
    """Returns (P, episodes) deterministic episode returns for each policy.

    Every policy starts its episodes from the same ``episodes`` initial states (drawn
    from ``seed``), so differences between policies are not differences of luck.
    """
    sim = NativeSimulator(task, nthread)
    try:
        stacked = policy_io.stack(policies) if not isinstance(policies, dict) else policies
        actor = PopulationActor(stacked, episodes, spec)
        initial = np.tile(sim.initial_states(episodes, np.random.default_rng(seed)), (actor.P, 1))
        traj = sim.run(actor, actor.P * episodes, np.random.default_rng(seed), horizon=horizon, initial=initial)
        return traj.returns.reshape(actor.P, episodes)
    finally:
        sim.close()


def make_gym_env(task: Task, seed: int = 0):
    """A single-environment ``gymnasium.Env`` of the task on native MuJoCo (for SB3)."""
    import gymnasium as gym

    class TaskGymEnv(gym.Env):
        metadata = {"render_modes": []}

        def __init__(self):
            self.model = task.mj_model()
            self.data = mujoco.MjData(self.model)
            self.dt = self.model.opt.timestep * task.frame_skip
            obs_dim = len(task.observation(self.model.qpos0, np.zeros(self.model.nv), np))
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)
            self.rng = np.random.default_rng(seed)
            self.t = 0

        def _obs(self):
            return task.observation(self.data.qpos.copy(), self.data.qvel.copy(), np)

        def reset(self, *, seed=None, options=None):
            if seed is not None:
                self.rng = np.random.default_rng(seed)
            m, d, s = self.model, self.data, task.reset_noise_scale
            mujoco.mj_resetData(m, d)
            d.qpos[:] = m.qpos0 + self.rng.uniform(-s, s, m.nq)
            d.qvel[:] = self.rng.uniform(-s, s, m.nv)
            mujoco.mj_forward(m, d)
            self.t = 0
            return self._obs(), {}

        def step(self, action):
            a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
            qpos0 = self.data.qpos.copy()
            self.data.ctrl[:] = a * task.action_scale
            mujoco.mj_step(self.model, self.data, nstep=task.frame_skip)
            qpos, qvel = self.data.qpos.copy(), self.data.qvel.copy()
            reward = float(task.reward(qpos0, qpos, qvel, a, self.dt, np))
            self.t += 1
            terminated = not bool(task.healthy(qpos, qvel, np))
            truncated = self.t >= task.episode_length
            return self._obs(), reward, terminated, truncated, {}

    return TaskGymEnv()
