"""Typed expression trees of the loss language and their compact text form.

An :class:`Expr` is immutable and hashable; equal subtrees are equal objects, so a tree
is also a DAG after hash-consing (the interpreter and the exports share repeated
subexpressions). Leaves are terminals (``var``), named constants (``const``), numeric
literals (``num``) and, inside grammar productions only, parameters of function
nonterminals (``param``) and nonterminal references (``nt``).

Text form, e.g. ``-log_sigmoid(beta*(r_w - r_l))``: infix ``+ - * /``, unary minus,
``^2`` (squares only), calls of primitives, and the names the scope defines.

Expression text comes from users and from run folders, so every parsed tree has bounded
depth and size (:data:`MAX_DEPTH`, :data:`MAX_NODES`, a repeated subtree counted at each
use), and every recursive walk downstream stays bounded; :func:`bounds_problem` checks
trees built otherwise (derivations, substitutions) in time linear in their distinct nodes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from typing import Iterator, Mapping

from grammar.errors import GrammarError
from grammar.primitives import INFIX, PRIMITIVES, TERMINALS

LEAF_OPS = ("var", "const", "num", "param")

# Bounds of every parsed or substituted tree, well above what the search writes (committed
# runs: depth 24, 1,790 nodes; mirror.yaml: max_size 96 distinct nodes, max_depth 5).
# Printing, hashing and lowering recurse once per level, and Python stops at 1,000 frames.
MAX_DEPTH = 64
MAX_NODES = 10_000


@dataclasses.dataclass(frozen=True)
class Expr:
    op: str
    args: tuple["Expr", ...] = ()
    name: str | None = None
    value: float | None = None

    # -- construction
    @staticmethod
    def var(name: str) -> "Expr":
        return Expr("var", name=name)

    @staticmethod
    def const(name: str) -> "Expr":
        return Expr("const", name=name)

    @staticmethod
    def num(value: float) -> "Expr":
        return Expr("num", value=float(value) + 0.0)  # + 0.0 turns -0.0 into 0.0

    @staticmethod
    def call(op: str, *args: "Expr") -> "Expr":
        return Expr(op, tuple(args))

    # -- inspection
    def walk(self) -> Iterator["Expr"]:
        """Pre-order traversal (repeated subtrees are visited each time)."""
        yield self
        for a in self.args:
            yield from a.walk()

    # Cached: shared subtrees (definitions, substituted parameters) are measured once, so a
    # tree far larger than its distinct nodes is measured in time linear in the latter.
    @functools.cached_property
    def size(self) -> int:
        """Nodes of the tree, a repeated subtree counted at each use."""
        return 1 + sum(a.size for a in self.args)

    @functools.cached_property
    def depth(self) -> int:
        return 1 + max((a.depth for a in self.args), default=0)

    def names(self, op: str) -> set[str]:
        return {e.name for e in self.walk() if e.op == op}

    @property
    def constants(self) -> list[str]:
        return sorted(self.names("const"))

    @property
    def terminals(self) -> list[str]:
        return [t for t in TERMINALS if t in self.names("var")]

    def unique_nodes(self) -> list["Expr"]:
        """Distinct subtrees in post-order (children before parents): the DAG's nodes."""
        seen: dict[Expr, None] = {}

        def visit(e: Expr):
            if e in seen:
                return
            for a in e.args:
                visit(a)
            seen[e] = None

        visit(self)
        return list(seen)

    def substitute(self, mapping: Mapping[tuple[str, str], "Expr"]) -> "Expr":
        """Replaces leaves keyed by (op, name), e.g. ``{("param", "x"): expr}``. The result
        shares the substituted subtrees, so it may stand for a tree far over the bounds
        (a parameter used twice, nested 40 times): :func:`bounds_problem` says so in time
        linear in its distinct nodes, before anything walks the tree."""
        memo: dict[Expr, Expr] = {}

        def sub(e: Expr) -> Expr:
            if e in memo:
                return memo[e]
            if e.op in LEAF_OPS or e.op == "nt" and not e.args:
                out = mapping.get((e.op, e.name), e)
            else:
                out = dataclasses.replace(e, args=tuple(sub(a) for a in e.args))
            memo[e] = out
            return out

        return sub(self)

    # Hashed once per node: the dataclass's own hash would rehash every shared subtree at each
    # use, which for a parameter used twice and nested 40 deep is 2^40 calls.
    def __hash__(self) -> int:
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = self.__dict__["_hash"] = hash((self.op, self.args, self.name, self.value))
        return cached

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, Expr):
            return NotImplemented
        return (hash(self) == hash(other) and self.op == other.op and self.name == other.name
                and self.value == other.value and self.args == other.args)

    def __str__(self) -> str:
        return to_text(self)


def bounds_problem(e: Expr) -> str | None:
    """Why ``e`` is over the bounds of a tree (:data:`MAX_DEPTH`, :data:`MAX_NODES`), or None."""
    if e.depth > MAX_DEPTH:
        return f"expression nested too deeply ({e.depth} levels, at most {MAX_DEPTH})"
    if e.size > MAX_NODES:
        return f"expression too large ({e.size} nodes, at most {MAX_NODES})"
    return None


# --------------------------------------------------------------------------- printing
_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "square": 4}


def _fmt_num(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def to_text(e: Expr) -> str:
    """Compact text that :func:`parse` reads back to the same tree."""

    def prec(x: Expr) -> int:
        if x.op == "num" and x.value < 0:
            return 3
        return _PREC.get(x.op, 5)

    def wrap(x: Expr, need: int) -> str:
        s = go(x)
        return f"({s})" if prec(x) < need else s

    def go(x: Expr) -> str:
        if x.op in ("var", "const", "param"):
            return x.name
        if x.op == "num":
            return _fmt_num(x.value)
        if x.op == "nt":
            return x.name + (f"({', '.join(go(a) for a in x.args)})" if x.args else "")
        if x.op == "neg":
            return "-" + wrap(x.args[0], 4)
        if x.op == "square":
            return wrap(x.args[0], 5) + "^2"
        p = PRIMITIVES[x.op]
        if p.infix:
            a, b = x.args
            mine = _PREC[x.op]
            # Left-associative, and a right operand of equal precedence keeps its parentheses
            # for + and * too: a + (b + c) reads back as the same tree, so a stored expression
            # computes in float32 exactly what was scored (not (a + b) + c).
            return f"{wrap(a, mine)} {p.infix} {wrap(b, mine + 1)}"
        return f"{x.op}({', '.join(go(a) for a in x.args)})"

    return go(e)


# --------------------------------------------------------------------------- parsing
@dataclasses.dataclass
class Scope:
    """How identifiers resolve while parsing.

    terminals: allowed terminal names; constants: named constants; aliases: names that
    expand to a parsed expression (e.g. ``r_w``); params: parameters of the function
    nonterminal being defined; nonterminals: name -> number of parameters.
    primitives: allowed primitive names (None: all).
    """

    terminals: tuple[str, ...] = TERMINALS
    constants: tuple[str, ...] = ()
    aliases: Mapping[str, Expr] = dataclasses.field(default_factory=dict)
    params: tuple[str, ...] = ()
    nonterminals: Mapping[str, int] = dataclasses.field(default_factory=dict)
    primitives: tuple[str, ...] | None = None


_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_0-9]+)?)"
    r"|(?P<op>\*\*|[-+*/^(),]))"
)


def _quoted(text: str, width: int = 100) -> str:
    """``text`` as a quoted literal for an error message, cut to about ``width`` characters."""
    return repr(text if len(text) <= width else text[:width - 3] + "...")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].lstrip()[:1]
            raise GrammarError(f"unexpected character {bad!r} at column {pos + 1} in {_quoted(text)}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive descent, one level of Python recursion (a few frames) per level of nesting:
    deeper nesting than :data:`MAX_DEPTH` is refused as it is met, before Python's limit."""

    def __init__(self, text: str, scope: Scope):
        self.text = text
        self.scope = scope
        self.tokens = _tokenize(text)
        self.i = 0
        self.level = 0

    def error(self, msg: str, col: int | None = None):
        where = f" at column {col}" if col else ""
        raise GrammarError(f"{msg}{where} in {_quoted(self.text)}")

    def nested(self, parse_inner):
        """``parse_inner()`` one nesting level down (parentheses, a call's arguments, a unary sign)."""
        if self.level >= MAX_DEPTH:
            self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.peek()[2])
        self.level += 1
        try:
            return parse_inner()
        finally:
            self.level -= 1

    def node(self, op: str, *args: Expr, name: str | None = None) -> Expr:
        """A new node, refused if the tree would be over the bounds (chained ``+`` deepen the
        tree without nesting the text; definitions add their whole size)."""
        e = Expr(op, tuple(args), name=name)
        problem = bounds_problem(e)
        if problem:
            self.error(problem)
        return e

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None, len(self.text) + 1)

    def take(self, value=None):
        tok = self.peek()
        if tok[0] is None:
            self.error("unexpected end of expression" + (f" (expected {value!r})" if value else ""))
        if value is not None and tok[1] != value:
            self.error(f"expected {value!r}, found {tok[1]!r}", tok[2])
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if not self.tokens:
            raise GrammarError("empty expression")
        e = self.sum()
        tok = self.peek()
        if tok[0] is not None:
            self.error(f"unexpected {tok[1]!r}", tok[2])
        return e

    def sum(self) -> Expr:
        e = self.product()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            e = self.node(INFIX[op], e, self.product())
        return e

    def product(self) -> Expr:
        e = self.unary()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            e = self.node(INFIX[op], e, self.unary())
        return e

    def unary(self) -> Expr:
        if self.peek()[1] == "-":
            self.take()
            # "-2" is the literal -2; "-(2)", "-x" and "-2^2" are negations.
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else (None, None, 0)
            if self.peek()[0] == "num" and nxt[1] not in ("^", "**"):
                _, text, col = self.take()
                value = float(text)
                if not math.isfinite(value):
                    self.error(f"number {text!r} is not finite", col)
                if value != 0:
                    return Expr.num(-value)
                return Expr.call("neg", Expr.num(0.0))
            return self.node("neg", self.nested(self.unary))
        if self.peek()[1] == "+":
            self.take()
            return self.nested(self.unary)
        return self.power()

    def power(self) -> Expr:
        e = self.atom()
        if self.peek()[1] in ("^", "**"):
            _, _, col = self.take()
            kind, val, c2 = self.take()
            if kind != "num" or float(val) != 2.0:
                self.error("only squares (^2) are supported as powers; use exp/log for others", c2)
            e = self.node("square", e)
        return e

    def atom(self) -> Expr:
        kind, val, col = self.take()
        if kind == "num":
            v = float(val)
            if not math.isfinite(v):
                self.error(f"number {val!r} is not finite", col)
            return Expr.num(v)
        if val == "(":
            e = self.nested(self.sum)
            self.take(")")
            return e
        if kind != "name":
            self.error(f"unexpected {val!r}", col)
        if self.peek()[1] == "(":
            return self.call(val, col)
        return self.name(val, col)

    def args(self) -> list[Expr]:
        self.take("(")
        out = []
        if self.peek()[1] != ")":
            out.append(self.nested(self.sum))
            while self.peek()[1] == ",":
                self.take()
                out.append(self.nested(self.sum))
        self.take(")")
        return out

    def call(self, name: str, col: int) -> Expr:
        sc = self.scope
        base = name.split(".")[0]
        if base in sc.nonterminals:
            nparams = sc.nonterminals[base]
            args = self.args()
            if nparams == 0:
                self.error(f"type mismatch: nonterminal {base} is a scalar and cannot be called", col)
            if len(args) != nparams:
                self.error(f"type mismatch: {base} takes {nparams} argument(s), got {len(args)}", col)
            return self.node("nt", *args, name=name)
        if name in PRIMITIVES:
            if sc.primitives is not None and name not in sc.primitives:
                self.error(f"primitive {name!r} is not enabled in this grammar (add it to 'primitives')", col)
            p = PRIMITIVES[name]
            args = self.args()
            if len(args) != p.arity:
                self.error(f"{name} takes {p.arity} argument(s), got {len(args)}", col)
            return self.node(name, *args)
        if name in sc.terminals or name in sc.constants or name in sc.aliases or name in sc.params:
            self.error(f"type mismatch: {name!r} is a scalar, not a function", col)
        self.error(f"unknown function {name!r}", col)

    def name(self, name: str, col: int) -> Expr:
        sc = self.scope
        base = name.split(".")[0]
        if base in sc.nonterminals:
            if sc.nonterminals[base] > 0:
                self.error(f"type mismatch: nonterminal {base} is a function of "
                           f"{sc.nonterminals[base]} argument(s); call it, e.g. {base}(x)", col)
            return Expr("nt", name=name)
        if "." in name:
            self.error(f"unknown name {name!r}", col)
        if name in sc.params:
            return Expr("param", name=name)
        if name in sc.aliases:
            return sc.aliases[name]
        if name in sc.constants:
            return Expr.const(name)
        if name in sc.terminals:
            return Expr.var(name)
        if name in PRIMITIVES:
            self.error(f"type mismatch: {name!r} is a function; call it as {name}(...)", col)
        if name in TERMINALS:
            self.error(f"terminal {name!r} is not available here", col)
        known = ", ".join(list(sc.terminals) + list(sc.constants) + list(sc.aliases) + list(sc.params))
        self.error(f"unknown name {name!r} (known: {known})", col)


def parse(text: str, scope: Scope | None = None) -> Expr:
    """Parses the compact text form. Raises :class:`GrammarError` on bad input."""
    if text is None or not str(text).strip():
        raise GrammarError("empty expression")
    return _Parser(str(text), scope or Scope()).parse()
