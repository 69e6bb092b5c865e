"""Interpreter benchmark: one compiled program for any population vs one jit per tree.

Prints, in one run on this machine: the interpreter's compile time; population
evaluations per second (P trees x B pairs, value and gradient in the four
log-likelihoods and the constants); and the same work done the naive way, one
``jax.jit`` of the direct lowering per tree, for two fresh populations (as a search
sees them, generation after generation).

    python benchmarks/interpreter.py [--trees 64] [--pairs 4096] [--mode switch|select]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from grammar import derivation, interpreter, lowering, symbolic
from grammar import load as load_grammar


def distinct_population(grammar, rng, n):
    out, seen = [], set()
    while len(out) < n:
        for node in derivation.ramped_half_and_half(grammar, rng, n):
            expr = derivation.expand(grammar, node)
            h = symbolic.canonical_hash(expr)
            if h not in seen and len(out) < n:
                seen.add(h)
                out.append(expr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=4096)
    ap.add_argument("--grammar", default="mirror.yaml")
    ap.add_argument("--mode", default=interpreter.default_mode(), choices=["switch", "select"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    g = load_grammar(args.grammar)
    rng = np.random.default_rng(0)
    shape = interpreter.ProgramShape(96, 8)
    pops = [distinct_population(g, rng, args.trees) for _ in range(2)]
    x = {k: jnp.asarray(-np.abs(rng.normal(size=args.pairs)) * 20 - 0.1, jnp.float32)
         for k in ("logp_w", "logp_l", "ref_w", "ref_l")}
    x.update(len_w=jnp.full(args.pairs, 10.0), len_l=jnp.full(args.pairs, 10.0), t=jnp.full(args.pairs, 0.5))

    def encode(pop):
        progs = [interpreter.encode(e, shape) for e in pop]
        consts = np.stack([p.constant_vector({c: g.constants[c].default for c in p.constants}, shape)
                           for p in progs])
        return interpreter.stack(progs), jnp.asarray(consts)

    def total(programs, inputs, consts):
        return interpreter.population_evaluate(programs, inputs, consts, args.mode).sum()

    step = jax.jit(jax.value_and_grad(total, argnums=(1, 2)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} "
          f"({jax.default_backend()}); {args.trees} trees x {args.pairs} pairs, value + gradient, "
          f"{args.mode} mode")

    progs, consts = encode(pops[0])
    t0 = time.perf_counter()
    jax.block_until_ready(step(progs, x, consts))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        jax.block_until_ready(step(progs, x, consts))
    per_eval = (time.perf_counter() - t0) / args.repeats
    compile_s = first - per_eval
    progs2, consts2 = encode(pops[1])
    t0 = time.perf_counter()
    jax.block_until_ready(step(progs2, x, consts2))
    second_pop = time.perf_counter() - t0

    # Naive: one jit per tree (value and gradient of the direct lowering).
    def naive(pop):
        compile_total, run_total = 0.0, 0.0
        for e in pop:
            fn = lowering.lower(e)
            cv = {c: jnp.float32(g.constants[c].default) for c in e.constants}
            f = jax.jit(jax.value_and_grad(lambda inp, c, fn=fn: fn(inp, c).sum(), argnums=(0, 1)))
            t0 = time.perf_counter()
            jax.block_until_ready(f(x, cv))
            t1 = time.perf_counter()
            jax.block_until_ready(f(x, cv))
            t2 = time.perf_counter()
            run_total += t2 - t1
            compile_total += (t1 - t0) - (t2 - t1)
        return compile_total, run_total

    n_compile, n_run = naive(pops[0])
    n2_compile, n2_run = naive(pops[1])

    print(f"{'':34s}{'interpreter':>14s}{'one jit per tree':>18s}")
    print(f"{'compile, first population (s)':34s}{compile_s:14.2f}{n_compile:18.2f}")
    print(f"{'evaluate one population (s)':34s}{per_eval:14.3f}{n_run:18.3f}")
    print(f"{'populations per second':34s}{1 / per_eval:14.2f}{1 / n_run:18.2f}")
    print(f"{'second population, total (s)':34s}{second_pop:14.2f}{n2_compile + n2_run:18.2f}")
    print(f"compilations: interpreter 1 for both populations; naive {2 * args.trees}")
    ratio = (n2_compile + n2_run) / second_pop
    print(f"a new population costs the naive way {ratio:.1f}x the interpreter's time "
          f"(the interpreter evaluates {n_run / per_eval:.2f}x as fast as compiled trees once both are compiled)")


if __name__ == "__main__":
    main()
