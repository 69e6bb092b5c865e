"""Grammar files: loading, validation, and the typed grammar they describe.

The format is documented in ``grammar/README.md``. In short: typed nonterminals (scalars,
or functions of named parameters such as ``Mirror(x)``) with productions written in the
expression text form; named constants with bounds, scale and default; definitions
(macros such as ``u_w``); primitives by name; size and depth limits; structural
constraints (increasing maps, forbidden nestings); and seeds, the derivations of known
losses.

Inside one production every distinct reference name (``Mirror``, ``Expr.a``) is one
child subtree, and repeated references share it: ``Mirror`` in ``u_w`` and ``u_l`` is
the same mirror map, while ``Expr.a + Expr.b`` has two independent children.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import yaml

from grammar.errors import GrammarError
from grammar.expr import Expr, Scope, parse
from grammar.primitives import ARITHMETIC, PRIMITIVES, TERMINALS

GRAMMAR_DIR = os.path.dirname(os.path.abspath(__file__))
TOP_LEVEL_KEYS = {
    "name", "description", "start", "terminals", "primitives", "constants", "definitions",
    "nonterminals", "limits", "constraints", "seeds",
}


@dataclasses.dataclass(frozen=True)
class Constant:
    """A named, bounded, evolvable constant."""

    name: str
    default: float
    low: float
    high: float
    scale: str = "linear"  # or "log"
    doc: str = ""

    def clip(self, value: float) -> float:
        return float(min(max(value, self.low), self.high))

    def to_unit(self, value: float) -> float:
        """Maps a value to [0, 1] on the constant's scale (for evolution)."""
        if self.scale == "log":
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.scale == "log":
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)


@dataclasses.dataclass(frozen=True)
class Production:
    """One alternative of a nonterminal.

    ``body`` is the parsed expression with ``nt`` references; ``children`` maps each
    distinct reference name to its nonterminal, in order of first appearance.
    """

    label: str
    text: str
    body: Expr
    children: tuple[tuple[str, str], ...]
    weight: float = 1.0
    line: int | None = None

    @property
    def child_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.children)


@dataclasses.dataclass(frozen=True)
class Nonterminal:
    name: str
    params: tuple[str, ...]
    productions: tuple[Production, ...]
    increasing: tuple[float, float] | None = None  # domain on which it must increase
    doc: str = ""
    line: int | None = None

    def production(self, label: str) -> tuple[int, Production]:
        for i, p in enumerate(self.productions):
            if p.label == label:
                return i, p
        raise GrammarError(
            f"nonterminal {self.name} has no production {label!r} "
            f"(has: {', '.join(p.label for p in self.productions)})"
        )


@dataclasses.dataclass(frozen=True)
class Limits:
    max_depth: int = 6   # derivation depth
    max_size: int = 48   # distinct nodes of the expanded expression (interpreter length)


@dataclasses.dataclass(frozen=True)
class Grammar:
    name: str
    path: str | None
    description: str
    start: str
    terminals: tuple[str, ...]
    primitives: tuple[str, ...]
    constants: dict[str, Constant]
    definitions: dict[str, Expr]
    nonterminals: dict[str, Nonterminal]
    limits: Limits
    forbid_nesting: tuple[tuple[str, str], ...]
    seeds: dict[str, str]
    min_depth: dict[str, int]
    seed_lines: dict[str, int | None] = dataclasses.field(default_factory=dict)  # for error messages

    def scope(self) -> Scope:
        """The scope for hand-written expressions: terminals, constants, and the
        definitions that use no nonterminal (e.g. ``r_w``)."""
        aliases = {k: v for k, v in self.definitions.items() if not v.names("nt")}
        return Scope(terminals=self.terminals, constants=tuple(self.constants),
                     aliases=aliases, primitives=self.primitives)

    def parse(self, text: str) -> Expr:
        return parse(text, self.scope())


# --------------------------------------------------------------------------- YAML with lines
class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    out = {}
    lines = {}
    for k_node, v_node in node.value:
        key = loader.construct_object(k_node, deep=True)
        if key in out:
            raise GrammarError(f"duplicate key {key!r}", line=k_node.start_mark.line + 1)
        out[key] = loader.construct_object(v_node, deep=True)
        lines[key] = v_node.start_mark.line + 1
    out_obj = _LineDict(out)
    out_obj.lines = lines
    out_obj.line = node.start_mark.line + 1
    return out_obj


def _construct_sequence(loader, node):
    items = [loader.construct_object(n, deep=True) for n in node.value]
    seq = _LineList(items)
    seq.lines = [n.start_mark.line + 1 for n in node.value]
    seq.line = node.start_mark.line + 1
    return seq


class _LineDict(dict):
    lines: dict
    line: int


class _LineList(list):
    lines: list
    line: int


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def resolve_path(name_or_path: str) -> str:
    """A grammar file by path, or by name among the shipped grammars (``mirror.yaml``)."""
    candidates = [name_or_path]
    if not os.path.isabs(name_or_path):
        base = name_or_path if name_or_path.endswith((".yaml", ".yml")) else name_or_path + ".yaml"
        candidates.append(os.path.join(GRAMMAR_DIR, base))
    for c in candidates:
        if os.path.isfile(c):
            return c
    shipped = sorted(f for f in os.listdir(GRAMMAR_DIR) if f.endswith(".yaml"))
    raise GrammarError(f"grammar file not found: {name_or_path} (shipped grammars: {', '.join(shipped)})")


def read(name_or_path: str) -> Grammar:
    """Reads and validates a grammar file, all but its seeds (``grammar.load`` checks those
    too, with the derivation parser). Raises :class:`GrammarError` with file and line."""
    path = resolve_path(name_or_path)
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise GrammarError(f"cannot read grammar file: {e.strerror}", shown) from None
    except UnicodeDecodeError:
        raise GrammarError("grammar file is not UTF-8 text", shown) from None
    try:
        return reads(text, shown, path)
    except GrammarError as e:
        raise e.located(shown) from None


def reads(text: str, shown: str = "<string>", path: str | None = None) -> Grammar:
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            raise GrammarError("tab in indentation (YAML indents with spaces)", shown, i)
    try:
        data = yaml.load(text, Loader=_Loader)
    except GrammarError as e:
        raise e.located(shown) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GrammarError(f"malformed YAML: {problem}", shown, mark.line + 1 if mark else None) from None
    if data is None:
        raise GrammarError("empty grammar file", shown)
    if not isinstance(data, dict):
        raise GrammarError("a grammar file must be a mapping of sections (start, nonterminals, ...)", shown, 1)
    return _build(data, shown, path)


# --------------------------------------------------------------------------- validation
def _line(data, key):
    return getattr(data, "lines", {}).get(key) if isinstance(data, dict) else None


def _as_list(value, what: str, line) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GrammarError(f"'{what}' must be a list", line=line)
    return value


def _build(data: dict, shown: str, path: str | None) -> Grammar:
    """A grammar from its parsed YAML, each section checked in file order with the line of
    any error. Long because it is a checklist of the sections, read top to bottom."""
    unknown = set(data) - TOP_LEVEL_KEYS
    if unknown:
        key = sorted(unknown, key=str)[0]
        raise GrammarError(f"unknown section {key!r} (sections: {', '.join(sorted(TOP_LEVEL_KEYS))})",
                           line=_line(data, key))
    for required in ("start", "nonterminals"):
        if required not in data:
            raise GrammarError(f"missing required section {required!r}", line=1)

    terminals = tuple(str(t) for t in _as_list(data.get("terminals", list(TERMINALS)), "terminals",
                                                 _line(data, "terminals")))
    for i, t in enumerate(terminals):
        if t not in TERMINALS:
            lines = getattr(data.get("terminals"), "lines", [None] * len(terminals))
            raise GrammarError(f"unknown terminal {t!r} (terminals: {', '.join(TERMINALS)})", line=lines[i])

    prim_list = _as_list(data.get("primitives"), "primitives", _line(data, "primitives"))
    prim_lines = getattr(data.get("primitives"), "lines", [None] * len(prim_list))
    for i, p in enumerate(prim_list):
        if p not in PRIMITIVES:
            raise GrammarError(f"unknown primitive {p!r} (primitives: {', '.join(sorted(PRIMITIVES))})",
                               line=prim_lines[i])
    primitives = tuple(dict.fromkeys(list(ARITHMETIC) + [str(p) for p in prim_list]))

    constants = _build_constants(data.get("constants") or {}, _line(data, "constants"))

    raw_nts = data["nonterminals"]
    if not isinstance(raw_nts, dict) or not raw_nts:
        raise GrammarError("'nonterminals' must be a non-empty mapping", line=_line(data, "nonterminals"))
    nt_params: dict[str, tuple[str, ...]] = {}
    for name, spec in raw_nts.items():
        line = _line(raw_nts, name)
        if not isinstance(name, str) or not name.isidentifier() or "." in name:
            raise GrammarError(f"bad nonterminal name {name!r}", line=line)
        if name in TERMINALS or name in constants or name in PRIMITIVES:
            raise GrammarError(f"nonterminal {name!r} clashes with a terminal, constant or primitive", line=line)
        if not isinstance(spec, dict):
            raise GrammarError(f"nonterminal {name} must be a mapping with 'productions'", line=line)
        params = tuple(str(p) for p in _as_list(spec.get("params"), f"{name}.params", line))
        nt_params[name] = params

    start = data["start"]
    if start not in nt_params:
        raise GrammarError(f"start symbol {start!r} is not a nonterminal", line=_line(data, "start"))
    if nt_params[start]:
        raise GrammarError(f"type mismatch: start symbol {start} must be a scalar (no params)",
                           line=_line(data, "start"))

    arity = {k: len(v) for k, v in nt_params.items()}
    definitions: dict[str, Expr] = {}
    raw_defs = data.get("definitions") or {}
    if not isinstance(raw_defs, dict):
        raise GrammarError("'definitions' must be a mapping of name: expression", line=_line(data, "definitions"))
    for name, text in raw_defs.items():
        line = _line(raw_defs, name)
        if name in TERMINALS or name in constants or name in nt_params or name in PRIMITIVES:
            raise GrammarError(f"definition {name!r} clashes with a terminal, constant, nonterminal or primitive",
                               line=line)
        scope = Scope(terminals=terminals, constants=tuple(constants), aliases=dict(definitions),
                      nonterminals=arity, primitives=primitives)
        try:
            definitions[name] = parse(text, scope)
        except GrammarError as e:
            raise GrammarError(f"definition {name}: {e.message}", line=line) from None

    nonterminals: dict[str, Nonterminal] = {}
    for name, spec in raw_nts.items():
        nonterminals[name] = _build_nonterminal(name, spec, raw_nts, nt_params, arity, terminals,
                                                constants, definitions, primitives)

    min_depth = _check_structure(start, nonterminals)
    limits = _build_limits(data.get("limits") or {}, _line(data, "limits"))
    forbid = _build_constraints(data.get("constraints") or {}, _line(data, "constraints"))
    seeds = data.get("seeds") or {}
    if not isinstance(seeds, dict):
        raise GrammarError("'seeds' must be a mapping of zoo name: derivation", line=_line(data, "seeds"))
    grammar = Grammar(
        name=str(data.get("name") or os.path.splitext(os.path.basename(shown))[0]),
        path=path, description=str(data.get("description") or "").strip(), start=start,
        terminals=terminals, primitives=primitives, constants=constants, definitions=definitions,
        nonterminals=nonterminals, limits=limits, forbid_nesting=forbid,
        seeds={str(k): str(v) for k, v in seeds.items()}, min_depth=min_depth,
        seed_lines={str(k): _line(seeds, k) for k in seeds},
    )
    return grammar


def _build_constants(raw, line) -> dict[str, Constant]:
    if not isinstance(raw, dict):
        raise GrammarError("'constants' must be a mapping of name: {default, low, high, scale}", line=line)
    out = {}
    for name, spec in raw.items():
        cl = _line(raw, name)
        if not isinstance(name, str) or not name.isidentifier():
            raise GrammarError(f"bad constant name {name!r}", line=cl)
        if name in TERMINALS or name in PRIMITIVES:
            raise GrammarError(f"constant {name!r} clashes with a terminal or primitive", line=cl)
        if not isinstance(spec, dict):
            raise GrammarError(f"constant {name} must be a mapping with default, low, high", line=cl)
        unknown = set(spec) - {"default", "low", "high", "scale", "doc"}
        if unknown:
            raise GrammarError(f"constant {name}: unknown field {sorted(unknown)[0]!r}", line=cl)
        try:
            low, high = float(spec["low"]), float(spec["high"])
            default = float(spec.get("default", (low + high) / 2))
        except KeyError as e:
            raise GrammarError(f"constant {name}: missing {e.args[0]!r}", line=cl) from None
        except (TypeError, ValueError):
            raise GrammarError(f"constant {name}: default, low and high must be numbers", line=cl) from None
        scale = spec.get("scale", "linear")
        if not all(math.isfinite(v) for v in (low, high, default)):
            raise GrammarError(f"constant {name}: bounds and default must be finite", line=cl)
        if low >= high:
            raise GrammarError(f"constant {name}: inverted or empty bounds (low {low} >= high {high})", line=cl)
        if not low <= default <= high:
            raise GrammarError(f"constant {name}: default {default} outside [{low}, {high}]", line=cl)
        if scale not in ("linear", "log"):
            raise GrammarError(f"constant {name}: scale must be 'linear' or 'log', not {scale!r}", line=cl)
        if scale == "log" and low <= 0:
            raise GrammarError(f"constant {name}: a log scale needs low > 0", line=cl)
        out[name] = Constant(name, default, low, high, scale, str(spec.get("doc", "")))
    return out


def _build_nonterminal(name, spec, raw_nts, nt_params, arity, terminals, constants, definitions,
                       primitives) -> Nonterminal:
    """One nonterminal and its productions, each checked (keys, parameters, expressions,
    the increasing-order constraint) with its line; long for the same reason as _build."""
    line = _line(raw_nts, name)
    unknown = set(spec) - {"params", "productions", "increasing", "doc"}
    if unknown:
        raise GrammarError(f"nonterminal {name}: unknown field {sorted(unknown)[0]!r}", line=line)
    params = nt_params[name]
    prods_raw = spec.get("productions")
    if not isinstance(prods_raw, list) or not prods_raw:
        raise GrammarError(f"nonterminal {name} needs a non-empty list of productions", line=line)
    prod_lines = getattr(prods_raw, "lines", [line] * len(prods_raw))
    scope = Scope(terminals=terminals, constants=tuple(constants), aliases=definitions,
                  params=params, nonterminals=arity, primitives=primitives)
    productions = []
    labels = set()
    for i, raw in enumerate(prods_raw):
        pl = prod_lines[i]
        if isinstance(raw, dict):
            bad = set(raw) - {"name", "expr", "weight", "doc"}
            if bad:
                raise GrammarError(f"production of {name}: unknown field {sorted(bad)[0]!r}", line=pl)
            if "expr" not in raw:
                raise GrammarError(f"production of {name} needs 'expr'", line=pl)
            text, label, weight = raw["expr"], raw.get("name", f"p{i}"), raw.get("weight", 1.0)
        else:
            text, label, weight = raw, f"p{i}", 1.0
        text = str(text) if isinstance(text, (int, float)) else text
        if not isinstance(text, str):
            raise GrammarError(f"production of {name} must be an expression string", line=pl)
        label = str(label)
        if label in labels:
            raise GrammarError(f"nonterminal {name}: duplicate production name {label!r}", line=pl)
        labels.add(label)
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise GrammarError(f"production {name}.{label}: weight must be a number", line=pl) from None
        if not weight > 0:
            raise GrammarError(f"production {name}.{label}: weight must be positive", line=pl)
        try:
            body = parse(text, scope)
        except GrammarError as e:
            raise GrammarError(f"production {name}.{label}: {e.message}", line=pl) from None
        children: dict[str, str] = {}
        for node in body.walk():
            if node.op == "nt":
                children.setdefault(node.name, node.name.split(".")[0])
        productions.append(Production(label, text, body, tuple(children.items()), weight, pl))

    increasing = None
    if "increasing" in spec:
        inc = spec["increasing"]
        if len(params) != 1:
            raise GrammarError(f"nonterminal {name}: 'increasing' needs exactly one parameter", line=line)
        domain = inc.get("domain") if isinstance(inc, dict) else None
        if not (isinstance(domain, list) and len(domain) == 2):
            raise GrammarError(f"nonterminal {name}: 'increasing' needs domain: [low, high]", line=line)
        lo, hi = float(domain[0]), float(domain[1])
        if lo >= hi:
            raise GrammarError(f"nonterminal {name}: inverted 'increasing' domain [{lo}, {hi}]", line=line)
        increasing = (lo, hi)
    return Nonterminal(name, params, tuple(productions), increasing, str(spec.get("doc", "")), line)


def _check_structure(start: str, nts: dict[str, Nonterminal]) -> dict[str, int]:
    # Reachability from the start symbol.
    reached, frontier = {start}, [start]
    while frontier:
        for p in nts[frontier.pop()].productions:
            for _, child in p.children:
                if child not in reached:
                    reached.add(child)
                    frontier.append(child)
    for name, nt in nts.items():
        if name not in reached:
            raise GrammarError(f"nonterminal {name} is unreachable from start symbol {start}", line=nt.line)
    # Minimum derivation depth by fixpoint; infinite means no production terminates.
    depth = {name: math.inf for name in nts}
    changed = True
    while changed:
        changed = False
        for name, nt in nts.items():
            for p in nt.productions:
                d = 1 + max((depth[c] for _, c in p.children), default=0)
                if d < depth[name]:
                    depth[name] = d
                    changed = True
    stuck = [name for name, d in depth.items() if d == math.inf]
    if stuck:
        # Name the root cause first: a nonterminal every production of which refers to itself.
        selfish = [n for n in stuck if all(n in dict(p.children).values() for p in nts[n].productions)]
        name = (selfish or stuck)[0]
        others = [n for n in stuck if n != name]
        also = f" (so {', '.join(others)} cannot terminate either)" if others else ""
        raise GrammarError(f"nonterminal {name} is cyclic: none of its productions can terminate{also}",
                           line=nts[name].line)
    return {k: int(v) for k, v in depth.items()}


def _build_limits(raw, line) -> Limits:
    if not isinstance(raw, dict):
        raise GrammarError("'limits' must be a mapping (max_depth, max_size)", line=line)
    unknown = set(raw) - {"max_depth", "max_size"}
    if unknown:
        raise GrammarError(f"limits: unknown field {sorted(unknown)[0]!r}", line=line)
    out = {}
    for key in ("max_depth", "max_size"):
        if key in raw:
            v = raw[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise GrammarError(f"limits.{key} must be a positive integer", line=_line(raw, key))
            out[key] = v
    return Limits(**out)


def _build_constraints(raw, line) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise GrammarError("'constraints' must be a mapping", line=line)
    unknown = set(raw) - {"forbid_nesting"}
    if unknown:
        raise GrammarError(f"constraints: unknown field {sorted(unknown)[0]!r}", line=line)
    pairs = []
    for pair in _as_list(raw.get("forbid_nesting"), "forbid_nesting", line):
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in PRIMITIVES for p in pair)):
            raise GrammarError(f"forbid_nesting entries are [outer, inner] primitive pairs, got {pair!r}",
                               line=_line(raw, "forbid_nesting"))
        pairs.append((str(pair[0]), str(pair[1])))
    return tuple(pairs)


def describe_constant(c: Constant) -> str:
    return f"{c.name} = {c.default:g} in [{c.low:g}, {c.high:g}] ({c.scale})"


def as_dict(g: Grammar) -> dict[str, Any]:
    """A summary (for run stores and `grammar check`)."""
    return {
        "name": g.name, "start": g.start, "terminals": list(g.terminals),
        "primitives": list(g.primitives),
        "constants": {k: dataclasses.asdict(v) for k, v in g.constants.items()},
        "nonterminals": {k: {"params": list(v.params), "productions": [p.label for p in v.productions]}
                         for k, v in g.nonterminals.items()},
        "limits": dataclasses.asdict(g.limits),
    }
