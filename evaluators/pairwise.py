"""What every pairwise-preference evaluator shares, as evosax's algorithms share a base.

Such an evaluator holds one or more datasets of (chosen, rejected) pairs, each with a
reference policy fitted to it; it trains a policy per (loss, seed) from the reference of
dataset ``seed mod D`` with the shared trainer (:mod:`evaluators.trainer`) under its own
likelihood model, and scores the trained policies its own way. :class:`PairwiseEvaluator`
owns the skeleton (the datasets loop, the trainer's data, encoding, training, timing, the
trainer's diagnostics, the validity gates' sample, trained samples, the baseline over
datasets, the description); a subclass writes only what differs:

- :attr:`~PairwiseEvaluator.likelihood`: its :class:`~evaluators.trainer.LikelihoodModel`;
- :meth:`~PairwiseEvaluator.load_dataset`: one dataset and its reference (a :class:`LoadedData`);
- :meth:`~PairwiseEvaluator.score`: the scores of trained policies, and its own diagnostics;
- :meth:`~PairwiseEvaluator.reference_score`: one dataset's reference on the fitness scale;
- :meth:`~PairwiseEvaluator.describe_scoring`: what its scores are measured against (JSON).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import numpy as np

from evaluators import trainer
from evaluators.interface import (DataProgress, Evaluation, Stage, encode, prepare_datasets, reference_terminals,
                                  run_scores, trained_policy_terminals)
from grammar.expr import Expr


@dataclasses.dataclass
class LoadedData:
    """One dataset of an evaluator: the pairs, where they are cached, the reference fitted
    to them (parameters), and both as device arrays for the trainer."""

    dataset: Any
    path: str
    reference: dict
    data: trainer.PairData


class PairwiseEvaluator:
    """The shared part of an :class:`evaluators.interface.Evaluator` that trains on
    pairwise preferences (module docstring). Built as ``Evaluator(config, log=None,
    rebuild=False, progress=None)``; ``config`` is validated whole before any dataset is
    prepared. The first dataset is also ``dataset``, ``dataset_path``, ``reference`` and
    ``data``."""

    name: str
    Config: type
    reference_label = "reference"
    likelihood: trainer.LikelihoodModel
    # Optional abilities beyond the interface (interface.ABILITIES): every pairwise
    # evaluator can say where its trained policies put a loss's inputs.
    abilities: frozenset[str] = frozenset({"trained_samples"})

    def __init__(self, config, log: Callable[[str], None] | None = None, rebuild: bool = False,
                 progress: DataProgress | None = None):
        self.config = config.validate()
        self.log = log
        self.loaded: list[LoadedData] = prepare_datasets(
            config.seeds_of_data,
            lambda seed, stage: self.load_dataset(config.with_options(data_seed=seed), rebuild, stage), progress)
        first = self.loaded[0]
        self.dataset, self.dataset_path, self.reference, self.data = first.dataset, first.path, first.reference, \
            first.data
        self.training = trainer.TrainingData([d.reference for d in self.loaded], [d.data for d in self.loaded])

    # -- what a subclass writes
    def load_dataset(self, config, rebuild: bool, stage: Stage) -> LoadedData:
        """The dataset of ``config`` (this evaluator's configuration for one data seed),
        built on a cache miss (``rebuild``: always), its reference and the trainer's arrays;
        ``stage`` reports the preparation's progress."""
        raise NotImplementedError

    def score(self, result: trainer.PopulationResult, seeds: np.ndarray, eval_seed: int | None,
              timing: dict[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(P, S) scores of the trained policies of ``result`` and the evaluator's own (P, S,
        ...) diagnostics; ``timing`` may take its phases in seconds (``score_s``, the time
        of this call, unless it sets it)."""
        raise NotImplementedError

    def reference_score(self, loaded: LoadedData) -> float:
        """The score of one dataset's reference policy."""
        raise NotImplementedError

    def describe_scoring(self) -> dict[str, Any]:
        """What the scores are measured against (behaviour policies, a random baseline), for
        :meth:`describe`."""
        return {}

    # -- the interface
    @property
    def program_shape(self):
        """The shape losses are encoded to (the trainer's)."""
        return self.config.train.shape

    def train(self, programs, consts, seeds, cfg: trainer.TrainConfig | None = None,
              progress=None) -> trainer.PopulationResult:
        """Every program with every seed, seed s on dataset s mod D (``cfg``: the
        configuration's training settings unless given)."""
        return self.training.train(programs, consts, seeds, self.likelihood, cfg or self.config.train, progress)

    def evaluate(self, exprs: Sequence[Expr], constants: Sequence[dict], seeds: Sequence[int] | np.ndarray,
                 *, eval_seed: int | None = None) -> Evaluation:
        """Trains every loss with every seed (seed s on dataset s mod D), then scores the
        trained policies; the diagnostics are the trainer's and the evaluator's own."""
        programs, consts = encode(exprs, constants, self.program_shape)
        t0 = time.perf_counter()
        result = self.train(programs, consts, seeds, progress=trainer.Progress(self.log) if self.log else None)
        t1 = time.perf_counter()
        timing = {"train_s": t1 - t0}
        per_seed, diagnostics = self.score(result, np.asarray(seeds), eval_seed, timing)
        timing.setdefault("score_s", time.perf_counter() - t1)
        return Evaluation(per_seed, [result.reason(p) for p in range(len(programs))],
                          diagnostics={"train_accuracy": result.train_accuracy, "final_loss": result.final_loss,
                                       "reward_w": result.reward_w, "reward_l": result.reward_l,
                                       "run_score": run_scores(per_seed, result.status), **diagnostics},
                          timing=timing)

    def terminal_sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Terminals of ``n`` pairs of the first dataset at the reference."""
        return reference_terminals(self.data, n, rng)

    def trained_samples(self, exprs: Sequence[Expr], constants: Sequence[dict], n: int,
                        rng: np.random.Generator) -> list[dict[str, np.ndarray] | None]:
        """Terminals at the end of training (see :func:`~evaluators.interface.trained_policy_terminals`)."""
        return trained_policy_terminals(lambda p, c, s: self.train(p, c, s), self.likelihood, self.data, exprs,
                                        constants, self.program_shape, n, rng)

    def baseline(self) -> tuple[float, float]:
        """The references' score: the mean over datasets, and the std over datasets (0 with one)."""
        scores = [self.reference_score(d) for d in self.loaded]
        return float(np.mean(scores)), float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0

    def describe(self) -> dict[str, Any]:
        """Configuration, every dataset's seed, path and summary, and the scoring's anchors."""
        return {
            "evaluator": self.name, "config": self.config.to_dict(), "task": self.config.task,
            "setting": self.config.option("setting"),
            "dataset": {"path": self.dataset_path, **self.dataset.summary()},
            "datasets": [{"seed": seed, "path": d.path, **d.dataset.summary()}
                         for seed, d in zip(self.config.seeds_of_data, self.loaded)],
            **self.describe_scoring(),
            "train": trainer.describe(self.config.train),
        }
