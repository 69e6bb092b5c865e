"""An interrupted `discover bench` resumes: run again with the same settings, it redoes only
the stage it was in (the tuning, or one dataset) and writes the results an uninterrupted
bench writes."""

from __future__ import annotations

import json
import os

import pytest

from discover import bench
from evaluators import datasets, fitness, reference, trainer
from evaluators.mujoco import MujocoConfig

CONFIG = MujocoConfig(
    dataset=datasets.DatasetConfig(task="pendulum", setting="clean", pairs=100, segment=20, label_horizon=20),
    train=trainer.TrainConfig(steps=20, batch_pairs=16),
    eval=fitness.EvalConfig(episodes=2, seed=bench.BENCH_EVAL_SEED),
    reference=reference.ReferenceConfig(steps=400),
)
DATA_SEEDS = [100, 101]
SEEDS = [1000, 1001]


REAL_EVALUATOR = bench._evaluator


class Interrupted(Exception):
    pass


def counting(monkeypatch, stop_at: int | None = None) -> list[int]:
    """Records the data seed of every evaluator the bench builds; raises at ``stop_at``."""
    built = []

    def evaluator(config, log, wrap):
        built.append(config.dataset.seed)
        if config.dataset.seed == stop_at:
            raise Interrupted
        return REAL_EVALUATOR(config, log, wrap)

    monkeypatch.setattr(bench, "_evaluator", evaluator)
    return built


def run(out_dir, losses=("dpo", "sft"), seeds=SEEDS):
    return bench.run_bench(CONFIG, bench.zoo_entries(list(losses)), seeds, str(out_dir), log=lambda m: None,
                           tune=True, data_seeds=DATA_SEEDS)


def comparable(res: dict) -> dict:
    res = json.loads(json.dumps(res, default=float))
    for key in ("timing", "compilations", "resumed_stages"):
        res.pop(key, None)
    return res


@pytest.mark.slow
def test_an_interrupted_bench_redoes_only_its_unfinished_stage(tmp_path, monkeypatch):
    whole = run(tmp_path / "whole")
    assert not os.path.exists(tmp_path / "whole" / "partial")  # nothing left behind

    built = counting(monkeypatch, stop_at=DATA_SEEDS[1])
    with pytest.raises(Interrupted):
        run(tmp_path / "cut")
    assert built == [bench.seed_spaces.TUNE_DATA, *DATA_SEEDS]  # tuning and dataset 100 finished
    assert not os.path.exists(tmp_path / "cut" / "results.json")

    built = counting(monkeypatch)
    resumed = run(tmp_path / "cut")
    assert built == [DATA_SEEDS[1]]  # only the unfinished dataset is trained again
    assert resumed["resumed_stages"] == ["tune", f"dataset-{DATA_SEEDS[0]}"]
    assert comparable(resumed) == comparable(whole)
    assert json.loads((tmp_path / "cut" / "results.json").read_text())["losses"] == comparable(whole)["losses"]
    assert not os.path.exists(tmp_path / "cut" / "partial")

    # Stages of a bench with other settings are never reused.
    counting(monkeypatch, stop_at=DATA_SEEDS[1])
    with pytest.raises(Interrupted):
        run(tmp_path / "other")
    built = counting(monkeypatch)
    run(tmp_path / "other", seeds=SEEDS[:1])
    assert built == [bench.seed_spaces.TUNE_DATA, *DATA_SEEDS]
