"""The array-encoded interpreter: a population of different losses, one compiled program.

A loss expression is encoded as a straight-line register program of fixed length
``L``: registers hold the terminals, then the program's constants, then one result per
instruction. Instruction ``i`` applies opcode ``op[i]`` to registers ``a[i]`` and
``b[i]`` (or loads the literal ``imm[i]``) and writes register ``T + C + i``. Repeated
subexpressions are computed once. ``n`` is the program's own length: the loops stop
there, and its output is register ``T + C + n - 1`` (the padding after it is never run).

``evaluate`` runs one program on a batch of pairs with ``lax.scan``. Over a population
of programs (stacked arrays) the trees may change freely without recompiling, because
every program has the same shapes and dtypes. Two modes:

- ``switch`` (CPUs): programs run one after another (``lax.map``); each step's opcode is
  a scalar, so ``lax.switch`` computes only the selected primitive.
- ``select`` (accelerators): programs run side by side (``vmap``); every primitive is
  computed at every step and one is selected. Each primitive that is not selected sees
  its ``safe`` inputs, so unselected branches never put NaN into the gradient (the
  "double where" guard).

Never ``vmap`` a ``switch``-mode evaluation over programs: JAX turns a batched switch
into a select of unguarded branches. ``population_evaluate`` picks the right one.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from grammar.errors import GrammarError
from grammar.expr import Expr
from grammar.primitives import PRIMITIVES, TERMINALS

OPCODES: tuple[str, ...] = ("lit", "copy") + tuple(PRIMITIVES)
OPCODE = {name: i for i, name in enumerate(OPCODES)}
N_TERMINALS = len(TERMINALS)


class ProgramTooLong(GrammarError):
    """An expression needs more instructions than the program length allows."""


@dataclasses.dataclass(frozen=True)
class ProgramShape:
    """The fixed shape every program of a run shares (one compilation per shape)."""

    length: int = 64
    n_constants: int = 8


@dataclasses.dataclass(frozen=True)
class Program:
    """One encoded loss: int32 ``op``, ``a``, ``b`` and float32 ``imm``, each (length,).

    ``constants`` names the constant slots in order; pass their values in that order.
    """

    op: np.ndarray
    a: np.ndarray
    b: np.ndarray
    imm: np.ndarray
    constants: tuple[str, ...]
    used: int  # instructions before padding

    def arrays(self) -> dict[str, np.ndarray]:
        return {"op": self.op, "a": self.a, "b": self.b, "imm": self.imm,
                "n": np.asarray(self.used, np.int32)}

    def constant_vector(self, values: Mapping[str, float], shape: ProgramShape) -> np.ndarray:
        v = np.zeros(shape.n_constants, np.float32)
        for i, name in enumerate(self.constants):
            v[i] = values[name]
        return v


def encode(expr: Expr, shape: ProgramShape = ProgramShape()) -> Program:
    """Encodes an expression over the terminals and named constants."""
    names = expr.constants
    if len(names) > shape.n_constants:
        raise ProgramTooLong(f"expression uses {len(names)} constants; the program shape allows "
                             f"{shape.n_constants}")
    base = N_TERMINALS + shape.n_constants
    reg: dict[Expr, int] = {}
    op, a, b, imm = [], [], [], []

    def emit(code: str, x: int = 0, y: int = 0, value: float = 0.0) -> int:
        op.append(OPCODE[code])
        a.append(x)
        b.append(y)
        imm.append(value)
        return base + len(op) - 1

    for node in expr.unique_nodes():
        if node.op == "var":
            reg[node] = TERMINALS.index(node.name)
        elif node.op == "const":
            reg[node] = N_TERMINALS + names.index(node.name)
        elif node.op == "num":
            reg[node] = emit("lit", value=node.value)
        elif node.op in PRIMITIVES:
            args = [reg[x] for x in node.args]
            reg[node] = emit(node.op, *args)
        else:
            raise GrammarError(f"cannot encode {node.op!r} node {node} (unexpanded grammar reference?)")
    out = reg[expr]
    if out < base:  # a bare terminal or constant: copy it into the program
        out = emit("copy", out)
    used = len(op)
    if used > shape.length:
        raise ProgramTooLong(f"expression needs {used} instructions; the program length is {shape.length}")
    while len(op) < shape.length:
        out = emit("copy", out)
    return Program(np.asarray(op, np.int32), np.asarray(a, np.int32), np.asarray(b, np.int32),
                   np.asarray(imm, np.float32), tuple(names), used)


def stack(programs: Sequence[Program]) -> dict[str, np.ndarray]:
    """Stacks programs of one shape into population arrays, each (P, length) (``n``: (P,))."""
    return {k: np.stack([p.arrays()[k] for p in programs]) for k in ("op", "a", "b", "imm", "n")}


def terminal_matrix(inputs: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """(T, B) terminals in interpreter order; missing lengths default to 1, t to 0."""
    ref = jnp.asarray(inputs["logp_w"])
    defaults = {"len_w": 1.0, "len_l": 1.0, "t": 0.0}
    rows = []
    for name in TERMINALS:
        if name in inputs and inputs[name] is not None:
            rows.append(jnp.broadcast_to(jnp.asarray(inputs[name], jnp.float32), ref.shape))
        elif name in defaults:
            rows.append(jnp.full(ref.shape, defaults[name], jnp.float32))
        else:
            raise KeyError(f"missing input {name!r}")
    return jnp.stack(rows)


_SAFE = {name: p.safe for name, p in PRIMITIVES.items()}


def _step_value(code, x, y, imm):
    """The value of one instruction, every primitive guarded by its safe inputs."""
    results = [jnp.broadcast_to(imm, x.shape), x]
    for name, prim in PRIMITIVES.items():
        chosen = code == OPCODE[name]
        safe = _SAFE[name]
        xs = jnp.where(chosen, x, safe[0])
        if prim.arity == 1:
            results.append(prim.jax(xs))
        else:
            ys = jnp.where(chosen, y, safe[1])
            results.append(prim.jax(xs, ys))
    return jax.lax.select_n(code, *results)


def _switch_branches():
    branches = [lambda x, y, imm: jnp.broadcast_to(imm, x.shape), lambda x, y, imm: x]
    for prim in PRIMITIVES.values():
        if prim.arity == 1:
            branches.append(lambda x, y, imm, f=prim.jax: f(x))
        else:
            branches.append(lambda x, y, imm, f=prim.jax: f(x, y))
    return branches


_BRANCHES = _switch_branches()


def default_mode() -> str:
    """``switch`` on CPUs, ``select`` where JAX sees an accelerator."""
    return "switch" if jax.default_backend() == "cpu" else "select"


def _vjp_branches():
    """Per-opcode local vector-Jacobian products: (x, y, g) -> (g df/dx, g df/dy)."""
    zero = lambda x, y, g: (jnp.zeros_like(x), jnp.zeros_like(y))  # noqa: E731
    branches = [zero, lambda x, y, g: (g, jnp.zeros_like(y))]
    for prim in PRIMITIVES.values():
        if prim.arity == 1:
            def unary(x, y, g, f=prim.jax):
                return jax.vjp(f, x)[1](g)[0], jnp.zeros_like(y)
            branches.append(unary)
        else:
            def binary(x, y, g, f=prim.jax):
                return jax.vjp(f, x, y)[1](g)
            branches.append(binary)
    return branches


_VJP_BRANCHES = _vjp_branches()


def _step_vjp(code, x, y, g):
    """Select-mode local VJP, every primitive guarded by its safe inputs."""
    dxs, dys = [jnp.zeros_like(x), g], [jnp.zeros_like(y), jnp.zeros_like(y)]
    for name, prim in PRIMITIVES.items():
        chosen = code == OPCODE[name]
        safe = _SAFE[name]
        xs = jnp.where(chosen, x, safe[0])
        gs = jnp.where(chosen, g, 0.0)
        if prim.arity == 1:
            dxs.append(jax.vjp(prim.jax, xs)[1](gs)[0])
            dys.append(jnp.zeros_like(y))
        else:
            ys = jnp.where(chosen, y, safe[1])
            dx, dy = jax.vjp(prim.jax, xs, ys)[1](gs)
            dxs.append(dx)
            dys.append(dy)
    return jax.lax.select_n(code, *dxs), jax.lax.select_n(code, *dys)


def _forward(program, terms, consts, mode):
    """The register file after running the program's ``n`` instructions."""
    batch = terms.shape[1:]
    length = program["op"].shape[0]
    cb = jnp.broadcast_to(consts.astype(jnp.float32)[:, None], (consts.shape[0],) + batch)
    regs = jnp.concatenate([terms.astype(jnp.float32), cb, jnp.zeros((length,) + batch, jnp.float32)])
    base = terms.shape[0] + consts.shape[0]

    def body(i, regs):
        code, imm = program["op"][i], program["imm"][i]
        x = jax.lax.dynamic_index_in_dim(regs, program["a"][i], keepdims=False)
        y = jax.lax.dynamic_index_in_dim(regs, program["b"][i], keepdims=False)
        if mode == "switch":
            value = jax.lax.switch(code, _BRANCHES, x, y, imm)
        else:
            value = _step_value(code, x, y, imm)
        return jax.lax.dynamic_update_index_in_dim(regs, value, base + i, 0)

    # Stops at the program's own length: padding costs nothing.
    return jax.lax.fori_loop(0, program["n"], body, regs)


def _output(program, regs, base):
    return jax.lax.dynamic_index_in_dim(regs, base + program["n"] - 1, keepdims=False)


def _backward(program, regs, n_terms, n_consts, g_out, mode):
    """Reverse sweep over the tape: adjoints of every register, one row per step."""
    base = n_terms + n_consts
    n = program["n"]
    adj = jax.lax.dynamic_update_index_in_dim(jnp.zeros_like(regs), g_out, base + n - 1, 0)

    def body(k, adj):
        i = n - 1 - k
        code, a, b = program["op"][i], program["a"][i], program["b"][i]
        g = jax.lax.dynamic_index_in_dim(adj, base + i, keepdims=False)
        x = jax.lax.dynamic_index_in_dim(regs, a, keepdims=False)
        y = jax.lax.dynamic_index_in_dim(regs, b, keepdims=False)
        if mode == "switch":
            dx, dy = jax.lax.switch(code, _VJP_BRANCHES, x, y, g)
        else:
            dx, dy = _step_vjp(code, x, y, g)
        adj = jax.lax.dynamic_update_index_in_dim(
            adj, jax.lax.dynamic_index_in_dim(adj, a, keepdims=False) + dx, a, 0)
        adj = jax.lax.dynamic_update_index_in_dim(
            adj, jax.lax.dynamic_index_in_dim(adj, b, keepdims=False) + dy, b, 0)
        return adj

    adj = jax.lax.fori_loop(0, n, body, adj)
    return adj[:n_terms], adj[n_terms:base].reshape(n_consts, -1).sum(axis=1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _run(program, terms, consts, mode):
    regs = _forward(program, terms, consts, mode)
    return _output(program, regs, terms.shape[0] + consts.shape[0])


def _run_fwd(program, terms, consts, mode):
    regs = _forward(program, terms, consts, mode)
    return _output(program, regs, terms.shape[0] + consts.shape[0]), (program, regs, consts.shape[0])


def _run_bwd(mode, res, g_out):
    program, regs, n_consts = res
    n_terms = regs.shape[0] - n_consts - program["op"].shape[0]
    d_terms, d_consts = _backward(program, regs, n_terms, n_consts, g_out, mode)
    zero_program = jax.tree.map(lambda v: np.zeros(v.shape, jax.dtypes.float0), program)
    return zero_program, d_terms, d_consts


_run.defvjp(_run_fwd, _run_bwd)


def evaluate(program: Mapping[str, jnp.ndarray], inputs: Mapping[str, jnp.ndarray] | jnp.ndarray,
             constants: jnp.ndarray, mode: str = "select") -> jnp.ndarray:
    """Per-example losses of one encoded program.

    program: ``op``, ``a``, ``b``, ``imm`` arrays of shape (L,); inputs: a mapping of
    terminal arrays (B,) or a (T, B) matrix from :func:`terminal_matrix`; constants: (C,).
    Differentiable (reverse mode) in ``inputs`` and ``constants`` through a hand-written
    reverse sweep over the register tape, O(L B) memory. ``mode="select"`` may be
    vmapped over stacked programs; ``mode="switch"`` must not be (module docstring).
    """
    terms = inputs if isinstance(inputs, jnp.ndarray) else terminal_matrix(inputs)
    if mode not in ("switch", "select"):
        raise ValueError(f"mode must be 'switch' or 'select', not {mode!r}")
    program = {k: jnp.asarray(program[k]) for k in ("op", "a", "b", "imm", "n")}
    return _run(program, terms, jnp.asarray(constants, jnp.float32), mode)


def population_evaluate(programs, inputs, constants, mode: str | None = None):
    """``evaluate`` over a population: programs (P, L), constants (P, C); the inputs are
    shared (a mapping of (B,) arrays) -> (P, B). ``mode`` defaults to :func:`default_mode`."""
    mode = mode or default_mode()
    terms = terminal_matrix(inputs)
    programs = {k: jnp.asarray(programs[k]) for k in ("op", "a", "b", "imm", "n")}
    if mode == "switch":
        return jax.lax.map(lambda pc: evaluate(pc[0], terms, pc[1], "switch"), (programs, constants))
    return jax.vmap(lambda p, c: evaluate(p, terms, c, "select"))(programs, constants)
