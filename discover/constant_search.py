"""The constant search: an evosax strategy per structure over its constants.

Constants are searched in unit coordinates (each constant mapped to [0, 1] on its own
scale, as the grammar declares it), so one step size serves every constant. evosax
minimises; the search maximises fitness, so fitness is negated on the way in, and a
rejected setting counts as very bad. Strategies come from evosax's own algorithms
(``ES_ALGORITHMS``); their states are saved in checkpoints as plain leaves.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from discover.search_config import ES_ALGORITHMS
from grammar import derivation
from grammar.derivation import Node
from grammar.language import Grammar


def _in_ranges(g: Grammar, names: list[str], unit) -> dict[str, float]:
    """A point in unit coordinates as the constants' own values (clipped to [0, 1] first)."""
    return {n: g.constants[n].from_unit(float(np.clip(u, 0.0, 1.0))) for n, u in zip(names, unit)}


class ConstantSearch:
    """evosax strategies over the constants of a few structures, in unit coordinates."""

    def __init__(self, algorithm: str, popsize: int, std: float):
        if algorithm not in ES_ALGORITHMS:
            raise ValueError(f"unknown constant search {algorithm!r}")
        self.algorithm, self.popsize, self.std = algorithm, popsize, std
        self.states: dict[str, dict] = {}  # hash -> {"names", "state" (pytree), "derivation"}
        self._asked: dict[str, str] = {}  # hash -> the key of the strategy last asked for it

    def _strategy(self, dim: int):
        import optax
        from evosax.algorithms import CMA_ES, SNES, Open_ES

        template = jnp.zeros(dim)
        n = self.popsize
        if self.algorithm == "snes":
            es = SNES(population_size=n, solution=template)
            return es, es.default_params.replace(std_init=self.std)
        if self.algorithm == "cma_es":
            es = CMA_ES(population_size=n, solution=template)
            return es, es.default_params.replace(std_init=self.std)
        es = Open_ES(population_size=n, solution=template,
                     std_schedule=optax.constant_schedule(self.std),
                     optimizer=optax.adam(0.05))
        return es, es.default_params

    def ask(self, g: Grammar, h: str, node: Node, names: list[str], best: dict[str, float],
            key: jax.Array) -> list[dict[str, float]]:
        """New constant settings for structure ``h`` (its strategy started at ``best`` on
        first use), in the constants' own ranges."""
        es, params = self._strategy(len(names))
        # One canonical structure can be written with a constant that cancels (mix(a, a) is a
        # whatever its weight), so its best record may come with other constants: each set of
        # constants has its own strategy, the first under the structure's hash.
        k = h if h not in self.states or self.states[h]["names"] == names else f"{h}|{','.join(names)}"
        self._asked[h] = k
        if k not in self.states:
            mean = jnp.asarray([g.constants[n].to_unit(best[n]) for n in names], jnp.float32)
            self.states[k] = {"names": names, "state": es.init(jax.random.PRNGKey(0), mean, params),
                              "derivation": derivation.to_text(node)}
        entry = self.states[k]
        pop, entry["state"] = es.ask(key, entry["state"], params)
        entry["asked"] = np.asarray(pop)
        return [_in_ranges(g, names, row) for row in entry["asked"]]

    def center(self, g: Grammar, h: str) -> dict[str, float]:
        """Structure ``h``'s strategy's mean, in the constants' own ranges: its current
        estimate of the best setting, which under noisy fitness is better informed than
        any one sample it has been told (every sample's fitness moved it)."""
        entry = self.states[self._asked.get(h, h)]
        return _in_ranges(g, entry["names"], np.asarray(entry["state"].mean))

    def tell(self, h: str, fitness: Sequence[float | None], key: jax.Array) -> None:
        """Updates structure ``h``'s strategy with the fitness of the settings it last asked
        for (None, a rejected setting, counts as very bad)."""
        entry = self.states[self._asked.get(h, h)]
        es, params = self._strategy(len(entry["names"]))
        # evosax minimises: negate, and a rejected setting counts as very bad.
        f = jnp.asarray([-v if v is not None else 1e3 for v in fitness], jnp.float32)
        entry["state"], _ = es.tell(key, jnp.asarray(entry["asked"]), f, entry["state"], params)
        entry.pop("asked", None)

    def to_json(self) -> dict:
        """Every strategy's state as JSON (for the run's checkpoint)."""
        out = {}
        for h, e in self.states.items():
            leaves = jax.tree.leaves(e["state"])
            out[h] = {"names": e["names"], "derivation": e["derivation"],
                      "leaves": [np.asarray(x).tolist() for x in leaves],
                      "dtypes": [str(np.asarray(x).dtype) for x in leaves]}
        return out

    def load_json(self, data: dict) -> None:
        """Restores the strategies written by :meth:`to_json`."""
        for h, e in data.items():
            es, params = self._strategy(len(e["names"]))
            fresh = es.init(jax.random.PRNGKey(0), jnp.zeros(len(e["names"])), params)
            treedef = jax.tree.structure(fresh)
            leaves = [jnp.asarray(np.asarray(v, dtype=d)) for v, d in zip(e["leaves"], e["dtypes"])]
            self.states[h] = {"names": e["names"], "derivation": e["derivation"],
                              "state": jax.tree.unflatten(treedef, leaves)}
