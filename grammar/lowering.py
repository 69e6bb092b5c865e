"""Direct lowering of one expression to a JAX function (for export checks and probes).

``lower(expr)`` returns ``fn(inputs, constants) -> array``: ``inputs`` maps terminal (or
parameter) names to arrays, ``constants`` maps constant names to scalars. Repeated
subtrees are computed once. Each primitive is the same JAX function the array
interpreter uses, so the two agree to float32 rounding.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax.numpy as jnp

from grammar.expr import Expr
from grammar.primitives import PRIMITIVES


def lower(expr: Expr) -> Callable[[Mapping, Mapping], jnp.ndarray]:
    nodes = expr.unique_nodes()

    def fn(inputs: Mapping, constants: Mapping) -> jnp.ndarray:
        vals = {}
        for n in nodes:
            if n.op in ("var", "param"):
                v = jnp.asarray(inputs[n.name], jnp.float32)
            elif n.op == "const":
                v = jnp.asarray(constants[n.name], jnp.float32)
            elif n.op == "num":
                v = jnp.float32(n.value)
            else:
                v = PRIMITIVES[n.op].jax(*[vals[a] for a in n.args])
            vals[n] = v
        out = vals[expr]
        # Constant-only expressions would come back as scalars: broadcast to the batch.
        shape = jnp.broadcast_shapes(*(jnp.shape(inputs[k]) for k in inputs)) if inputs else ()
        return jnp.broadcast_to(out, shape).astype(jnp.float32) + jnp.zeros(shape, jnp.float32)

    return fn
