"""Exported modules are standalone and compute what the engine computes."""

from __future__ import annotations

import importlib.util
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from conftest import pair_inputs
from grammar import derivation, export, export_trl, lowering, zoo

ARGS = ("logp_w", "logp_l", "ref_w", "ref_l")


def load_module(path):
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def imports_of(source: str) -> set[str]:
    return {line.split()[1].split(".")[0] for line in source.splitlines()
            if line.startswith(("import ", "from "))}


def check_export(tmp_path, expr, constants, fmt, x):
    src = export.export_module(expr, constants, fmt, "test", "test")
    assert imports_of(src) == ({"jax"} if fmt == "jax" else {"torch"})
    path = tmp_path / f"loss_{fmt}.py"
    path.write_text(src)
    mod = load_module(path)
    engine = np.asarray(lowering.lower(expr)({k: jnp.asarray(v, jnp.float32) for k, v in x.items()},
                                             {k: jnp.float32(v) for k, v in constants.items()}))
    args = [x[k] for k in ARGS]
    kw = {k: v for k, v in dict(chosen_lengths=x["len_w"], rejected_lengths=x["len_l"], progress=x["t"]).items()
          if k in mod.INPUTS}
    if fmt == "torch":
        args = [torch.tensor(a, dtype=torch.float32) for a in args]
        kw = {k: torch.tensor(v, dtype=torch.float32) for k, v in kw.items()}
        out = mod.loss(*args, **kw).numpy()
    else:
        args = [jnp.asarray(a, jnp.float32) for a in args]
        out = np.asarray(mod.loss(*args, **kw))
        # gradients too, through the exported JAX function
        g = jax.grad(lambda a: mod.loss(a, *args[1:], **kw).sum())(args[0])
        assert np.all(np.isfinite(np.asarray(g))) or not np.all(np.isfinite(engine))
    finite = np.isfinite(engine)
    np.testing.assert_allclose(out[finite], engine[finite], rtol=1e-5,
                               atol=1e-5 * max(1.0, np.abs(engine[finite]).max(initial=0)))
    kept = export.prune(expr).constants
    assert mod.CONSTANTS == {k: float(constants[k]) for k in kept}


@pytest.mark.parametrize("fmt", ["jax", "torch"])
@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_exports_match_engine(tmp_path, name, fmt):
    z = zoo.ZOO[name]
    x = pair_inputs(np.random.default_rng(0), 16)
    check_export(tmp_path, z.expr, z.constants, fmt, x)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jax", "torch"])
def test_random_tree_exports_match_engine(tmp_path, mirror, fmt):
    rng = np.random.default_rng(3)
    for i, node in enumerate(derivation.ramped_half_and_half(mirror, rng, 12)):
        expr = derivation.expand(mirror, node)
        consts = {c: mirror.constants[c].from_unit(rng.uniform()) for c in expr.constants}
        sub = tmp_path / str(i)
        sub.mkdir()
        check_export(sub, expr, consts, fmt, pair_inputs(rng, 16))


def test_inputs_the_loss_uses_are_required_and_others_absent(tmp_path):
    z = zoo.ZOO["simpo"]  # uses the lengths, not the reference or progress
    src = export.export_module(z.expr, z.constants, "jax", "simpo", "test")
    path = tmp_path / "simpo.py"
    path.write_text(src)
    mod = load_module(path)
    a = jnp.array([-3.0, -1.0])
    b = jnp.array([-2.0, -4.0])
    assert mod.INPUTS == ("chosen_lengths", "rejected_lengths")
    with pytest.raises(TypeError, match="chosen_lengths"):
        mod.loss(a, b, a, b)  # no silent default of 1
    with pytest.raises(TypeError, match="progress"):
        mod.loss(a, b, a, b, chosen_lengths=2.0, rejected_lengths=4.0, progress=0.5)
    expected = -jax.nn.log_sigmoid(2.0 * (a / 2.0 - b / 4.0) - 1.0)
    np.testing.assert_allclose(np.asarray(mod.loss(a, b, a, b, chosen_lengths=2.0, rejected_lengths=4.0)),
                               np.asarray(expected), rtol=1e-6)
    assert "beta=2.0" in src and "gamma=1.0" in src
    assert "Closed form" in mod.__doc__ and "SimPO" not in sys.modules


def test_dead_terms_and_inert_constants_are_removed(tmp_path):
    from grammar.expr import parse, Scope

    scope = Scope(terminals=("logp_w", "logp_l", "ref_w", "ref_l", "len_w", "len_l", "t"),
                  constants=("beta", "lam"))
    expr = parse("-log_sigmoid(beta * (logp_w - ref_w - (logp_l - ref_l))) + lam * t * 0.0 + 0.0", scope)
    src = export.export_module(expr, {"beta": 0.5, "lam": 3.0}, "torch", "t", "t")
    path = tmp_path / "dead.py"
    path.write_text(src)
    mod = load_module(path)
    assert mod.CONSTANTS == {"beta": 0.5} and mod.INPUTS == ()
    assert "lam" not in src and "0.0)" not in src.split("def loss")[1]
    assert "_scalar" not in src  # the torch helper for numbers as function arguments, only where one is
    with_number = export.export_module(parse("max(0, logp_l - logp_w)", scope), {}, "torch", "t", "t")
    assert "def _scalar(" in with_number and "_scalar(0" in with_number
    x = [torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -0.5]), torch.tensor([-1.5, -1.0]), torch.tensor([-2.0, -1.0])]
    engine = lowering.lower(expr)({"logp_w": jnp.asarray(x[0].numpy()), "logp_l": jnp.asarray(x[1].numpy()),
                                   "ref_w": jnp.asarray(x[2].numpy()), "ref_l": jnp.asarray(x[3].numpy()),
                                   "len_w": jnp.ones(2), "len_l": jnp.ones(2), "t": jnp.full(2, 0.3)},
                                  {"beta": jnp.float32(0.5), "lam": jnp.float32(3.0)})
    np.testing.assert_allclose(mod.loss(*x).numpy(), np.asarray(engine), rtol=1e-6)


@pytest.mark.parametrize("fmt", ["jax", "torch"])
def test_losses_take_the_shape_of_all_inputs_broadcast_together(tmp_path, fmt):
    """A scalar log-probability with vectors of lengths (or a vector constant) gives one
    loss per example, as the engine computes it; a loss constant in its inputs too."""
    from grammar.expr import Scope, parse

    z = zoo.ZOO["simpo"]
    path = tmp_path / f"simpo_{fmt}.py"
    path.write_text(export.export_module(z.expr, z.constants, fmt, "simpo", "test"))
    mod = load_module(path)
    lengths = np.array([1.0, 2.0, 4.0], np.float32)
    expected = -jax.nn.log_sigmoid(2.0 * (-3.0 / lengths - -2.0 / 2.0) - 1.0)
    arr = torch.tensor if fmt == "torch" else jnp.asarray
    out = mod.loss(arr(-3.0), arr(-2.0), arr(-3.0), arr(-2.0), chosen_lengths=arr(lengths), rejected_lengths=2.0)
    assert tuple(out.shape) == (3,)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-6)
    betas = mod.loss(arr(-3.0), arr(-2.0), arr(-3.0), arr(-2.0), chosen_lengths=1.0, rejected_lengths=1.0,
                     beta=arr([1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(betas), -jax.nn.log_sigmoid(np.array([1.0, 2.0]) * (-3.0 - -2.0) - 1.0),
                               rtol=1e-6)
    # only inputs the loss does not use carry the batch: still one loss per example
    scope = Scope(terminals=("logp_w", "logp_l", "ref_w", "ref_l"), constants=("lam",))
    for source, consts in (("lam", {"lam": 0.5}), ("0.5", {}), ("-log_sigmoid(logp_w)", {})):
        flat = tmp_path / f"flat_{fmt}_{len(consts)}_{len(source)}.py"
        flat.write_text(export.export_module(parse(source, scope), consts, fmt, "flat", "test"))
        out = load_module(flat).loss(arr(-1.0), arr([-1.0, -2.0]), arr([-1.0, -2.0]), arr([-1.0, -2.0]))
        assert tuple(out.shape) == (2,), source


@pytest.mark.parametrize("fmt", ["jax", "torch"])
def test_dtype_follows_the_inputs(tmp_path, fmt):
    z = zoo.ZOO["dpo"]
    path = tmp_path / f"dpo_{fmt}.py"
    path.write_text(export.export_module(z.expr, z.constants, fmt, "dpo", "test"))
    mod = load_module(path)
    if fmt == "torch":
        x = [torch.tensor([-1.0, -2.0], dtype=torch.float64)] * 4
        assert mod.loss(*x).dtype == torch.float64
        assert mod.loss(*[a.to(torch.bfloat16) for a in x]).dtype == torch.bfloat16
        assert mod.loss(*[torch.tensor([-1, -2])] * 4).dtype == torch.float32
    else:
        x = [jnp.array([-1.0, -2.0], jnp.bfloat16)] * 4
        assert mod.loss(*x).dtype == jnp.bfloat16
        assert mod.loss(*[jnp.array([-1, -2])] * 4).dtype == jnp.float32
    # a loss that is a bare number too
    from grammar.expr import Scope, parse

    number = tmp_path / f"number_{fmt}.py"
    number.write_text(export.export_module(parse("0.5", Scope(terminals=ARGS, constants=())), {}, fmt, "n", "test"))
    x = [torch.tensor([-1.0, -2.0], dtype=torch.float64)] * 4 if fmt == "torch" else \
        [jnp.array([-1.0, -2.0], jnp.bfloat16)] * 4
    assert load_module(number).loss(*x).dtype == x[0].dtype


def test_trl_template_is_valid_python(tmp_path):
    z = zoo.ZOO["dpo"]
    src = export_trl.export_trl(z.expr, z.constants, "dpo", "test")
    compile(src, "trl_dpo.py", "exec")
    # TRL 1.x has no dpo_loss hook: the trainer must replace _compute_loss (tests/test_trl_export.py
    # trains with it).
    assert "class DiscoveredLossDPOTrainer(DPOTrainer)" in src and "def _compute_loss" in src
    assert "def dpo_loss" not in src


def test_log_odds_losses_stay_finite_where_a_response_has_probability_one(tmp_path):
    """A policy trained long enough gives some response probability 1 in float32 (logp = 0
    exactly), the pole of the log-odds mirror log(p / (1 - p)): its value and gradients stay
    finite in the engine's lowering, the interpreter that trains and both exports, and
    every input below the pole gives what it gave before the guard."""
    from grammar import interpreter, primitives

    shape = interpreter.ProgramShape(96, 8)

    @jax.jit
    def trained(program, terms, consts):  # the interpreter as the trainer runs it, compiled once
        return jax.value_and_grad(lambda tm: interpreter.evaluate(program, tm, consts, "switch").sum())(terms)

    for name in ("dpo_log_odds", "orpo"):
        z = zoo.ZOO[name]
        x = pair_inputs(np.random.default_rng(1), 8)
        x["logp_w"][:3] = [0.0, -1e-9, -1e-3]  # the pole, a float32 input just below it, and a usual one
        x["logp_l"][3] = 0.0
        inputs = {k: jnp.asarray(v, jnp.float32) for k, v in x.items()}
        consts = {k: jnp.float32(v) for k, v in z.constants.items()}
        fn = lowering.lower(z.expr)
        value = np.asarray(fn(inputs, consts))
        grads = jax.grad(lambda i: fn(i, consts).sum())(inputs)
        assert np.all(np.isfinite(value)), (name, value)
        for k in ("logp_w", "logp_l"):
            assert np.all(np.isfinite(np.asarray(grads[k]))), (name, k, grads[k])
        prog = interpreter.encode(z.expr, shape)
        iv, ig = trained(prog.arrays(), interpreter.terminal_matrix(inputs),
                         jnp.asarray(prog.constant_vector(z.constants, shape)))
        assert np.isfinite(float(iv)) and np.all(np.isfinite(np.asarray(ig))), name
        for fmt in ("jax", "torch"):  # the exported helpers carry the same guard
            check_export(tmp_path, z.expr, z.constants, fmt, x)
    # below the pole, the guard changes nothing
    below = jnp.asarray([-1e-9, -2.0 ** -24, -1e-3, -0.5, -0.7, -3.0, -80.0], jnp.float32)
    unguarded = jnp.where(below > -np.log(2.0), jnp.log(-jnp.expm1(below)), jnp.log1p(-jnp.exp(below)))
    np.testing.assert_array_equal(np.asarray(primitives._log1mexp(below)), np.asarray(unguarded))
    assert float(primitives._log1mexp(jnp.float32(0.0))) == pytest.approx(np.log(2.0 ** -24), rel=1e-5)
