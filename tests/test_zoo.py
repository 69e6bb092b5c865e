"""Every zoo loss equals an independent implementation of its paper's formula.

Values and gradients (in the four log-likelihoods and the constants), in float32 against
float64 references, on random inputs and on extreme ones (margins up to +-1e3), through
both the direct lowering and the array interpreter; all finite at the extremes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from grammar import derivation, interpreter, lowering, symbolic, zoo
from reference_losses import REFERENCE

TERMS = ("logp_w", "logp_l", "ref_w", "ref_l", "len_w", "len_l", "t")


def inputs(kind: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0 if kind == "random" else 1)
    n = 64
    # Multiples of 1/8 are exact in float32, so both sides see the same inputs.
    q = lambda x: np.round(np.asarray(x) * 8) / 8  # noqa: E731
    length = q(rng.uniform(5, 50, n))
    if kind == "random":
        ref_w, ref_l = -q(rng.uniform(1, 6, n)) * length, -q(rng.uniform(1, 6, n)) * length
        logp_w = ref_w + q(rng.normal(0, 8, n))
        logp_l = ref_l + q(rng.normal(0, 8, n))
    else:
        # Log-ratios up to +-500 each, so margins reach +-1e3, in both directions.
        r_w = q(rng.choice([-500, -100, -1, 0, 1, 100, 500], n))
        r_l = q(rng.choice([-500, -100, -1, 0, 1, 100, 500], n))
        ref_w, ref_l = -q(rng.uniform(1000, 1200, n)), -q(rng.uniform(1000, 1200, n))
        logp_w, logp_l = ref_w + r_w, ref_l + r_l
    return {"logp_w": logp_w, "logp_l": logp_l, "ref_w": ref_w, "ref_l": ref_l,
            "len_w": length, "len_l": q(rng.uniform(5, 50, n)), "t": q(rng.uniform(0, 1, n))}


def reference(name: str, x: dict, consts: dict):
    tx = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k.startswith(("logp", "ref")))
          for k, v in x.items()}
    tc = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in consts.items()}
    out = REFERENCE[name](*[tx[k] for k in TERMS], **tc)
    out.sum().backward()
    grads = {k: np.zeros(len(x[k])) if tx[k].grad is None else tx[k].grad.numpy()
             for k in ("logp_w", "logp_l", "ref_w", "ref_l")}
    grads.update({k: tc[k].grad.numpy() for k in tc})
    return out.detach().numpy(), grads


def engine_direct(expr, x, consts):
    fn = lowering.lower(expr)

    def total(terms, c):
        return fn(terms, c).sum()

    jx = {k: jnp.asarray(v, jnp.float32) for k, v in x.items()}
    jc = {k: jnp.float32(v) for k, v in consts.items()}
    value = fn(jx, jc)
    g_terms, g_consts = jax.grad(total, argnums=(0, 1))(jx, jc)
    grads = {k: np.asarray(g_terms[k]) for k in ("logp_w", "logp_l", "ref_w", "ref_l")}
    grads.update({k: np.asarray(v) for k, v in g_consts.items()})
    return np.asarray(value), grads


SHAPE = interpreter.ProgramShape(64, 8)


@jax.jit
def _interp_value_and_grad(program, terms, consts):
    def total(terms, consts):
        return interpreter.evaluate(program, terms, consts, "switch").sum()

    value = interpreter.evaluate(program, terms, consts, "switch")
    return value, jax.grad(total, argnums=(0, 1))(terms, consts)


def engine_interpreter(expr, x, consts):
    prog = interpreter.encode(expr, SHAPE)
    terms = interpreter.terminal_matrix({k: jnp.asarray(v, jnp.float32) for k, v in x.items()})
    cvec = jnp.asarray(prog.constant_vector(consts, SHAPE))
    value, (g_terms, g_consts) = _interp_value_and_grad(prog.arrays(), terms, cvec)
    grads = {k: np.asarray(g_terms[i]) for i, k in enumerate(TERMS) if k.startswith(("logp", "ref"))}
    grads.update({name: float(g_consts[i]) for i, name in enumerate(prog.constants)})
    return np.asarray(value), grads


def assert_close(actual, expected, what, rtol=2e-5, atol=2e-5):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite {actual[~np.isfinite(actual)][:3]}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("kind", ["random", "extreme"])
@pytest.mark.parametrize("engine", ["direct", "interpreter"])
@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_matches_reference(name, engine, kind):
    z = zoo.ZOO[name]
    x = inputs(kind)
    ref_value, ref_grads = reference(name, x, z.constants)
    assert np.all(np.isfinite(ref_value)), "reference itself not finite: pick other inputs"
    run = engine_direct if engine == "direct" else engine_interpreter
    value, grads = run(z.expr, x, z.constants)
    scale = max(1.0, float(np.abs(ref_value).max()))
    assert_close(value, ref_value, f"{name} value", atol=2e-5 * scale)
    for k, g in ref_grads.items():
        gscale = max(1.0, float(np.abs(g).max()))
        assert_close(grads[k], g, f"{name} d/d{k}", rtol=1e-4, atol=1e-4 * gscale)


def test_discopop_gate_is_finite_where_naive_form_overflows():
    # beta = 1: the naive s(x/tau) exp(-x) is inf * 0 = nan at x = -1e3 in float32.
    expr = zoo.ZOO["discopop"].expr
    x = inputs("extreme")
    value, grads = engine_direct(expr, x, {"beta": 1.0, "tau": 0.05})
    assert np.all(np.isfinite(value))
    assert all(np.all(np.isfinite(g)) for g in grads.values())


# Zoo losses that mirror.yaml cannot derive: its template sums the log-ratios over the
# response, and ipo_norm divides them by the response length.
NOT_IN_MIRROR = {"ipo_norm"}


def test_every_zoo_loss_is_seeded_by_mirror_yaml(mirror):
    assert set(mirror.seeds) == set(zoo.ZOO) - NOT_IN_MIRROR
    for name, text in mirror.seeds.items():
        seeded = derivation.expand(mirror, derivation.parse_derivation(mirror, text))
        assert symbolic.canonical_hash(seeded) == symbolic.canonical_hash(zoo.ZOO[name].expr), name


def test_free_grammar_seeds_match_zoo(free):
    for name, text in free.seeds.items():
        seeded = derivation.expand(free, derivation.parse_derivation(free, text))
        assert symbolic.canonical_hash(seeded) == symbolic.canonical_hash(zoo.ZOO[name].expr), name


def test_zoo_constants_within_mirror_bounds(mirror):
    for z in zoo.ZOO.values():
        for name, value in z.constants.items():
            c = mirror.constants[name]
            assert c.low <= value <= c.high, (z.name, name)
