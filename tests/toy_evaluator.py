"""A toy evaluator for tests: single-token responses with a known reward, trained by the
shared trainer. Shows that a new evaluator is one class implementing the interface, with a
configuration that declares its options and its task (``discover run --task toy``)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from evaluators import trainer
from evaluators.interface import TRAINER_OPTIONS, Evaluation, Option, OptionsMixin, encode, prepare_datasets

K = 8  # responses are single tokens 0..K-1; token k has reward k / (K - 1)
REWARD = np.linspace(0.0, 1.0, K)


def token_log_likelihood(params, inputs):
    """(B, 2) log-probabilities of the chosen and rejected tokens under a softmax policy."""
    return jax.nn.log_softmax(params["logits"])[inputs["tokens"]]


TOY_MODEL = trainer.LikelihoodModel(token_log_likelihood)


@dataclasses.dataclass(frozen=True)
class ToyConfig(OptionsMixin):
    pairs: int = 256
    seed: int = 0
    train: trainer.TrainConfig = trainer.TrainConfig(steps=40, batch_pairs=16, learning_rate=0.2)
    data_seeds: tuple[int, ...] = ()

    OPTIONS = (Option("pairs", "", "pairs", "Token pairs in each dataset."), Option("data_seed", "", "seed"),
               *TRAINER_OPTIONS)
    TASKS = ("toy",)

    def validate(self):
        return self

    def seconds_per_run(self) -> float:
        return 0.01

    def to_dict(self):
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d):
        return ToyConfig(d["pairs"], d.get("seed", 0), trainer.TrainConfig(**d["train"]), tuple(d.get("data_seeds", ())))


def toy_data(pairs: int, seed: int) -> trainer.PairData:
    """``pairs`` pairs of uniformly drawn tokens, the better one chosen, at the uniform reference."""
    tokens = np.random.default_rng(seed).integers(0, K, size=(pairs, 2))
    tokens = np.where((REWARD[tokens[:, :1]] >= REWARD[tokens[:, 1:]]), tokens, tokens[:, ::-1])
    ref = jnp.full(tokens.shape, -np.log(K), jnp.float32)
    return trainer.PairData({"tokens": jnp.asarray(tokens)}, ref, jnp.ones(tokens.shape, jnp.float32))


class ToyEvaluator:
    """Pairs of uniformly drawn tokens, labelled by reward; fitness = expected reward, 0 for
    the uniform reference and 100 for the best token."""

    name = "toy"
    reference_label = "uniform"
    abilities = frozenset()  # none of the optional ones
    Config = ToyConfig

    def __init__(self, config: ToyConfig = ToyConfig(), log=None, progress=None):
        self.config = config
        self.reference = {"logits": np.zeros(K, np.float32)}
        datasets = prepare_datasets(config.seeds_of_data, lambda seed, stage: toy_data(config.pairs, seed), progress)
        self.data = datasets[0]
        self.training = trainer.TrainingData([self.reference] * len(datasets), datasets)
        self.program_shape = config.train.shape

    def score(self, logits):
        """Each policy's score on its own (row by row in float64: a population's scores do not
        depend on which others it is scored with)."""
        z = np.asarray(logits, np.float64)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        return 100 * ((p * REWARD).sum(axis=-1) - REWARD.mean()) / (REWARD.max() - REWARD.mean())

    def evaluate(self, exprs, constants, seeds, *, eval_seed=None):
        programs, consts = encode(exprs, constants, self.program_shape)
        result = self.training.train(programs, consts, np.asarray(seeds), TOY_MODEL, self.config.train)
        return Evaluation(self.score(result.params["logits"]), [result.reason(p) for p in range(len(exprs))],
                          diagnostics={"train_accuracy": result.train_accuracy, "final_loss": result.final_loss,
                                       "reward_w": result.reward_w, "reward_l": result.reward_l})

    def terminal_sample(self, n, rng):
        idx = rng.integers(0, self.data.size, n)
        ref, lengths = np.asarray(self.data.ref_logp)[idx], np.asarray(self.data.lengths)[idx]
        return {"logp_w": ref[:, 0], "logp_l": ref[:, 1], "ref_w": ref[:, 0], "ref_l": ref[:, 1],
                "len_w": lengths[:, 0], "len_l": lengths[:, 1]}

    def baseline(self):
        return float(self.score(self.reference["logits"])), 0.0

    def describe(self):
        return {"evaluator": self.name, "config": self.config.to_dict()}
