"""The planted-loss benchmark's evaluator (benchmarks/planted.py): fitness is 100 x the
gradient-field cosine with a hidden target, and the real search runs on it
deterministically."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from discover.search import SearchConfig
from evaluators.interface import Evaluator
from grammar import derivation, symbolic, zoo

_path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "planted.py")
_spec = importlib.util.spec_from_file_location("planted_benchmark", _path)
planted = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = planted  # its dataclasses look their module up
_spec.loader.exec_module(planted)

TARGET = "mpo(Link=robust, Mirror=tsallis, Psi=nll)"
CONSTANTS = {"beta": 0.5, "eps": 0.2, "alpha": 0.7, "lam": 0.3}


@pytest.fixture(scope="module")
def target(mirror):
    node = derivation.parse_derivation(mirror, TARGET)
    expr = derivation.expand(mirror, node)
    return planted.Target(TARGET, expr, CONSTANTS, symbolic.canonical_hash(expr))


def test_the_target_scores_100_and_another_loss_less(target):
    ev = planted.PlantedEvaluator(target.expr, target.constants)
    assert isinstance(ev, Evaluator)
    dpo = zoo.ZOO["dpo"]
    out = ev.evaluate([target.expr, dpo.expr], [target.constants, dpo.constants], [0, 1])
    assert out.reasons == [None, None]
    np.testing.assert_allclose(out.per_seed[0], 100.0, atol=1e-3)
    assert out.fitness[1] < 95
    assert out.per_seed[1, 0] != out.per_seed[1, 1]  # each seed its own input draw
    same, other = ev.fresh_cosines([target.expr, dpo.expr], [target.constants, dpo.constants])
    assert same == pytest.approx(1.0, abs=1e-5) and other < 0.95


def test_noise_is_per_seed_and_repeatable(target):
    ev = planted.PlantedEvaluator(target.expr, target.constants, planted.PlantedConfig(noise=10.0))
    a = ev.evaluate([target.expr], [target.constants], [0, 1, 2]).per_seed
    b = ev.evaluate([target.expr], [target.constants], np.array([[2, 0, 1]])).per_seed
    np.testing.assert_array_equal(a[0], b[0, [1, 2, 0]])
    assert np.ptp(a) > 1.0 and np.all(np.abs(a - 100) < 60)


@pytest.mark.slow  # about 10 s of first compilations (the gates, the grammar's checks)
def test_a_tiny_search_runs_and_is_deterministic(mirror, target):
    # No constant search: evosax's compilation would double this test's time.
    config = SearchConfig(population=4, generations=2, es_trees=0, reevaluate=1, final_top=2)
    runs = [planted.run_search(mirror, target, config, planted.PlantedConfig(noise=10.0)) for _ in range(2)]
    for r in runs:
        r.pop("seconds")
    assert runs[0] == runs[1]
    assert runs[0]["search_runs"] == 2 * 2 * 4  # halving: two calls of population x 1 runs per generation
    # the budget counts the held-out re-scoring of the search's losses, not the zoo's
    assert runs[0]["runs"] == runs[0]["search_runs"] + config.final_top * len(config.holdout_seeds)
    assert -1.0 <= runs[0]["cosine"] <= 1.0
