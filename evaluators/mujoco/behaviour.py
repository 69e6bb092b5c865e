"""Behaviour policies of graded quality, trained by an existing PPO implementation.

Three trainers, all over *this project's* task definition (same MJCF, observation,
reward and termination as the scoring backends):

- ``sac`` (default): stable-baselines3's SAC on a gymnasium env stepping native MuJoCo
  (rl-baselines3-zoo settings). Sample-efficient, so the right choice on a CPU, where
  native MuJoCo is 10-20x faster than MJX. On our Hopper, PPO (below) stayed on the
  "stand still" plateau (return ~1000) for 1.3M steps; SAC does not.
- ``sb3``: stable-baselines3's PPO on the same env (rl-baselines3-zoo settings).
- ``brax``: brax's PPO (``brax.training.agents.ppo``) on an MJX version of the task,
  the fast choice on an accelerator.

``train_behaviour_policies`` records checkpoints during training, measures each one's
return with the native MuJoCo backend, and keeps those closest to the requested
fractions of the best return. The kept files are small ``.npz`` policies under
``evaluators/mujoco/behaviour_policies/<task>/`` (committed), so no later run depends on this training.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Callable, Sequence

import numpy as np

import evaluators.mujoco.policies as policy_io
from evaluators import atomic
from evaluators.cache import cache_dir
from evaluators.mujoco.tasks import Task

POLICY_DIR = os.path.join(os.path.dirname(__file__), "behaviour_policies")
DEFAULT_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """Settings of the RL trainer that produces behaviour policies: stable-baselines3's SAC
    (the default), its PPO (``sb3``, rl-baselines3-zoo's Hopper settings) or brax's PPO.
    (Manifests written before this name recorded a checkpoint's step as ``ppo_step``.)"""

    trainer: str = "sac"
    num_timesteps: int = 400_000
    checkpoints: int = 40
    # stable-baselines3 SAC (rl-baselines3-zoo defaults for MuJoCo)
    sac_learning_starts: int = 10_000
    sac_batch_size: int = 256
    sac_learning_rate: float = 3e-4
    # stable-baselines3 (rl-baselines3-zoo, Hopper-v3)
    n_steps: int = 512
    sb3_batch_size: int = 32
    n_epochs: int = 5
    gamma: float = 0.999
    gae_lambda: float = 0.99
    sb3_learning_rate: float = 9.80828e-05
    ent_coef: float = 0.00229519
    vf_coef: float = 0.835671
    max_grad_norm: float = 0.7
    log_std_init: float = -2.0
    net_arch: tuple[int, ...] = (256, 256)
    # brax
    num_envs: int = 128
    batch_size: int = 256
    num_minibatches: int = 8
    num_updates_per_batch: int = 4
    unroll_length: int = 20
    learning_rate: float = 3e-4
    entropy_cost: float = 1e-3
    discounting: float = 0.99
    reward_scaling: float = 1.0
    seed: int = 0


# Per-task overrides of RLConfig (SAC budgets; the tiny pendulum needs only a short run).
TASK_BUDGETS = {
    "hopper": {},
    "walker2d": dict(num_timesteps=300_000),  # the committed policies
    "half_cheetah": dict(num_timesteps=150_000),  # the committed policies
    "pendulum": dict(num_timesteps=20_000, checkpoints=20, sac_learning_starts=1000),
}


def default_config(task_name: str, **overrides) -> RLConfig:
    """The PPO configuration that trains a task's behaviour policies (its budget, then ``overrides``)."""
    return dataclasses.replace(RLConfig(), **{**TASK_BUDGETS.get(task_name, {}), **overrides})


def policy_dir(task_name: str) -> str:
    """Where a task's committed behaviour policies are."""
    return os.path.join(POLICY_DIR, task_name)


def make_task_env(task: Task):
    """A brax ``PipelineEnv`` (MJX backend) computing the task's obs, reward and termination."""
    import jax
    import jax.numpy as jnp
    from brax.envs.base import PipelineEnv, State
    from brax.io import mjcf

    class TaskEnv(PipelineEnv):
        def __init__(self):
            sys = mjcf.load_model(task.mj_model())
            super().__init__(sys=sys, backend="mjx", n_frames=task.frame_skip)

        def reset(self, rng):
            k1, k2 = jax.random.split(rng)
            s = task.reset_noise_scale
            qpos = self.sys.init_q + jax.random.uniform(k1, (self.sys.q_size(),), minval=-s, maxval=s)
            qvel = jax.random.uniform(k2, (self.sys.qd_size(),), minval=-s, maxval=s)
            ps = self.pipeline_init(qpos, qvel)
            obs = task.observation(ps.q, ps.qd, jnp)
            zero = jnp.zeros(())
            return State(ps, obs, zero, zero, {})

        def step(self, state, action):
            ps0 = state.pipeline_state
            ps = self.pipeline_step(ps0, action * task.action_scale)
            reward = task.reward(ps0.q, ps.q, ps.qd, action, self.dt, jnp)
            done = 1.0 - task.healthy(ps.q, ps.qd, jnp).astype(jnp.float32)
            obs = task.observation(ps.q, ps.qd, jnp)
            return state.replace(pipeline_state=ps, obs=obs, reward=reward, done=done)

    return TaskEnv()


BRAX_SPEC = policy_io.PolicySpec(activation="swish", squash=True)
SB3_SPEC = policy_io.PolicySpec(activation="relu", squash=False, obs_clip=10.0)
SAC_SPEC = policy_io.PolicySpec(activation="relu", squash=True, std="exp_clip")


def brax_to_policy(normalizer, policy_params) -> dict[str, np.ndarray]:
    """Converts brax PPO (running statistics, MLP params) to this project's format."""
    layers = policy_params["params"]
    out = {
        "obs_mean": np.asarray(normalizer.mean, np.float32),
        "obs_std": np.asarray(normalizer.std, np.float32),
    }
    for i in range(len(layers)):
        out[f"w{i}"] = np.asarray(layers[f"hidden_{i}"]["kernel"], np.float32)
        out[f"b{i}"] = np.asarray(layers[f"hidden_{i}"]["bias"], np.float32)
    return out


def select_graded(returns: Sequence[float], fractions: Sequence[float]) -> list[int]:
    """Indices of checkpoints whose return is closest to each fraction of the best.

    Fractions are of the span from the lowest to the best return seen, so that the
    poorest kept policy is close to the untrained one. Distinct indices, one per
    fraction, in order of increasing return.
    """
    r = np.asarray(returns, dtype=float)
    lo, hi = float(r.min()), float(r.max())
    chosen: list[int] = []
    for f in sorted(fractions):
        target = lo + f * (hi - lo)
        order = np.argsort(np.abs(r - target))
        pick = next((int(i) for i in order if int(i) not in chosen), None)
        if pick is not None:
            chosen.append(pick)
    return sorted(chosen, key=lambda i: r[i])


def _restore_device_put_replicated():
    """brax 0.14.2's PPO calls ``jax.device_put_replicated``, removed in jax 0.10.

    Its documented replacement is ``device_put`` of the value stacked once per device;
    installed only while PPO runs (and only when jax lacks it).
    """
    import jax
    import jax.numpy as jnp

    def device_put_replicated(x, devices):
        stacked = jax.tree.map(lambda a: jnp.stack([jnp.asarray(a)] * len(devices)), x)
        if len(devices) == 1:
            return jax.device_put(stacked, devices[0])
        mesh = jax.sharding.Mesh(np.array(devices), ("d",))
        return jax.device_put(stacked, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d")))

    try:
        jax.device_put_replicated  # noqa: B018
        return None
    except AttributeError:
        jax.device_put_replicated = device_put_replicated
        return device_put_replicated


def _train_brax(task: Task, config: RLConfig, log) -> list[tuple[int, dict]]:
    from brax.training.agents.ppo import train as ppo

    env = make_task_env(task)
    checkpoints: list[tuple[int, dict]] = []
    started = time.time()

    def on_params(step, make_policy, params):
        checkpoints.append((int(step), brax_to_policy(params[0], params[1])))

    def on_progress(step, metrics):
        r = metrics.get("eval/episode_reward")
        log(f"[ppo {task.name}] step {step:>10,d}  eval return {float(r):8.1f}  "
            f"({time.time() - started:6.0f} s)")

    _restore_device_put_replicated()
    ppo.train(
        environment=env,
        num_timesteps=config.num_timesteps,
        num_evals=config.checkpoints + 1,
        episode_length=task.episode_length,
        num_envs=config.num_envs,
        batch_size=config.batch_size,
        num_minibatches=config.num_minibatches,
        num_updates_per_batch=config.num_updates_per_batch,
        unroll_length=config.unroll_length,
        learning_rate=config.learning_rate,
        entropy_cost=config.entropy_cost,
        discounting=config.discounting,
        reward_scaling=config.reward_scaling,
        normalize_observations=True,
        num_eval_envs=16,
        seed=config.seed,
        progress_fn=on_progress,
        policy_params_fn=on_params,
    )
    return checkpoints


def sb3_to_policy(model, normalizer) -> dict[str, np.ndarray]:
    """Converts an SB3 ``MlpPolicy`` (+ ``VecNormalize`` statistics) to this project's format."""
    policy = model.policy
    linears = [m for m in policy.mlp_extractor.policy_net if hasattr(m, "weight")]
    linears.append(policy.action_net)
    out = {
        "obs_mean": np.asarray(normalizer.obs_rms.mean, np.float32),
        "obs_std": np.sqrt(np.asarray(normalizer.obs_rms.var) + normalizer.epsilon).astype(np.float32),
    }
    for i, lin in enumerate(linears):
        out[f"w{i}"] = lin.weight.detach().cpu().numpy().T.astype(np.float32)
        out[f"b{i}"] = lin.bias.detach().cpu().numpy().astype(np.float32)
    out["log_std"] = policy.log_std.detach().cpu().numpy().astype(np.float32)
    return out


def _train_sb3(task: Task, config: RLConfig, log) -> list[tuple[int, dict]]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from evaluators.mujoco.backends.native import make_gym_env

    torch.set_num_threads(1)
    venv = VecNormalize(DummyVecEnv([lambda: Monitor(make_gym_env(task, config.seed))]), gamma=config.gamma)
    model = PPO(
        "MlpPolicy", venv, n_steps=config.n_steps, batch_size=config.sb3_batch_size,
        n_epochs=config.n_epochs, gamma=config.gamma, gae_lambda=config.gae_lambda,
        learning_rate=config.sb3_learning_rate, ent_coef=config.ent_coef,
        vf_coef=config.vf_coef, max_grad_norm=config.max_grad_norm, clip_range=0.2,
        policy_kwargs=dict(log_std_init=config.log_std_init, ortho_init=False,
                           activation_fn=torch.nn.ReLU,
                           net_arch=dict(pi=list(config.net_arch), vf=list(config.net_arch))),
        seed=config.seed, device="cpu", verbose=0,
    )
    model.set_logger(_quiet_logger())
    every = max(config.num_timesteps // config.checkpoints, config.n_steps)
    checkpoints: list[tuple[int, dict]] = []
    started = time.time()

    class Snapshot(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0 or not checkpoints:
                checkpoints.append((self.num_timesteps, sb3_to_policy(model, venv)))
                eps = [e["r"] for e in self.model.ep_info_buffer] or [float("nan")]
                log(f"[ppo {task.name}] step {self.num_timesteps:>10,d}  train return "
                    f"{np.mean(eps):8.1f}  ({time.time() - started:6.0f} s)")
            return True

    model.learn(total_timesteps=config.num_timesteps, callback=Snapshot())
    if checkpoints[-1][0] != model.num_timesteps:
        checkpoints.append((model.num_timesteps, sb3_to_policy(model, venv)))
    return checkpoints


def _quiet_logger():
    """An SB3 logger that writes nothing (SB3's default one leaves an empty SB3-<date>
    folder in the system's temporary directory on every training run)."""
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


def _spill(task: Task, checkpoint: tuple[int, dict], spec) -> None:
    """Keeps every raw checkpoint on disk while training runs (a kill loses nothing)."""
    step, params = checkpoint
    policy_io.save(os.path.join(cache_dir(), "checkpoints", task.name, f"step-{step:09d}.npz"), params, spec,
                   {"step": step})


def sac_to_policy(model, obs_dim: int) -> dict[str, np.ndarray]:
    """Converts an SB3 SAC actor (no observation normalisation) to this project's format."""
    actor = model.policy.actor
    linears = [m for m in actor.latent_pi if hasattr(m, "weight")]
    out = {"obs_mean": np.zeros(obs_dim, np.float32), "obs_std": np.ones(obs_dim, np.float32)}
    for i, lin in enumerate(linears):
        out[f"w{i}"] = lin.weight.detach().cpu().numpy().T.astype(np.float32)
        out[f"b{i}"] = lin.bias.detach().cpu().numpy().astype(np.float32)
    head_w = np.concatenate([actor.mu.weight.detach().cpu().numpy(),
                             actor.log_std.weight.detach().cpu().numpy()]).T
    head_b = np.concatenate([actor.mu.bias.detach().cpu().numpy(), actor.log_std.bias.detach().cpu().numpy()])
    out[f"w{len(linears)}"] = head_w.astype(np.float32)
    out[f"b{len(linears)}"] = head_b.astype(np.float32)
    return out


def _train_sac(task: Task, config: RLConfig, log) -> list[tuple[int, dict]]:
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    from evaluators.mujoco.backends.native import make_gym_env

    torch.set_num_threads(1)
    env = Monitor(make_gym_env(task, config.seed))
    obs_dim = env.observation_space.shape[0]
    model = SAC("MlpPolicy", env, learning_rate=config.sac_learning_rate,
                batch_size=config.sac_batch_size, learning_starts=config.sac_learning_starts,
                policy_kwargs=dict(net_arch=list(config.net_arch)), seed=config.seed,
                device="cpu", verbose=0)
    model.set_logger(_quiet_logger())
    every = max(config.num_timesteps // config.checkpoints, 1)
    checkpoints: list[tuple[int, dict]] = [(0, sac_to_policy(model, obs_dim))]
    started = time.time()

    class Snapshot(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0:
                checkpoints.append((self.num_timesteps, sac_to_policy(model, obs_dim)))
                _spill(task, checkpoints[-1], SAC_SPEC)
                eps = [e["r"] for e in self.model.ep_info_buffer] or [float("nan")]
                log(f"[sac {task.name}] step {self.num_timesteps:>10,d}  train return "
                    f"{np.mean(eps):8.1f}  ({time.time() - started:6.0f} s)")
            return True

    model.learn(total_timesteps=config.num_timesteps, callback=Snapshot())
    if checkpoints[-1][0] != model.num_timesteps:
        checkpoints.append((model.num_timesteps, sac_to_policy(model, obs_dim)))
    return checkpoints


def train_behaviour_policies(
    task: Task,
    config: RLConfig = RLConfig(),
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    episodes: int = 10,
    out_dir: str | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Trains PPO, keeps graded checkpoints, writes them with their measured returns."""
    from evaluators.mujoco.backends import native

    if config.trainer == "sac":
        checkpoints, spec = _train_sac(task, config, log), SAC_SPEC
    elif config.trainer == "sb3":
        checkpoints, spec = _train_sb3(task, config, log), SB3_SPEC
    elif config.trainer == "brax":
        checkpoints, spec = _train_brax(task, config, log), BRAX_SPEC
    else:
        raise ValueError(f"unknown trainer {config.trainer!r}; use sac, sb3 or brax")
    log(f"[{config.trainer} {task.name}] {len(checkpoints)} checkpoints; measuring returns natively")
    returns = native.evaluate_returns(task, [p for _, p in checkpoints], spec,
                                      episodes=episodes, seed=12345)
    measured = [float(r.mean()) for r in returns]
    for (step, _), r in zip(checkpoints, returns):
        log(f"  step {step:>10,d}: native return {r.mean():8.1f} ± {r.std():.1f}")
    random_return = measure_random_return(task, episodes=max(episodes, 20), seed=12345)
    log(f"[{task.name}] uniform random actions: return {random_return:.1f}")
    keep = select_graded(measured, fractions)
    out_dir = out_dir or policy_dir(task.name)
    os.makedirs(out_dir, exist_ok=True)
    kept = []
    for rank, i in enumerate(keep):
        step, params = checkpoints[i]
        name = f"{task.name}_q{rank}"
        meta = {"task": task.name, "train_step": step, "return": measured[i],
                "return_std": float(returns[i].std()), "episodes": episodes,
                "trainer": config.trainer, "config": dataclasses.asdict(config)}
        policy_io.save(os.path.join(out_dir, name + ".npz"), params, spec, meta)
        kept.append({"name": name, **meta})
    manifest = {
        "task": task.name, "spec": dataclasses.asdict(spec), "random_return": random_return,
        "expert_return": max(k["return"] for k in kept), "policies": kept,
        "all_checkpoints": [{"step": s, "return": r} for (s, _), r in zip(checkpoints, measured)],
    }
    atomic.write_text(os.path.join(out_dir, "manifest.json"), json.dumps(manifest, indent=1))
    return kept


def measure_random_return(task: Task, episodes: int, seed: int) -> float:
    """Mean return of uniformly random actions (the 0 of the normalised score)."""
    from evaluators.mujoco.backends.native import NativeSimulator

    rng = np.random.default_rng(seed)
    act_dim = task.mj_model().nu
    sim = NativeSimulator(task)
    try:
        traj = sim.run(lambda obs: rng.uniform(-1, 1, size=(len(obs), act_dim)), episodes, rng)
    finally:
        sim.close()
    return float(traj.returns.mean())


@dataclasses.dataclass(frozen=True)
class BehaviourSet:
    """A task's committed behaviour policies, poorest first, with the scale of returns."""

    task: str
    spec: policy_io.PolicySpec
    names: tuple[str, ...]
    params: tuple[dict, ...]
    returns: tuple[float, ...]
    random_return: float
    expert_return: float
    digest: str

    def normalise(self, returns):
        """100 (R - R_random) / (R_expert - R_random)."""
        return 100.0 * (np.asarray(returns) - self.random_return) / (self.expert_return - self.random_return)


def load_behaviour(task_name: str, directory: str | None = None) -> BehaviourSet:
    """Loads ``<directory or evaluators/mujoco/behaviour_policies/task>/manifest.json`` and its policies."""
    import hashlib

    from evaluators.errors import InputError

    directory = directory or policy_dir(task_name)
    path = os.path.join(directory, "manifest.json")
    if not os.path.isfile(path):
        raise InputError(f"no behaviour policies for task {task_name!r} ({path} is missing); "
                         f"train them with `discover data policies --task {task_name}`")
    try:
        with open(path) as f:
            manifest = json.load(f)
        entries = sorted(manifest["policies"], key=lambda p: p["return"])
        h = hashlib.sha256()
        params = []
        for e in entries:
            file = os.path.join(directory, e["name"] + ".npz")
            with open(file, "rb") as f:
                h.update(f.read())
            params.append(policy_io.load(file)[0])
        spec = policy_io.PolicySpec(**manifest["spec"])
        return BehaviourSet(task_name, spec, tuple(e["name"] for e in entries), tuple(params),
                            tuple(float(e["return"]) for e in entries), float(manifest["random_return"]),
                            float(manifest["expert_return"]), h.hexdigest()[:16])
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise InputError(f"behaviour policies in {directory} are unreadable or incomplete ({e}); "
                         f"retrain them with `discover data policies --task {task_name}`") from None
