"""Typed variation of derivation trees (grammar-guided genetic programming).

Every operator replaces a subtree by one derived from the same nonterminal, so offspring
are always derivations of the grammar; the caller checks limits and constraints.

- subtree mutation: a random subtree is regrown from its nonterminal;
- point mutation: a node's production is swapped for another of its nonterminal,
  keeping the children that the new production also names;
- crossover: a subtree is replaced by a subtree of the other parent with the same
  nonterminal;
- shrink: a subtree is replaced by one of its own descendants of the same
  nonterminal, or by a minimal derivation (simplification pressure).
"""

from __future__ import annotations

import numpy as np

from grammar import derivation
from grammar.derivation import Node
from grammar.language import Grammar


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def subtree_mutation(g: Grammar, rng: np.random.Generator, parent: Node) -> Node:
    """``parent`` with one random subtree regrown (grow method) within the grammar's depth limit."""
    path, sub = _pick(rng, list(parent.positions()))
    remaining = max(g.limits.max_depth - len(path), g.min_depth[sub.nonterminal])
    depth = int(rng.integers(g.min_depth[sub.nonterminal], remaining + 1))
    fresh = derivation.random_node(g, rng, sub.nonterminal, max_depth=depth, method="grow")
    return parent.replace(path, fresh)


def point_mutation(g: Grammar, rng: np.random.Generator, parent: Node) -> Node:
    """``parent`` with one node's production swapped for another of its nonterminal, keeping
    the children that still fit (a subtree mutation where there is no other production)."""
    path, sub = _pick(rng, list(parent.positions()))
    nt = g.nonterminals[sub.nonterminal]
    others = [p for p in nt.productions if p.label != sub.label]
    if not others:
        return subtree_mutation(g, rng, parent)
    prod = _pick(rng, others)
    kids = dict(sub.children)
    new_children = []
    for ref, child_nt in prod.children:
        if ref in kids and kids[ref].nonterminal == child_nt:
            new_children.append((ref, kids[ref]))
        else:
            remaining = max(g.limits.max_depth - len(path) - 1, g.min_depth[child_nt])
            new_children.append((ref, derivation.random_node(g, rng, child_nt, max_depth=remaining)))
    return parent.replace(path, Node(sub.nonterminal, prod.label, tuple(new_children)))


def crossover(g: Grammar, rng: np.random.Generator, a: Node, b: Node) -> Node:
    """``a`` with one subtree replaced by a subtree of ``b`` of the same nonterminal (a subtree
    mutation of ``a`` where they share none)."""
    donors: dict[str, list[Node]] = {}
    for _, sub in b.positions():
        donors.setdefault(sub.nonterminal, []).append(sub)
    sites = [(path, sub) for path, sub in a.positions() if sub.nonterminal in donors]
    if not sites:
        return subtree_mutation(g, rng, a)
    path, _ = _pick(rng, sites)
    return a.replace(path, _pick(rng, donors[a.at(path).nonterminal]))


def shrink(g: Grammar, rng: np.random.Generator, parent: Node) -> Node:
    """``parent`` made smaller: a subtree replaced by one of its own descendants of the same
    nonterminal, or regrown at its minimal depth (a point mutation where nothing shrinks)."""
    candidates = []
    for path, sub in parent.positions():
        inner = [d for p, d in sub.positions() if p and d.nonterminal == sub.nonterminal]
        if inner or sub.depth > g.min_depth[sub.nonterminal]:
            candidates.append((path, sub, inner))
    if not candidates:
        return point_mutation(g, rng, parent)
    path, sub, inner = _pick(rng, candidates)
    if inner:
        return parent.replace(path, _pick(rng, inner))
    minimal = derivation.random_node(g, rng, sub.nonterminal, max_depth=g.min_depth[sub.nonterminal])
    return parent.replace(path, minimal)


OPERATORS = ("crossover", "subtree", "point", "shrink")
