"""The one interface between the search and whatever scores a loss.

An evaluator turns a population of losses into fitness, in the spirit of evosax's
``Problem.eval``: the search, the bench, the report and the CLI see nothing else. It
trains a policy per (loss, seed) with the shared offline trainer
(:func:`evaluators.trainer.train_population`, generic over the evaluator's
log-likelihood) and scores the trained policies its own way (simulated return for
MuJoCo, ground-truth reward for a token task, ...). To add one, implement
:class:`Evaluator` in one file and name it in :mod:`evaluators.registry`.

Fitness is "higher is better" on the evaluator's own normalised scale (for the MuJoCo
suite: 100 x (R - R_random) / (R_expert - R_random)). A candidate that failed (a
non-finite loss, gradient or parameter during training) has no fitness and a reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

# The option surface lives in its own JAX-free module; its names are re-exported here.
from evaluators.options import (DATA_PANEL, SET_BY_COMMANDS, TRAINER_OPTIONS, TRAINING_PANEL, Option,  # noqa: F401
                                OptionsMixin, Provenance)
from grammar import interpreter
from grammar.expr import Expr

# The terminals an evaluator provides per pair, in the interpreter's order.
PAIR_TERMINALS = ("logp_w", "logp_l", "ref_w", "ref_l", "len_w", "len_l")


def run_scores(per_seed: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Each run's own score (P, S), nan where that run failed (``status`` != 0): the
    diagnostic ``run_score``. An :class:`Evaluation` keeps no score for any seed of a
    candidate with a failed run; this keeps the scores of its runs that trained, so that a
    report can score the failed runs alone (e.g. as 0, a random policy's level)."""
    return np.where(np.asarray(status) != 0, np.nan, np.asarray(per_seed, dtype=float))


@dataclasses.dataclass
class Evaluation:
    """Scores of P candidates x S seeds.

    ``per_seed`` (P, S) holds each run's score (nan where it failed); a candidate's fitness
    is the mean over its seeds and its spread their standard deviation (ddof 0, as every
    committed run was scored); a candidate with any failed seed has neither, only a reason.
    ``diagnostics`` maps names to (P, S, ...) arrays (training accuracy, final loss, raw
    returns, ...); ``timing`` maps phases to seconds.
    """

    per_seed: np.ndarray
    reasons: list[str | None]
    diagnostics: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    timing: dict[str, float] = dataclasses.field(default_factory=dict)
    fitness: list[float | None] = dataclasses.field(init=False)
    spread: list[float | None] = dataclasses.field(init=False)

    def __post_init__(self):
        self.per_seed = np.array(self.per_seed, dtype=float)
        self.fitness, self.spread = [], []
        for p, reason in enumerate(self.reasons):
            if reason is not None:
                self.per_seed[p] = np.nan
                self.fitness.append(None)
                self.spread.append(None)
            else:
                self.fitness.append(float(self.per_seed[p].mean()))
                self.spread.append(float(self.per_seed[p].std()))

    def seed_scores(self, p: int) -> list[float | None]:
        """Candidate p's per-seed scores as JSON values (None where the run failed)."""
        return [None if np.isnan(v) else float(v) for v in self.per_seed[p]]

    def mean(self, name: str, p: int) -> float:
        """Candidate p's diagnostic ``name`` averaged over its seeds."""
        return float(np.mean(self.diagnostics[name][p]))


DataProgress = Callable[[float, int, str], None]
"""``progress(ready, total, what)`` while an evaluator prepares its datasets: ``ready`` of
``total`` datasets are ready (fractional while one is being prepared) and ``what`` says
what is being done now ("dataset 2/3: continuations 40%")."""

Stage = Callable[[str, float], None]
"""``stage(what, fraction)``: what the preparation of one dataset is doing now and the
fraction of that dataset's preparation done before it (0 to 1)."""


def prepare_datasets(seeds: Sequence[int], prepare: Callable[[int, Stage], Any],
                     progress: DataProgress | None = None) -> list:
    """``prepare(seed, stage)`` for each data seed in turn, its stages reported to
    ``progress`` as datasets ready of all (an evaluator's constructor; cached datasets pass
    through their stages at once)."""
    n, out = len(seeds), []
    for i, seed in enumerate(seeds):
        def stage(what: str, fraction: float, i: int = i) -> None:
            if progress is not None:
                progress(i + min(max(fraction, 0.0), 1.0), n, f"dataset {i + 1}/{n}: {what}")
        out.append(prepare(seed, stage))
    if progress is not None:
        progress(float(n), n, "ready")
    return out


def scaled(stage: Stage | None, start: float, end: float) -> Stage | None:
    """``stage`` for one part of a dataset's preparation that spans ``start``..``end`` of it."""
    if stage is None:
        return None
    return lambda what, fraction: stage(what, start + (end - start) * fraction)


# Optional abilities beyond the interface, which an evaluator declares in its
# ``abilities`` (callers read the declaration; they never probe for the method):
# ``trained_samples(exprs, constants, n, rng) -> [terminals or None per loss]``: where the
#   policy each loss trained to puts the loss's inputs (:func:`trained_policy_terminals`);
# ``training_curves(exprs, constants, seeds, points, eval_seed) -> (steps (K,), scores
#   (P, S, K))``: the score during training.
ABILITIES = ("trained_samples", "training_curves")


def has_ability(evaluator: "Evaluator", ability: str) -> bool:
    """Whether ``evaluator`` declares the optional ``ability`` (one of :data:`ABILITIES`)."""
    if ability not in ABILITIES:
        raise ValueError(f"unknown ability {ability!r}; abilities: {', '.join(ABILITIES)}")
    return ability in evaluator.abilities


@runtime_checkable
class Evaluator(Protocol):
    """What the search needs of an evaluator. It is built as ``Evaluator(config, log=None,
    progress=None)``: ``log(text)`` takes lines worth printing, ``progress`` a
    :data:`DataProgress` of the datasets it prepares (:func:`prepare_datasets`)."""

    name: str                                  # its name in the registry
    reference_label: str                       # how tables name its reference policy ("BC", "SFT")
    program_shape: interpreter.ProgramShape    # the shape losses are encoded to
    abilities: frozenset[str]                  # the optional abilities it has (:data:`ABILITIES`)

    def evaluate(self, exprs: Sequence[Expr], constants: Sequence[dict], seeds: Sequence[int] | np.ndarray,
                 *, eval_seed: int | None = None) -> Evaluation:
        """Trains every loss with every seed (``seeds`` (S,) shared, or (P, S) per loss) and
        scores the trained policies; ``eval_seed`` picks another namespace of evaluation
        start states (held-out scoring), None the evaluator's own."""
        ...

    def terminal_sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Realistic values of :data:`PAIR_TERMINALS` for ``n`` pairs of the data, with the
        policy at the reference (``logp_y = ref_y``): the inputs of the validity gates."""
        ...

    def baseline(self) -> tuple[float, float]:
        """The reference policy's score (mean, spread), on the fitness scale."""
        ...

    def describe(self) -> dict[str, Any]:
        """Configuration, data provenance and summary, for run stores and reports (JSON)."""
        ...


def encode(exprs: Sequence[Expr], constants: Sequence[dict],
           shape: interpreter.ProgramShape) -> tuple[list[interpreter.Program], np.ndarray]:
    """Programs of one shape and their (P, n_constants) constant matrix."""
    programs = [interpreter.encode(e, shape) for e in exprs]
    consts = np.stack([p.constant_vector(c, shape) for p, c in zip(programs, constants)])
    return programs, consts


def reference_terminals(data, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """:data:`PAIR_TERMINALS` of ``n`` random pairs of prepared data (a
    :class:`evaluators.trainer.PairData`) with the policy at the reference."""
    idx = rng.integers(0, data.size, n)
    ref = np.asarray(data.ref_logp)[idx]
    lengths = np.asarray(data.lengths)[idx]
    return {"logp_w": ref[:, 0], "logp_l": ref[:, 1], "ref_w": ref[:, 0], "ref_l": ref[:, 1],
            "len_w": lengths[:, 0], "len_l": lengths[:, 1]}


def policy_terminals(log_likelihood, params, data, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """:data:`PAIR_TERMINALS` of ``n`` random pairs of prepared ``data`` with the policy at
    ``params`` (one run's), under ``log_likelihood`` (a jitted
    :attr:`evaluators.trainer.LikelihoodModel.log_likelihood`)."""
    import jax

    idx = rng.integers(0, data.size, n)
    inputs = jax.tree.map(lambda a: a[idx], data.inputs)
    logp = np.asarray(log_likelihood(params, inputs), np.float64)
    ref = np.asarray(data.ref_logp)[idx]
    lengths = np.asarray(data.lengths)[idx]
    return {"logp_w": logp[:, 0], "logp_l": logp[:, 1], "ref_w": ref[:, 0], "ref_l": ref[:, 1],
            "len_w": lengths[:, 0], "len_l": lengths[:, 1]}


def trained_policy_terminals(train, model, data, exprs: Sequence[Expr], constants: Sequence[dict],
                             shape: interpreter.ProgramShape, n: int,
                             rng: np.random.Generator) -> list[dict[str, np.ndarray] | None]:
    """For each loss: :data:`PAIR_TERMINALS` of ``n`` pairs of ``data`` (the first dataset)
    with the policy that loss trained to (training seed 0, the scored parameters), or None
    where training failed. ``train(programs, consts, seeds)`` is the evaluator's trainer."""
    import jax

    programs, consts = encode(exprs, constants, shape)
    result = train(programs, consts, np.zeros((len(exprs), 1), np.int64))
    log_likelihood = jax.jit(model.log_likelihood)  # once for every loss
    out = []
    for p in range(len(exprs)):
        if result.reason(p) is not None:
            out.append(None)
            continue
        params = jax.tree.map(lambda a: a[p, 0], result.params)
        out.append(policy_terminals(log_likelihood, params, data, n, rng))
    return out


def effective_inputs(evaluator: Evaluator, exprs: Sequence[Expr] = (), constants: Sequence[dict] = (),
                     n: int = 256) -> list[tuple[dict[str, np.ndarray], ...]]:
    """Where each loss's effective form is measured (one tuple of input sets per loss):
    ``n`` pairs of the evaluator's first dataset at the reference with t across [0, 1]
    (:func:`probe_inputs`) and ``n`` pairs at the policy that loss trained to, with t = 1
    (the end of training), when the evaluator has the ability ``trained_samples`` and training
    succeeded. :func:`grammar.effective.effective_form` keeps a term if it reaches the
    threshold on either set: if it acts at the start of training or at its end."""
    if not exprs:
        return []
    start = probe_inputs(evaluator, n)
    trained = (evaluator.trained_samples(exprs, constants, n, np.random.default_rng(1))
               if has_ability(evaluator, "trained_samples") else [None] * len(exprs))
    return [(start,) if end is None else (start, {**end, "t": np.ones(n)}) for end in trained]


def probe_inputs(evaluator: Evaluator, n: int = 256) -> dict[str, np.ndarray]:
    """Terminals of ``n`` pairs of the evaluator's data at the reference, with training
    progress t across [0, 1]: where effective forms and loss shapes are measured."""
    x = evaluator.terminal_sample(n, np.random.default_rng(0))
    return {**x, "t": np.linspace(0.0, 1.0, n)}
