"""One place that turns (dataset, reference, training and evaluation settings) into a
scoring function for a population of losses: used by the bench, the search and the
report, so that all of them train and score in exactly the same way."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import numpy as np

from evaluators import datasets, fitness, reference, trainer
from evaluators.behaviour import BehaviourSet, load_behaviour
from evaluators.tasks import get_task
from grammar import interpreter
from grammar.expr import Expr


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    dataset: datasets.DatasetConfig = datasets.DatasetConfig()
    train: trainer.TrainConfig = trainer.TrainConfig()
    eval: fitness.EvalConfig = fitness.EvalConfig()
    reference: reference.ReferenceConfig = reference.ReferenceConfig()

    def validate(self) -> "ExperimentConfig":
        self.dataset.validate()
        self.train.validate()
        self.eval.validate()
        if self.reference.bins != self.train.bins:
            raise ValueError("the reference and the trainer must use the same action bins")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "ExperimentConfig":
        ref = dict(d["reference"])
        ref["hidden"] = tuple(ref["hidden"])
        return ExperimentConfig(datasets.DatasetConfig(**d["dataset"]), trainer.TrainConfig(**d["train"]),
                                fitness.EvalConfig(**d["eval"]), reference.ReferenceConfig(**ref))


class Experiment:
    """Dataset, reference and prepared training data of one configuration, loaded once."""

    def __init__(self, config: ExperimentConfig, log: Callable[[str], None] | None = None,
                 rebuild: bool = False):
        self.config = config.validate()
        self.task = get_task(config.dataset.task)
        self.behaviour: BehaviourSet = load_behaviour(config.dataset.task)
        self.dataset, self.dataset_path, built = datasets.load_or_build(
            config.dataset, rebuild=rebuild, behaviour=self.behaviour, log=log)
        if built and log:
            s = self.dataset.summary()
            log(f"dataset {self.dataset_path}: label agreement {s['label_agreement']:.3f}, "
                f"flip rate {s['flip_rate']:.3f}")
        self.reference, _ = reference.load_or_fit(self.dataset, self.dataset_path, config.reference, rebuild)
        self.data = trainer.prepare(self.dataset, self.reference, config.train)
        self._reference_score: tuple[float, float] | None = None

    def encode(self, exprs: Sequence[Expr], constants: Sequence[dict]) -> tuple[list, np.ndarray]:
        shape = self.config.train.shape
        programs = [interpreter.encode(e, shape) for e in exprs]
        consts = np.stack([p.constant_vector(c, shape) for p, c in zip(programs, constants)])
        return programs, consts

    def evaluate(self, exprs: Sequence[Expr], constants: Sequence[dict], seeds: Sequence[int] | np.ndarray,
                 eval_seed: int | None = None) -> tuple[fitness.Scores, trainer.PopulationResult, dict]:
        """Trains every loss with every seed, then scores the trained policies."""
        programs, consts = self.encode(exprs, constants)
        t0 = time.perf_counter()
        result = trainer.train_population(programs, consts, np.asarray(seeds), self.reference, self.data,
                                          self.config.train)
        t1 = time.perf_counter()
        ev = self._eval_config(eval_seed)
        scores = fitness.score_population(self.task, self.behaviour, result, ev)
        t2 = time.perf_counter()
        return scores, result, {"train_s": t1 - t0, "score_s": t2 - t1}

    def _eval_config(self, eval_seed: int | None):
        """The evaluation settings, on other start states when ``eval_seed`` is given."""
        return self.config.eval if eval_seed is None else dataclasses.replace(self.config.eval, seed=eval_seed)

    def training_curves(self, exprs: Sequence[Expr], constants: Sequence[dict], seeds: Sequence[int],
                        points: int = 8, eval_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Normalised return after every steps/points training steps: (steps (K,), scores (P, S, K))."""
        cfg = dataclasses.replace(self.config.train, snapshots=points).validate()
        programs, consts = self.encode(exprs, constants)
        result = trainer.train_population(programs, consts, np.asarray(seeds), self.reference, self.data, cfg)
        ev = self._eval_config(eval_seed)
        scores = fitness.score_snapshots(self.task, self.behaviour, result, ev)
        steps = np.arange(1, points + 1) * (cfg.steps // points)
        return steps, scores

    def reference_score(self, episodes: int | None = None) -> tuple[float, float]:
        if self._reference_score is None or episodes:
            ev = dataclasses.replace(self.config.eval, episodes=episodes or self.config.eval.episodes * 4)
            self._reference_score = fitness.score_policy(self.task, self.behaviour, self.reference, ev)
        return self._reference_score
