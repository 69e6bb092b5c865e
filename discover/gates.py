"""The validity gate before training: finite loss and gradients on probe inputs.

The probe inputs are the evaluator's own realistic terminals (the reference's
log-likelihoods and lengths on its data) with the policy moved off the reference by
margins out to +-``margin`` (the range training produces), split between the two
responses and capped at 0 (so exactly 0 is probed too: a response whose every token has
probability 1 in float32, which long training reaches), and training progress t across
[0, 1]. A loss whose value
or gradient with respect to the log-likelihoods is non-finite anywhere there would stop
training, so it is rejected with that reason before it costs a training run. Programs
are checked in fixed-size chunks, so the gate compiles once per run.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from evaluators.interface import Evaluator
from grammar import interpreter
from grammar.expr import Expr


def probe_inputs(evaluator: Evaluator, margin: float, n: int = 64) -> jnp.ndarray:
    """(T, n) terminals: realistic pairs, margins over [-margin, margin] and N(0, 5), t across [0, 1]."""
    rng = np.random.default_rng(12345)
    x = evaluator.terminal_sample(n, rng)
    margins = np.concatenate([np.linspace(-margin, margin, n // 2), rng.normal(0, 5, n - n // 2)])
    logp_w = np.minimum(x["ref_w"] + margins / 2, 0.0)
    logp_l = np.minimum(x["ref_l"] - margins / 2, 0.0)
    return interpreter.terminal_matrix(dict(x, logp_w=logp_w, logp_l=logp_l, t=np.linspace(0, 1, n)))


class ProbeGate:
    """Checks losses in chunks of ``chunk`` programs with one compiled function."""

    def __init__(self, evaluator: Evaluator, chunk: int, margin: float):
        self.shape = evaluator.program_shape
        self.chunk = chunk
        self.margin = margin
        terms = probe_inputs(evaluator, margin)
        mode = interpreter.default_mode()

        @jax.jit
        def check(programs, consts):
            def one(p, c):
                value, grad = jax.value_and_grad(lambda tm: interpreter.evaluate(p, tm, c, mode).mean())(terms)
                per = interpreter.evaluate(p, terms, c, mode)
                return jnp.all(jnp.isfinite(per)) & jnp.isfinite(value), jnp.all(jnp.isfinite(grad[:4]))

            if mode == "switch":
                return jax.lax.map(lambda pc: one(*pc), (programs, consts))
            return jax.vmap(one)(programs, consts)

        self._check = check

    def reasons(self, exprs: Sequence[Expr], constants: Sequence[dict]) -> list[str | None]:
        """Per loss: why it is rejected (too long a program, non-finite loss or gradient), or None."""
        reasons: list[str | None] = []
        encoded = []
        for e in exprs:
            try:
                encoded.append(interpreter.encode(e, self.shape))
                reasons.append(None)
            except interpreter.ProgramTooLong as err:
                encoded.append(None)
                reasons.append(str(err))
        todo = [i for i, p in enumerate(encoded) if p is not None]
        for start in range(0, len(todo), self.chunk):
            part = todo[start:start + self.chunk]
            progs = [encoded[i] for i in part]
            consts = [encoded[i].constant_vector(constants[i], self.shape) for i in part]
            while len(progs) < self.chunk:  # fixed shape: one compilation
                progs.append(progs[0])
                consts.append(consts[0])
            ok_value, ok_grad = self._check(interpreter.stack(progs), jnp.asarray(np.stack(consts)))
            for j, i in enumerate(part):
                if not bool(ok_value[j]):
                    reasons[i] = f"non-finite loss on probe inputs (|margin| <= {self.margin:g})"
                elif not bool(ok_grad[j]):
                    reasons[i] = f"non-finite gradient on probe inputs (|margin| <= {self.margin:g})"
        return reasons
