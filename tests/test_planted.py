"""The planted-loss benchmark's evaluator (benchmarks/planted.py): fitness is 100 x the
gradient-field cosine with a hidden target, and the real search runs on it
deterministically."""

from __future__ import annotations

import importlib.util
import json
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


def test_pooled_pick_averages_search_and_held_out_scores():
    row = {"per_seed": [90.0, None, 96.0]}  # a held-out seed that failed counts for nothing
    assert planted._pooled(row, {"per_seed": [99.0]}) == pytest.approx(95.0)
    assert planted._pooled(row, {}) == pytest.approx(93.0)


@pytest.mark.slow  # evosax's compilation
def test_es_center_trains_each_strategys_mean(mirror, target):
    """With ``es_center``, every constant-search target also proposes its strategy's mean,
    in the constants' own ranges; the strategy is not told its score."""
    import dataclasses
    import tempfile

    import jax

    from discover.constant_search import ConstantSearch
    from discover.search import Search
    from discover.store import RunStore

    config = SearchConfig(population=8, generations=3, es_trees=1, es_popsize=4, reevaluate=0, final_top=2,
                          es_center=True)
    ev = planted.PlantedEvaluator(target.expr, target.constants)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(tmp, "center", {"search": config.to_dict()}, mirror.path)
        Search(mirror, ev, config, store).run()
        centers = [r for r in store.candidates() if r["origin"] == "es-center"]
    # generation 1's mean is the target's own constants (already trained: not again); later ones moved
    assert centers and all(r["generation"] == 2 and r["trained"] for r in centers)
    with pytest.raises(Exception, match="no room for new structures"):
        dataclasses.replace(config, population=5).validate()

    node = derivation.parse_derivation(mirror, TARGET)
    names = sorted(CONSTANTS)
    es = ConstantSearch("snes", 4, 0.15)
    es.ask(mirror, "h", node, names, CONSTANTS, jax.random.PRNGKey(1))
    assert es.center(mirror, "h") == pytest.approx(CONSTANTS, rel=1e-5)  # the strategy starts at the best
    es.tell("h", [1.0, 2.0, 3.0, None], jax.random.PRNGKey(2))
    unit = np.clip(np.asarray(es.states["h"]["state"].mean), 0, 1)
    moved = es.center(mirror, "h")
    assert moved != pytest.approx(CONSTANTS, rel=1e-3)
    assert moved == pytest.approx({n: mirror.constants[n].from_unit(float(u)) for n, u in zip(names, unit)})


def test_planted_compare_pairs_targets_within_each_file(tmp_path, capsys):
    _p = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "planted_compare.py")
    spec = importlib.util.spec_from_file_location("planted_compare", _p)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)

    def row(arm, target, recovered, cosine, pooled, generations=12):
        return {"arm": arm, "noise": 10.0, "generations": generations, "target": target, "recovered": recovered,
                "cosine": cosine, "picks": {"pooled": pooled}}

    # file 1: b recovers targets 0-2 that a misses; file 2: target 0 again (another target), a only
    one = [row("a", t, False, 0.95, False) for t in range(3)] + [row("b", t, True, 0.995, t < 2) for t in range(3)]
    two = [row("a", 0, True, 0.999, True), row("b", 0, False, 0.97, False), row("c", 0, True, 1.0, True)]
    paths = []
    for i, rows in enumerate((one, two)):
        paths.append(str(tmp_path / f"{i}.json"))
        with open(paths[-1], "w") as f:
            json.dump(rows, f)
    assert len(compare.pairs(paths, "a@10", "b@10")) == 4
    compare.main(["a@10", "b@10", *paths])
    out = capsys.readouterr().out
    assert "4 targets" in out
    assert "discordant 1 vs 3, McNemar exact p 0.625" in out  # binomial(3 of 4, 1/2), two-sided
    assert "discordant 1 vs 2, McNemar exact p 1.000" in out  # the pooled rule
    with pytest.raises(SystemExit, match="no target searched under both"):
        compare.main(["a@10", "d@10", *paths])
    # the same arm at two budgets in one file: which one must be said
    longer = str(tmp_path / "longer.json")
    with open(longer, "w") as f:
        json.dump(one + [row("a", t, True, 0.999, True, generations=14) for t in range(3)], f)
    with pytest.raises(SystemExit, match="at several budgets"):
        compare.pairs([longer], "a@10", "b@10")
    assert [ra["generations"] for ra, _ in compare.pairs([longer], "a@10@14", "b@10")] == [14, 14, 14]
