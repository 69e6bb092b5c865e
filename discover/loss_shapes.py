"""Loss shapes: a loss as a function of the DPO margin, as the DPO and DiscoPOP papers draw
them.

For a typical pair of the run's data (the median reference log-likelihoods and lengths
over 256 pairs), the policy is moved off the reference by z nats of margin, split between
the responses: logp_w = ref_w + z/2, logp_l = ref_l - z/2, over the margins where both stay
possible log-likelihoods (at most 0; within +-20 nats). Each loss gives its value, its
derivative in z, and the weights on the two log-likelihood gradients, -dL/dlogp_w (how hard
it pushes the chosen response up) and dL/dlogp_l (how hard it pushes the rejected one
down); a loss that uses training progress t is drawn at t = 0, 0.5 and 1.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from grammar import lowering
from grammar.losses import Loss

Z_MAX = 20.0
POINTS = 161


def margins(pair: Mapping[str, float]) -> np.ndarray:
    """The margins z drawn for ``pair``: within +-Z_MAX, and where logp_w = ref_w + z/2 <= 0
    and logp_l = ref_l - z/2 <= 0 (a log-likelihood is never positive)."""
    low = max(-Z_MAX, 2.0 * pair["ref_l"])
    high = min(Z_MAX, -2.0 * pair["ref_w"])
    return np.linspace(low, high, POINTS) if high > low else np.zeros(1)


def typical_pair(inputs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Median reference log-likelihoods and lengths of the given pairs."""
    return {k: float(np.median(inputs[k])) for k in ("ref_w", "ref_l", "len_w", "len_l")}


def curves(entries: Sequence[Loss], pair: Mapping[str, float]) -> dict:
    """{"z": [...], "pair": pair, "losses": {name: {t: {loss, dloss_dz, weight_w, weight_l}}}} (JSON)."""
    zs = margins(pair)
    z = jnp.asarray(zs, jnp.float32)
    out = {"z": zs.tolist(), "pair": dict(pair), "losses": {}}
    for entry in entries:
        name, expr, constants = entry.name, entry.expr, entry.constants
        f = lowering.lower(expr)
        consts = {k: jnp.float32(v) for k, v in constants.items()}
        times = (0.0, 0.5, 1.0) if "t" in expr.terminals else (0.0,)
        by_t = {}
        for t in times:
            def loss(w, lo, t=t):
                x = {"logp_w": w, "logp_l": lo, "ref_w": jnp.full_like(w, pair["ref_w"]),
                     "ref_l": jnp.full_like(w, pair["ref_l"]), "len_w": jnp.full_like(w, pair["len_w"]),
                     "len_l": jnp.full_like(w, pair["len_l"]), "t": jnp.full_like(w, t)}
                return f(x, consts) * jnp.ones_like(w)

            w = pair["ref_w"] + z / 2
            lo = pair["ref_l"] - z / 2
            value = loss(w, lo)
            gw, gl = jax.grad(lambda a, b: loss(a, b).sum(), argnums=(0, 1))(w, lo)
            clean = lambda a: [None if not np.isfinite(v) else float(v) for v in np.asarray(a)]  # noqa: E731
            by_t[f"{t:g}"] = {"loss": clean(value), "dloss_dz": clean((gw - gl) / 2), "weight_w": clean(-gw),
                              "weight_l": clean(gl)}
        out["losses"][name] = by_t
    return out


def mirror_curves(grammar, derivations: Sequence[tuple[str, str, dict]], inputs: Mapping[str, np.ndarray],
                  points: int = 101) -> dict:
    """Each loss's mirror map m(x) over the observed mean log-likelihoods per step x = ref/len
    (1st to 99th percentile of the given pairs), for losses whose derivation has a ``Mirror``
    part: {"x": [...], "maps": {name: [...]}} (JSON); the log map is m(x) = x."""
    from grammar import derivation

    means = np.concatenate([np.asarray(inputs["ref_w"]) / np.asarray(inputs["len_w"]),
                            np.asarray(inputs["ref_l"]) / np.asarray(inputs["len_l"])])
    x = np.linspace(np.percentile(means, 1), min(np.percentile(means, 99), -1e-3), points)
    maps = {}
    for name, text, constants in derivations:
        node = derivation.parse_derivation(grammar, text)
        mirror = next((c for ref, c in node.children if c.nonterminal == "Mirror"), None)
        if mirror is None:
            continue
        expr = derivation.expand(grammar, mirror)
        consts = {c: jnp.float32(constants.get(c, grammar.constants[c].default)) for c in expr.constants}
        values = np.asarray(lowering.lower(expr)({"x": jnp.asarray(x, jnp.float32)}, consts)) * np.ones_like(x)
        maps[f"{name} ({mirror.label})"] = [None if not np.isfinite(v) else float(v) for v in values]
    return {"x": x.tolist(), "maps": maps}
