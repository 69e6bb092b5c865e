"""The evaluators' choices that depend on the device, in one place: how a population
trains and which simulator scores it on a CPU or an accelerator, and the sizes batches are
padded to so that a compiled program serves many batch sizes (a search's populations
shrink and grow between successive halving's rungs, re-evaluations and the final
re-scoring; datasets differ a little in their live steps). The loss interpreter's own
default (``grammar.interpreter.default_mode``) follows the same rule; the grammar package
imports no evaluator, so it keeps its copy."""

from __future__ import annotations

import jax


def accelerated() -> bool:
    """Whether JAX computes on an accelerator (a GPU or TPU) rather than the CPU."""
    return jax.default_backend() != "cpu"


def population_mode() -> str:
    """How the trainer lays out a population by default: "vmap" (every run side by side) on
    an accelerator, "map" (runs one after another, in chunks) on a CPU."""
    return "vmap" if accelerated() else "map"


def simulator_backend() -> str:
    """Which simulator scores trained policies by default: MJX on an accelerator, native
    MuJoCo (threads) on a CPU."""
    return "mjx" if accelerated() else "native"


def bucket(n: int, multiple: int = 1, least: int = 1) -> int:
    """The padded size of a batch of ``n`` rows: the next of 2^k x (1, 1.25, 1.5, 1.75), at
    most 25% padding (above ``least`` and 8 rows), at least ``least`` (small batches share
    one size), rounded up to a multiple of ``multiple`` (e.g. the number of devices a batch
    is split over)."""
    n = max(n, least)
    top = 1 << max(n - 1, 1).bit_length()
    size = min(s for s in (top // 2, top * 5 // 8, top * 3 // 4, top * 7 // 8, top) if s >= n)
    return -(-size // multiple) * multiple
