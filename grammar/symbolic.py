"""The sympy view: closed forms for people, a canonical form whose hash deduplicates.

``canonical`` rewrites log_sigmoid(x) as -softplus(-x), turns every literal into an exact
rational, and expands products and sums everywhere (inside function arguments too), so
that trees that differ only by algebra (``len_w * (logp_w/len_w - ref_w/len_w)`` versus
``logp_w - ref_w``) get the same form and the same hash. Constants stay symbols: the
hash identifies a structure; its constants are tuned separately.
"""

from __future__ import annotations

import functools
import hashlib

import sympy

from grammar.expr import Expr
from grammar.primitives import PRIMITIVES, log_sigmoid, softplus

_POSITIVE_TERMINALS = {"len_w", "len_l"}


@functools.lru_cache(maxsize=None)
def symbol(name: str, kind: str) -> sympy.Symbol:
    if kind == "var":
        if name in _POSITIVE_TERMINALS:
            return sympy.Symbol(name, positive=True)
        if name == "t":
            return sympy.Symbol(name, nonnegative=True)
        return sympy.Symbol(name, real=True)
    if kind == "const":
        # Constants of the shipped grammars are positive; assuming so lets sympy drop
        # |beta| and sign cases. A grammar with a non-positive bound gets a real symbol
        # through ``constants_real``.
        return sympy.Symbol(name, positive=True)
    return sympy.Symbol(name, real=True)


def to_sympy(expr: Expr, real_constants: frozenset[str] = frozenset()) -> sympy.Expr:
    memo: dict[Expr, sympy.Expr] = {}

    def go(e: Expr) -> sympy.Expr:
        if e in memo:
            return memo[e]
        if e.op == "var":
            out = symbol(e.name, "var")
        elif e.op == "const":
            out = symbol(e.name, "real" if e.name in real_constants else "const")
        elif e.op == "param":
            out = symbol(e.name, "param")
        elif e.op == "num":
            out = sympy.Rational(repr(e.value)) if e.value != int(e.value) else sympy.Integer(int(e.value))
        else:
            out = PRIMITIVES[e.op].sympy(*[go(a) for a in e.args])
        memo[e] = out
        return out

    return go(expr)


def _rewrite_canonical(s: sympy.Expr) -> sympy.Expr:
    return s.replace(lambda n: isinstance(n, log_sigmoid), lambda n: -softplus(-n.args[0]))


@functools.lru_cache(maxsize=50_000)
def canonical(expr: Expr, real_constants: frozenset[str] = frozenset()) -> sympy.Expr:
    s = _rewrite_canonical(to_sympy(expr, real_constants))
    return sympy.expand(s, deep=True, power_exp=False, power_base=False, log=False)


def canonical_hash(expr: Expr, real_constants: frozenset[str] = frozenset()) -> str:
    return hashlib.sha256(sympy.srepr(canonical(expr, real_constants)).encode()).hexdigest()[:16]


def closed_form(expr: Expr, real_constants: frozenset[str] = frozenset()) -> sympy.Expr:
    """The form shown to people: sympy's automatic simplification of the tree, with
    common factors pulled out of sums."""
    return sympy.factor_terms(to_sympy(expr, real_constants))


def pretty(expr: Expr, **kwargs) -> str:
    return sympy.pretty(closed_form(expr), use_unicode=True, **kwargs)


def latex(expr: Expr) -> str:
    return sympy.latex(closed_form(expr))


def text(expr: Expr) -> str:
    """One-line closed form (sympy's string printer)."""
    return sympy.sstr(closed_form(expr))


def complexity(expr: Expr) -> int:
    """Nodes of the canonical form (PySR-style: every operator, symbol and number counts)."""
    return sum(1 for _ in sympy.preorder_traversal(canonical(expr)))
