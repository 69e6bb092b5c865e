"""The grammar language: primitives, expression trees, grammar files, derivations, the
zoo of hand-designed losses, lowering to JAX and export. The public entry points::

    import grammar

    g = grammar.load("mirror.yaml")        # a grammar file, validated (its seeds included)
    e = grammar.parse("-log_sigmoid(beta * (r_w - r_l))")   # an expression over the terminals
    grammar.zoo.ZOO["dpo"].expr            # the hand-designed losses, as expressions

``grammar`` imports no evaluator: it knows nothing of MuJoCo or of the search.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from grammar.errors import GrammarError

if TYPE_CHECKING:
    from grammar.language import Grammar

__all__ = ["Expr", "Grammar", "GrammarError", "load", "loads", "parse", "zoo"]

# Names imported on first use (PEP 562), with the module each comes from: the primitive
# table behind them imports JAX, and importing one light submodule (``grammar.errors``, as
# the command line does) imports this package first.
_LAZY = {"Expr": "grammar.expr", "parse": "grammar.expr", "Grammar": "grammar.language", "zoo": None}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'grammar' has no attribute {name!r}")
    if _LAZY[name] is None:
        return importlib.import_module(f"grammar.{name}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _check_seeds(g: Grammar, shown: str | None) -> Grammar:
    from grammar.derivation import parse_derivation

    for name, text in g.seeds.items():
        try:
            parse_derivation(g, text)
        except GrammarError as e:
            raise GrammarError(f"seed {name}: {e.message}", shown, g.seed_lines.get(name)) from None
    return g


def load(name_or_path: str) -> Grammar:
    """Loads and validates a grammar file (a path, or the name of a shipped grammar such as
    ``mirror.yaml``). Raises :class:`GrammarError` naming the file and line."""
    from grammar import language

    g = language.read(name_or_path)
    path = g.path or name_or_path
    import os

    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    return _check_seeds(g, shown)


def loads(text: str, shown: str = "<string>") -> Grammar:
    """A grammar from the text of a grammar file."""
    from grammar import language

    return _check_seeds(language.reads(text, shown), shown)
