"""A loss's nearest relatives: which other losses move the policy the same way.

A loss acts on training only through its gradient with respect to the two
log-likelihoods, so two losses are alike where their gradient fields

    F(x_i) = (d loss / d logp_w, d loss / d logp_l)(x_i)

point the same way and weight the pairs x_i alike. The similarity is the cosine of the
two fields flattened over all pairs: 1 for losses equal up to a positive factor (which
Adam's step size absorbs), 0 for orthogonal fields, negative where one pushes against
the other. A relative's constants are fitted by taking the best of a grid, so "acts as
DPO over the Tsallis mirror with alpha 0.3, cosine 0.99" describes where a discovered
loss sits among the published ones, on the inputs given (for a run: its data at the
reference and at the policy the loss trained to, as for effective forms).
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
    constants: dict        # the grid point with the highest cosine
    cosine: float


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


_FIELDS: dict[str, _Field] = {}


def _field(expr: Expr) -> _Field:
    key = repr(expr)
    if key not in _FIELDS:
        if len(_FIELDS) > 256:
            _FIELDS.clear()
        _FIELDS[key] = _Field(expr)
    return _FIELDS[key]


def gradient_field(expr: Expr, constants: Mapping[str, float], inputs) -> np.ndarray:
    """(N, 2) gradient of ``expr`` with respect to (logp_w, logp_l) at each pair of
    ``inputs`` (terminal name -> (N,) arrays, or several such sets, concatenated)."""
    sets = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    return _field(expr).many([constants], sets)[0]


def nearest(expr: Expr, constants: Mapping[str, float], inputs,
            candidates: Sequence[tuple[str, Expr, Sequence[Mapping[str, float]]]]) -> list[Relative]:
    """Each candidate (name, expression, grid of constants) at its best grid point, by the
    cosine of its gradient field with that of ``expr`` at ``constants`` on ``inputs``
    (see :func:`gradient_field`), most similar first. A candidate whose field is not
    finite at a grid point skips that point; one with no finite point is left out. Raises
    ValueError if ``expr``'s own field is not finite or is zero on these inputs."""
    sets = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    target = gradient_field(expr, constants, sets)
    if not np.all(np.isfinite(target)) or not np.any(target):
        raise ValueError("the loss has no finite, non-zero gradient field on these inputs")
    out = []
    for name, cand, grid in candidates:
        fields = _field(cand).many(list(grid), sets).reshape(len(grid), -1)
        finite = np.all(np.isfinite(fields), axis=1)
        if not finite.any():
            continue
        cosines = [field_cosine(target, f) if ok else -np.inf for f, ok in zip(fields, finite)]
        best = int(np.argmax(cosines))
        out.append(Relative(name, dict(grid[best]), float(cosines[best])))
    return sorted(out, key=lambda r: -r.cosine)
