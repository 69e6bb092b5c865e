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
    kw = dict(chosen_lengths=x["len_w"], rejected_lengths=x["len_l"], progress=x["t"])
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
    assert mod.CONSTANTS == {k: float(v) for k, v in constants.items()}


@pytest.mark.parametrize("fmt", ["jax", "torch"])
@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_exports_match_engine(tmp_path, name, fmt):
    z = zoo.ZOO[name]
    x = pair_inputs(np.random.default_rng(0), 16)
    check_export(tmp_path, z.expr, z.constants, fmt, x)


@pytest.mark.parametrize("fmt", ["jax", "torch"])
def test_random_tree_exports_match_engine(tmp_path, mirror, fmt):
    rng = np.random.default_rng(3)
    for i, node in enumerate(derivation.ramped_half_and_half(mirror, rng, 12)):
        expr = derivation.expand(mirror, node)
        consts = {c: mirror.constants[c].from_unit(rng.uniform()) for c in expr.constants}
        sub = tmp_path / str(i)
        sub.mkdir()
        check_export(sub, expr, consts, fmt, pair_inputs(rng, 16))


def test_defaults_and_optional_lengths(tmp_path):
    z = zoo.ZOO["simpo"]
    src = export.export_module(z.expr, z.constants, "jax", "simpo", "test")
    path = tmp_path / "simpo.py"
    path.write_text(src)
    mod = load_module(path)
    a = jnp.array([-3.0, -1.0])
    b = jnp.array([-2.0, -4.0])
    expected = -jax.nn.log_sigmoid(2.0 * (a - b) - 1.0)  # lengths default to 1
    np.testing.assert_allclose(np.asarray(mod.loss(a, b, a, b)), np.asarray(expected), rtol=1e-6)
    assert "beta=2.0" in src and "gamma=1.0" in src
    assert "Closed form" in mod.__doc__ and "SimPO" not in sys.modules


def test_trl_template_is_valid_python(tmp_path):
    z = zoo.ZOO["dpo"]
    src = export_trl.export_trl(z.expr, z.constants, "dpo", "test")
    compile(src, "trl_dpo.py", "exec")
    # TRL 1.x has no dpo_loss hook: the trainer must replace _compute_loss (tests/test_trl_export.py
    # trains with it).
    assert "class DiscoveredLossDPOTrainer(DPOTrainer)" in src and "def _compute_loss" in src
    assert "def dpo_loss" not in src
