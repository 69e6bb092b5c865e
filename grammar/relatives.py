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
    """The gradient field of one expression, compiled once for every constants dict."""

    def __init__(self, expr: Expr):
        f = lowering.lower(expr)
        self.names = sorted(expr.constants)

        def total(w, lo, x, consts):
            return jnp.sum(f({**x, "logp_w": w, "logp_l": lo}, consts) * jnp.ones_like(w))

        def field(x, consts):
            gw, gl = jax.grad(total, argnums=(0, 1))(x["logp_w"], x["logp_l"], x, consts)
            return jnp.stack([gw, gl], axis=-1)

        self._field = jax.jit(field)

    def __call__(self, constants: Mapping[str, float], inputs: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
        consts = {k: jnp.float32(constants[k]) for k in self.names}
        parts = [np.asarray(self._field({k: jnp.asarray(v, jnp.float32) for k, v in x.items()}, consts), np.float64)
                 for x in inputs]
        return np.concatenate(parts)


def gradient_field(expr: Expr, constants: Mapping[str, float], inputs) -> np.ndarray:
    """(N, 2) gradient of ``expr`` with respect to (logp_w, logp_l) at each pair of
    ``inputs`` (terminal name -> (N,) arrays, or several such sets, concatenated)."""
    sets = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    return _Field(expr)(constants, sets)


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
        field = _Field(cand)
        best = None
        for point in grid:
            f = field(point, sets)
            if not np.all(np.isfinite(f)):
                continue
            c = field_cosine(target, f)
            if best is None or c > best.cosine:
                best = Relative(name, dict(point), c)
        if best is not None:
            out.append(best)
    return sorted(out, key=lambda r: -r.cosine)
