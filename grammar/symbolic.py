"""The sympy view: closed forms for people, a canonical form whose hash deduplicates.

``closed_form`` is what people read; ``canonical`` rewrites log_sigmoid(x) as -softplus(-x), turns every literal into an exact
rational, and expands products and sums everywhere (inside function arguments too), so
that trees that differ only by algebra (``len_w * (logp_w/len_w - ref_w/len_w)`` versus
``logp_w - ref_w``) get the same form and the same hash. Constants stay symbols: the
hash identifies a structure; its constants are tuned separately.

Expansion can grow without bound (``((((a+b+c+d+e+f)^2)^2)^2)^2`` has 20,349 terms), so
its size is estimated first (:func:`expanded_size`), and a form over the budget stays
unexpanded: :func:`canonical` is then the rewritten form as built (still a deterministic
function of the tree) and :func:`closed_form` keeps it factored as written. The budgets
are well above every committed run's losses, whose hashes stay those they were stored
with. Literals that multiply out into huge numbers are refused before sympy computes them.
"""

from __future__ import annotations

import functools
import hashlib
import math

import sympy

from grammar.errors import GrammarError
from grammar.expr import Expr
from grammar.primitives import PRIMITIVES, log_sigmoid, softplus

_POSITIVE_TERMINALS = {"len_w", "len_l"}

# Budgets of the symbolic work. sympy spends about 10 us per node of an expanded form; the
# largest committed loss expands to about 117,000 nodes by the estimate (86,000 once like
# terms cancel) after 3,241 products of two terms, in about 2 s.
EXPAND_NODES = 150_000    # nodes of an expanded form, estimated
EXPAND_PRODUCTS = 50_000  # products of two terms on the way, estimated
CSE_NODES = 20_000        # nodes of a closed form that compact() looks for repeats in
NUMBER_BITS = 3_000       # of a numerator or denominator (Python prints at most 4,300 digits)


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


def to_sympy(expr: Expr, holes: bool = False) -> sympy.Expr:
    """The tree as a sympy expression. Raises :class:`GrammarError` where its numbers would
    grow past NUMBER_BITS: sympy multiplies literals out as it builds (``(2*x)^2`` is
    ``4*x**2``), and each square doubles their digits. ``holes``: a grammar body's calls
    of nonterminals become unknown real symbols."""
    memo: dict[Expr, sympy.Expr] = {}
    bits: dict[sympy.Basic, int] = {}

    def number_bits(x: sympy.Basic) -> int:
        if x not in bits:
            if x.is_Rational:
                bits[x] = max(abs(x.p).bit_length(), x.q.bit_length())
            else:
                bits[x] = max((number_bits(a) for a in x.args), default=0)
        return bits[x]

    def go(e: Expr) -> sympy.Expr:
        if e in memo:
            return memo[e]
        if e.op == "var":
            out = symbol(e.name, "var")
        elif e.op == "const":
            out = symbol(e.name, "const")
        elif e.op == "param":
            out = symbol(e.name, "param")
        elif e.op == "nt" and holes:  # an unknown real function of its arguments, which stay visible
            args = [go(a) for a in e.args]
            out = sympy.Function("nt_" + e.name.replace(".", "_"), real=True)(*args) if args else sympy.Dummy(real=True)
        elif e.op == "num":
            out = sympy.Rational(repr(e.value)) if e.value != int(e.value) else sympy.Integer(int(e.value))
        else:
            args = [go(a) for a in e.args]
            b = [number_bits(a) for a in args]
            if e.op == "square":
                grown = 2 * b[0]
            elif e.op in ("add", "sub", "mul", "div"):
                grown = sum(b) + 1
            else:
                grown = max(b)
            if grown > NUMBER_BITS:
                raise GrammarError(f"the numbers of this expression grow past {NUMBER_BITS} bits (about "
                                   f"{int(NUMBER_BITS * math.log10(2))} digits) when multiplied out")
            out = PRIMITIVES[e.op].sympy(*args)
        memo[e] = out
        return out

    return go(expr)


def undefined(expr: Expr) -> str | None:
    """Why an expression is, as written, no real, finite function of its inputs, or None:
    where sympy folds it to complex infinity or an imaginary number (a division by a literal
    zero, or by a difference that cancels; the log of a negative literal). Not a proof of
    finiteness: what sympy does not fold (``log1mexp(0)``) or folds away (``0 * log(-1)``)
    passes. A grammar body's calls of nonterminals are unknown real functions of their
    arguments."""
    s = to_sympy(expr, holes=True)
    if s.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return "is infinite or undefined (a division by zero?)"
    if s.has(sympy.I):
        return "is not real (a logarithm or root of a negative number?)"
    return None


class _OverBudget(Exception):
    pass


def expanded_size(s: sympy.Expr) -> int | None:
    """Nodes of ``s`` expanded as :func:`canonical` expands, estimated without expanding:
    sums are multiplied out as sets of monomials, like monomials merged, coefficients left
    out. None when the estimate passes EXPAND_NODES or the products of two terms on the way
    pass EXPAND_PRODUCTS (the estimate's own work is bounded by the same)."""
    memo: dict[sympy.Basic, dict[frozenset, int]] = {}
    factor_size: dict[sympy.Basic, int] = {}
    products = 0

    def monomial_size(m: frozenset) -> int:
        return 1 + sum(factor_size[f] + (e != 1) for f, e in m)

    def total(monomials: dict[frozenset, int]) -> int:
        return 1 + sum(monomials.values())

    def within(monomials: dict[frozenset, int]) -> dict[frozenset, int]:
        if total(monomials) > EXPAND_NODES:
            raise _OverBudget
        return monomials

    def factor(x: sympy.Basic, size: int) -> dict[frozenset, int]:
        """A factor that expansion does not multiply out (a symbol, a function, the power of
        a sum to other than a positive integer), of ``size`` nodes once expanded inside."""
        factor_size[x] = size
        return {frozenset([(x, 1)]): 1 + size}

    def times(a: dict[frozenset, int], b: dict[frozenset, int]) -> dict[frozenset, int]:
        nonlocal products
        products += len(a) * len(b)
        if products > EXPAND_PRODUCTS:
            raise _OverBudget
        out = {}
        for m1 in a:
            for m2 in b:
                powers = dict(m1)
                for f, e in m2:
                    powers[f] = powers.get(f, 0) + e
                m = frozenset((f, e) for f, e in powers.items() if e != 0)
                if m not in out:
                    out[m] = monomial_size(m)
        return within(out)

    def go(x: sympy.Basic) -> dict[frozenset, int]:
        if x in memo:
            return memo[x]
        if x.is_Number:
            out = {frozenset(): 1}
        elif x.is_Atom:
            out = factor(x, 1)
        elif x.is_Add:
            out = {}
            for a in x.args:
                out.update(go(a))
            within(out)
        elif x.is_Mul:
            out = {frozenset(): 1}
            for a in x.args:
                out = times(out, go(a))
        elif x.is_Pow and x.exp.is_Integer and len(go(x.base)) == 1:
            (m,) = go(x.base)
            m = frozenset((f, e * int(x.exp)) for f, e in m)
            out = {m: monomial_size(m)}
        elif x.is_Pow and x.exp.is_Integer:
            n, power, square = abs(int(x.exp)), {frozenset(): 1}, go(x.base)
            while True:  # the product of the base's powers of two that make up n
                if n & 1:
                    power = times(power, square)
                n >>= 1
                if not n:
                    break
                square = times(square, square)
            # a negative power is expanded as the positive one, and stays a denominator
            out = power if x.exp > 0 else factor(x, total(power) + 1)
        else:
            out = factor(x, 1 + sum(total(go(a)) for a in x.args))
        memo[x] = out
        return out

    try:
        return total(go(s))
    except _OverBudget:
        return None


def _rewrite_canonical(s: sympy.Expr) -> sympy.Expr:
    return s.replace(lambda n: isinstance(n, log_sigmoid), lambda n: -softplus(-n.args[0]))


def _expand(s: sympy.Expr) -> sympy.Expr:
    return sympy.expand(s, deep=True, power_exp=False, power_base=False, log=False)


@functools.lru_cache(maxsize=50_000)
def canonical(expr: Expr) -> sympy.Expr:
    """The canonical form: rewritten and expanded; only rewritten where the expansion is
    over the budget (see :func:`expanded_size`)."""
    s = _rewrite_canonical(to_sympy(expr))
    return s if expanded_size(s) is None else _expand(s)


def expanded(expr: Expr) -> bool:
    """Whether the canonical form is expanded (False: the expansion is over the budget)."""
    return expanded_size(_rewrite_canonical(to_sympy(expr))) is not None


def canonical_hash(expr: Expr) -> str:
    return hashlib.sha256(sympy.srepr(canonical(expr)).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=50_000)
def closed_form(expr: Expr) -> sympy.Expr:
    """The form shown to people.

    Where the references enter only through the log-ratios, the form is written in
    r_w = logp_w - ref_w and r_l = logp_l - ref_l; where the lengths enter only
    through the mean log-likelihoods, in m_w = logp_w / len_w and m_l; otherwise in
    the terminals. Of the candidate forms, the one with the fewest operations wins; an
    expanded one is a candidate only within the budget of :func:`expanded_size`.
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
        candidates = [sympy.factor_terms(sub)]
        if expanded_size(sub) is not None:
            candidates.append(sympy.factor_terms(_expand(sub)))
        forms = [f for f in candidates if not f.free_symbols & gone]
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
    nothing repeats or the form is over CSE_NODES nodes."""
    form = closed_form(expr)
    if complexity(expr) > CSE_NODES:
        return [f"loss = {sympy.sstr(form)}"]
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
