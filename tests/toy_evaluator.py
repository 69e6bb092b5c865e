"""A toy evaluator for tests: single-token responses with a known reward, trained by the
shared trainer. Shows that a new evaluator is one class implementing the interface."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from evaluators import trainer
from evaluators.interface import Evaluation, encode

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
    reference_label = "uniform"
    Config = ToyConfig

    def __init__(self, config: ToyConfig = ToyConfig(), log=None, progress=None):
        self.config = config
        rng = np.random.default_rng(0)
        tokens = rng.integers(0, K, size=(config.pairs, 2))
        tokens = np.where((REWARD[tokens[:, :1]] >= REWARD[tokens[:, 1:]]), tokens, tokens[:, ::-1])
        self.reference = {"logits": np.zeros(K, np.float32)}
        ref = jnp.full(tokens.shape, -np.log(K), jnp.float32)
        self.data = trainer.PairData({"tokens": jnp.asarray(tokens)}, ref, jnp.ones(tokens.shape, jnp.float32))
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
