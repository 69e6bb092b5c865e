"""A loss in its grammar's own terms: the productions of its derivation, each with its
formula as a function of its parameters (the mirror map m(x), the link g(z), the extra
term psi(u_w, u_l), nested parts beneath), so a reader sees which parts make a loss.

    template  mpo          loss = Link(beta * (u_w - u_l)) + Psi(u_w, u_l)
    Link      discopop     g(z) = (1 - sigmoid(z/tau))*softplus(-z) + exp(-z + log_sigmoid(z/tau))
    Mirror    neg_entropy  m(x) = x
    Psi       zero         psi(u_w, u_l) = 0
"""

from __future__ import annotations

import dataclasses

from grammar import derivation, symbolic
from grammar.derivation import Node
from grammar.language import Grammar

# How each function nonterminal of the shipped grammars is written in the MPO papers.
SYMBOLS = {"Mirror": "m", "Link": "g", "Psi": "psi"}


@dataclasses.dataclass(frozen=True)
class Part:
    role: str        # the reference in the parent production ("Link", "Mirror.a", ...), or "template"
    production: str  # the production's label ("logistic", "log_odds", ...)
    formula: str     # e.g. "g(z) = softplus(-z)"
    depth: int       # 0: the template; 1: its children; 2: theirs ...


def parts(grammar: Grammar, node: Node) -> list[Part]:
    """The derivation's productions, the template first, then each child depth first."""
    out = [Part("template", node.label, f"loss = {derivation.production_of(grammar, node).text}", 0)]

    def walk(n: Node, role: str, depth: int) -> None:
        nt = grammar.nonterminals[n.nonterminal]
        name = SYMBOLS.get(n.nonterminal, n.nonterminal)
        head = f"{name}({', '.join(nt.params)})" if nt.params else name
        out.append(Part(role, n.label, f"{head} = {symbolic.text(derivation.expand(grammar, n))}", depth))
        for ref, child in n.children:
            walk(child, ref, depth + 1)

    for ref, child in node.children:
        walk(child, ref, 1)
    return out


def lines(grammar: Grammar, node: Node, constants: dict[str, float] | None = None) -> list[str]:
    """The parts as aligned text lines, and the constants last."""
    ps = parts(grammar, node)
    role_w = max(len("  " * (p.depth - 1) + p.role) for p in ps)
    prod_w = max(len(p.production) for p in ps)
    out = [f"{('  ' * max(p.depth - 1, 0) + p.role):<{role_w}}  {p.production:<{prod_w}}  {p.formula}" for p in ps]
    if constants:
        out.append(f"{'constants':<{role_w}}  " + ", ".join(f"{k} = {v:.4g}" for k, v in constants.items()))
    return out
