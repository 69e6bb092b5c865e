"""A new evaluator is one class implementing the interface plus a registry line: a toy
bandit evaluator in a few dozen lines, trained by the shared trainer and searched."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from discover.search import Search, SearchConfig
from discover.store import RunStore
from evaluators import registry, trainer
from evaluators.interface import Evaluation, Evaluator, encode
from grammar import zoo

K = 8  # responses are single tokens 0..K-1; token k has reward k / (K - 1)
REWARD = np.linspace(0.0, 1.0, K)


def token_log_likelihood(params, inputs):
    """(B, 2) log-probabilities of the chosen and rejected tokens under a softmax policy."""
    return jax.nn.log_softmax(params["logits"])[inputs["tokens"]]


TOY_MODEL = trainer.LikelihoodModel(token_log_likelihood)


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    pairs: int = 256
    train: trainer.TrainConfig = trainer.TrainConfig(steps=40, batch_pairs=16, learning_rate=0.2)

    def validate(self):
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d):
        return ToyConfig(d["pairs"], trainer.TrainConfig(**d["train"]))


class ToyEvaluator:
    """Pairs of uniformly drawn tokens, labelled by reward; fitness = expected reward, 0 for
    the uniform reference and 100 for the best token."""

    name = "toy"
    Config = ToyConfig

    def __init__(self, config: ToyConfig = ToyConfig(), log=None):
        self.config = config
        rng = np.random.default_rng(0)
        tokens = rng.integers(0, K, size=(config.pairs, 2))
        tokens = np.where((REWARD[tokens[:, :1]] >= REWARD[tokens[:, 1:]]), tokens, tokens[:, ::-1])
        self.reference = {"logits": np.zeros(K, np.float32)}
        ref = jnp.full(tokens.shape, -np.log(K), jnp.float32)
        self.data = trainer.PairData({"tokens": jnp.asarray(tokens)}, ref, jnp.ones(tokens.shape, jnp.float32))
        self.program_shape = config.train.shape

    def score(self, logits):
        p = jax.nn.softmax(jnp.asarray(logits), axis=-1)
        return np.asarray(100 * (p @ REWARD - REWARD.mean()) / (REWARD.max() - REWARD.mean()))

    def evaluate(self, exprs, constants, seeds, *, eval_seed=None):
        programs, consts = encode(exprs, constants, self.program_shape)
        result = trainer.train_population(programs, consts, np.asarray(seeds), self.reference, self.data,
                                          TOY_MODEL, self.config.train)
        return Evaluation(self.score(result.params["logits"]), [result.reason(p) for p in range(len(exprs))],
                          diagnostics={"train_accuracy": result.train_accuracy, "final_loss": result.final_loss})

    def terminal_sample(self, n, rng):
        idx = rng.integers(0, self.data.size, n)
        ref, lengths = np.asarray(self.data.ref_logp)[idx], np.asarray(self.data.lengths)[idx]
        return {"logp_w": ref[:, 0], "logp_l": ref[:, 1], "ref_w": ref[:, 0], "ref_l": ref[:, 1],
                "len_w": lengths[:, 0], "len_l": lengths[:, 1]}

    def baseline(self):
        return float(self.score(self.reference["logits"])), 0.0

    def describe(self):
        return {"evaluator": self.name, "config": self.config.to_dict()}


@pytest.fixture(scope="module")
def toy(monkeypatch_module):
    monkeypatch_module.setitem(registry.EVALUATORS, "toy", f"{__name__}:ToyEvaluator")
    return registry.get("toy")()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_toy_evaluator_implements_the_interface(toy):
    assert isinstance(toy, Evaluator)
    names = ["dpo", "ipo", "sft"]
    ev = toy.evaluate([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names], [0, 1])
    assert ev.per_seed.shape == (3, 2) and ev.reasons == [None] * 3
    # Preference losses learn the reward ordering: well above the uniform reference (0).
    assert toy.baseline()[0] == pytest.approx(0.0, abs=1e-6)
    assert ev.fitness[0] > 30 and ev.fitness[1] > 30


def test_search_runs_on_the_toy_evaluator(toy, mirror, tmp_path):
    config = SearchConfig(population=8, generations=2, es_trees=1, es_popsize=2, reevaluate=2, final_top=2,
                          holdout_seeds=(100, 101))
    store = RunStore.create(str(tmp_path), "toy-run", {"search": config.to_dict(), "evaluator": "toy",
                                                       "experiment": toy.config.to_dict(),
                                                       "grammar_name": mirror.name}, mirror.path)
    search = Search(mirror, toy, config, store)
    search.run()
    assert len(search.history) == 2
    best = search.best()
    assert best is not None and best["fitness"] > 30
    final = search.final_evaluation(log=lambda m: None)
    assert {r["kind"] for r in final["rows"]} == {"discovered", "zoo"}
    assert final["reference"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert search.training_curves(final) == {}  # optional beyond the interface
