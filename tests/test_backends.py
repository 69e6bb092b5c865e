"""Simulation backends: native and MJX agree; rollouts are deterministic."""

from __future__ import annotations

import importlib.util
import os

import jax
import numpy as np
import pytest

from evaluators.mujoco import policies as policy_io
from evaluators.mujoco.backends import mjx, native
from evaluators.mujoco.tasks import UnknownTaskError, get_task


def random_policies(task, n, scale=30.0):
    m = task.mj_model()
    obs_dim = len(task.observation(m.qpos0, np.zeros(m.nv), np))
    out = []
    for i in range(n):
        p = jax.tree.map(np.asarray, policy_io.init_params(jax.random.PRNGKey(i), obs_dim, m.nu))
        p["w2"] = p["w2"] * scale  # make the actions matter
        out.append(p)
    return out


@pytest.mark.slow
def test_native_and_mjx_agree_over_a_short_horizon():
    """Same policies and initial states: returns within 1e-3 relative over 40 control steps,
    on Hopper, whose contacts and continuous rewards make it the hard case (the pendulum,
    whose return counts the steps before the pole falls, is compared by the GPU check's small
    mode, below)."""
    task = get_task("hopper")
    pols = random_policies(task, 2)
    spec = policy_io.PolicySpec()
    a = native.evaluate_returns(task, pols, spec, episodes=2, seed=3, horizon=40)
    b = mjx.evaluate_returns(task, pols, spec, episodes=2, seed=3, horizon=40)
    assert a.shape == b.shape == (2, 2)
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3)


def test_native_rollouts_are_deterministic():
    task = get_task("hopper")
    pols = random_policies(task, 3)
    spec = policy_io.PolicySpec()
    a = native.evaluate_returns(task, pols, spec, episodes=2, seed=0, horizon=100)
    b = native.evaluate_returns(task, pols, spec, episodes=2, seed=0, horizon=100, nthread=1)
    np.testing.assert_array_equal(a, b)


def test_termination_masks_the_rest_of_an_episode():
    task = get_task("pendulum")
    sim = native.NativeSimulator(task)
    try:
        traj = sim.run(lambda obs: np.ones((len(obs), 1)), 4, np.random.default_rng(0), horizon=200)
    finally:
        sim.close()
    # pushing the cart one way topples the pole long before 200 steps
    assert np.all(traj.lengths < 200) and np.all(traj.lengths >= 1)
    assert np.all(np.diff(traj.alive, axis=1) <= 0)  # once dead, dead


def test_unknown_task():
    with pytest.raises(UnknownTaskError, match="unknown task 'humanoid_football'"):
        get_task("humanoid_football")


def test_gym_env_matches_task_definition():
    task = get_task("hopper")
    env = native.make_gym_env(task, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (11,)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, term, trunc, _ = env.step(np.zeros(3))
        total, steps, done = total + r, steps + 1, term or trunc
    assert 0 < steps <= task.episode_length and total > 0


@pytest.mark.parametrize("name", ["hopper", "walker2d", "half_cheetah", "pendulum"])
def test_every_task_steps(name):
    from evaluators.mujoco.tasks import TASK_MODULES

    assert name in TASK_MODULES
    task = get_task(name)
    sim = native.NativeSimulator(task)
    try:
        traj = sim.run(lambda obs: np.zeros((len(obs), sim.model.nu)), 2, np.random.default_rng(0), horizon=20,
                       record=True)
    finally:
        sim.close()
    assert np.all(np.isfinite(traj.obs)) and np.all(np.isfinite(traj.rewards))
    expected = {"hopper": 11, "walker2d": 17, "half_cheetah": 17, "pendulum": 4}[name]
    assert traj.obs.shape[-1] == expected


def _gpu_check():
    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_check.py")
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_refuses_unknown_checks_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        _gpu_check().main(["--checks", "parity,speed", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--checks: speed; choose from parity, rollouts, generations, large" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _gpu_check().main(["--size", "small", "--checks", "large", "--out", str(tmp_path)])
    assert "--size small has no large population" in capsys.readouterr().err
    for bad in (["--envs", "512,x"], ["--envs", "0"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            _gpu_check().main(["--size", "small", *bad, "--out", str(tmp_path)])
        assert bad[0] + ":" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_gpu_check_small_mode_on_cpu(tmp_path):
    """The one-shot GPU check runs end to end on the CPU in its small mode (pendulum)."""
    out = _gpu_check().main(["--size", "small", "--no-halving", "--out", str(tmp_path)])  # small never halves
    text = open(out).read()
    assert out.endswith("-nohalving.txt") and " --no-halving on " in text.splitlines()[0]
    assert "FAILED" not in text, text
    for fragment in ("parity", "MJX rollouts", "training runs (loss x seed) per hour", "generation 1 of",
                     "steady state at population 4 (generations 1-1)", "candidate trainings (loss x seed) per hour including"):
        assert fragment in text
    rel = float(text.split("max relative difference ")[1].split()[0])
    assert rel < 1e-3


@pytest.mark.slow
def test_mjx_stops_when_every_episode_has_ended_and_pads_its_batch(monkeypatch):
    """Chunks of control steps stop once every episode of the batch ended, with the rewards
    and alive masks of the whole rollout (and its positions while an episode lasts);
    scoring pads 15 environments (to 16 on a CPU) and drops the padding. One batch shape
    throughout, the GPU check's small mode's above (16 environments, chunks of 100 control
    steps): no compilation of its own."""
    task = get_task("pendulum")
    sim = mjx.simulator(task)
    pols = random_policies(task, 5, scale=100.0)  # strong random pushes: the pole falls early
    stacked = policy_io.stack(pols)
    spec = policy_io.PolicySpec()
    horizon = 4 * sim.chunk
    returns = mjx.evaluate_returns(task, stacked, spec, episodes=3, seed=3, horizon=horizon)
    qpos, qvel = native.initial_qpos_qvel(task, task.mj_model(), 3, np.random.default_rng(3))
    qpos, qvel = np.tile(qpos, (5, 1)), np.tile(qvel, (5, 1))
    per_env = {k: np.repeat(v, 3, axis=0) for k, v in stacked.items()}
    pad = mjx.batch_size(15) - 15  # the padding: copies of the first environment
    assert pad > 0
    qpos, qvel = (np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) for x in (qpos, qvel))
    per_env = {k: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) for k, v in per_env.items()}
    whole = sim.run(per_env, spec, qpos, qvel, horizon, stop_early=False)
    calls = []
    steps = sim._steps
    monkeypatch.setattr(sim, "_steps", lambda *a: calls.append(1) or steps(*a))
    parts = sim.run(per_env, spec, qpos, qvel, horizon)
    assert whole[1][:, -1].max() == 0.0 and len(calls) < horizon // sim.chunk  # all fell, so it stopped early
    for a, b in zip(whole[:2], parts[:2]):  # rewards and alive masks
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    live = whole[1].astype(bool)  # positions agree while an episode lasts
    np.testing.assert_allclose(parts[2][live], whole[2][live], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(returns, whole[0][:15].sum(axis=1).reshape(5, 3), rtol=1e-6, atol=1e-6)
