"""Where a generation's new candidates come from, and the gates they pass before training.

Generation 0 proposes the zoo losses the grammar derives (at the zoo's constants), then
ramped half-and-half random trees at the constants' defaults. Later generations first ask
each constant-search target (the best structures that have constants) for ``es_popsize``
constant settings, then fill the batch with offspring: crossover, subtree mutation, point
mutation or shrinking of parents chosen by tournament on penalised fitness from the pool,
their constants inherited and jittered with probability ``p_constant_jitter``.

A proposal is kept if its key (canonical hash and constants) is new, it satisfies the
grammar's limits and constraints, and its loss and gradients are finite on the probe
inputs; each rejection is recorded with its reason. Every draw comes from the generator
``build`` makes from ``[seed, generation]`` and from fixed JAX keys, in a fixed order.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import sympy

from discover import records, variation
from discover.constant_search import ConstantSearch
from discover.gates import ProbeGate
from discover.records import Candidate, penalised
from discover.search_config import SearchConfig
from evaluators.interface import Evaluator
from grammar import derivation, symbolic, zoo
from grammar.derivation import Node
from grammar.expr import to_text
from grammar.language import Grammar


def record(cand: Candidate, generation: int, **fields) -> dict:
    """The log record of a candidate (the JSON dict the run store keeps), unscored unless
    ``fields`` score it. A rejected candidate (``reason`` in ``fields``) is never trained or
    ranked, so its ``closed_form`` and ``complexity`` are of its expression as written, not
    simplified: simplifying it cost up to seconds per rejection (most of a large first
    generation's proposals)."""
    if fields.get("reason"):
        written = symbolic.to_sympy(cand.expr)
        form, size = sympy.sstr(written), sum(1 for _ in sympy.preorder_traversal(written))
    else:
        form, size = symbolic.text(cand.expr), symbolic.complexity(cand.expr)
    rec = {
        "generation": generation, "key": cand.key, "hash": cand.hash,
        "derivation": derivation.to_text(cand.node), "expression": to_text(cand.expr),
        "closed_form": form, "complexity": size,
        "constants": cand.constants, "origin": cand.origin, "parents": list(cand.parents),
        "fitness": None, "spread": None, "per_seed": None, "reason": None, "trained": False,
    }
    rec.update(fields)
    return rec


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


@dataclasses.dataclass
class Batch:
    """One generation's proposals: the new valid ``candidates`` to train, the records of the
    ``rejected`` ones, the constant search's slots by structure hash, and how many proposals
    were already known (``cache_hits``)."""

    candidates: list[Candidate] = dataclasses.field(default_factory=list)
    rejected: list[dict] = dataclasses.field(default_factory=list)
    es_slots: dict[str, list[EsSlot]] = dataclasses.field(default_factory=dict)
    cache_hits: int = 0
    keys: set[str] = dataclasses.field(default_factory=set)  # every proposal's key, kept or not


class Proposals:
    """The proposing side of the search: candidates from the grammar, the pool (``cache``
    and ``pool`` as the search holds them) and the constant search ``es``."""

    def __init__(self, grammar: Grammar, config: SearchConfig, es: ConstantSearch, evaluator: Evaluator):
        self.grammar, self.config, self.es, self.evaluator = grammar, config, es, evaluator
        self._gate: ProbeGate | None = None

    def make(self, node: Node, constants: dict[str, float] | None, origin: str, parents=()) -> Candidate:
        """The candidate of a derivation, its constants clipped (missing ones at their defaults)."""
        expr = derivation.expand(self.grammar, node)
        consts = {}
        for c in expr.constants:
            value = (constants or {}).get(c, self.grammar.constants[c].default)
            consts[c] = self.grammar.constants[c].clip(float(value))
        return Candidate(node, expr, consts, symbolic.canonical_hash(expr), origin, tuple(parents))

    def from_record(self, rec: dict) -> Candidate:
        """A logged candidate back as a Candidate (its hash and clipped constants as logged)."""
        node = derivation.parse_derivation(self.grammar, rec["derivation"])
        return Candidate(node, derivation.expand(self.grammar, node), dict(rec["constants"]), rec["hash"],
                         rec["origin"], tuple(rec.get("parents", ())))

    def probe(self, cands: list[Candidate]) -> list[str | None]:
        """Reasons to reject (None: finite loss and gradients on the probe inputs)."""
        if self._gate is None:
            self._gate = ProbeGate(self.evaluator, self.config.population, self.config.probe_margin)
        return self._gate.reasons([c.expr for c in cands], [c.constants for c in cands])

    def build(self, gen: int, size: int, cache: dict[str, dict], pool: list[str]) -> Batch:
        """Exactly ``size`` new valid candidates (or fewer if the grammar runs dry), the
        constant search's first when ``gen`` > 0."""
        rng = np.random.default_rng([self.config.seed, gen])
        out = Batch()

        def admit(cands: list[Candidate]) -> None:
            fresh = []
            for c in cands:
                if c.key in cache or c.key in out.keys:
                    out.cache_hits += 1
                    continue
                reason = derivation.check(self.grammar, c.node, c.expr)
                out.keys.add(c.key)
                if reason:
                    out.rejected.append(record(c, gen, reason=reason))
                else:
                    fresh.append(c)
            for c, reason in zip(fresh, self.probe(fresh)):
                if reason:
                    out.rejected.append(record(c, gen, reason=reason))
                elif len(out.candidates) < size:
                    out.candidates.append(c)

        if gen == 0:
            admit(self.initial(rng))
        else:
            self._es_proposals(gen, out, cache)
        tries = 0
        while len(out.candidates) < size and tries < 30 and (gen > 0 or tries < 10):
            need = size - len(out.candidates)
            if gen == 0:
                proposals = [self.make(n, None, "random")
                             for n in derivation.ramped_half_and_half(self.grammar, rng, 2 * need)]
            else:
                proposals = [self.offspring(rng, cache, pool) for _ in range(2 * need)]
            admit(proposals)
            tries += 1
        return out

    def initial(self, rng: np.random.Generator) -> list[Candidate]:
        """Generation 0's proposals: the zoo's seeds of the grammar, then random trees."""
        out = []
        for name, text in self.grammar.seeds.items():
            if name in zoo.ZOO:
                node = derivation.parse_derivation(self.grammar, text)
                out.append(self.make(node, zoo.ZOO[name].constants, f"zoo:{name}"))
        # twice the free slots; the caller tops up if too few are new and valid
        for node in derivation.ramped_half_and_half(self.grammar, rng, 2 * max(self.config.population - len(out), 1)):
            out.append(self.make(node, None, "random"))
        return out

    def offspring(self, rng: np.random.Generator, cache: dict[str, dict], pool: list[str]) -> Candidate:
        """One child of parents from the pool, by an operator drawn with the configured rates."""
        cfg = self.config
        probs = np.array([cfg.p_crossover, cfg.p_subtree, cfg.p_point, cfg.p_shrink])
        op = variation.OPERATORS[int(rng.choice(4, p=probs / probs.sum()))]
        a = cache[self.tournament(rng, cache, pool)]
        node_a = derivation.parse_derivation(self.grammar, a["derivation"])
        parents = [a["key"]]
        constants = dict(a["constants"])
        if op == "crossover":
            b = cache[self.tournament(rng, cache, pool)]
            parents.append(b["key"])
            node_b = derivation.parse_derivation(self.grammar, b["derivation"])
            child = variation.crossover(self.grammar, rng, node_a, node_b)
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

    def tournament(self, rng: np.random.Generator, cache: dict[str, dict], pool: list[str]) -> str:
        """The key of the best (by penalised fitness) of ``tournament`` entrants drawn from the pool."""
        entrants = [pool[int(i)] for i in rng.integers(0, len(pool), self.config.tournament)]
        return max(entrants, key=lambda k: penalised(cache[k], self.config.complexity_penalty))

    def _es_proposals(self, gen: int, out: Batch, cache: dict[str, dict]) -> None:
        """Asks each ES target's strategy for constant settings; new valid ones join the batch.
        Every sample keeps its slot, so the strategy is told a fitness for each."""
        key = jax.random.PRNGKey(self.config.seed * 100_003 + gen)
        for j, (h, rec) in enumerate(self.es_targets(cache)):
            node = derivation.parse_derivation(self.grammar, rec["derivation"])
            names = sorted(rec["constants"])
            settings = self.es.ask(self.grammar, h, node, names, rec["constants"], jax.random.fold_in(key, j))
            out.es_slots[h] = [self._propose(gen, out, cache, self.make(node, s, "es", [rec["key"]]))
                               for s in settings]
            if self.config.es_center:  # not a slot: the strategy is not told its score
                self._propose(gen, out, cache, self.make(node, self.es.center(self.grammar, h), "es-center",
                                                         [rec["key"]]))

    def _propose(self, gen: int, out: Batch, cache: dict[str, dict], c: Candidate) -> EsSlot:
        """``c`` joins the batch if it is new and valid (a rejection is recorded); where it went."""
        if c.key in cache or c.key in out.keys:
            out.cache_hits += 1
            return EsSlot("known", key=c.key)
        out.keys.add(c.key)
        reason = derivation.check(self.grammar, c.node, c.expr) or self.probe([c])[0]
        if reason:
            out.rejected.append(record(c, gen, reason=reason))
            return EsSlot("rejected")
        out.candidates.append(c)
        return EsSlot("new", index=len(out.candidates) - 1)

    def es_targets(self, cache: dict[str, dict]) -> list[tuple[str, dict]]:
        """The structures whose constants the constant search tunes: the ``es_trees`` best that have constants."""
        best = records.best_per_structure(cache.values(), need_constants=True)
        ranked = sorted(best.items(), key=lambda kv: -kv[1]["fitness"])
        return ranked[: self.config.es_trees]
