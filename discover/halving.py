"""Which seeds a generation's candidates train on: successive halving over the inner seeds,
or every inner seed at once, and the elites' re-training on fresh seeds beside them.

Both keep one program shape per run (``population`` candidates per evaluator call,
padded with repeats of new candidates whose scores are discarded), so the trainer compiles
once. With halving, rung 0 trains every new candidate on one inner seed; the best
``(population - elites) / (S - 1)`` are promoted to the other ``S - 1`` inner seeds
(rung 1), beside each elite on one fresh seed: 2P runs instead of P x S.
(``benchmarks/halving.py`` measures how often halving keeps the best candidate.)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from discover.proposals import record
from discover.records import Candidate
from discover.rows import RECORD_SPREAD_DDOF, score_fields, spread
from discover.search_config import SearchConfig
from evaluators import trainer
from evaluators.interface import Evaluation, Evaluator


def scored_fields(ev: Evaluation, i: int) -> dict:
    """A record's score fields for candidate i of an evaluation, with its training diagnostics."""
    out = score_fields(ev.per_seed[i], ev.reasons[i], RECORD_SPREAD_DDOF)
    if "train_accuracy" in ev.diagnostics:
        out["train_accuracy"] = ev.mean("train_accuracy", i)
    if "final_loss" in ev.diagnostics:
        out["final_loss"] = [float(v) for v in ev.diagnostics["final_loss"][i]]
    return out


@dataclasses.dataclass
class Trained:
    """A generation's training: the new candidates' records (``scored``), the elites'
    records with their fresh seeds merged (``updated``), seconds by phase and training runs."""

    scored: list[dict]
    updated: list[dict]
    timing: dict
    runs: int


class SeedSchedule:
    """Trains a generation's new candidates and elites with ``evaluator`` on the seeds the
    configuration gives them (``from_record``: an elite's record back as a candidate;
    ``phase``: told what is being trained)."""

    def __init__(self, config: SearchConfig, evaluator: Evaluator, from_record: Callable[[dict], Candidate],
                 phase: Callable[[str], None]):
        self.config, self.evaluator, self.from_record, self.phase = config, evaluator, from_record, phase

    def train(self, gen: int, batch: list[Candidate], elites: list[dict]) -> Trained:
        """The generation's records: by successive halving if the configuration halves."""
        return self.halving(gen, batch, elites) if self.config.halves else self.all_seeds(gen, batch, elites)

    def _evaluate(self, cands: list[Candidate], seeds: np.ndarray, timing: dict) -> Evaluation:
        """One call of the evaluator (``seeds`` (P, S) per candidate); times add up in ``timing``."""
        ev = self.evaluator.evaluate([c.expr for c in cands], [c.constants for c in cands], seeds)
        for k in ("train_s", "score_s"):
            timing[k] = timing.get(k, 0.0) + (ev.timing.get(k) or 0.0)
        return ev

    def all_seeds(self, gen: int, batch: list[Candidate], elites: list[dict]) -> Trained:
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
        ev = self._evaluate(padded, seeds, timing)
        scored = [record(c, gen, **scored_fields(ev, i), seeds=list(inner), trained=True)
                  for i, c in enumerate(batch)]
        updated = [merge_reevaluation(rec, gen, fresh, ev.seed_scores(n_real + j), ev.reasons[n_real + j])
                   for j, rec in enumerate(elites)]
        return Trained(scored, updated, timing, len(slots) * len(inner))

    def halving(self, gen: int, batch: list[Candidate], elites: list[dict]) -> Trained:
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
        ev0 = self._evaluate(padded, np.full((P, 1), inner[0]), timing)
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
        ev1 = self._evaluate(padded, seeds, timing) if rows else None
        at = {i: k * (len(inner) - 1) for k, i in enumerate(promote)}
        scored = []
        for i, c in enumerate(batch):
            base = dict(screen=screen[i] if ev0.reasons[i] is None else None, trained=True)
            if ev0.reasons[i] is not None:
                scored.append(record(c, gen, **scored_fields(ev0, i), seeds=[inner[0]], rung=0, **base))
            elif i not in at:
                scored.append(record(c, gen, per_seed=[screen[i]], seeds=[inner[0]], rung=0, halted=True, **base))
            else:
                rest = range(at[i], at[i] + len(inner) - 1)
                per_seed = [screen[i]] + [ev1.seed_scores(r)[0] for r in rest]
                reason = next((f"failed on seed {s}: {ev1.reasons[r]}" for s, r in zip(inner[1:], rest)
                               if ev1.reasons[r] is not None), None)
                vals = np.array(per_seed, float)
                fields = dict(fitness=None, spread=None, reason=reason) if reason else \
                    dict(fitness=float(vals.mean()), spread=spread(vals, RECORD_SPREAD_DDOF), reason=None)
                if "train_accuracy" in ev0.diagnostics:
                    fields["train_accuracy"] = float(np.mean([ev0.diagnostics["train_accuracy"][i]] +
                                                             [ev1.diagnostics["train_accuracy"][r] for r in rest]))
                scored.append(record(c, gen, per_seed=per_seed, seeds=list(inner), rung=1, **fields, **base))
        offset = len(promote) * (len(inner) - 1)
        updated = [merge_reevaluation(rec, gen, (fresh[j],), ev1.seed_scores(offset + j), ev1.reasons[offset + j])
                   for j, rec in enumerate(elites)]
        return Trained(scored, updated, timing, n_real + len(rows))


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
        out.update(fitness=float(vals.mean()), spread=spread(vals, RECORD_SPREAD_DDOF))
    return out
