"""Random derivations, enumeration, constraints and the derivation text form."""

from __future__ import annotations

import numpy as np
import pytest

from grammar import derivation, symbolic
from grammar.errors import GrammarError


@pytest.mark.slow
def test_ramped_trees_are_valid_and_varied(mirror, free):
    for g in (mirror, free):
        rng = np.random.default_rng(0)
        nodes = derivation.ramped_half_and_half(g, rng, 40)
        assert all(derivation.check(g, n) is None for n in nodes)
        assert all(n.depth <= g.limits.max_depth for n in nodes)
        hashes = {symbolic.canonical_hash(derivation.expand(g, n)) for n in nodes}
        assert len(hashes) >= 25


def test_text_form_round_trip(mirror):
    rng = np.random.default_rng(1)
    for node in derivation.ramped_half_and_half(mirror, rng, 30):
        assert derivation.parse_derivation(mirror, derivation.to_text(node)) == node


def test_mirror_map_is_shared_by_all_four_uses(mirror):
    node = derivation.parse_derivation(mirror, "mpo(Link=logistic, Mirror=log_odds, Psi=zero)")
    expr = derivation.expand(mirror, node)
    inner = [e for e in expr.walk() if e.op == "log1mexp"]
    assert {str(e.args[0]) for e in inner} == {"logp_w / len_w", "ref_w / len_w", "logp_l / len_l",
                                              "ref_l / len_l"}


def test_increasing_constraint_rejects_decreasing_map(mirror):
    ok = derivation.parse_derivation(mirror, "mpo(Link=logistic, Mirror=tsallis, Psi=zero)")
    assert derivation.check(mirror, ok) is None
    # power is -(x^2): increasing for x < 0 only, so a domain reaching x > 0 must fail.
    import dataclasses

    nt = mirror.nonterminals["Mirror"]
    wide = dataclasses.replace(mirror, nonterminals={**mirror.nonterminals,
                                                     "Mirror": dataclasses.replace(nt, increasing=(-5.0, 5.0))})
    bad = derivation.parse_derivation(wide, "mpo(Link=logistic, Mirror=power, Psi=zero)")
    assert "not increasing" in derivation.check(wide, bad)


def test_forbidden_nesting(free):
    node = derivation.parse_derivation(free, "expr(Expr=exp(Expr=add(Expr.a=exp(Expr=term(Term=r_w)), "
                                             "Expr.b=const(Const=one))))")
    assert "forbidden nesting exp(exp" in derivation.check(free, node)


def test_enumeration_counts(mirror):
    nodes, truncated = derivation.enumerate_nodes(mirror, 2)
    assert not truncated
    # depth 2: 3 templates x 11 non-recursive links x 6 non-recursive mirrors x 4 flat psi terms
    assert len(nodes) == 3 * 11 * 6 * 4
    assert len(set(nodes)) == len(nodes)


@pytest.mark.parametrize("text,fragment", [
    ("nope", "no production 'nope'"),
    ("mpo(Link=logistic)", "missing child Mirror"),
    ("mpo(Link=logistic, Mirror=x, Psi=zero)", "no production 'x'"),
    ("mpo(Colour=red)", "has no child 'Colour'"),
    ("", "empty derivation"),
])
def test_derivation_errors(mirror, text, fragment):
    with pytest.raises(GrammarError) as info:
        derivation.parse_derivation(mirror, text)
    assert fragment in str(info.value)


def test_canonical_form_deduplicates_algebra(mirror):
    a = mirror.parse("softplus(-beta * (r_w - r_l))")
    b = mirror.parse("-log_sigmoid(beta * (logp_w - ref_w) - beta * (logp_l - ref_l))")
    c = mirror.parse("softplus(-beta * (r_w + r_l))")
    assert symbolic.canonical_hash(a) == symbolic.canonical_hash(b)
    assert symbolic.canonical_hash(a) != symbolic.canonical_hash(c)
    assert symbolic.text(a) == "-log_sigmoid(beta*(-r_l + r_w))" or "r_w" in symbolic.text(a)
    assert "\\beta" in symbolic.latex(a)
