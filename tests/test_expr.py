"""Expression text form: parse and print agree; errors name the problem."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grammar import lowering
from grammar.errors import GrammarError
from grammar.expr import Expr, Scope, parse, to_text
from grammar.primitives import PRIMITIVES

SCOPE = Scope(constants=("beta", "eps"))
LEAVES = st.one_of(
    st.sampled_from([Expr.var(n) for n in ("logp_w", "logp_l", "ref_w", "ref_l", "t")]),
    st.sampled_from([Expr.const("beta"), Expr.const("eps")]),
    st.floats(-5, 5, allow_nan=False).map(lambda v: Expr.num(round(v, 3))),
)


def _combine(children):
    unary = [p for p in PRIMITIVES.values() if p.arity == 1]
    binary = [p for p in PRIMITIVES.values() if p.arity == 2]
    return st.one_of(
        st.tuples(st.sampled_from(unary), children).map(lambda t: Expr.call(t[0].name, t[1])),
        st.tuples(st.sampled_from(binary), children, children).map(lambda t: Expr.call(t[0].name, t[1], t[2])),
    )


TREES = st.recursive(LEAVES, _combine, max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(TREES)
# printed without its parentheses, a + (b - c) reparses as (a + b) - c: float32 rounds the two 1 ulp apart
@example(Expr.call("add", Expr.call("log_sigmoid", Expr.var("logp_w")),
                   Expr.call("sub", Expr.const("beta"), Expr.var("logp_w"))))
@pytest.mark.slow
def test_print_parse_round_trip(tree):
    text = to_text(tree)
    again = parse(text, SCOPE)
    assert to_text(again) == text
    # Same value (the reparse may fold a negated literal into the literal, or re-associate a
    # sum): compared in float64, where re-association moves the value by ~1e-16, not 1e-7.
    x = {k: np.asarray([-1.5, -0.25]) for k in ("logp_w", "logp_l", "ref_w", "ref_l", "t")}
    c = {"beta": 0.3, "eps": 0.1}
    with jax.enable_x64(True):
        a = np.asarray(lowering.lower(tree, jnp.float64)(x, c))
        b = np.asarray(lowering.lower(again, jnp.float64)(x, c))
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_precedence_and_associativity():
    e = parse("logp_w - (logp_l - ref_w) / 2 * beta", SCOPE)
    assert to_text(e) == "logp_w - (logp_l - ref_w) / 2 * beta"
    assert to_text(parse("logp_w / (logp_l * ref_w)", SCOPE)) == "logp_w / (logp_l * ref_w)"
    assert to_text(parse("(logp_w - ref_w)^2", SCOPE)) == "(logp_w - ref_w)^2"
    assert parse("-2", SCOPE) == Expr.num(-2.0)


@pytest.mark.parametrize("text,fragment", [
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("softplus(", "unexpected end"),
    ("logp_w +* 2", "unexpected '*'"),
    ("frob(logp_w)", "unknown function 'frob'"),
    ("logp_x", "unknown name 'logp_x'"),
    ("softplus(1, 2)", "takes 1 argument"),
    ("beta(2)", "type mismatch"),
    ("softplus", "type mismatch"),
    ("logp_w ^ 3", "only squares"),
    ("logp_w $ 1", "unexpected character '$'"),
    ("(logp_w", "expected ')'"),
])
def test_parse_errors(text, fragment):
    with pytest.raises(GrammarError) as info:
        parse(text, SCOPE)
    assert fragment in str(info.value)


def test_grammar_scope_knows_definitions(mirror):
    e = mirror.parse("-log_sigmoid(beta * (r_w - r_l))")
    assert e.terminals == ["logp_w", "logp_l", "ref_w", "ref_l"]
    with pytest.raises(GrammarError, match="unknown name 'u_w'"):
        mirror.parse("u_w")  # u_w needs a mirror map, so it is not a hand-written name
