"""The search: evolution over the grammar's derivation trees and their constants.

Schedule (one batch of exactly ``population`` new candidates per generation, trained and
scored together by one compiled program):

- generation 0: the zoo losses the grammar derives (its seeds, at the zoo's constants),
  then ramped half-and-half random trees at the constants' defaults;
- generation g >= 1: ``es_trees x es_popsize`` slots go to the constant search: the best
  structures so far (that have constants) each get an evosax strategy (SNES by default)
  over their constants, mapped to [0, 1] on each constant's scale; it asks for
  ``es_popsize`` constant vectors per generation and is told their fitness (negated:
  evosax minimises). The other slots are offspring of the structure search: crossover,
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
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import jax
import numpy as np

from discover import records, variation
from discover.constant_search import ES_ALGORITHMS, ConstantSearch
from discover.errors import RunError
from discover.gates import ProbeGate
from discover.records import Candidate, penalised
from discover.store import RunStore
from evaluators import seeds as seed_spaces
from evaluators import trainer
from evaluators.interface import Evaluation, Evaluator
from grammar import derivation, symbolic, zoo
from grammar.derivation import Node
from grammar.expr import to_text
from grammar.language import Grammar
from grammar.losses import Loss

@dataclasses.dataclass(frozen=True)
class SearchConfig:
    population: int = 32
    generations: int = 10
    seed: int = 0
    inner_seeds: tuple[int, ...] = seed_spaces.SEARCH_TRAIN
    holdout_seeds: tuple[int, ...] = seed_spaces.HOLDOUT_TRAIN
    holdout_eval_seed: int = seed_spaces.HOLDOUT_EVAL
    tournament: int = 3
    complexity_penalty: float = 0.05
    p_crossover: float = 0.3
    p_subtree: float = 0.35
    p_point: float = 0.25
    p_shrink: float = 0.1
    p_constant_jitter: float = 0.3
    es: str = "snes"
    es_trees: int = 2
    es_popsize: int = 4
    es_std: float = 0.15
    final_top: int = 5
    reevaluate: int = 6
    max_seeds: int = 8
    reeval_seed_base: int = seed_spaces.REEVAL_TRAIN_BASE
    probe_margin: float = 1000.0
    time_limit_min: float | None = None
    # Successive halving: each new candidate is first trained with one seed (rung 0, inner
    # seed gen mod S); the best (population - elites) / (S - 1) of them are promoted to the
    # other S - 1 inner seeds (rung 1), beside the elites' one fresh seed each. Two calls
    # of population x 1 runs, one compiled shape: 2P runs instead of P x S.
    halving: bool = True

    def validate(self) -> "SearchConfig":
        if self.population < 2:
            raise RunError(f"--population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise RunError(f"--generations must be at least 1, got {self.generations}")
        if self.es not in ES_ALGORITHMS:
            raise RunError(f"unknown constant search {self.es!r}; --es takes {', '.join(ES_ALGORITHMS)}")
        if self.es_trees * self.es_popsize + self.reevaluate >= self.population:
            taken = self.es_trees * self.es_popsize
            raise RunError(f"--population {self.population} leaves no room for new structures: the constant "
                           f"search takes {taken} candidates and --reevaluate {self.reevaluate}; raise "
                           f"--population above {taken + self.reevaluate} or lower --reevaluate")
        if self.reevaluate < 0:
            raise RunError(f"--reevaluate must be 0 or more, got {self.reevaluate}")
        if self.max_seeds < len(self.inner_seeds):
            raise RunError(f"--max-seeds must be at least {len(self.inner_seeds)} (the seeds every candidate "
                           f"trains on), got {self.max_seeds}")
        reeval = {s for g in range(self.generations) for s in self.reeval_seeds(g)} if self.reevaluate else set()
        if reeval & {*self.inner_seeds, *self.holdout_seeds}:
            raise RunError("re-evaluation seeds overlap the inner or held-out seeds")
        if self.es == "open_es" and self.es_popsize % 2:
            raise RunError("open_es needs an even es_popsize (antithetic sampling)")
        if set(self.inner_seeds) & set(self.holdout_seeds):
            raise RunError("held-out seeds must differ from the search's inner seeds")
        if self.time_limit_min is not None and not self.time_limit_min > 0:
            raise RunError(f"--time-limit must be positive, got {self.time_limit_min:g}")
        room = self.population - len(self.inner_seeds) + 1  # rung 1 must promote at least one candidate
        if self.halves and self.generations > 1 and self.reevaluate >= room:
            raise RunError(f"with successive halving, --reevaluate {self.reevaluate} must be below {room} "
                           f"(--population - {len(self.inner_seeds)} seeds + 1), so that new candidates are "
                           "promoted; lower --reevaluate, raise --population or give --no-halving")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "SearchConfig":
        d = dict(d)
        d.setdefault("reevaluate", 0)  # runs made before re-evaluation existed
        d.setdefault("halving", False)  # runs made before successive halving existed
        for k in ("inner_seeds", "holdout_seeds"):
            d[k] = tuple(d[k])
        return SearchConfig(**d)

    @property
    def halves(self) -> bool:
        """Whether generations use successive halving (it needs two inner seeds or more)."""
        return self.halving and len(self.inner_seeds) > 1

    def runs_per_generation(self) -> int:
        """Training runs per generation, padding included."""
        return 2 * self.population if self.halves else self.population * len(self.inner_seeds)

    def reeval_seeds(self, generation: int) -> tuple[int, ...]:
        """Fresh training seeds for the elites re-trained in ``generation``: never the inner,
        held-out or benchmark seeds, and different in every generation."""
        S = len(self.inner_seeds)
        return tuple(self.reeval_seed_base + generation * S + i for i in range(S))


@dataclasses.dataclass(frozen=True)
class EsSlot:
    """Where one constant setting asked of a strategy went: a new candidate of the batch
    (``index``), a candidate already known (``key``), or a rejection."""

    kind: str  # "new", "known" or "rejected"
    index: int | None = None
    key: str | None = None

    def fitness(self, scored: list[dict], cache: dict[str, dict]) -> float | None:
        """The fitness to tell the strategy (None: rejected or failed): with halving, the
        rung-0 score, which every sample of the strategy has on the same seed."""
        if self.kind == "new":
            rec = scored[self.index]
        elif self.kind == "known":
            rec = cache.get(self.key) or {}
        else:
            return None
        if rec.get("reason"):  # failed on some seed: as without halving, no fitness
            return None
        return rec.get("screen", rec.get("fitness"))


def scored_fields(ev: Evaluation, i: int) -> dict:
    """A record's score fields for candidate i of an evaluation."""
    out = {"fitness": ev.fitness[i], "spread": ev.spread[i], "per_seed": ev.seed_scores(i), "reason": ev.reasons[i]}
    if "train_accuracy" in ev.diagnostics:
        out["train_accuracy"] = ev.mean("train_accuracy", i)
    if "final_loss" in ev.diagnostics:
        out["final_loss"] = [float(v) for v in ev.diagnostics["final_loss"][i]]
    return out


# --------------------------------------------------------------------------- the search
class Search:
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
        self.generation = -1
        self.history: list[dict] = []
        self.elapsed_before = 0.0
        self.stats = {"cache_hits": 0, "rejected": 0, "trained": 0, "reevaluated": 0}
        self._gate: ProbeGate | None = None
        self._seed_records: list[dict] = []

    # -- candidates
    def make(self, node: Node, constants: dict[str, float] | None, origin: str, parents=()) -> Candidate:
        expr = derivation.expand(self.grammar, node)
        consts = {}
        for c in expr.constants:
            value = (constants or {}).get(c, self.grammar.constants[c].default)
            consts[c] = self.grammar.constants[c].clip(float(value))
        return Candidate(node, expr, consts, symbolic.canonical_hash(expr), origin, tuple(parents))

    def from_record(self, rec: dict) -> Candidate:
        """A logged candidate back as a Candidate (its hash and clipped constants as logged)."""
        node = derivation.parse_derivation(self.grammar, rec["derivation"])
        return Candidate(node, derivation.expand(self.grammar, node), dict(rec["constants"]), rec["hash"], rec["origin"],
                         tuple(rec.get("parents", ())))

    def record(self, cand: Candidate, generation: int, **fields) -> dict:
        rec = {
            "generation": generation, "key": cand.key, "hash": cand.hash,
            "derivation": derivation.to_text(cand.node), "expression": to_text(cand.expr),
            "closed_form": symbolic.text(cand.expr), "complexity": symbolic.complexity(cand.expr),
            "constants": cand.constants, "origin": cand.origin, "parents": list(cand.parents),
            "fitness": None, "spread": None, "per_seed": None, "reason": None, "trained": False,
        }
        rec.update(fields)
        return rec

    # -- gates
    def probe(self, cands: list[Candidate]) -> list[str | None]:
        """Reasons to reject (None: finite loss and gradients on the probe inputs)."""
        if self._gate is None:
            self._gate = ProbeGate(self.evaluator, self.config.population, self.config.probe_margin)
        return self._gate.reasons([c.expr for c in cands], [c.constants for c in cands])

    # -- batches
    def initial_proposals(self, rng: np.random.Generator) -> list[Candidate]:
        out = []
        for name, text in self.grammar.seeds.items():
            if name in zoo.ZOO:
                node = derivation.parse_derivation(self.grammar, text)
                out.append(self.make(node, zoo.ZOO[name].constants, f"zoo:{name}"))
        # twice the free slots; the caller tops up if too few are new and valid
        for node in derivation.ramped_half_and_half(self.grammar, rng, 2 * max(self.config.population - len(out), 1)):
            out.append(self.make(node, None, "random"))
        return out

    def offspring(self, rng: np.random.Generator) -> Candidate:
        cfg = self.config
        probs = np.array([cfg.p_crossover, cfg.p_subtree, cfg.p_point, cfg.p_shrink])
        op = variation.OPERATORS[int(rng.choice(4, p=probs / probs.sum()))]
        a = self.cache[self.tournament(rng)]
        node_a = derivation.parse_derivation(self.grammar, a["derivation"])
        parents = [a["key"]]
        constants = dict(a["constants"])
        if op == "crossover":
            b = self.cache[self.tournament(rng)]
            parents.append(b["key"])
            child = variation.crossover(self.grammar, rng, node_a, derivation.parse_derivation(self.grammar, b["derivation"]))
            constants = {**b["constants"], **a["constants"]}
        elif op == "subtree":
            child = variation.subtree_mutation(self.grammar, rng, node_a)
        elif op == "point":
            child = variation.point_mutation(self.grammar, rng, node_a)
        else:
            child = variation.shrink(self.grammar, rng, node_a)
        if rng.uniform() < cfg.p_constant_jitter:
            for k in list(constants):
                if k in self.grammar.constants:
                    c = self.grammar.constants[k]
                    constants[k] = c.from_unit(c.to_unit(c.clip(constants[k])) + rng.normal(0, 0.1))
        return self.make(child, constants, op, parents)

    def tournament(self, rng: np.random.Generator) -> str:
        entrants = [self.pool[int(i)] for i in rng.integers(0, len(self.pool), self.config.tournament)]
        return max(entrants, key=lambda k: penalised(self.cache[k], self.config.complexity_penalty))

    def build_batch(self, gen: int, size: int | None = None) -> tuple[list[Candidate], list[dict],
                                                                       dict[str, list[EsSlot]]]:
        """Exactly ``size`` (default: population) new valid candidates (or fewer if the grammar
        runs dry), the records of rejected proposals, and the ES slots by structure hash."""
        rng = np.random.default_rng([self.config.seed, gen])
        P = self.config.population if size is None else size
        batch: list[Candidate] = []
        rejected: list[dict] = []
        keys: set[str] = set()

        def admit(cands: list[Candidate]) -> None:
            fresh = []
            for c in cands:
                if c.key in self.cache or c.key in keys:
                    self.stats["cache_hits"] += 1
                    continue
                reason = derivation.check(self.grammar, c.node, c.expr)
                keys.add(c.key)
                if reason:
                    rejected.append(self.record(c, gen, reason=reason))
                else:
                    fresh.append(c)
            for c, reason in zip(fresh, self.probe(fresh)):
                if reason:
                    rejected.append(self.record(c, gen, reason=reason))
                elif len(batch) < P:
                    batch.append(c)

        es_slots: dict[str, list[EsSlot]] = {}
        if gen == 0:
            admit(self.initial_proposals(rng))
        else:
            es_slots = self._es_proposals(gen, batch, rejected, keys)
        tries = 0
        while len(batch) < P and tries < 30 and (gen > 0 or tries < 10):
            need = P - len(batch)
            if gen == 0:
                proposals = [self.make(n, None, "random")
                             for n in derivation.ramped_half_and_half(self.grammar, rng, 2 * need)]
            else:
                proposals = [self.offspring(rng) for _ in range(2 * need)]
            admit(proposals)
            tries += 1
        return batch, rejected, es_slots

    def _es_proposals(self, gen: int, batch: list[Candidate], rejected: list[dict],
                      keys: set[str]) -> dict[str, list[EsSlot]]:
        """Asks each ES target's strategy for constant settings; new valid ones join the batch.
        Every sample keeps its slot, so the strategy is told a fitness for each."""
        key = jax.random.PRNGKey(self.config.seed * 100_003 + gen)
        es_slots: dict[str, list[EsSlot]] = {}
        for j, (h, rec) in enumerate(self.es_targets()):
            node = derivation.parse_derivation(self.grammar, rec["derivation"])
            names = sorted(rec["constants"])
            settings = self.es.ask(self.grammar, h, node, names, rec["constants"], jax.random.fold_in(key, j))
            slots = []
            for c in (self.make(node, s, "es", [rec["key"]]) for s in settings):
                if c.key in self.cache or c.key in keys:
                    self.stats["cache_hits"] += 1
                    slots.append(EsSlot("known", key=c.key))
                    continue
                keys.add(c.key)
                reason = derivation.check(self.grammar, c.node, c.expr) or self.probe([c])[0]
                if reason:
                    rejected.append(self.record(c, gen, reason=reason))
                    slots.append(EsSlot("rejected"))
                else:
                    batch.append(c)
                    slots.append(EsSlot("new", index=len(batch) - 1))
            es_slots[h] = slots
        return es_slots

    def es_targets(self) -> list[tuple[str, dict]]:
        best = records.best_per_structure(self.cache.values(), need_constants=True)
        ranked = sorted(best.items(), key=lambda kv: -kv[1]["fitness"])
        return ranked[: self.config.es_trees]

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
        t0 = time.perf_counter()
        self.phase(f"generation {gen + 1}/{self.config.generations}: proposing and gating candidates")
        elites = self.reeval_targets(gen)
        size = self.config.population if self.config.halves else self.config.population - len(elites)
        batch, rejected, es_slots = self.build_batch(gen, size)
        if not batch:
            raise RunError(f"grammar {self.grammar.name} yields no new valid candidate in generation {gen}")
        t1 = time.perf_counter()
        if self.config.halves:
            scored, updated, timing, runs = self._halving(gen, batch, elites)
        else:
            scored, updated, timing, runs = self._all_seeds(gen, batch, elites)
        key = jax.random.PRNGKey(self.config.seed * 100_003 + gen)
        for j, (h, slots) in enumerate(es_slots.items()):
            self.es.tell(h, [slot.fitness(scored, self.cache) for slot in slots], jax.random.fold_in(key, 1000 + j))
        for rec in rejected + scored + updated:
            self.cache[rec["key"]] = rec
        self.stats["rejected"] += len(rejected)
        self.stats["trained"] += len(scored)
        self.stats["reevaluated"] += len(updated)
        self.stats["halted"] = self.stats.get("halted", 0) + sum(1 for r in scored if r.get("halted"))
        if self.config.halves:  # runs made without halving count them from their stats (see headline_report)
            self.stats["runs"] = self.stats.get("runs", 0) + runs
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
            "seconds": time.perf_counter() - t0, **timing,
            "propose_s": t1 - t0, "compilations": trainer.compilations(),
            "elapsed_s": self.elapsed_before + (time.perf_counter() - self._started if hasattr(self, "_started")
                                                else 0.0),
            **self.stats,  # in the checkpoint too, so a resumed run's history is the same
        }
        self.history.append(info)
        self.store.write_checkpoint(gen, self.state())
        return info

    def _train(self, cands: list[Candidate], seeds: np.ndarray, timing: dict) -> Evaluation:
        """One call of the evaluator (``seeds`` (P, S) per candidate); times add up in ``timing``."""
        ev = self.evaluator.evaluate([c.expr for c in cands], [c.constants for c in cands], seeds)
        for k in ("train_s", "score_s"):
            timing[k] = timing.get(k, 0.0) + (ev.timing.get(k) or 0.0)
        return ev

    def _all_seeds(self, gen: int, batch: list[Candidate], elites: list[dict]):
        """Every new candidate on every inner seed, the elites on S fresh seeds: one call."""
        n_real, P = len(batch), self.config.population
        # One program shape per run: new candidates, then the elites re-trained on fresh seeds,
        # then padding (repeats of new candidates, discarded).
        slots = batch + [self.from_record(r) for r in elites]
        padded = slots + [batch[i % n_real] for i in range(P - len(slots))]
        inner, fresh = tuple(self.config.inner_seeds), self.config.reeval_seeds(gen)
        seeds = np.array([fresh if n_real <= i < len(slots) else inner for i in range(P)])
        self.phase(f"generation {gen + 1}/{self.config.generations}: training and scoring {n_real} new "
                   f"candidates{f' and re-training {len(elites)} elites' if elites else ''} "
                   f"({P * len(inner)} runs{', compiling first' if trainer.compilations() == 0 else ''})")
        timing: dict = {}
        ev = self._train(padded, seeds, timing)
        scored = [self.record(c, gen, **scored_fields(ev, i), seeds=list(inner), trained=True)
                  for i, c in enumerate(batch)]
        updated = [self.merge_reevaluation(rec, gen, fresh, ev.seed_scores(n_real + j), ev.reasons[n_real + j])
                   for j, rec in enumerate(elites)]
        return scored, updated, timing, len(slots) * len(inner)

    def _halving(self, gen: int, batch: list[Candidate], elites: list[dict]):
        """Rung 0: every new candidate on one inner seed (the generation's screening seed,
        rotating over the inner seeds and so over the search's datasets). Rung 1: the best of
        them on the other inner seeds, and each elite on one fresh seed (rotating over the
        datasets with its re-trainings). Both calls train P x 1 runs.

        A candidate that is not promoted keeps its rung-0 score as ``screen`` and has no
        fitness (``halted``): one seed does not rank it against candidates with S seeds."""
        cfg, P, G = self.config, self.config.population, self.config.generations
        S, n_real = len(cfg.inner_seeds), len(batch)
        inner = tuple(cfg.inner_seeds[(gen + j) % S] for j in range(S))  # the screening seed first
        first = trainer.compilations() == 0
        timing: dict = {}
        self.phase(f"generation {gen + 1}/{G}: rung 0, training and scoring {n_real} new candidates on one seed "
                   f"({P} runs{', compiling first' if first else ''})")
        padded = batch + [batch[i % n_real] for i in range(P - n_real)]
        ev0 = self._train(padded, np.full((P, 1), inner[0]), timing)
        screen = [ev0.seed_scores(i)[0] for i in range(n_real)]
        order = sorted((i for i in range(n_real) if ev0.reasons[i] is None), key=lambda i: -screen[i])
        promote = sorted(order[: (P - len(elites)) // (len(inner) - 1)])
        rows = [(batch[i], s) for i in promote for s in inner[1:]]
        fresh = [cfg.reeval_seeds(gen)[r.get("reevaluations", 0) % S] for r in elites]
        rows += [(self.from_record(r), s) for r, s in zip(elites, fresh)]
        self.phase(f"generation {gen + 1}/{G}: rung 1, the best {len(promote)} on {len(inner) - 1} more seeds"
                   f"{f' and {len(elites)} elites on a fresh seed' if elites else ''} ({P} runs)")
        padded = [c for c, _ in rows] + [rows[i % len(rows)][0] for i in range(P - len(rows))] if rows else []
        seeds = np.array([[s] for _, s in rows] + [[rows[i % len(rows)][1]] for i in range(P - len(rows))]) \
            if rows else None
        ev1 = self._train(padded, seeds, timing) if rows else None
        at = {i: k * (len(inner) - 1) for k, i in enumerate(promote)}
        scored = []
        for i, c in enumerate(batch):
            base = dict(screen=screen[i] if ev0.reasons[i] is None else None, trained=True)
            if ev0.reasons[i] is not None:
                scored.append(self.record(c, gen, **scored_fields(ev0, i), seeds=[inner[0]], rung=0, **base))
            elif i not in at:
                scored.append(self.record(c, gen, per_seed=[screen[i]], seeds=[inner[0]], rung=0, halted=True,
                                          **base))
            else:
                rest = range(at[i], at[i] + len(inner) - 1)
                per_seed = [screen[i]] + [ev1.seed_scores(r)[0] for r in rest]
                reason = next((f"failed on seed {s}: {ev1.reasons[r]}" for s, r in zip(inner[1:], rest)
                               if ev1.reasons[r] is not None), None)
                vals = np.array(per_seed, float)
                fields = dict(fitness=None, spread=None, reason=reason) if reason else \
                    dict(fitness=float(vals.mean()), spread=float(vals.std()), reason=None)
                if "train_accuracy" in ev0.diagnostics:
                    fields["train_accuracy"] = float(np.mean([ev0.diagnostics["train_accuracy"][i]] +
                                                             [ev1.diagnostics["train_accuracy"][r] for r in rest]))
                scored.append(self.record(c, gen, per_seed=per_seed, seeds=list(inner), rung=1, **fields, **base))
        offset = len(promote) * (len(inner) - 1)
        updated = [self.merge_reevaluation(rec, gen, (fresh[j],), ev1.seed_scores(offset + j), ev1.reasons[offset + j])
                   for j, rec in enumerate(elites)]
        return scored, updated, timing, n_real + len(rows)

    @staticmethod
    def merge_reevaluation(rec: dict, gen: int, seeds: Sequence[int], new_scores: list, reason: str | None) -> dict:
        """The elite's record with the fresh seeds' scores added: its fitness becomes the mean
        over every seed it has been trained with (a failure on any seed fails it)."""
        per_seed = list(rec["per_seed"]) + list(new_scores)
        out = dict(rec, generation=gen, born=rec.get("born", rec["generation"]), per_seed=per_seed,
                   seeds=list(rec.get("seeds") or []) + list(seeds),
                   reevaluations=rec.get("reevaluations", 0) + 1)
        if reason is not None:
            out.update(fitness=None, spread=None,
                       reason=f"failed when re-trained on seeds {list(seeds)}: {reason}")
        else:
            vals = np.array(per_seed, float)
            out.update(fitness=float(vals.mean()), spread=float(vals.std()))
        return out

    def update_pool(self, new: list[dict]) -> None:
        best = records.best_per_structure(self.cache[k] for k in self.pool + [r["key"] for r in new])
        ranked = sorted(best.values(), key=lambda r: -penalised(r, self.config.complexity_penalty))
        self.pool = [r["key"] for r in ranked[: self.config.population]]
        if not self.pool:
            raise RunError("no candidate of this generation trained to a finite loss; the grammar or the "
                           "training settings produce only non-finite losses")

    def best(self) -> dict | None:
        scored = [r for r in self.cache.values() if r.get("fitness") is not None]
        return max(scored, key=lambda r: r["fitness"]) if scored else None

    # -- state
    def state(self) -> dict:
        return {"generation": self.generation, "pool": self.pool, "es": self.es.to_json(),
                "history": self.history, "stats": self.stats,
                "elapsed_s": self.elapsed_before + (time.perf_counter() - self._started if hasattr(self, "_started") else 0)}

    def restore(self, state: dict) -> None:
        gen = int(state["generation"])
        self.store.truncate_candidates(gen)
        for rec in self.store.candidates(gen):
            self.cache[rec["key"]] = rec
        self.pool = list(state["pool"])
        missing = [k for k in self.pool if k not in self.cache]
        if missing:
            raise RunError(f"checkpoint of generation {gen} refers to candidates missing from the log "
                           f"({len(missing)} of {len(self.pool)}); the run directory is inconsistent")
        self.es.load_json(state.get("es", {}))
        self.history = list(state.get("history", []))
        self.stats = {**self.stats, **state.get("stats", {})}
        self.generation = gen
        self.elapsed_before = float(state.get("elapsed_s", 0.0))

    # -- driver
    def run(self, should_stop: Callable[[int, float], bool] | None = None) -> None:
        self._started = time.perf_counter()
        for gen in range(self.generation + 1, self.config.generations):
            elapsed = self.elapsed_before + time.perf_counter() - self._started
            if should_stop and should_stop(gen, elapsed):
                break
            self.report(self.run_generation(gen))

    # -- results
    def hall_of_fame(self, top: int = 20) -> dict:
        return records.hall_of_fame(self.cache.values(), top)

    def training_curves(self, final: dict, points: int = 8) -> dict:
        """Normalised return during training of the best held-out discovered loss and of DPO."""
        best = max((r for r in final["rows"] if r["kind"] == "discovered" and r["fitness"] is not None),
                   key=lambda r: r["fitness"], default=None)
        if best is None or not hasattr(self.evaluator, "training_curves"):
            return {}
        losses = [records.loss_of(best, f"discovered {best['name']}"), zoo.ZOO["dpo"].loss()]
        steps, scores = self.evaluator.training_curves([e.expr for e in losses], [e.constants for e in losses],
                                                       self.config.holdout_seeds, points,
                                                       eval_seed=self.config.holdout_eval_seed)
        return {"steps": steps.tolist(), "reference": self.evaluator.baseline()[0],
                "curves": {e.name: scores[i].tolist() for i, e in enumerate(losses)}}

    def final_evaluation(self, log: Callable[[str], None] = print) -> dict:
        """Re-scores the best structures and the zoo on held-out seeds and episodes."""
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
        rows = []
        for i, (e, rec) in enumerate(zip(losses, chosen + [None] * len(zoo.ZOO))):
            rows.append({
                "kind": e.kind, "name": e.name, "closed_form": symbolic.text(e.expr), "latex": symbolic.latex(e.expr),
                "expression": to_text(e.expr), "constants": e.constants, "complexity": symbolic.complexity(e.expr),
                "derivation": rec["derivation"] if rec else None, "key": rec["key"] if rec else None,
                "search_fitness": rec["fitness"] if rec else None,
                "search_seeds": len(rec.get("per_seed") or []) if rec else None,
                "fitness": scores.fitness[i], "spread": scores.spread[i], "per_seed": scores.seed_scores(i),
                "reason": scores.reasons[i],
                "zoo_form": zoo_forms.get(rec["hash"]) if rec else e.name,
            })
        return {"rows": rows, "reference": {"mean": ref_mean, "std": ref_std},
                "holdout_seeds": list(self.config.holdout_seeds), "holdout_eval_seed": self.config.holdout_eval_seed,
                "timing": scores.timing, "compilations": trainer.compilations()}
