"""An interrupted `discover bench` resumes: run again with the same settings, it redoes only
the stage it was in (the tuning, or one dataset) and writes the results an uninterrupted
bench writes."""

from __future__ import annotations

import json
import os

import pytest

from discover import bench
from evaluators import trainer
from evaluators.mujoco import datasets, fitness, reference
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
REAL_PARTS = bench._parts


class Interrupted(Exception):
    pass


class Counting:
    """Wraps every evaluator the bench builds: records (data seed, losses) of each
    ``evaluate`` call and raises at call number ``stop_at`` (1-based)."""

    def __init__(self, monkeypatch, stop_at: int | None = None):
        self.calls, self.stop_at = [], stop_at
        monkeypatch.setattr(bench, "_evaluator", self.build)
        # the tuning grid of dpo (6 settings) in 6 parts, to interrupt the tuning between two
        monkeypatch.setattr(bench, "_parts", lambda n: REAL_PARTS(n, least=1))

    def build(self, config, log, wrap, data_progress=None):
        inner, outer = REAL_EVALUATOR(config, log, wrap, data_progress), self

        class Wrapped:
            def __getattr__(self, name):
                return getattr(inner, name)

            def evaluate(self, exprs, constants, seeds, **kw):
                outer.calls.append((config.dataset.seed, len(exprs)))
                if len(outer.calls) == outer.stop_at:
                    raise Interrupted
                return inner.evaluate(exprs, constants, seeds, **kw)

        return Wrapped()


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
    tune = bench.seed_spaces.TUNE_DATA
    whole = Counting(monkeypatch)
    reference = run(tmp_path / "whole")
    assert whole.calls == [(tune, 1)] * 6 + [(100, len(reference["losses"])), (101, len(reference["losses"]))]
    assert not os.path.exists(tmp_path / "whole" / "partial")  # nothing left behind

    cut = Counting(monkeypatch, stop_at=3)  # during the tuning's third part
    with pytest.raises(Interrupted):
        run(tmp_path / "cut")
    cut = Counting(monkeypatch, stop_at=6)  # parts 3-6 of the tuning, dataset 100, then stops at dataset 101
    with pytest.raises(Interrupted):
        run(tmp_path / "cut")
    assert [seed for seed, _ in cut.calls] == [tune] * 4 + DATA_SEEDS
    assert not os.path.exists(tmp_path / "cut" / "results.json")

    last = Counting(monkeypatch)
    resumed = run(tmp_path / "cut")
    assert [seed for seed, _ in last.calls] == [DATA_SEEDS[1]]  # only the unfinished dataset is trained again
    assert resumed["resumed_stages"] == ["tune", f"dataset-{DATA_SEEDS[0]}"]
    assert comparable(resumed) == comparable(reference)
    assert json.loads((tmp_path / "cut" / "results.json").read_text())["losses"] == comparable(reference)["losses"]
    assert not os.path.exists(tmp_path / "cut" / "partial")
    # (stages of a bench with other settings are never read: see the key and stage tests below)


def test_the_tuning_grid_is_scored_in_equal_parts():
    assert bench._parts(240) == [(30 * i, 30 * (i + 1)) for i in range(8)]
    assert bench._parts(36) == [(0, 9), (9, 18), (18, 27), (27, 36)]
    assert bench._parts(7) == [(0, 7)] and bench._parts(0) == [(0, 0)]


def test_the_key_changes_with_whatever_sets_the_scores():
    import dataclasses

    entries = bench.zoo_entries(["dpo", "sft"])
    key = bench.Checkpoints.key_of(CONFIG, entries, SEEDS, DATA_SEEDS, True)
    assert key == bench.Checkpoints.key_of(CONFIG, bench.zoo_entries(["dpo", "sft"]), SEEDS, DATA_SEEDS, True)
    others = [
        bench.Checkpoints.key_of(CONFIG, bench.zoo_entries(["dpo@beta=1", "sft"]), SEEDS, DATA_SEEDS, True),
        bench.Checkpoints.key_of(CONFIG, entries[:1], SEEDS, DATA_SEEDS, True),
        bench.Checkpoints.key_of(CONFIG.with_options(eval_seed=7), entries, SEEDS, DATA_SEEDS, True),
        bench.Checkpoints.key_of(CONFIG.with_options(eps=0.4), entries, SEEDS, DATA_SEEDS, True),
        bench.Checkpoints.key_of(dataclasses.replace(CONFIG, train=trainer.TrainConfig(steps=40, batch_pairs=16)),
                                 entries, SEEDS, DATA_SEEDS, True),
        bench.Checkpoints.key_of(CONFIG, entries, SEEDS[:1], DATA_SEEDS, True),
        bench.Checkpoints.key_of(CONFIG, entries, SEEDS, DATA_SEEDS[:1], True),
        bench.Checkpoints.key_of(CONFIG, entries, SEEDS, DATA_SEEDS, False),
    ]
    assert len({key, *others}) == 1 + len(others)


def test_damaged_or_foreign_stages_are_redone_and_other_benches_kept(tmp_path):
    import numpy as np

    said = []
    done = bench.Checkpoints(str(tmp_path), "k1", log=said.append)
    done.save("dataset-100", {"per_seed": np.array([[1.0, np.nan]])}, {"seconds": 2.0, "reasons": [None]})
    arrays, fields = done.load("dataset-100", needs=("reasons",), shapes={"per_seed": (1, 2)})
    assert np.isnan(arrays["per_seed"][0, 1]) and fields["reasons"] == [None]
    assert done.load("dataset-100", shapes={"per_seed": (2, 2)}) is None  # another number of losses
    assert done.load("dataset-100", needs=("timing",)) is None
    assert done.load("dataset-100", matches={"reasons": ["x"]}) is None
    path = tmp_path / "partial" / "k1" / "dataset-100.npz"
    for damage in (b"", path.read_bytes()[: path.stat().st_size // 2], b"not a zip file"):
        path.write_bytes(damage)
        assert done.load("dataset-100") is None
    assert all("redoing that stage" in m for m in said)

    other = bench.Checkpoints(str(tmp_path), "k2", log=said.append)
    assert "k1" in said[-1] and "kept" in said[-1]
    other.save("tune", {}, {"seconds": 1.0, "tuned": {}})
    (tmp_path / "partial" / "k2" / "tune.npz").rename(tmp_path / "partial" / "k1" / "tune.npz")
    assert done.load("tune") is None  # written under another key
    other.finish()
    assert (tmp_path / "partial" / "k1").is_dir() and not (tmp_path / "partial" / "k2").exists()
    done.finish()
    assert not (tmp_path / "partial").exists()
