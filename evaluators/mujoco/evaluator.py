"""The MuJoCo evaluator: offline preference optimisation on locomotion data, scored by return.

For one configuration (task, dataset, reference, training and evaluation settings) it
builds or loads the preference dataset and the behaviour-cloned reference once, and then
scores any population of losses: every (loss, seed) trains a Gaussian MLP policy from
the reference with the shared trainer, and the trained policies are rolled out from the
same start states. Fitness is the normalised return 100 (R - R_random) / (R_expert -
R_random). The search, the bench and the report use it through
:class:`evaluators.interface.Evaluator`, so all of them train and score identically; the
skeleton it shares with the token task is :class:`evaluators.pairwise.PairwiseEvaluator`.

Likelihood: an action's likelihood is the probability of its bin (``TrainConfig.bins``
equal bins per action dimension on [-1, 1], the outer bins open), summed over the
segment's live steps, as a language model sums token log-probabilities.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import evaluators.mujoco.datasets as datasets
import evaluators.mujoco.fitness as fitness
import evaluators.mujoco.policies as policy_io
import evaluators.mujoco.reference as reference
from evaluators import trainer
from evaluators.interface import Stage, encode, scaled
from evaluators.mujoco.behaviour import BehaviourSet, load_behaviour
from evaluators.mujoco.config import MujocoConfig
from evaluators.mujoco.tasks import get_task
from evaluators.pairwise import LoadedData, PairwiseEvaluator
from grammar.expr import Expr


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



class MujocoEvaluator(PairwiseEvaluator):
    """Datasets, references and prepared training data of one :class:`MujocoConfig`, loaded
    once; fitness is the normalised return of the trained policies."""

    name = "mujoco"
    Config = MujocoConfig
    reference_label = "BC"  # the reference is behaviour cloning of both sides of every pair
    likelihood = LIKELIHOOD
    abilities = PairwiseEvaluator.abilities | {"training_curves"}

    def __init__(self, config: MujocoConfig, log: Callable[[str], None] | None = None, rebuild: bool = False,
                 progress=None):
        config = config.validate()
        self.task = get_task(config.dataset.task)
        self.behaviour: BehaviourSet = load_behaviour(config.dataset.task)
        self._reference_score: tuple[float, float] | None = None
        super().__init__(config, log, rebuild, progress)

    def load_dataset(self, config: MujocoConfig, rebuild: bool, stage: Stage) -> LoadedData:
        """One dataset of the suite (built on a cache miss) and its behaviour-cloned reference,
        prepared."""
        return load_data(config, self.behaviour, self.log, rebuild, stage)

    def score(self, result, seeds, eval_seed, timing):
        """Normalised returns, and the raw returns (P, S, episodes) as ``returns``."""
        per_seed, returns = fitness.score_population(self.task, self.behaviour, result, self._eval_config(eval_seed))
        return per_seed, {"returns": returns}

    def reference_score(self, loaded: LoadedData) -> float:
        """A reference's mean normalised score over 4x the evaluation episodes."""
        ev = dataclasses.replace(self.config.eval, episodes=self.config.eval.episodes * 4)
        return fitness.score_policy(self.task, self.behaviour, loaded.reference, ev)[0]

    def baseline(self) -> tuple[float, float]:
        """The reference's normalised score: mean and std over 4x the evaluation episodes; with
        several datasets, the mean of their references' scores and the std over datasets."""
        if len(self.loaded) == 1:
            return self.first_reference_score()
        if self._reference_score is None:
            self._reference_score = super().baseline()
        return self._reference_score

    def describe_scoring(self) -> dict:
        """How this evaluator scores a policy, for run stores and reports."""
        b = self.behaviour
        return {"behaviour": {"names": list(b.names), "returns": list(b.returns), "random_return": b.random_return,
                              "expert_return": b.expert_return,
                              "normalised": [float(v) for v in b.normalise(b.returns)]}}

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
        result = self.train(programs, consts, seeds, cfg)
        scores = fitness.score_snapshots(self.task, self.behaviour, result, self._eval_config(eval_seed))
        steps = np.arange(1, points + 1) * (cfg.steps // points)
        return steps, scores

    def first_reference_score(self, episodes: int | None = None) -> tuple[float, float]:
        """The first dataset's reference: mean and std over episodes (4x the evaluation
        episodes unless ``episodes``)."""
        if self._reference_score is None or episodes:
            ev = dataclasses.replace(self.config.eval, episodes=episodes or self.config.eval.episodes * 4)
            self._reference_score = fitness.score_policy(self.task, self.behaviour, self.reference, ev)
        return self._reference_score
