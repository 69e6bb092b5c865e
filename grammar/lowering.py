"""Direct lowering of one expression to a JAX function (for export checks and probes).

``lower(expr)`` returns ``fn(inputs, constants) -> array``: ``inputs`` maps terminal (or
parameter) names to arrays, ``constants`` maps constant names to scalars. Repeated
subtrees are computed once. Each primitive is the same JAX function the array
interpreter uses, so the two agree to float32 rounding. ``dtype=jnp.float64`` (inside
``jax.enable_x64(True)``) evaluates in double precision, for checks that float32 rounding
would blur.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax.numpy as jnp

from grammar.expr import Expr
from grammar.primitives import PRIMITIVES


def lower(expr: Expr, dtype=jnp.float32) -> Callable[[Mapping, Mapping], jnp.ndarray]:
    nodes = expr.unique_nodes()

    def fn(inputs: Mapping, constants: Mapping) -> jnp.ndarray:
        vals = {}
        for n in nodes:
            if n.op in ("var", "param"):
                v = jnp.asarray(inputs[n.name], dtype)
            elif n.op == "const":
                v = jnp.asarray(constants[n.name], dtype)
            elif n.op == "num":
                v = jnp.asarray(n.value, dtype)
            else:
                v = PRIMITIVES[n.op].jax(*[vals[a] for a in n.args])
            vals[n] = v
        out = vals[expr]
        # Constant-only expressions would come back as scalars: broadcast to the batch.
        shape = jnp.broadcast_shapes(*(jnp.shape(inputs[k]) for k in inputs)) if inputs else ()
        return jnp.broadcast_to(out, shape).astype(dtype) + jnp.zeros(shape, dtype)

    return fn
