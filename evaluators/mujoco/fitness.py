"""Fitness: the normalised return of trained policies, scored by simulation.

score = 100 (R - R_random) / (R_expert - R_random), where R_random is the return of
uniformly random actions and R_expert that of the best behaviour policy. A candidate's
fitness is the mean over its inner seeds and evaluation episodes; its spread is the
standard deviation over inner seeds of the per-seed means. Every candidate is evaluated
from the same initial states (common random numbers). A candidate whose training went
non-finite gets no fitness (the worst) and keeps the reason.
"""

from __future__ import annotations

import numpy as np

from evaluators.mujoco.behaviour import BehaviourSet
# The evaluation's configuration lives with the wing's configuration; re-exported here.
from evaluators.mujoco.config import BACKENDS, EvalConfig  # noqa: F401
from evaluators.mujoco.policies import TRAINED_SPEC
from evaluators.mujoco.tasks import Task
from evaluators.trainer import PopulationResult


def evaluate_returns(task: Task, stacked: dict, episodes: int, config: EvalConfig, spec=TRAINED_SPEC) -> np.ndarray:
    """(N, episodes) deterministic returns of N stacked policies on the chosen backend."""
    backend = config.validate().resolved_backend()
    if backend == "mjx":
        from evaluators.mujoco.backends import mjx

        return mjx.evaluate_returns(task, stacked, spec, episodes, config.seed, config.horizon)
    from evaluators.mujoco.backends import native

    return native.evaluate_returns(task, stacked, spec, episodes, config.seed, horizon=config.horizon)


def score_population(task: Task, behaviour: BehaviourSet, result: PopulationResult,
                     config: EvalConfig) -> tuple[np.ndarray, np.ndarray]:
    """(normalised score per run (P, S), raw returns (P, S, episodes)) of trained policies."""
    P, S = result.status.shape
    flat = {k: v.reshape((P * S,) + v.shape[2:]) for k, v in result.params.items()}
    returns = evaluate_returns(task, flat, config.episodes, config).reshape(P, S, config.episodes)
    return behaviour.normalise(returns.mean(axis=2)), returns


def score_snapshots(task: Task, behaviour: BehaviourSet, result: PopulationResult, config: EvalConfig) -> np.ndarray:
    """(P, S, K) normalised scores of the K parameter snapshots of every run (training curves)."""
    P, S = result.status.shape
    K = next(iter(result.params.values())).shape[2]
    flat = {k: v.reshape((P * S * K,) + v.shape[3:]) for k, v in result.params.items()}
    returns = evaluate_returns(task, flat, config.episodes, config).reshape(P, S, K, config.episodes)
    return behaviour.normalise(returns.mean(axis=3))


def score_policy(task: Task, behaviour: BehaviourSet, params: dict, config: EvalConfig, spec=TRAINED_SPEC):
    """(mean, std over episodes) normalised score of one policy (e.g. the reference)."""
    stacked = {k: np.asarray(v)[None] for k, v in params.items()}
    r = behaviour.normalise(evaluate_returns(task, stacked, config.episodes, config, spec)[0])
    return float(r.mean()), float(r.std())
