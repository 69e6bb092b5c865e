"""A loss's nearest relatives: which other losses move the policy the same way.

A loss acts on training only through its gradient with respect to the two
log-likelihoods, so two losses are alike where their gradient fields

    F(x_i) = (d loss / d logp_w, d loss / d logp_l)(x_i)

point the same way and weight the pairs x_i alike. On one set of pairs the similarity is
the cosine of the two fields flattened over the set: 1 for losses equal up to a positive
factor (which Adam's step size largely absorbs), 0 for orthogonal fields, negative where
one pushes against the other. Over several sets (for a run: its data at the reference and
at the policy the loss trained to, as for effective forms) it is the mean of the sets'
cosines, so that each set counts alike whatever the size of its gradients; each set's own
cosine is kept beside it. A relative's constants are the best point of a grid, chosen on
the same pairs, so the value is optimistic, more so for losses with more constants.

Only a cosine of 1 has a clean meaning (the same field on these pairs). The cosine is in
log-likelihood space: it leaves out the policy's Jacobian, so it is not the cosine of two
parameter updates. Where the policy equals the reference (every margin 0), all losses of
the log-ratio family have nearly the same field; the trained set is what tells them apart.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from grammar import lowering
from grammar.expr import Expr


@dataclasses.dataclass(frozen=True)
class Relative:
    name: str
    constants: dict        # the grid point with the highest similarity
    cosine: float          # the mean over the input sets of each set's field cosine
    per_set: tuple = ()    # each input set's own cosine, in the order given


def field_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two gradient fields (any shape, flattened); 0 where either is all zero."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


class _Field:
    """The gradient field of one expression, compiled once for every constants dict (and
    once for every number of them evaluated together)."""

    def __init__(self, expr: Expr):
        f = lowering.lower(expr)
        self.names = sorted(expr.constants)

        def total(w, lo, x, consts):
            return jnp.sum(f({**x, "logp_w": w, "logp_l": lo}, consts) * jnp.ones_like(w))

        def field(x, consts):
            gw, gl = jax.grad(total, argnums=(0, 1))(x["logp_w"], x["logp_l"], x, consts)
            return jnp.stack([gw, gl], axis=-1)

        self._many = jax.jit(jax.vmap(field, in_axes=(None, 0)))
        self._one = jax.jit(field)

    def many(self, grid: Sequence[Mapping[str, float]], inputs: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        """(G, N, 2): the field at each of the G points of ``grid``, on the N pairs of
        ``inputs`` (several sets, concatenated)."""
        sets = [{k: jnp.asarray(v, jnp.float32) for k, v in x.items()} for x in inputs]
        if not self.names:  # no constants: one field, the same at every grid point
            one = np.concatenate([np.asarray(self._one(x, {}), np.float64) for x in sets])
            return np.broadcast_to(one, (len(grid), *one.shape))
        consts = {k: jnp.asarray([p[k] for p in grid], jnp.float32) for k in self.names}
        return np.concatenate([np.asarray(self._many(x, consts), np.float64) for x in sets], axis=1)


_FIELDS: dict[Expr, _Field] = {}


def _field(expr: Expr) -> _Field:
    if expr not in _FIELDS:
        if len(_FIELDS) > 256:
            _FIELDS.clear()
        _FIELDS[expr] = _Field(expr)
    return _FIELDS[expr]


def _sets(inputs) -> list[Mapping[str, np.ndarray]]:
    return [inputs] if isinstance(inputs, Mapping) else list(inputs)


def _points(expr: Expr, grid: Sequence[Mapping[str, float]], what: str) -> list[Mapping[str, float]]:
    grid = list(grid)
    if not grid:
        raise ValueError(f"{what}: an empty grid of constants")
    for p in grid:
        if missing := sorted(set(expr.constants) - set(p)):
            raise ValueError(f"{what}: constants {', '.join(missing)} have no value at grid point {dict(p)}")
    return grid


def gradient_field(expr: Expr, constants: Mapping[str, float], inputs) -> np.ndarray:
    """(N, 2) gradient of ``expr`` with respect to (logp_w, logp_l) at each pair of
    ``inputs`` (terminal name -> (N,) arrays, or several such sets, concatenated)."""
    return _field(expr).many(_points(expr, [constants], "the loss"), _sets(inputs))[0]


def nearest(expr: Expr, constants: Mapping[str, float], inputs,
            candidates: Sequence[tuple[str, Expr, Sequence[Mapping[str, float]]]]) -> list[Relative]:
    """Each candidate (name, expression, grid of constants) at its best grid point, by the
    similarity of its gradient field with that of ``expr`` at ``constants`` on ``inputs``
    (one set of pairs or several: the module docstring), most similar first. A grid point
    where the candidate's field is not finite on every pair is skipped; a candidate with no
    such point is left out. Raises ValueError if ``expr``'s own field is not finite or is
    zero on some input set, or a grid lacks a constant."""
    sets = _sets(inputs)
    sizes = [len(np.asarray(x["logp_w"])) for x in sets]
    cuts = np.cumsum(sizes)[:-1]
    target = np.split(gradient_field(expr, constants, sets), cuts)
    for i, t in enumerate(target):
        if not np.all(np.isfinite(t)) or not np.any(t):
            raise ValueError(f"the loss has no finite, non-zero gradient field on input set {i + 1} of {len(sets)}")
    out = []
    for name, cand, grid in candidates:
        grid = _points(cand, grid, name)
        fields = _field(cand).many(grid, sets)
        best = None
        for point, f in zip(grid, fields):
            if not np.all(np.isfinite(f)):
                continue
            per_set = tuple(field_cosine(t, part) for t, part in zip(target, np.split(f, cuts)))
            if best is None or np.mean(per_set) > best.cosine:
                best = Relative(name, dict(point), float(np.mean(per_set)), per_set)
        if best is not None:
            out.append(best)
    return sorted(out, key=lambda r: -r.cosine)
