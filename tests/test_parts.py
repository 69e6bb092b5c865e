"""A loss's parts come back as the productions that derive it."""

from __future__ import annotations

import pytest

from grammar import derivation, parts, zoo
from test_zoo import NOT_IN_MIRROR


@pytest.mark.parametrize("name", [n for n in zoo.ZOO if n not in NOT_IN_MIRROR])
def test_parts_of_every_zoo_loss_are_its_productions(mirror, name):
    node = derivation.parse_derivation(mirror, mirror.seeds[name])
    ps = parts.parts(mirror, node)
    assert ps[0].role == "template" and ps[0].production == node.label
    labels = [(p.role, p.production) for p in ps[1:]]

    def expected(n):
        out = []
        for ref, child in n.children:
            out.append((ref, child.label))
            out += expected(child)
        return out

    assert labels == expected(node)
    assert all(" = " in p.formula for p in ps)


def test_every_zoo_loss_has_a_derivation(mirror):
    assert set(zoo.ZOO) - NOT_IN_MIRROR <= set(mirror.seeds)


def test_dpo_reads_as_the_template(mirror):
    node = derivation.parse_derivation(mirror, mirror.seeds["dpo"])
    text = "\n".join(parts.lines(mirror, node, {"beta": 0.1}))
    assert "Link" in text and "logistic" in text and "g(z) = softplus(-z)" in text
    assert "m(x) = x" in text and "neg_entropy" in text
    assert "constants" in text and "beta = 0.1" in text


def test_effective_form_drops_a_planted_inert_term(mirror):
    """DPO plus 1e-6 x a power-mirror term acts as DPO: the planted term's share of the
    gradient is negligible and the effective form has DPO's canonical form."""
    import numpy as np

    from conftest import pair_inputs
    from grammar import effective, symbolic
    from grammar.expr import Scope, parse
    from grammar.primitives import TERMINALS

    dpo = zoo.ZOO["dpo"]
    scope = Scope(terminals=TERMINALS, constants=("beta",))
    inert = parse("1e-6 * (-(logp_w / len_w)^2 + (logp_l / len_l)^2)", scope)
    from grammar.expr import Expr

    planted = Expr.call("add", dpo.expr, inert)
    x = pair_inputs(np.random.default_rng(0), 64)
    form = effective.effective_form(planted, dpo.constants, x)
    assert len(form.terms) == 2 and form.kept == (True, False)
    assert form.shares[1] < 1e-3
    assert symbolic.canonical_hash(form.expr) == symbolic.canonical_hash(dpo.expr)
    # a term that acts is kept: DPO plus the NLL of the chosen response
    sft = parse("-(logp_w / len_w)", scope)
    both = effective.effective_form(Expr.call("add", dpo.expr, sft), dpo.constants, x)
    assert both.kept == (True, True) and not both.pruned


def test_additive_terms_unfold_subtraction_and_negation():
    from grammar import effective
    from grammar.expr import Scope, parse
    from grammar.primitives import TERMINALS

    e = parse("logp_w - (logp_l + ref_w) + -ref_l", Scope(terminals=TERMINALS))
    texts = [str(t) for t in effective.additive_terms(e)]
    assert len(texts) == 4


def test_compact_form_binds_a_repeated_subexpression_once():
    from grammar import symbolic
    from grammar.expr import Scope, parse
    from grammar.primitives import TERMINALS

    e = parse("-log_sigmoid(beta * (exp(logp_w / len_w) - exp(logp_l / len_l))) + "
              "sigmoid(beta * (exp(logp_w / len_w) - exp(logp_l / len_l)))", Scope(terminals=TERMINALS,
                                                                                   constants=("beta",)))
    lines = symbolic.compact(e)
    assert len(lines) == 2 and lines[0].startswith("s1 = ") and lines[1].startswith("loss = ")
    assert lines[1].count("s1") == 2
    dpo = zoo.ZOO["dpo"]
    assert symbolic.compact(dpo.expr) == [f"loss = {symbolic.text(dpo.expr)}"]


def test_bench_effective_variants_score_the_pruned_loss_beside_the_original():
    """`discover bench --effective`: a discovered loss with an inert term gets a pruned twin
    (constants of the dropped terms removed); a loss without one, and zoo losses, get none."""
    import numpy as np

    from conftest import pair_inputs
    from discover.bench import effective_variants
    from grammar import symbolic
    from grammar.expr import Expr, Scope, parse
    from grammar.losses import Loss
    from grammar.primitives import TERMINALS

    dpo = zoo.ZOO["dpo"]
    scope = Scope(terminals=TERMINALS, constants=("beta", "gamma"))
    inert = parse("1e-6 * gamma * (logp_w / len_w)^2", scope)
    planted = Loss("run#1", Expr.call("add", dpo.expr, inert), {"beta": 0.1, "gamma": 2.0}, "discovered", "run")
    plain = Loss("run#2", dpo.expr, dict(dpo.constants), "discovered", "run")
    zoo_entry = Loss("dpo", Expr.call("add", dpo.expr, inert), {"beta": 0.1, "gamma": 2.0}, "zoo")
    out = effective_variants([planted, plain, zoo_entry], pair_inputs(np.random.default_rng(0), 64))
    assert [e.name for e in out] == ["run#1 (effective)"]
    assert (out[0].base, out[0].variant) == ("run#1", "effective")
    assert symbolic.canonical_hash(out[0].expr) == symbolic.canonical_hash(dpo.expr)
    assert out[0].constants == {"beta": 0.1} and "removed" in out[0].source


def test_a_term_that_acts_only_at_the_end_of_training_is_kept():
    """Shares are taken per input set (start and end of training) and a term is kept if it
    acts on either: t x NLL is silent at t = 0 and acts at t = 1."""
    import numpy as np

    from conftest import pair_inputs
    from grammar import effective
    from grammar.expr import Expr, Scope, parse
    from grammar.primitives import TERMINALS

    dpo = zoo.ZOO["dpo"]
    late = parse("-t * (logp_w / len_w)", Scope(terminals=TERMINALS, constants=("beta",)))
    loss = Expr.call("add", dpo.expr, late)
    start = {**pair_inputs(np.random.default_rng(0), 64), "t": np.zeros(64)}
    end = {**pair_inputs(np.random.default_rng(1), 64), "t": np.ones(64)}
    assert effective.effective_form(loss, dpo.constants, start).kept == (True, False)
    both = effective.effective_form(loss, dpo.constants, (start, end))
    assert both.kept == (True, True) and both.shares[1] > 0.01
