"""grammar.relatives: a loss's nearest relatives by the cosine of gradient fields."""

from __future__ import annotations

import os

import numpy as np
import pytest

from grammar import parse, relatives, zoo


def _pairs(n: int = 128, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref_w, ref_l = rng.normal(-20, 3, n), rng.normal(-22, 3, n)
    return {"logp_w": ref_w + rng.normal(0, 2, n), "logp_l": ref_l + rng.normal(0, 2, n), "ref_w": ref_w,
            "ref_l": ref_l, "len_w": np.full(n, 25.0), "len_l": np.full(n, 25.0), "t": np.linspace(0, 1, n)}


def test_a_loss_finds_itself_at_its_own_constants_first():
    dpo = zoo.get("dpo")
    grid = [{"beta": b} for b in (0.01, 0.1, 0.3, 1.0, 3.0)]
    ranked = relatives.nearest(dpo.expr, {"beta": 0.3}, _pairs(),
                               [("ipo", zoo.get("ipo").expr, [zoo.get("ipo").constants]),
                                ("dpo", dpo.expr, grid), ("sft", zoo.get("sft").expr, [{}])])
    assert [r.name for r in ranked][0] == "dpo"
    assert ranked[0].constants == {"beta": 0.3}
    assert ranked[0].cosine == pytest.approx(1.0, abs=1e-6)
    assert all(r.cosine < 0.999 for r in ranked[1:])
    assert [r.cosine for r in ranked] == sorted((r.cosine for r in ranked), reverse=True)


def test_a_positive_factor_does_not_matter_and_a_sign_does():
    x = _pairs()
    dpo = zoo.get("dpo")
    base = relatives.gradient_field(dpo.expr, {"beta": 0.1}, x)
    scope = zoo.alias_scope(("beta",))
    doubled = relatives.gradient_field(parse("2 * (-log_sigmoid(beta * (r_w - r_l)))", scope), {"beta": 0.1}, x)
    negated = relatives.gradient_field(parse("log_sigmoid(beta * (r_w - r_l))", scope), {"beta": 0.1}, x)
    assert base.shape == (128, 2)
    assert relatives.field_cosine(base, doubled) == pytest.approx(1.0, abs=1e-9)
    assert relatives.field_cosine(base, negated) == pytest.approx(-1.0, abs=1e-9)
    # several input sets are concatenated, in order
    y = _pairs(seed=1)
    both = relatives.gradient_field(dpo.expr, {"beta": 0.1}, [x, y])
    np.testing.assert_array_equal(both, np.concatenate([base, relatives.gradient_field(dpo.expr, {"beta": 0.1}, y)]))


def test_the_field_is_the_gradient_in_logp_w_and_logp_l():
    """Exact fields, which a cosine alone cannot check (swapped columns or the gradient in
    ref_w, ref_l instead would keep every cosine of the other tests)."""
    x, beta = _pairs(), 0.3
    margin = (x["logp_w"] - x["ref_w"]) - (x["logp_l"] - x["ref_l"])
    weight = beta / (1 + np.exp(beta * margin))  # d/dmargin of -log_sigmoid(beta margin), negated
    np.testing.assert_allclose(relatives.gradient_field(zoo.get("dpo").expr, {"beta": beta}, x),
                               np.stack([-weight, weight], axis=1), rtol=1e-5, atol=1e-7)
    sft = relatives.gradient_field(zoo.get("sft").expr, {}, x)  # -logp_w / len_w
    np.testing.assert_allclose(sft, np.stack([-1 / x["len_w"], np.zeros(128)], axis=1), rtol=1e-6)


def test_each_input_set_counts_alike_and_a_two_constant_loss_finds_itself():
    from discover.tuning import constant_grid
    from grammar import load

    tsallis = zoo.get("dpo_tsallis")
    grid = constant_grid(tsallis.constants, load("mirror.yaml").constants)
    point = next(p for p in grid if p["alpha"] != tsallis.constants["alpha"] and p["beta"] > 0.05)
    at_reference = {**_pairs(seed=2), "logp_w": _pairs(seed=2)["ref_w"], "logp_l": _pairs(seed=2)["ref_l"]}
    ranked = relatives.nearest(tsallis.expr, point, [at_reference, _pairs()],
                               [("dpo_tsallis", tsallis.expr, grid), ("dpo", zoo.get("dpo").expr, [{"beta": 0.1}])])
    assert ranked[0].name == "dpo_tsallis" and ranked[0].constants == point
    assert ranked[0].per_set == pytest.approx((1.0, 1.0), abs=1e-6)
    dpo = ranked[1]
    assert len(dpo.per_set) == 2 and dpo.cosine == pytest.approx(np.mean(dpo.per_set))
    assert dpo.per_set[0] > dpo.per_set[1]  # at the reference (every margin 0) the two are closer


def test_a_loss_without_a_field_is_refused_and_bad_grid_points_are_skipped():
    x = _pairs()
    with pytest.raises(ValueError, match="have no value at grid point"):
        relatives.nearest(zoo.get("dpo").expr, {"beta": 0.1}, x, [("dpo", zoo.get("dpo").expr, [{"gamma": 1.0}])])
    with pytest.raises(ValueError, match="no finite, non-zero gradient field"):
        relatives.nearest(parse("ref_w - ref_l", zoo.alias_scope(())), {}, x,
                          [("dpo", zoo.get("dpo").expr, [{"beta": 0.1}])])
    # exp overflows at c = 1e6 (an infinite gradient): that grid point is skipped, the finite one kept
    odd = parse("exp(c * (r_w - r_l))", zoo.alias_scope(("c",)))
    ranked = relatives.nearest(zoo.get("dpo").expr, {"beta": 0.1}, x, [("odd", odd, [{"c": 1e6}, {"c": 1.0}])])
    assert [r.constants for r in ranked] == [{"c": 1.0}]


@pytest.mark.slow  # about 4 s: 21 zoo losses compiled
def test_show_relatives_names_each_losss_nearest_zoo_losses(monkeypatch, tmp_path):
    """`discover show RUN --relatives` on a committed run; the run's data are replaced by
    synthetic pairs (loading a MuJoCo dataset is not what this tests)."""
    from discover import commands_search
    from evaluators import interface

    from test_cli import in_process

    monkeypatch.setattr(commands_search, "_run_evaluator", lambda store: None)
    monkeypatch.setattr(interface, "effective_inputs", lambda ev, exprs, consts: [(_pairs(),)] * len(exprs))
    root = os.path.join(os.path.dirname(__file__), "..", "results")
    result = in_process("show", "default-run-v3", "--top", "2", "--relatives", "--results-dir", root, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("nearest hand-designed relatives")[1]
    assert "terms under 1%" not in result.stdout  # only what was asked for
    lines = out.splitlines()[1:]
    heads = [i for i, line in enumerate(lines) if line.startswith("loss ")]
    assert [lines[i] for i in heads] == ["loss 1:", "loss 2:"]
    for i in heads:
        cosines = [float(line.split()[0]) for line in lines[i + 1:i + 4]]
        assert cosines == sorted(cosines, reverse=True) and -1 <= cosines[-1] <= cosines[0] <= 1
