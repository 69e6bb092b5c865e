"""The MuJoCo evaluator: offline preference optimisation on locomotion data, scored by return.

For one configuration (task, dataset, reference, training and evaluation settings) it
builds or loads the preference dataset and the behaviour-cloned reference once, and then
scores any population of losses: every (loss, seed) trains a Gaussian MLP policy from
the reference with the shared trainer, and the trained policies are rolled out from the
same start states. Fitness is the normalised return 100 (R - R_random) / (R_expert -
R_random). The search, the bench and the report use it through
:class:`evaluators.interface.Evaluator`, so all of them train and score identically.

Likelihood: an action's likelihood is the probability of its bin (``TrainConfig.bins``
equal bins per action dimension on [-1, 1], the outer bins open), summed over the
segment's live steps, as a language model sums token log-probabilities.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from evaluators import datasets, fitness, reference, trainer
from evaluators import policies as policy_io
from evaluators.behaviour import BehaviourSet, load_behaviour
from evaluators.interface import (TRAINER_OPTIONS, TRAINING_PANEL, DataProgress, Evaluation, Option, OptionsMixin,
                                  Stage, encode, prepare_datasets, reference_terminals, scaled,
                                  trained_policy_terminals)
from evaluators.tasks import TASK_MODULES, get_task
from grammar.expr import Expr


@dataclasses.dataclass(frozen=True)
class MujocoConfig(OptionsMixin):
    """Everything that defines a MuJoCo evaluation; stored in run stores as "experiment"."""

    dataset: datasets.DatasetConfig = datasets.DatasetConfig()
    train: trainer.TrainConfig = trainer.TrainConfig()
    eval: fitness.EvalConfig = fitness.EvalConfig()
    reference: reference.ReferenceConfig = reference.ReferenceConfig()
    # Train on several datasets (data seeds; each with its own segments and reference):
    # a run with training seed s uses dataset data_seeds[s % len(data_seeds)]. Empty: the
    # one dataset of ``dataset.seed``.
    data_seeds: tuple[int, ...] = ()

    def validate(self) -> "MujocoConfig":
        from evaluators.errors import InputError

        self.dataset.validate()
        self.train.validate()
        self.eval.validate()
        self.reference.validate()
        get_task(self.dataset.task)
        if len(set(self.data_seeds)) != len(self.data_seeds):
            raise InputError(f"data seeds repeat: {list(self.data_seeds)}")
        if self.reference.bins != self.train.bins:
            raise InputError("the reference and the trainer must use the same action bins")
        return self

    # The options of `discover run` and `bench` (task, data_seed, eval_seed and
    # program_length are set by the commands themselves).
    OPTIONS = (
        Option("task", "dataset", "task"),
        Option("setting", "dataset", "setting", f"The data's defect: {', '.join(datasets.SETTINGS[:-1])} or "
               f"{datasets.SETTINGS[-1]}.", choices=datasets.SETTINGS),
        Option("eps", "dataset", "eps", "Label-flip probability (--setting noisy only)."),
        Option("pairs", "dataset", "pairs", "Pairs in each dataset."),
        Option("segment", "dataset", "segment", "Control steps per segment."),
        Option("label_horizon", "dataset", "label_horizon", "Steps whose return labels a pair."),
        Option("labels", "dataset", "labels", "expert (the expert continues both sides: labels judge the segment) "
               "or policy (each side's own policy continues it, as in v1 datasets).", choices=datasets.LABELS),
        Option("reference_steps", "reference", "steps", "Training steps of each dataset's reference policy."),
        Option("data_seed", "dataset", "seed"),
        *TRAINER_OPTIONS,
        Option("episodes", "eval", "episodes", "Evaluation episodes per trained policy.", TRAINING_PANEL),
        Option("backend", "eval", "backend", "Simulator (auto: MJX on accelerators).", TRAINING_PANEL,
               choices=fitness.BACKENDS),
        Option("eval_seed", "eval", "seed"),
    )
    TASKS = tuple(sorted(TASK_MODULES))

    def pair_description(self) -> str:
        return f"x {self.dataset.segment} steps"

    def seconds_per_run(self) -> float:
        """A conservative cost model of one training run and its scoring on a CPU core pair:
        about 2.5 us per (pair x control step x training step), and 1000-step episodes at
        about 150,000 physics steps per second (frame skip 4)."""
        t = self.train
        return t.steps * t.batch_pairs * self.dataset.segment * 2.5e-6 + self.eval.episodes * 1000 * 4 / 150_000

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "MujocoConfig":
        """A stored configuration; fields added since it was stored take the values it ran with."""
        return MujocoConfig(datasets.DatasetConfig.from_dict(d["dataset"]), trainer.TrainConfig.from_dict(d["train"]),
                            fitness.EvalConfig(**d["eval"]), reference.ReferenceConfig.from_dict(d["reference"]),
                            tuple(d.get("data_seeds", ())))


def segment_log_likelihood(params, obs, lo, hi, alive):
    """Summed binned log-likelihood of segments; leading axes are batch axes."""
    loc, std = policy_io.forward(params, obs, policy_io.TRAINED_SPEC, jnp)
    return (policy_io.binned_log_likelihood(loc, std, lo, hi) * alive).sum(axis=-1)


def pair_log_likelihood(params, inputs) -> jnp.ndarray:
    """(B, 2) log-likelihoods of both segments of B pairs (``inputs`` as :func:`prepare` makes)."""
    return segment_log_likelihood(params, inputs["obs"], inputs["lo"], inputs["hi"], inputs["alive"])


LIKELIHOOD = trainer.LikelihoodModel(pair_log_likelihood, frozen=policy_io.NORMALISER)


def prepare(dataset: datasets.PreferenceDataset, ref_params: dict, bins: int) -> trainer.PairData:
    """The dataset as device arrays: observations, bin edges of the actions, live-step masks
    ([:, 0] chosen, [:, 1] rejected) and the reference's log-likelihoods."""
    obs = np.stack([dataset.obs_w, dataset.obs_l], axis=1)
    act = np.stack([dataset.act_w, dataset.act_l], axis=1)
    alive = np.stack([dataset.alive_w, dataset.alive_l], axis=1).astype(np.float32)
    lo, hi = policy_io.bin_edges(act, bins)
    inputs = {"obs": jnp.asarray(obs), "lo": jnp.asarray(lo), "hi": jnp.asarray(hi), "alive": jnp.asarray(alive)}
    ref = {k: jnp.asarray(v, jnp.float32) for k, v in ref_params.items()}
    ref_logp = jax.jit(pair_log_likelihood)(ref, inputs)
    return trainer.PairData(inputs, ref_logp, jnp.asarray(alive.sum(axis=-1)))


@dataclasses.dataclass
class LoadedData:
    """One dataset of an evaluator: the pairs, where they are cached, the reference fitted
    to them, and both as device arrays for the trainer."""

    dataset: datasets.PreferenceDataset
    path: str
    reference: dict
    data: trainer.PairData


def load_data(config: MujocoConfig, behaviour: BehaviourSet, log: Callable[[str], None] | None,
              rebuild: bool = False, stage: Stage | None = None) -> LoadedData:
    """The dataset of ``config.dataset`` (built on a cache miss) and its reference; building
    takes about 80% of the time, the reference fit the rest."""
    ds, path, built = datasets.load_or_build(config.dataset, rebuild=rebuild, behaviour=behaviour, log=log,
                                             stage=scaled(stage, 0.0, 0.8))
    if built and log:
        s = ds.summary()
        log(f"dataset {path}: label agreement {s['label_agreement']:.3f}, flip rate {s['flip_rate']:.3f}")
    if stage:
        stage("reference (behaviour cloning)", 0.8)
    ref, _ = reference.load_or_fit(ds, path, config.reference, rebuild)
    return LoadedData(ds, path, ref, prepare(ds, ref, config.train.bins))


class MujocoEvaluator:
    """Datasets, references and prepared training data of one :class:`MujocoConfig`, loaded once."""

    name = "mujoco"
    Config = MujocoConfig
    reference_label = "BC"  # the reference is behaviour cloning of both sides of every pair

    def __init__(self, config: MujocoConfig, log: Callable[[str], None] | None = None, rebuild: bool = False,
                 progress: DataProgress | None = None):
        self.config = config.validate()
        self.log = log
        self.task = get_task(config.dataset.task)
        self.behaviour: BehaviourSet = load_behaviour(config.dataset.task)
        self.loaded = prepare_datasets(
            config.seeds_of_data,
            lambda seed, stage: load_data(config.with_options(data_seed=seed), self.behaviour, log, rebuild, stage),
            progress)
        first = self.loaded[0]
        self.dataset, self.dataset_path, self.reference, self.data = first.dataset, first.path, first.reference, \
            first.data
        self.training = trainer.TrainingData([d.reference for d in self.loaded], [d.data for d in self.loaded])
        self._reference_score: tuple[float, float] | None = None

    def _train(self, programs, consts, seeds, cfg: trainer.TrainConfig, progress=None) -> trainer.PopulationResult:
        return self.training.train(programs, consts, seeds, LIKELIHOOD, cfg, progress)

    @property
    def program_shape(self):
        return self.config.train.shape

    # -- the interface
    def evaluate(self, exprs: Sequence[Expr], constants: Sequence[dict], seeds: Sequence[int] | np.ndarray,
                 *, eval_seed: int | None = None) -> Evaluation:
        """Trains every loss with every seed (seed s on dataset s mod D), then scores the
        trained policies."""
        programs, consts = encode(exprs, constants, self.program_shape)
        t0 = time.perf_counter()
        result = self._train(programs, consts, seeds, self.config.train,
                             trainer.Progress(self.log) if self.log else None)
        t1 = time.perf_counter()
        per_seed, returns = fitness.score_population(self.task, self.behaviour, result, self._eval_config(eval_seed))
        t2 = time.perf_counter()
        P = len(programs)
        return Evaluation(per_seed, [result.reason(p) for p in range(P)],
                          diagnostics={"train_accuracy": result.train_accuracy, "final_loss": result.final_loss,
                                       "reward_w": result.reward_w, "reward_l": result.reward_l,
                                       "returns": returns},
                          timing={"train_s": t1 - t0, "score_s": t2 - t1})

    def terminal_sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return reference_terminals(self.data, n, rng)

    def trained_samples(self, exprs: Sequence[Expr], constants: Sequence[dict], n: int,
                        rng: np.random.Generator) -> list[dict[str, np.ndarray] | None]:
        """Terminals at the end of training (see :func:`trained_policy_terminals`)."""
        return trained_policy_terminals(lambda p, c, s: self._train(p, c, s, self.config.train), LIKELIHOOD,
                                        self.data, exprs, constants, self.program_shape, n, rng)

    def baseline(self) -> tuple[float, float]:
        """The reference's normalised score: mean and std over 4x the evaluation episodes; with
        several datasets, the mean of their references' scores and the std over datasets."""
        if len(self.loaded) == 1:
            return self.reference_score()
        if self._reference_score is None:
            ev = dataclasses.replace(self.config.eval, episodes=self.config.eval.episodes * 4)
            means = [fitness.score_policy(self.task, self.behaviour, d.reference, ev)[0] for d in self.loaded]
            self._reference_score = (float(np.mean(means)), float(np.std(means, ddof=1)))
        return self._reference_score

    def describe(self) -> dict[str, Any]:
        b = self.behaviour
        return {
            "evaluator": self.name, "config": self.config.to_dict(),
            "task": self.config.dataset.task, "setting": self.config.dataset.setting,
            "dataset": {"path": self.dataset_path, **self.dataset.summary()},
            "datasets": [{"seed": seed, "path": d.path, **d.dataset.summary()}
                         for seed, d in zip(self.config.seeds_of_data, self.loaded)],
            "behaviour": {"names": list(b.names), "returns": list(b.returns), "random_return": b.random_return,
                          "expert_return": b.expert_return, "normalised": [float(v) for v in b.normalise(b.returns)]},
            "train": trainer.describe(self.config.train),
        }

    # -- beyond the interface
    def _eval_config(self, eval_seed: int | None) -> fitness.EvalConfig:
        """The evaluation settings, on other start states when ``eval_seed`` is given."""
        return self.config.eval if eval_seed is None else dataclasses.replace(self.config.eval, seed=eval_seed)

    def training_curves(self, exprs: Sequence[Expr], constants: Sequence[dict], seeds: Sequence[int],
                        points: int = 8, eval_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Normalised return during training: (steps (K,), scores (P, S, K)), at K equally
        spaced steps, K the largest divisor of the training steps up to ``points`` (so any
        number of steps works)."""
        points = max(k for k in range(1, points + 1) if self.config.train.steps % k == 0)
        cfg = dataclasses.replace(self.config.train, snapshots=points).validate()
        programs, consts = encode(exprs, constants, self.program_shape)
        result = self._train(programs, consts, seeds, cfg)
        scores = fitness.score_snapshots(self.task, self.behaviour, result, self._eval_config(eval_seed))
        steps = np.arange(1, points + 1) * (cfg.steps // points)
        return steps, scores

    def reference_score(self, episodes: int | None = None) -> tuple[float, float]:
        if self._reference_score is None or episodes:
            ev = dataclasses.replace(self.config.eval, episodes=episodes or self.config.eval.episodes * 4)
            self._reference_score = fitness.score_policy(self.task, self.behaviour, self.reference, ev)
        return self._reference_score
