"""The Python API: a run's numbered losses as a table, sympy, LaTeX, in-memory functions and
files, numbered as the CLI numbers them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import sympy
import torch

import discover
from discover.errors import RunError
from test_cli import in_process

RESULTS = os.path.join(os.path.dirname(__file__), "..", "results")


@pytest.fixture(scope="module")
def run():
    return discover.load("default-run-v3", RESULTS)


def test_equations_are_numbered_as_show_and_export_number_them(run, tmp_path):
    eqs = run.equations
    assert [e["number"] for e in eqs] == list(range(1, len(eqs) + 1))
    held = [e["held_out"] for e in eqs if e["held_out"] is not None]
    assert held == sorted(held, reverse=True) and len(held) == 5  # the re-scored ones first, best first
    assert all(e["held_out"] is None for e in eqs[5:])
    # a run from before final.json recorded it: its held-out spreads are population sds (ddof 0)
    assert {e["spread_ddof"] for e in eqs[:5]} == {0} and {e["spread_ddof"] for e in eqs[5:]} == {None}
    exported = in_process("export", "default-run-v3", "--rank", "3", "-f", "torch", "-o", "-",
                          "--results-dir", os.path.abspath(RESULTS), cwd=tmp_path)
    assert exported.stdout == run.source(3, "torch")
    assert repr(run).splitlines()[0] == f"Discovery('default-run-v3'): {len(eqs)} losses"


def test_in_memory_functions_compute_the_scored_loss(run):
    from grammar import lowering
    import jax.numpy as jnp

    loss = run.loss(3)
    x = {"logp_w": np.array([-3.0, -20.0]), "logp_l": np.array([-4.0, -18.0]), "ref_w": np.array([-3.5, -19.0]),
         "ref_l": np.array([-3.8, -19.5]), "len_w": np.array([5.0, 25.0]), "len_l": np.array([6.0, 25.0]),
         "t": np.array([0.2, 0.9])}
    engine = np.asarray(lowering.lower(loss.expr)({k: jnp.asarray(v, jnp.float32) for k, v in x.items()},
                                                  {k: jnp.float32(v) for k, v in loss.constants.items()}))
    args = [x[k] for k in ("logp_w", "logp_l", "ref_w", "ref_l")]
    kw = {"chosen_lengths": x["len_w"], "rejected_lengths": x["len_l"]}
    np.testing.assert_allclose(np.asarray(run.jax(3)(*args, **kw)), engine, rtol=1e-5)
    out = run.torch(3)(*[torch.tensor(a) for a in args], **{k: torch.tensor(v) for k, v in kw.items()})
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), engine, rtol=1e-5)
    assert isinstance(run.sympy(3), sympy.Expr) and "softplus" in run.latex(3)


def test_export_writes_a_module_and_bad_numbers_are_refused(run, tmp_path):
    path = run.export(1, "jax", str(tmp_path / "best.py"))
    assert open(path).read().startswith('"""Discovered loss 1 of run default-run-v3')
    with pytest.raises(RunError, match="losses 1 to 20"):
        run.jax(21)
    with pytest.raises(RunError, match="format"):
        run.source(1, "tf")
    with pytest.raises(RunError, match="does not exist"):
        run.export(1, "jax", str(tmp_path / "nowhere" / "x.py"))


def test_run_refuses_unknown_options_before_any_work(tmp_path):
    with pytest.raises(RunError, match="unknown option.*populaton"):
        discover.run(task="pendulum", populaton=8, results_dir=str(tmp_path))
    assert not os.listdir(tmp_path)
