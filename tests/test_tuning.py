"""Study tuning: constants on a grid that includes the search's bounds, recipes for the best
hand-designed losses and every discovered loss alike, on several tuning datasets; B*
fixed from them; an interrupted tuning resumes from its parts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from discover import tuning
from evaluators import registry, trainer
from evaluators.mujoco import datasets, fitness, reference
from evaluators.mujoco import MujocoConfig
from grammar import load as load_grammar
from grammar import zoo
from grammar.losses import Loss

pytestmark = pytest.mark.slow


def test_constant_grid_reaches_the_bounds():
    bounds = load_grammar("mirror.yaml").constants
    grid = tuning.constant_grid({"beta": 0.1}, bounds)
    betas = [g["beta"] for g in grid]
    assert min(betas) == pytest.approx(bounds["beta"].low) and max(betas) == pytest.approx(bounds["beta"].high)
    assert 0.1 in betas and len(grid) == len(tuning.POINTS) + 1
    assert len(tuning.constant_grid({"beta": 0.1, "tau": 0.05}, bounds, (0.0, 1.0))) == 9


def test_tuning_picks_each_loss_its_best_point_and_b_star_among_the_zoo(tmp_path, monkeypatch):
    # the datasets and references of tests/test_bench_resume.py (built once), one step count
    config = MujocoConfig(
        dataset=datasets.DatasetConfig(task="pendulum", setting="clean", pairs=100, segment=20, label_horizon=20),
        train=trainer.TrainConfig(steps=20, batch_pairs=16),
        eval=fitness.EvalConfig(episodes=2), reference=reference.ReferenceConfig(steps=400))
    plan = tuning.TuningPlan(datasets=(100, 101), seeds_per_dataset=1, points=(0.0, 1.0),
                             recipes=((20, 3e-4), (20, 1e-3)), top=1)
    bounds = load_grammar("mirror.yaml").constants
    found = Loss("run#1", zoo.ZOO["ipo"].expr, {"beta": 0.3}, "discovered", "a search")
    out = tuning.tune(config, ["dpo", "sft"], [found], bounds, str(tmp_path), plan, log=lambda m: None, part=4)
    assert len(out["stage1"]["dpo"]) == 3 and len(out["stage1"]["sft"]) == 1  # beta: both bounds and the default
    for rows in list(out["stage1"].values()) + list(out["stage2"].values()):
        assert all(len(r["per_dataset"]) == 2 for r in rows)
    # stage 2: the best zoo loss of stage 1 (top 1), DPO, and the discovered loss, at both recipes
    best1 = max(out["stage1"], key=lambda n: max(r["score"] for r in out["stage1"][n]))
    assert set(out["stage2"]) == {best1, "dpo", "run#1"}
    for name, rows in out["stage2"].items():
        assert out["choice"][name]["score"] == max(r["score"] for r in rows)
        first = max(rows[:2], key=lambda r: r["score"])  # the grid, then twice its largest rate where best there
        assert len(rows) == (3 if first["lr"] == 1e-3 else 2)
        assert all(r["lr"] == 2e-3 for r in rows[2:])
    assert out["stage2"]["run#1"][0]["constants"] == {"beta": 0.3}  # a discovered loss keeps its constants
    assert out["b_star"]["name"] in {best1, "dpo"}
    assert out["b_star"]["score"] == max(out["choice"][n]["score"] for n in {best1, "dpo"})
    assert json.loads((tmp_path / "tuning.json").read_text())["b_star"] == out["b_star"]
    assert json.loads((tmp_path / "B_STAR.json").read_text()) == out["b_star"]  # fixed before any held-out run
    # run again: every part is read back, no evaluator is built
    monkeypatch.setattr(registry, "get", lambda name: pytest.fail("re-scored a finished part"))
    again = tuning.tune(config, ["dpo", "sft"], [found], bounds, str(tmp_path), plan, log=lambda m: None, part=4)
    assert again["b_star"] == out["b_star"]
    np.testing.assert_equal(again["stage1"]["dpo"][0]["per_dataset"], out["stage1"]["dpo"][0]["per_dataset"])
    # a tuning that would pick another B* than the one fixed refuses to go on
    (tmp_path / "B_STAR.json").write_text(json.dumps({**out["b_star"], "name": "hinge"}))
    with pytest.raises(RuntimeError, match="B\\* was fixed as hinge"):
        tuning.tune(config, ["dpo", "sft"], [found], bounds, str(tmp_path), plan, log=lambda m: None, part=4)
