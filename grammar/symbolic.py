"""The sympy view: closed forms for people, a canonical form whose hash deduplicates.

``closed_form`` is what people read; ``canonical`` rewrites log_sigmoid(x) as -softplus(-x), turns every literal into an exact
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
    # Constants and parameters are real (a grammar's constant may have any sign).
    return sympy.Symbol(name, real=True)


def to_sympy(expr: Expr) -> sympy.Expr:
    memo: dict[Expr, sympy.Expr] = {}

    def go(e: Expr) -> sympy.Expr:
        if e in memo:
            return memo[e]
        if e.op == "var":
            out = symbol(e.name, "var")
        elif e.op == "const":
            out = symbol(e.name, "const")
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
def canonical(expr: Expr) -> sympy.Expr:
    s = _rewrite_canonical(to_sympy(expr))
    return sympy.expand(s, deep=True, power_exp=False, power_base=False, log=False)


def canonical_hash(expr: Expr) -> str:
    return hashlib.sha256(sympy.srepr(canonical(expr)).encode()).hexdigest()[:16]


def _expand(s: sympy.Expr) -> sympy.Expr:
    return sympy.expand(s, deep=True, power_exp=False, power_base=False, log=False)


@functools.lru_cache(maxsize=50_000)
def closed_form(expr: Expr) -> sympy.Expr:
    """The form shown to people.

    Where the references enter only through the log-ratios, the form is written in
    r_w = logp_w - ref_w and r_l = logp_l - ref_l; where the lengths enter only
    through the mean log-likelihoods, in m_w = logp_w / len_w and m_l; otherwise in
    the terminals. Of the candidate forms, the one with the fewest operations wins.
    """
    s = to_sympy(expr)
    v = {n: symbol(n, "var") for n in ("logp_w", "logp_l", "ref_w", "ref_l", "len_w", "len_l")}
    rewrites = [
        ({v["logp_w"]: symbol("r_w", "alias") + v["ref_w"], v["logp_l"]: symbol("r_l", "alias") + v["ref_l"]},
         {v["ref_w"], v["ref_l"]}),
        ({v["logp_w"]: symbol("m_w", "alias") * v["len_w"], v["logp_l"]: symbol("m_l", "alias") * v["len_l"]},
         {v["len_w"], v["len_l"]}),
    ]
    for mapping, gone in rewrites:
        sub = s.subs(mapping)
        forms = [f for f in (sympy.factor_terms(sub), sympy.factor_terms(_expand(sub)))
                 if not f.free_symbols & gone]
        if forms:
            return min(forms, key=sympy.count_ops)
    return sympy.factor_terms(s)


def pretty(expr: Expr, **kwargs) -> str:
    return sympy.pretty(closed_form(expr), use_unicode=True, **kwargs)


def latex(expr: Expr) -> str:
    return sympy.latex(closed_form(expr))


def text(expr: Expr) -> str:
    """One-line closed form (sympy's string printer)."""
    return sympy.sstr(closed_form(expr))


def complexity(expr: Expr) -> int:
    """Nodes of the closed form (PySR-style: every operator, symbol and number counts)."""
    return sum(1 for _ in sympy.preorder_traversal(closed_form(expr)))


def compact(expr: Expr, min_ops: int = 4) -> list[str]:
    """The closed form with each repeated subexpression of at least ``min_ops`` operations
    bound once: ``["s1 = ...", "s2 = ...", "loss = ..."]``; just ``["loss = ..."]`` when
    nothing repeats."""
    form = closed_form(expr)
    names = sympy.numbered_symbols("s", start=1)
    replacements, (reduced,) = sympy.cse(form, symbols=names, optimizations="basic")
    # Inline the small ones back: a name should save the reader work.
    small = {}
    kept = []
    for sym, value in replacements:
        value = value.xreplace(small)
        if sympy.count_ops(value) < min_ops:
            small[sym] = value
        else:
            kept.append((sym, value))
    if not kept:
        return [f"loss = {sympy.sstr(form)}"]
    reduced = reduced.xreplace(small)
    rename = {sym: sympy.Symbol(f"s{i}", real=True) for i, (sym, _) in enumerate(kept, 1)}
    lines = [f"{rename[sym]} = {sympy.sstr(value.xreplace(rename))}" for sym, value in kept]
    return lines + [f"loss = {sympy.sstr(reduced.xreplace(rename))}"]
