"""The search's settings: population and generations, the seeds it trains and re-scores
on, the variation and constant-search rates, and successive halving; validated whole
before any work starts."""

from __future__ import annotations

import dataclasses

from discover.errors import RunError
from evaluators import seeds as seed_spaces

# The constant search's strategies (evosax's algorithms of these names; see
# :mod:`discover.constant_search`).
ES_ALGORITHMS = ("snes", "cma_es", "open_es")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """The settings of one search; ``validate`` checks them together, ``to_dict``/``from_dict``
    are config.json's ``search`` section (runs made before a setting existed read with the
    value they ran with)."""

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
    # Also train each constant-search target's strategy mean as a candidate every
    # generation (not told to the strategy): an estimate of the best constants that noisy
    # fitness has moved many times, where a sample's own score is one noisy draw.
    es_center: bool = False
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
        """This configuration, checked; a :class:`RunError` naming the command-line option."""
        if self.population < 2:
            raise RunError(f"--population must be at least 2, got {self.population}")
        if self.generations < 1:
            raise RunError(f"--generations must be at least 1, got {self.generations}")
        if self.es not in ES_ALGORITHMS:
            raise RunError(f"unknown constant search {self.es!r}; --es takes {', '.join(ES_ALGORITHMS)}")
        if self.es_trees * (self.es_popsize + self.es_center) + self.reevaluate >= self.population:
            taken = self.es_trees * (self.es_popsize + self.es_center)
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
        """As stored in a run's config.json."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "SearchConfig":
        """A stored configuration back (fields that older runs did not write take the values
        those runs had)."""
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
