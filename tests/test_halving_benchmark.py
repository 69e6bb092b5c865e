"""The selection-accuracy replay of benchmarks/halving.py on known score matrices."""

from __future__ import annotations

import importlib.util
import os

import numpy as np

_path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "halving.py")
_spec = importlib.util.spec_from_file_location("halving_benchmark", _path)
halving = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(halving)


def test_without_noise_halving_keeps_the_best_and_picks_it():
    quality = np.arange(16.0)[::-1] * 3
    scores = np.repeat(quality[:, None], 6, axis=1)
    out = halving.summarise(scores, inner=3, promoted=2)
    assert out["halving"]["best_kept"] == 1.0 and out["halving"]["regret"] == 0.0
    assert out["halving"]["top3_recall"] == 2 / 3  # only two promoted
    assert out["halving"]["runs"] == 16 + 2 * 2 and out["all"]["runs"] == 48


def test_promoting_everyone_is_the_all_seeds_procedure():
    scores = np.random.default_rng(0).normal(size=(12, 6))
    out = halving.summarise(scores, inner=3, promoted=12)
    assert out["halving"]["regret"] == out["all"]["regret"] and out["halving"]["best_kept"] == 1.0


def test_a_failed_candidate_is_never_the_truth_nor_picked():
    scores = np.tile(np.arange(8.0)[:, None], (1, 4))
    scores[7, 2] = np.nan  # the best candidate failed on one seed
    r = halving.replay(scores, screen=0, inner=2, promoted=3)
    assert r["halving"]["regret"] == 0.0 and r["halving"]["best_kept"]  # the truth is candidate 6
    noisy = np.random.default_rng(1).normal(size=(20, 6)) * 5 + np.linspace(0, 3, 20)[:, None]
    a = halving.summarise(noisy, inner=3, promoted=5)["halving"]
    assert 0.0 <= a["best_kept"] <= 1.0 and a["regret"] >= 0.0
