"""Derivation trees: the genotype that evolution works on.

A :class:`Node` is one application of a production (``nonterminal``, ``label``) with one
child :class:`Node` per distinct reference name in that production. ``expand`` turns a
derivation into the expression (:class:`~grammar.expr.Expr`) that is printed, hashed,
lowered and scored. Function nonterminals (``Mirror(x)``) expand to a body in their
parameters, substituted at each call, so one mirror child serves all four uses in
``u_w - u_l``.

Text form (used by seeds, run stores and checkpoints), e.g.::

    mpo(Link=logistic, Mirror=neg_entropy, Psi=zero)
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Iterator

import numpy as np

from grammar.errors import GrammarError
from grammar.expr import Expr, bounds_problem
from grammar.language import Grammar, Nonterminal, Production


@dataclasses.dataclass(frozen=True)
class Node:
    nonterminal: str
    label: str
    children: tuple[tuple[str, "Node"], ...] = ()

    def child(self, ref: str) -> "Node":
        for name, node in self.children:
            if name == ref:
                return node
        raise KeyError(ref)

    @property
    def depth(self) -> int:
        return 1 + max((c.depth for _, c in self.children), default=0)

    def positions(self, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], "Node"]]:
        """Every subtree with its path (a tuple of reference names from the root)."""
        yield path, self
        for name, c in self.children:
            yield from c.positions(path + (name,))

    def at(self, path: tuple[str, ...]) -> "Node":
        node = self
        for name in path:
            node = node.child(name)
        return node

    def replace(self, path: tuple[str, ...], new: "Node") -> "Node":
        if not path:
            return new
        head, rest = path[0], path[1:]
        kids = tuple((n, c.replace(rest, new) if n == head else c) for n, c in self.children)
        return dataclasses.replace(self, children=kids)

    def __str__(self) -> str:
        return to_text(self)


# --------------------------------------------------------------------------- text form
def to_text(node: Node) -> str:
    if not node.children:
        return node.label
    inner = ", ".join(f"{name}={to_text(c)}" for name, c in node.children)
    return f"{node.label}({inner})"


_DTOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_0-9]+)?)|(?P<op>[(),=]))")


MAX_DERIVATION_CHARS = 4000
MAX_DERIVATION_DEPTH = 64


def parse_derivation(grammar: Grammar, text: str, nonterminal: str | None = None) -> Node:
    """Parses the text form against ``grammar`` (from the start symbol by default). Text from
    a run folder is untrusted: its length and nesting are bounded (one-line errors)."""
    if not isinstance(text, str):
        raise GrammarError(f"a derivation must be text, not {type(text).__name__}")
    tokens, pos, text = [], 0, text.strip()
    max_depth = min(MAX_DERIVATION_DEPTH, grammar.limits.max_depth)
    if not text:
        raise GrammarError("empty derivation")
    if len(text) > MAX_DERIVATION_CHARS:
        raise GrammarError(f"derivation longer than {MAX_DERIVATION_CHARS} characters")
    while pos < len(text):
        m = _DTOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise GrammarError(f"unexpected character {text[pos:].lstrip()[:1]!r} in derivation {text!r}")
        tokens.append(m.group(m.lastgroup))
        pos = m.end()
    i = 0

    def take(expected=None):
        nonlocal i
        if i >= len(tokens):
            raise GrammarError(f"unexpected end of derivation {text!r}")
        tok = tokens[i]
        if expected and tok != expected:
            raise GrammarError(f"expected {expected!r}, found {tok!r} in derivation {text!r}")
        i += 1
        return tok

    def node(nt_name: str, depth: int = 1) -> Node:
        if depth > max_depth:
            raise GrammarError(f"derivation nested deeper than {max_depth} levels")
        nt = grammar.nonterminals[nt_name]
        label = take()
        _, prod = nt.production(label)
        given: dict[str, Node] = {}
        if i < len(tokens) and tokens[i] == "(":
            take("(")
            while True:
                ref = take()
                if ref not in prod.child_names:
                    raise GrammarError(f"production {nt_name}.{label} has no child {ref!r} "
                                       f"(children: {', '.join(prod.child_names) or 'none'})")
                take("=")
                given[ref] = node(dict(prod.children)[ref], depth + 1)
                if i < len(tokens) and tokens[i] == ",":
                    take(",")
                    continue
                take(")")
                break
        missing = [r for r in prod.child_names if r not in given]
        if missing:
            raise GrammarError(f"production {nt_name}.{label} is missing child {missing[0]}")
        return Node(nt_name, label, tuple((r, given[r]) for r in prod.child_names))

    root = node(nonterminal or grammar.start)
    if i != len(tokens):
        raise GrammarError(f"unexpected {tokens[i]!r} in derivation {text!r}")
    return root


# --------------------------------------------------------------------------- expansion
def production_of(grammar: Grammar, node: Node) -> Production:
    return grammar.nonterminals[node.nonterminal].production(node.label)[1]


def expand(grammar: Grammar, node: Node) -> Expr:
    """The expression a derivation denotes (a body in its parameters for function nodes)."""
    memo: dict[Node, Expr] = {}

    def go(n: Node) -> Expr:
        if n in memo:
            return memo[n]
        prod = production_of(grammar, n)
        kids = dict(n.children)

        def tr(e: Expr) -> Expr:
            if e.op == "nt":
                child = kids[e.name]
                body = go(child)
                if e.args:
                    params = grammar.nonterminals[child.nonterminal].params
                    return body.substitute({("param", p): tr(a) for p, a in zip(params, e.args)})
                return body
            if not e.args:
                return e
            return dataclasses.replace(e, args=tuple(tr(a) for a in e.args))

        memo[n] = out = tr(prod.body)
        return out

    return go(node)


# --------------------------------------------------------------------------- validity
def production_min_depth(grammar: Grammar, prod: Production) -> int:
    return 1 + max((grammar.min_depth[c] for _, c in prod.children), default=0)


def check(grammar: Grammar, node: Node, expr: Expr | None = None) -> str | None:
    """Why a derivation breaks the grammar's limits or constraints, or None if valid."""
    if node.depth > grammar.limits.max_depth:
        return f"derivation depth {node.depth} > max_depth {grammar.limits.max_depth}"
    expr = expr if expr is not None else expand(grammar, node)
    problem = bounds_problem(expr)  # first: shared subtrees may repeat a lot in the tree
    if problem:
        return problem
    size = len(expr.unique_nodes())
    if size > grammar.limits.max_size:
        return f"expression size {size} > max_size {grammar.limits.max_size}"
    for outer, inner in grammar.forbid_nesting:
        for e in expr.walk():
            if e.op == outer and any(d.op == inner for a in e.args for d in a.walk()):
                return f"forbidden nesting {outer}({inner}(...))"
    seen: set[Node] = set()
    for _, sub in node.positions():
        nt = grammar.nonterminals[sub.nonterminal]
        if nt.increasing and sub not in seen:
            seen.add(sub)
            reason = _check_increasing(grammar, nt, sub)
            if reason:
                return reason
    return None


def _check_increasing(grammar: Grammar, nt: Nonterminal, node: Node) -> str | None:
    from grammar.lowering import lower

    body = expand(grammar, node)
    fn = lower(body)
    param = nt.params[0]
    lo, hi = nt.increasing
    grid = np.linspace(lo, hi, 257, dtype=np.float32)
    names = body.constants
    settings = [{c: grammar.constants[c].default for c in names}]
    settings.append({c: grammar.constants[c].low for c in names})
    settings.append({c: grammar.constants[c].high for c in names})
    for consts in settings:
        y = np.asarray(fn({param: grid}, consts), dtype=np.float64)
        if not np.all(np.isfinite(y)):
            return f"{nt.name} {to_text(node)} is not finite on [{lo:g}, {hi:g}]"
        # Non-decreasing up to float32 rounding (saturating maps such as expm1(2x) are
        # flat in float32 far from 0), and rising overall.
        tol = 1e-6 * (1.0 + np.abs(y[:-1]))
        if not (np.all(np.diff(y) >= -tol) and y[-1] > y[0]):
            return f"{nt.name} {to_text(node)} is not increasing on [{lo:g}, {hi:g}]"
    return None


# --------------------------------------------------------------------------- generation
def random_node(grammar: Grammar, rng: np.random.Generator, nonterminal: str | None = None,
                max_depth: int | None = None, method: str = "grow") -> Node:
    """A random derivation of ``nonterminal`` within ``max_depth`` (grow or full)."""
    name = nonterminal or grammar.start
    budget = grammar.limits.max_depth if max_depth is None else max_depth
    budget = max(budget, grammar.min_depth[name])

    def gen(nt_name: str, remaining: int) -> Node:
        nt = grammar.nonterminals[nt_name]
        fitting = [p for p in nt.productions if production_min_depth(grammar, p) <= remaining]
        if method == "full":
            deep = [p for p in fitting if p.children]
            fitting = deep or fitting
        weights = np.array([p.weight for p in fitting])
        prod = fitting[rng.choice(len(fitting), p=weights / weights.sum())]
        kids = tuple((ref, gen(child, remaining - 1)) for ref, child in prod.children)
        return Node(nt_name, prod.label, kids)

    return gen(name, budget)


def ramped_half_and_half(grammar: Grammar, rng: np.random.Generator, n: int,
                         min_depth: int | None = None, max_depth: int | None = None,
                         tries: int = 200) -> list[Node]:
    """``n`` valid random derivations, depths ramped over [min_depth, max_depth],
    alternating the grow and full methods (Koza 1992). A full tree that keeps breaking
    the size limit falls back to grow after half the tries."""
    lo = max(min_depth or grammar.min_depth[grammar.start], grammar.min_depth[grammar.start])
    hi = max(max_depth or grammar.limits.max_depth, lo)
    out = []
    for i in range(n):
        depth = lo + (i // 2) % (hi - lo + 1)
        method = "full" if i % 2 else "grow"
        for attempt in range(tries):
            node = random_node(grammar, rng, max_depth=depth,
                               method=method if attempt < tries // 2 else "grow")
            if check(grammar, node) is None:
                out.append(node)
                break
        else:
            raise GrammarError(f"grammar {grammar.name} produced no valid tree in {tries} tries "
                               f"(depth {depth}); relax its limits or constraints")
    return out


def enumerate_nodes(grammar: Grammar, max_depth: int, limit: int = 10_000,
                    nonterminal: str | None = None) -> tuple[list[Node], bool]:
    """All derivations up to ``max_depth`` (at most ``limit``; the flag says if cut short)."""
    cache: dict[tuple[str, int], list[Node]] = {}
    truncated = False

    def all_of(nt_name: str, depth: int) -> list[Node]:
        nonlocal truncated
        key = (nt_name, depth)
        if key in cache:
            return cache[key]
        out: list[Node] = []
        if depth >= grammar.min_depth[nt_name]:
            for prod in grammar.nonterminals[nt_name].productions:
                if production_min_depth(grammar, prod) > depth:
                    continue
                combos: list[tuple] = [()]
                for ref, child in prod.children:
                    options = all_of(child, depth - 1)
                    combos = [c + ((ref, o),) for c in combos for o in options]
                    if len(combos) > limit:
                        combos, truncated = combos[:limit], True
                out.extend(Node(nt_name, prod.label, c) for c in combos)
                if len(out) > limit:
                    out, truncated = out[:limit], True
                    break
        cache[key] = out
        return out

    return all_of(nonterminal or grammar.start, max_depth), truncated


def default_constants(grammar: Grammar, expr: Expr) -> dict[str, float]:
    return {c: grammar.constants[c].default for c in expr.constants}


def is_finite_number(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
