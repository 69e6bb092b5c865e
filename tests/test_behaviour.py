"""Behaviour-policy training (tiny budget) and the committed policies."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from evaluators.mujoco import behaviour
from evaluators.mujoco.tasks import get_task


def test_select_graded_picks_distinct_checkpoints_in_order():
    returns = [5, 10, 40, 35, 80, 120, 118, 200]
    picked = behaviour.select_graded(returns, (0.1, 0.3, 0.5, 0.7, 0.9, 1.0))
    assert len(set(picked)) == 6
    assert [returns[i] for i in picked] == sorted(returns[i] for i in picked)
    assert returns[picked[-1]] == 200


@pytest.mark.slow
def test_sac_training_writes_graded_policies(tmp_path):
    cfg = behaviour.default_config("pendulum", num_timesteps=1200, checkpoints=4, sac_learning_starts=400,
                                   net_arch=(32, 32), sac_batch_size=64)  # small: the path, not the policy
    kept = behaviour.train_behaviour_policies(get_task("pendulum"), cfg, episodes=2, out_dir=str(tmp_path),
                                              log=lambda m: None)
    assert 2 <= len(kept) <= 5
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["spec"]["std"] == "exp_clip" and manifest["random_return"] > 0
    loaded = behaviour.load_behaviour("pendulum", directory=str(tmp_path))
    assert list(loaded.returns) == sorted(loaded.returns)
    assert loaded.expert_return == max(loaded.returns)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


@pytest.mark.parametrize("task", ["pendulum", "hopper", "walker2d", "half_cheetah"])
def test_committed_policies_are_graded(task):
    directory = behaviour.policy_dir(task)
    if not os.path.exists(os.path.join(directory, "manifest.json")):
        pytest.fail(f"committed behaviour policies for {task} are missing from {directory}")
    b = behaviour.load_behaviour(task)
    assert len(b.params) >= 5
    norm = b.normalise(b.returns)
    assert norm[0] < 40 and norm[-1] == pytest.approx(100.0)
    assert np.all(np.diff(b.returns) > 0)
