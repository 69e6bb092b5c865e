"""The effective form of a loss on given data: which of its additive terms act.

A loss written as a sum of terms, loss = T_1 + T_2 + ... (subtractions and negations
unfolded), moves the policy only through its gradient with respect to the
log-likelihoods logp_w and logp_l. The share of term k is

    share_k = mean_i ||(dT_k/dlogp_w, dT_k/dlogp_l)(x_i)|| / sum_j mean_i ||(dT_j/dlogp_w, dT_j/dlogp_l)(x_i)||

over the given pairs x_i (for a run: its data's terminals at the reference, across
training progress t in [0, 1]). Terms below ``threshold`` (1% by default) are dropped:
what remains is the loss's effective form on those data. At the log-likelihood scale of
long responses (mean log-likelihood per step far below 0), for example, the log-odds
mirror map is the log map to within 1e-3 nats and power-mirror terms have gradients of
order 1e-5: the effective form says so, where the flat closed form cannot.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from grammar import lowering
from grammar.expr import Expr

THRESHOLD = 0.01


def additive_terms(expr: Expr) -> list[Expr]:
    """The summands of ``expr``: ``a + b - c`` -> [a, b, -c] (recursively through add,
    sub and neg)."""
    if expr.op == "add":
        return additive_terms(expr.args[0]) + additive_terms(expr.args[1])
    if expr.op == "sub":
        return additive_terms(expr.args[0]) + [_negate(t) for t in additive_terms(expr.args[1])]
    if expr.op == "neg":
        return [_negate(t) for t in additive_terms(expr.args[0])]
    return [expr]


def _negate(e: Expr) -> Expr:
    return e.args[0] if e.op == "neg" else Expr.call("neg", e)


def _sum(terms: list[Expr]) -> Expr:
    if not terms:
        return Expr.num(0.0)
    out = terms[0]
    for t in terms[1:]:
        out = Expr.call("sub", out, t.args[0]) if t.op == "neg" else Expr.call("add", out, t)
    return out


@dataclasses.dataclass(frozen=True)
class EffectiveForm:
    terms: tuple[Expr, ...]      # the additive terms of the loss
    shares: tuple[float, ...]    # each term's share of the gradient norm (sums to 1 when any acts)
    kept: tuple[bool, ...]       # share >= threshold
    expr: Expr                   # the sum of the kept terms

    @property
    def pruned(self) -> bool:
        return not all(self.kept)


def gradient_norms(term: Expr, constants: Mapping[str, float], inputs: Mapping[str, np.ndarray]) -> float:
    """Mean over pairs of the norm of d term / d (logp_w, logp_l)."""
    f = lowering.lower(term)
    consts = {k: jnp.float32(v) for k, v in constants.items()}
    x = {k: jnp.asarray(v, jnp.float32) for k, v in inputs.items()}

    def total(w, lo):
        return jnp.sum(f({**x, "logp_w": w, "logp_l": lo}, consts) * jnp.ones_like(w))

    gw, gl = jax.grad(total, argnums=(0, 1))(x["logp_w"], x["logp_l"])
    norms = jnp.sqrt(gw ** 2 + gl ** 2)
    return float(jnp.mean(jnp.where(jnp.isfinite(norms), norms, 0.0)))


def effective_form(expr: Expr, constants: Mapping[str, float], inputs, threshold: float = THRESHOLD
                   ) -> EffectiveForm:
    """The terms of ``expr``, their gradient shares on ``inputs`` (terminal name -> (N,)
    arrays; or several such sets, for example the start and the end of training, where a
    term's share is its largest over the sets), and the loss without the terms below
    ``threshold`` (so a term is kept if it acts on any set)."""
    terms = additive_terms(expr)
    sets = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    shares = np.zeros(len(terms))
    for x in sets:
        norms = np.array([gradient_norms(t, {k: v for k, v in constants.items() if k in t.constants}, x)
                          for t in terms])
        total = norms.sum()
        shares = np.maximum(shares, norms / total if total > 0 else np.zeros_like(norms))
    kept = shares >= threshold
    return EffectiveForm(tuple(terms), tuple(float(v) for v in shares), tuple(bool(k) for k in kept),
                         _sum([t for t, k in zip(terms, kept) if k]))
