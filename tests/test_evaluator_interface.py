"""A new evaluator is one class implementing the interface plus a registry line: the toy
bandit evaluator of ``toy_evaluator.py`` (a few dozen lines), trained by the shared
trainer and searched."""

from __future__ import annotations

import json

import numpy as np
import pytest

from discover.search import Search, SearchConfig
from discover.store import RunStore
from evaluators import registry
from evaluators.interface import Evaluation, Evaluator
from grammar import zoo


@pytest.fixture(scope="module")
def toy(monkeypatch_module):
    monkeypatch_module.setitem(registry.EVALUATORS, "toy", "toy_evaluator:ToyEvaluator")
    return registry.get("toy")()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def toy_store(tmp_path, name, config, toy, mirror):
    """A run store for a search on the toy evaluator."""
    return RunStore.create(str(tmp_path), name, {"search": config.to_dict(), "evaluator": "toy",
                                                 "experiment": toy.config.to_dict(), "grammar_name": mirror.name},
                           mirror.path)


def test_toy_evaluator_implements_the_interface(toy):
    assert isinstance(toy, Evaluator)
    names = ["dpo", "ipo", "sft"]
    ev = toy.evaluate([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names], [0, 1])
    assert ev.per_seed.shape == (3, 2) and ev.reasons == [None] * 3
    # Preference losses learn the reward ordering: well above the uniform reference (0).
    assert toy.baseline()[0] == pytest.approx(0.0, abs=1e-6)
    assert ev.fitness[0] > 30 and ev.fitness[1] > 30


@pytest.mark.slow
def test_search_runs_on_the_toy_evaluator(toy, mirror, tmp_path):
    config = SearchConfig(population=8, generations=2, es_trees=1, es_popsize=2, reevaluate=2, final_top=2,
                          holdout_seeds=(100, 101))
    store = toy_store(tmp_path, "toy-run", config, toy, mirror)
    search = Search(mirror, toy, config, store)
    search.run()
    assert len(search.history) == 2
    best = search.best()
    assert best is not None and best["fitness"] > 30
    final = search.final_evaluation(log=lambda m: None)
    assert {r["kind"] for r in final["rows"]} == {"discovered", "zoo"}
    assert final["reference"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert search.training_curves(final) == {}  # optional beyond the interface


def test_optional_abilities_are_declared():
    from evaluators.interface import ABILITIES, has_ability
    from evaluators.lm import LmEvaluator
    from evaluators.mujoco import MujocoEvaluator
    from evaluators.pairwise import PairwiseEvaluator

    assert MujocoEvaluator.abilities == {"trained_samples", "training_curves"}
    assert LmEvaluator.abilities == PairwiseEvaluator.abilities == {"trained_samples"}
    assert set(MujocoEvaluator.abilities) <= set(ABILITIES)
    assert issubclass(MujocoEvaluator, PairwiseEvaluator) and issubclass(LmEvaluator, PairwiseEvaluator)
    with pytest.raises(ValueError, match="unknown ability"):
        has_ability(MujocoEvaluator, "fly")


def test_effective_inputs_add_the_end_of_training(pendulum_evaluator, toy):
    """Effective forms are measured at the reference (t across [0, 1]) and at the policy the
    loss trained to (t = 1); an evaluator that cannot train one loss alone gives the first."""
    import numpy as np

    from evaluators.interface import effective_inputs

    dpo = zoo.ZOO["dpo"]
    ((start, end),) = effective_inputs(pendulum_evaluator, [dpo.expr], [dpo.constants], n=32)
    assert all(len(v) == 32 for v in (*start.values(), *end.values()))
    np.testing.assert_array_equal(start["logp_w"], start["ref_w"])  # the reference policy
    assert np.all(end["t"] == 1.0) and np.all(np.isfinite(end["logp_w"]))
    assert np.abs(end["logp_w"] - end["ref_w"]).max() > 1e-3  # the trained policy has moved
    ((only,),) = effective_inputs(toy, [dpo.expr], [dpo.constants], n=16)
    assert len(only["t"]) == 16


class FailsOnSeed:
    """The toy evaluator, except that the first run on ``seed`` in a per-candidate seed
    matrix (a rung-1 call of successive halving) fails."""

    def __init__(self, inner, seed):
        self.inner, self.seed = inner, seed

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def evaluate(self, exprs, constants, seeds, **kw):
        ev = self.inner.evaluate(exprs, constants, seeds, **kw)
        if np.ndim(seeds) == 2:
            failed = [i for i, row in enumerate(np.asarray(seeds)) if self.seed in row][:1]
            ev = Evaluation(ev.per_seed, [("boom" if i in failed else r) for i, r in enumerate(ev.reasons)],
                            ev.diagnostics, ev.timing)
        return ev


def test_a_rung_1_failure_names_its_seed(toy, mirror, tmp_path):
    config = SearchConfig(population=8, generations=1, es_trees=1, es_popsize=2, reevaluate=0, final_top=2,
                          holdout_seeds=(100, 101))
    store = toy_store(tmp_path, "toy-fail", config, toy, mirror)
    bad = config.inner_seeds[1]  # generation 0 screens on inner_seeds[0], so seed 1 is a rung-1 seed
    search = Search(mirror, FailsOnSeed(toy, bad), config, store)
    search.run()
    failed = [r for r in store.candidates() if r.get("rung") == 1 and r["fitness"] is None]
    assert len(failed) == 1 and failed[0]["reason"] == f"failed on seed {bad}: boom"
    assert failed[0]["per_seed"][failed[0]["seeds"].index(bad)] is None


@pytest.mark.slow
def test_the_toy_evaluator_runs_through_run_and_bench(monkeypatch, tmp_path):
    """Registered by one line, the toy is a task of `discover run` and `discover bench`: its
    own options at its own defaults, the options it lacks refused before any work; its run
    reads back through `show`, `export` and the Python API."""
    from test_cli import assert_user_error, in_process

    monkeypatch.setitem(registry.EVALUATORS, "toy", "toy_evaluator:ToyEvaluator")
    out = in_process("run", "--grammar", "mirror.yaml", "--task", "toy", "--population", "12", "--reevaluate", "0",
                     "--generations", "1", "--final-top", "2", "--steps", "20", "--name", "toy-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "task toy, 3 datasets of 256 pairs; reference scores 0.0" in " ".join(out.stdout.split())
    stored = json.loads((tmp_path / "results" / "toy-run" / "config.json").read_text())
    assert stored["evaluator"] == "toy"
    assert (stored["experiment"]["pairs"], stored["experiment"]["data_seeds"]) == (256, [0, 1, 2])  # its defaults
    assert stored["experiment"]["train"]["steps"] == 20
    # read back as any run: show, export and the Python API agree on loss 1
    shown = in_process("show", "toy-run", cwd=tmp_path)
    assert shown.returncode == 0 and "loss 1" in shown.stdout, shown.stderr[-3000:]
    exported = in_process("export", "toy-run", "--rank", "1", "-f", "jax", "-o", "-", cwd=tmp_path)
    assert exported.returncode == 0 and "def loss(" in exported.stdout, exported.stderr[-3000:]
    import discover

    run = discover.load("toy-run", str(tmp_path / "results"))
    assert run.equations[0]["number"] == 1 and run.source(1, "jax") == exported.stdout

    out = in_process("bench", "--task", "toy", "--losses", "dpo,ipo", "--seeds", "2", "--datasets", "2",
                     "--pairs", "64", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "bench-toy" / "results.json").read_text())
    assert (results["task"], results["setting"], results["data_seeds"]) == ("toy", None, [100, 101])
    assert results["config"]["pairs"] == 64 and {r["name"] for r in results["losses"]} == {"dpo", "ipo"}
    assert all(r["fitness"] is not None for r in results["losses"])

    for command in (("run", "--grammar", "mirror.yaml"), ("bench",)):
        assert_user_error(in_process(*command, "--task", "toy", "--segment", "5", "--eps", "0.1", cwd=tmp_path),
                          "--eps, --segment do not apply to --task toy (options of the mujoco and lm evaluators)")


def test_option_defaults_come_from_each_evaluators_configuration():
    from evaluators.lm import LmModelConfig
    from evaluators.mujoco.reference import ReferenceConfig

    assert registry.option_default("mujoco", "reference_steps") == ReferenceConfig().steps
    assert registry.option_default("lm", "reference_steps") == LmModelConfig().sft_steps
    assert registry.option_default("lm", "segment") is None  # a MuJoCo-only option


def test_prepare_datasets_reports_each_dataset_and_its_stages():
    from evaluators.interface import prepare_datasets, scaled

    heard = []

    def prepare(seed, stage):
        inner = scaled(stage, 0.0, 0.8)
        inner("building", 0.0)
        inner("building", 0.5)
        stage("reference", 0.8)
        return seed * 10

    out = prepare_datasets([3, 4], prepare, lambda ready, total, what: heard.append((ready, total, what)))
    assert out == [30, 40]
    assert heard == [(0.0, 2, "dataset 1/2: building"), (0.4, 2, "dataset 1/2: building"),
                     (0.8, 2, "dataset 1/2: reference"), (1.0, 2, "dataset 2/2: building"),
                     (1.4, 2, "dataset 2/2: building"), (1.8, 2, "dataset 2/2: reference"), (2.0, 2, "ready")]
    assert prepare_datasets([5], lambda seed, stage: stage("x", 0.5) or seed) == [5]  # progress is optional
