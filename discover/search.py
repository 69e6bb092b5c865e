"""The search: evolution over the grammar's derivation trees and their constants.

Schedule (one batch of exactly ``population`` new candidates per generation, trained and
scored together by one compiled program):

- generation 0: the zoo losses the grammar derives (its seeds, at the zoo's constants),
  then ramped half-and-half random trees at the constants' defaults;
- generation g >= 1: ``es_trees x es_popsize`` slots go to the constant search: the best
  structures so far (that have constants) each get an evosax strategy (SNES by default)
  over their constants, mapped to [0, 1] on each constant's scale; it asks for
  ``es_popsize`` constant vectors per generation and is told their fitness (negated:
  evosax minimises); with ``es_center``, each strategy's mean takes one more slot (trained,
  not told). The other slots are offspring of the structure search: crossover,
  subtree mutation, point mutation or shrinking of parents chosen by tournament on
  fitness minus ``complexity_penalty`` x complexity, from a (mu + lambda) pool of the
  best candidate per structure; offspring inherit their parents' constants, jittered
  with probability ``p_constant_jitter``.

Gates before training, each recorded with its reason: the grammar's limits and
constraints (size, depth, increasing mirror maps, forbidden nestings), and finite loss
and gradients on probe inputs (the reference's log-likelihoods on the dataset with
margins out to +-``probe_margin``). A candidate is identified by its canonical hash and
constants; the same key is never trained twice. At the end the best structures and the
zoo baselines are re-scored on held-out inner seeds and evaluation episodes that the
search never used.

All randomness comes from ``np.random.default_rng([seed, generation])`` and fixed JAX
keys, so a run resumed from a checkpoint ends as the uninterrupted run would.

The proposals and their gates are :mod:`discover.proposals`, the seeds each candidate
trains on (successive halving) :mod:`discover.halving`, the settings
:mod:`discover.search_config`; this module runs the generations, keeps the pool and
checkpoints a :class:`SearchState`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import numpy as np

from discover import records
from discover.constant_search import ConstantSearch
from discover.errors import RunError
from discover.halving import SeedSchedule
from discover.proposals import Proposals
from discover.records import Candidate, penalised
from discover.rows import SPREAD_DDOF, loss_row
from discover.search_config import SearchConfig
from discover.store import RunStore
from evaluators import trainer
from evaluators.interface import Evaluator, has_ability
from grammar import derivation, symbolic, zoo
from grammar.language import Grammar
from grammar.losses import Loss

__all__ = ["Search", "SearchConfig", "SearchState"]


@dataclasses.dataclass
class SearchState:
    """What a checkpoint holds after a generation: the generation, the pool's keys, the
    constant search's strategies (as JSON), the generations' reports, the counters and the
    seconds spent so far. The candidates themselves are in the run's log."""

    generation: int = -1
    pool: list[str] = dataclasses.field(default_factory=list)
    es: dict = dataclasses.field(default_factory=dict)
    history: list[dict] = dataclasses.field(default_factory=list)
    stats: dict = dataclasses.field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_json(self) -> dict:
        """The checkpoint's JSON (its keys in the order every run has written them)."""
        return {"generation": self.generation, "pool": self.pool, "es": self.es, "history": self.history,
                "stats": self.stats, "elapsed_s": self.elapsed_s}

    @staticmethod
    def from_json(d: dict) -> "SearchState":
        """A checkpoint back (the fields that early runs did not write at their defaults)."""
        return SearchState(int(d["generation"]), list(d["pool"]), d.get("es", {}), list(d.get("history", [])),
                           dict(d.get("stats", {})), float(d.get("elapsed_s", 0.0)))


class Search:
    """The search of the module's docstring over ``grammar``'s losses, scored by
    ``evaluator``, logged and checkpointed in ``store``; ``report`` hears each generation's
    summary and ``phase`` what is being done now."""

    def __init__(self, grammar: Grammar, evaluator: Evaluator, config: SearchConfig, store: RunStore,
                 report: Callable[[dict], None] | None = None, phase: Callable[[str], None] | None = None):
        self.grammar = grammar
        self.evaluator = evaluator
        self.config = config.validate()
        self.store = store
        self.report = report or (lambda info: None)
        self.phase = phase or (lambda text: None)
        self.cache: dict[str, dict] = {}
        self.pool: list[str] = []
        self.es = ConstantSearch(config.es, config.es_popsize, config.es_std)
        self.proposals = Proposals(grammar, self.config, self.es, evaluator)
        self.schedule = SeedSchedule(self.config, evaluator, self.proposals.from_record, self.phase)
        self.generation = -1
        self.history: list[dict] = []
        self.elapsed_before = 0.0
        self.stats = {"cache_hits": 0, "rejected": 0, "trained": 0, "reevaluated": 0}
        self._started: float | None = None  # when run() began, in this process

    def from_record(self, rec: dict) -> Candidate:
        """A logged candidate back as a Candidate (its hash and clipped constants as logged)."""
        return self.proposals.from_record(rec)

    # -- one generation
    def reeval_targets(self, gen: int) -> list[dict]:
        """The elites to re-train on fresh seeds this generation: the best of the pool (by
        penalised fitness) that have fewer than ``max_seeds`` seeds behind their fitness."""
        if gen == 0 or not self.config.reevaluate:
            return []
        out = []
        for k in self.pool:
            rec = self.cache[k]
            if rec.get("fitness") is not None and len(rec.get("per_seed") or []) < self.config.max_seeds:
                out.append(rec)
            if len(out) == self.config.reevaluate:
                break
        return out

    def run_generation(self, gen: int) -> dict:
        """Proposes, trains and scores generation ``gen``, logs and checkpoints it; its summary."""
        t0 = time.perf_counter()
        self.phase(f"generation {gen + 1}/{self.config.generations}: proposing and gating candidates")
        elites = self.reeval_targets(gen)
        size = self.config.population if self.config.halves else self.config.population - len(elites)
        proposed = self.proposals.build(gen, size, self.cache, self.pool)
        batch, rejected = proposed.candidates, proposed.rejected
        if not batch:
            raise RunError(f"grammar {self.grammar.name} yields no new valid candidate in generation {gen}")
        t1 = time.perf_counter()
        trained = self.schedule.train(gen, batch, elites)
        scored, updated = trained.scored, trained.updated
        key = jax.random.PRNGKey(self.config.seed * 100_003 + gen)
        for j, (h, slots) in enumerate(proposed.es_slots.items()):
            self.es.tell(h, [slot.fitness(scored, self.cache) for slot in slots], jax.random.fold_in(key, 1000 + j))
        for rec in rejected + scored + updated:
            self.cache[rec["key"]] = rec
        self.stats["cache_hits"] += proposed.cache_hits
        self.stats["rejected"] += len(rejected)
        self.stats["trained"] += len(scored)
        self.stats["reevaluated"] += len(updated)
        self.stats["halted"] = self.stats.get("halted", 0) + sum(1 for r in scored if r.get("halted"))
        if self.config.halves:  # runs made without halving count them from their stats (see headline_report)
            self.stats["runs"] = self.stats.get("runs", 0) + trained.runs
        self.update_pool(scored)
        self.store.append_candidates(rejected + scored + updated)
        self.generation = gen
        fits = [r["fitness"] for r in scored if r["fitness"] is not None]
        best = self.best()
        info = {
            "generation": gen, "new": len(scored), "rejected": len(rejected),
            "promoted": sum(1 for r in scored if r.get("rung") == 1) if self.config.halves else None,
            "best_fitness": best["fitness"] if best else None,
            "best_closed_form": best["closed_form"] if best else None,
            "best_seeds": len(best.get("per_seed") or []) if best else None,
            "generation_best": max(fits) if fits else None,
            "median": float(np.median(fits)) if fits else None,
            "seconds": time.perf_counter() - t0, **trained.timing,
            "propose_s": t1 - t0, "compilations": trainer.compilations(),
            "elapsed_s": self.elapsed(),
            **self.stats,  # in the checkpoint too, so a resumed run's history is the same
        }
        self.history.append(info)
        self.store.write_checkpoint(gen, self.state().to_json())
        return info

    def update_pool(self, new: list[dict]) -> None:
        """Adds newly scored candidates to the pool of parents, keeping the best per structure."""
        best = records.best_per_structure(self.cache[k] for k in self.pool + [r["key"] for r in new])
        ranked = sorted(best.values(), key=lambda r: -penalised(r, self.config.complexity_penalty))
        self.pool = [r["key"] for r in ranked[: self.config.population]]
        if not self.pool:
            raise RunError("no candidate of this generation trained to a finite loss; the grammar or the "
                           "training settings produce only non-finite losses")

    def best(self) -> dict | None:
        """The best candidate so far (the highest fitness among those scored), or None."""
        scored = [r for r in self.cache.values() if r.get("fitness") is not None]
        return max(scored, key=lambda r: r["fitness"]) if scored else None

    # -- state
    def elapsed(self) -> float:
        """Seconds of search so far, those of the runs this one resumes included."""
        return self.elapsed_before + (time.perf_counter() - self._started if self._started is not None else 0.0)

    def state(self) -> SearchState:
        """The search's state, as its checkpoint holds it."""
        return SearchState(self.generation, self.pool, self.es.to_json(), self.history, self.stats, self.elapsed())

    def restore(self, checkpoint: dict | SearchState) -> None:
        """Continues from a checkpoint (its JSON, or a :class:`SearchState`): the log is cut
        back to its generation, and the pool, strategies, history and counters restored."""
        state = checkpoint if isinstance(checkpoint, SearchState) else SearchState.from_json(checkpoint)
        gen = state.generation
        self.store.truncate_candidates(gen)
        for rec in self.store.candidates(gen):
            self.cache[rec["key"]] = rec
        self.pool = list(state.pool)
        missing = [k for k in self.pool if k not in self.cache]
        if missing:
            raise RunError(f"checkpoint of generation {gen} refers to candidates missing from the log "
                           f"({len(missing)} of {len(self.pool)}); the run directory is inconsistent")
        self.es.load_json(state.es)
        self.history = list(state.history)
        self.stats = {**self.stats, **state.stats}
        self.generation = gen
        self.elapsed_before = state.elapsed_s

    # -- driver
    def run(self, should_stop: Callable[[int, float], bool] | None = None) -> None:
        """Runs the generations left (``should_stop(generation, elapsed seconds)`` may end the
        search early, after a complete generation)."""
        self._started = time.perf_counter()
        for gen in range(self.generation + 1, self.config.generations):
            elapsed = self.elapsed_before + time.perf_counter() - self._started
            if should_stop and should_stop(gen, elapsed):
                break
            self.report(self.run_generation(gen))

    # -- results
    def hall_of_fame(self, top: int = 20) -> dict:
        """The best ``top`` candidates and the Pareto front of fitness and complexity."""
        return records.hall_of_fame(self.cache.values(), top)

    def training_curves(self, final: dict, points: int = 8) -> dict:
        """Normalised return during training of the best held-out discovered loss and of DPO."""
        best = max((r for r in final["rows"] if r["kind"] == "discovered" and r["fitness"] is not None),
                   key=lambda r: r["fitness"], default=None)
        if best is None or not has_ability(self.evaluator, "training_curves"):
            return {}
        losses = [records.loss_of(best, f"discovered {best['name']}"), zoo.ZOO["dpo"].loss()]
        steps, scores = self.evaluator.training_curves([e.expr for e in losses], [e.constants for e in losses],
                                                       self.config.holdout_seeds, points,
                                                       eval_seed=self.config.holdout_eval_seed)
        return {"steps": steps.tolist(), "reference": self.evaluator.baseline()[0],
                "curves": {e.name: scores[i].tolist() for i, e in enumerate(losses)}}

    def final_evaluation(self, log: Callable[[str], None] = print) -> dict:
        """Re-scores the best structures and the zoo on held-out seeds and episodes
        (final.json: rows of :func:`discover.rows.loss_row`, spreads with ddof ``spread_ddof``)."""
        hof = self.hall_of_fame(self.config.final_top)
        chosen = hof["ranked"][: self.config.final_top]
        losses = []
        for i, rec in enumerate(chosen, 1):
            node = derivation.parse_derivation(self.grammar, rec["derivation"])
            losses.append(Loss(f"#{i}", derivation.expand(self.grammar, node), rec["constants"], "discovered",
                               rec["derivation"]))
        losses += [z.loss() for z in zoo.ZOO.values()]
        log(f"re-scoring {len(chosen)} discovered losses and {len(zoo.ZOO)} zoo baselines on "
            f"{len(self.config.holdout_seeds)} held-out seeds ...")
        scores = self.evaluator.evaluate([e.expr for e in losses], [e.constants for e in losses],
                                         self.config.holdout_seeds, eval_seed=self.config.holdout_eval_seed)
        ref_mean, ref_std = self.evaluator.baseline()
        zoo_forms = {symbolic.canonical_hash(z.expr): n for n, z in zoo.ZOO.items()}
        rows = [loss_row(e, scores.per_seed[i], scores.reasons[i], latex=symbolic.latex(e.expr),
                         complexity=symbolic.complexity(e.expr), derivation=rec["derivation"] if rec else None,
                         key=rec["key"] if rec else None, search_fitness=rec["fitness"] if rec else None,
                         search_seeds=len(rec.get("per_seed") or []) if rec else None,
                         zoo_form=zoo_forms.get(rec["hash"]) if rec else e.name)
                for i, (e, rec) in enumerate(zip(losses, chosen + [None] * len(zoo.ZOO)))]
        return {"rows": rows, "spread_ddof": SPREAD_DDOF, "reference": {"mean": ref_mean, "std": ref_std},
                "holdout_seeds": list(self.config.holdout_seeds), "holdout_eval_seed": self.config.holdout_eval_seed,
                "timing": scores.timing, "compilations": trainer.compilations()}
