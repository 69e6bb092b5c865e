"""Grammar files: loading, validation, and the typed grammar they describe.

The format is documented in ``grammar/README.md``. In short: typed nonterminals (scalars,
or functions of named parameters such as ``Mirror(x)``) with productions written in the
expression text form; named constants with bounds, scale and default; definitions
(macros such as ``u_w``); primitives by name; size and depth limits; structural
constraints (increasing maps, forbidden nestings); and seeds, the derivations of known
losses.

Grammar files are untrusted input: they are shared, and every run folder carries one. The
loader runs no code (no YAML tags), and bounds everything a file could make large (see
the bounds below), so that a bad file is one located error and never a crash or a hang.

Inside one production every distinct reference name (``Mirror``, ``Expr.a``) is one
child subtree, and repeated references share it: ``Mirror`` in ``u_w`` and ``u_l`` is
the same mirror map, while ``Expr.a + Expr.b`` has two independent children.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any

import yaml

from grammar.errors import GrammarError
from grammar.expr import Expr, Scope, parse
from grammar.identifiers import MAX_NAME, constant_name_problem, identifier_problem
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
        """``value`` within the bounds; NaN (an evolution whose state went non-finite) becomes
        the default, so no search ever trains, stores or exports a non-finite constant."""
        if math.isnan(value):
            return self.default
        return float(min(max(value, self.low), self.high))

    def to_unit(self, value: float) -> float:
        """Maps a value to [0, 1] on the constant's scale (for evolution)."""
        if self.scale == "log":
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        """The value at ``u`` in [0, 1] on the constant's scale (clipped; NaN: the default)."""
        if math.isnan(float(u)):
            return self.default
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


# --------------------------------------------------------------------------- bounds
# Grammar files are shared, and every run folder carries one, so they are untrusted input:
# each bound below keeps loading one fast and small, well above what a real grammar needs
# (mirror.yaml: 8 KiB, 6 nonterminals of at most 15 productions, 7 constants, 20 seeds,
# nesting 6, max_depth 5, max_size 96).
MAX_FILE_BYTES = 256 * 1024   # PyYAML's pure-Python scanner reads about 300 KiB a second
MAX_NESTING = 32              # YAML levels; PyYAML's composer recurses once per level
MAX_TEXT = 10_000             # characters of a description or doc
MAX_EXPRESSION = 2_000        # characters of a production, definition or seed
MAX_EXPRESSION_NODES = 2_000  # nodes of one parsed body, definitions expanded
MAX_EXPRESSION_DEPTH = 32
MAX_ENTRIES = 256             # nonterminals, productions of one, constants, definitions, seeds
MAX_PARAMS = 8
MAX_NUMBER = 64               # characters of a YAML number: no 400-digit integers
MAX_WEIGHT = 1e6              # so that a nonterminal's weights sum to a finite number
MAX_LIMIT_DEPTH = 12          # derivation trees can double in size with each level
MAX_LIMIT_SIZE = 1024         # the interpreter's program length grows to this

# Control characters would reach the terminal raw (escape sequences, carriage returns),
# and bidirectional overrides make printed text read differently from what it is.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# --------------------------------------------------------------------------- YAML with lines
class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader narrowed to what a grammar file needs. No aliases or anchors:
    an alias is shared when parsed but copied by whatever converts or prints it, so a
    600-byte file of nested aliases expands to gigabytes. No explicit tags (``!!python/...``,
    ``!!binary``, ``!!set``): a grammar needs none. At most MAX_NESTING levels, since the
    composer recurses."""

    _depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise GrammarError(f"YAML aliases (*{_cut(event.anchor)}) are not allowed in grammar files", line=line)
        if event.anchor is not None:
            raise GrammarError(f"YAML anchors (&{_cut(event.anchor)}) and aliases are not allowed in grammar "
                               "files", line=line)
        if event.tag not in (None, "!"):
            raise GrammarError(f"YAML tags ({_cut(event.tag)}) are not allowed in grammar files", line=line)
        if self._depth >= MAX_NESTING:
            raise GrammarError(f"YAML nested more than {MAX_NESTING} levels deep", line=line)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _cut(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _construct_mapping(loader, node):
    out = {}
    lines = {}
    for k_node, v_node in node.value:
        if not isinstance(k_node, yaml.ScalarNode):
            raise GrammarError("a key must be a name, not a list or mapping", line=k_node.start_mark.line + 1)
        key = loader.construct_object(k_node, deep=True)
        if key in out:
            raise GrammarError(f"duplicate key {_shown(key)}", line=k_node.start_mark.line + 1)
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


def _bounded_number(construct):
    """A number constructor that refuses very long numbers first: Python refuses to
    convert integers of over 4,300 digits (with a ValueError), and a base-60 integer
    (``1:2:3``) costs time quadratic in its length."""
    def construct_number(loader, node):
        if len(node.value) > MAX_NUMBER:
            raise GrammarError(f"a number of {len(node.value)} characters (at most {MAX_NUMBER})",
                               line=node.start_mark.line + 1)
        return construct(loader, node)
    return construct_number


class _LineDict(dict):
    lines: dict
    line: int


class _LineList(list):
    lines: list
    line: int


_INT, _FLOAT, _TIMESTAMP = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "timestamp"))
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor(_INT, _bounded_number(yaml.SafeLoader.construct_yaml_int))
_Loader.add_constructor(_FLOAT, _bounded_number(yaml.SafeLoader.construct_yaml_float))
# Dates are text here (an impossible one such as 2024-13-01 would raise ValueError), and
# 1e-4 is a number, as in YAML 1.2 (YAML 1.1 wants 1.0e-4).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_FLOAT, re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
                              list("-+0123456789."))


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
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # no more, whatever the file holds
    except OSError as e:
        raise GrammarError(f"cannot read grammar file: {e.strerror}", shown) from None
    if len(raw) > MAX_FILE_BYTES:
        raise GrammarError(_too_large(), shown)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GrammarError("grammar file is not UTF-8 text", shown) from None
    try:
        return reads(text, shown, path)
    except GrammarError as e:
        raise e.located(shown) from None


def _too_large() -> str:
    return f"grammar file is larger than {MAX_FILE_BYTES // 1024} KiB (grammars are a few KiB)"


def reads(text: str, shown: str = "<string>", path: str | None = None) -> Grammar:
    """A grammar from the text of a grammar file (``shown`` names it in errors)."""
    if len(text) > MAX_FILE_BYTES:
        raise GrammarError(_too_large(), shown)
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
    try:
        return _build(data, shown, path)
    except GrammarError as e:
        raise e.located(shown) from None


# --------------------------------------------------------------------------- checked values
def _line(data, key):
    return getattr(data, "lines", {}).get(key) if isinstance(data, dict) else None


def _item_lines(seq, default) -> list:
    return getattr(seq, "lines", None) or [default] * len(seq)


def _shown(value) -> str:
    """A value from the file for an error message: short, on one line, whatever it is."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _cut(repr(value))


def _as_list(value, what: str, line, most: int = MAX_ENTRIES) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GrammarError(f"'{what}' must be a list", line=line)
    if len(value) > most:
        raise GrammarError(f"'{what}' has {len(value)} entries (at most {most})", line=line)
    return value


def _as_mapping(value, what: str, line, most: int = MAX_ENTRIES) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GrammarError(f"'{what}' must be a mapping", line=line)
    if len(value) > most:
        raise GrammarError(f"'{what}' has {len(value)} entries (at most {most})", line=line)
    return value


def _no_unknown(spec: dict, allowed, what: str, line) -> None:
    unknown = next((k for k in spec if k not in allowed), None)
    if unknown is not None:
        raise GrammarError(f"{what}: unknown field {_shown(unknown)} (fields: {', '.join(sorted(allowed))})",
                           line=line)


def _name(value, what: str, line, problem=identifier_problem) -> str:
    """A name from the file, checked by ``problem`` (an identifier, by default)."""
    if not isinstance(value, str):
        raise GrammarError(f"{what} must be a string, not {_shown(value)}", line=line)
    reason = problem(value)
    if reason:
        raise GrammarError(f"{what} {_shown(value)} {reason}", line=line)
    return value


def _text(value, what: str, line) -> str:
    """Free text (a description or doc): a string of at most MAX_TEXT characters with no
    control characters but newline and tab, so that it prints as written."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GrammarError(f"{what} must be text, not {_shown(value)}", line=line)
    if len(value) > MAX_TEXT:
        raise GrammarError(f"{what} has {len(value)} characters (at most {MAX_TEXT})", line=line)
    return _printable(value, what, line)


def _printable(text: str, what: str, line) -> str:
    """``text``, refused if it holds a control character other than newline and tab (the
    expression and derivation parsers take some of them, \r for one, as spaces)."""
    bad = _CONTROL.search(text)
    if bad:
        raise GrammarError(f"{what} contains the control character {bad.group()!r} "
                           "(only newline and tab are allowed)", line=line)
    return text


def _number(value, what: str, line) -> float:
    """A finite float from a YAML number (a bool is not one: ``yes`` is not 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GrammarError(f"{what} must be a number, not {_shown(value)}", line=line)
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise GrammarError(f"{what} must be a finite number, not {_shown(value)}", line=line)
    return x


def _expression_text(value, what: str, line) -> str:
    """The text of a production or definition (a bare YAML number such as ``0`` is one)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = repr(value)
    if not isinstance(value, str):
        raise GrammarError(f"{what} must be an expression string, not {_shown(value)}", line=line)
    if len(value) > MAX_EXPRESSION:
        raise GrammarError(f"{what} has {len(value)} characters (at most {MAX_EXPRESSION})", line=line)
    return _printable(value, what, line)


def _tree_size_and_depth(e: Expr) -> tuple[int, int]:
    """Size (a repeated subtree counted at each use) and depth of an expression, in time
    linear in its distinct nodes: definitions share subtrees, so a chain of them can
    describe a tree far larger than its text (``d2: d1 + d1``, ``d3: d2 + d2``, ...)."""
    memo: dict[int, tuple[int, int]] = {}
    stack = [(e, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in memo:
            continue
        if ready:
            kids = [memo[id(a)] for a in node.args]
            memo[id(node)] = (1 + sum(s for s, _ in kids), 1 + max((d for _, d in kids), default=0))
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args)
    return memo[id(e)]


def _parse_body(text: str, scope: Scope, what: str, line) -> Expr:
    """An expression of the grammar, no larger or deeper than later stages (printing,
    lowering, simplifying, all recursive) can take."""
    try:
        body = parse(text, scope)
    except GrammarError as e:
        raise GrammarError(f"{what}: {e.message}", line=line) from None
    except RecursionError:  # the parser recurses once per nesting level
        raise GrammarError(f"{what}: expression nested too deeply", line=line) from None
    size, depth = _tree_size_and_depth(body)
    if size > MAX_EXPRESSION_NODES:
        raise GrammarError(f"{what}: expression of {size} nodes, definitions expanded "
                           f"(at most {MAX_EXPRESSION_NODES})", line=line)
    if depth > MAX_EXPRESSION_DEPTH:
        raise GrammarError(f"{what}: expression nested {depth} levels deep (at most {MAX_EXPRESSION_DEPTH})",
                           line=line)
    from grammar.symbolic import undefined  # sympy: loaded with the first expression checked

    try:
        reason = undefined(body)
    except GrammarError as e:  # its numbers grow too large
        raise GrammarError(f"{what}: {e.message}", line=line) from None
    if reason:
        raise GrammarError(f"{what}: {_cut(text)} {reason}", line=line)
    return body


def _derivation_nesting(text: str) -> int | None:
    """How deeply a derivation's parentheses nest, or None if they do not balance."""
    depth = deepest = 0
    for ch in text:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return None
    return deepest if depth == 0 else None


def _name_from_file(shown: str) -> str:
    """The name of a grammar file that gives none: its file name, made an identifier."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", os.path.splitext(os.path.basename(shown))[0]).strip("_")
    stem = stem[:MAX_NAME]
    return stem if identifier_problem(stem) is None else "grammar"


# --------------------------------------------------------------------------- validation
def _build(data: dict, shown: str, path: str | None) -> Grammar:
    """A grammar from its parsed YAML, each section checked in file order with the line of
    any error. Long because it is a checklist of the sections, read top to bottom."""
    unknown = next((k for k in data if k not in TOP_LEVEL_KEYS), None)
    if unknown is not None:
        raise GrammarError(f"unknown section {_shown(unknown)} (sections: {', '.join(sorted(TOP_LEVEL_KEYS))})",
                           line=_line(data, unknown))
    for required in ("start", "nonterminals"):
        if required not in data:
            raise GrammarError(f"missing required section {required!r}", line=1)
    name = (_name(data["name"], "grammar name", _line(data, "name")) if data.get("name") is not None
            else _name_from_file(shown))
    description = _text(data.get("description"), "description", _line(data, "description")).strip()

    terminals = _build_terminals(data)
    primitives = _build_primitives(data)
    constants = _build_constants(data.get("constants"), _line(data, "constants"))

    raw_nts = data["nonterminals"]
    if not isinstance(raw_nts, dict) or not raw_nts:
        raise GrammarError("'nonterminals' must be a non-empty mapping", line=_line(data, "nonterminals"))
    _as_mapping(raw_nts, "nonterminals", _line(data, "nonterminals"))
    nt_params = {_nonterminal_name(n, raw_nts, constants): _nonterminal_params(n, s, _line(raw_nts, n))
                 for n, s in raw_nts.items()}

    start = data["start"]
    if not isinstance(start, str) or start not in nt_params:
        raise GrammarError(f"start symbol {_shown(start)} is not a nonterminal", line=_line(data, "start"))
    if nt_params[start]:
        raise GrammarError(f"type mismatch: start symbol {start} must be a scalar (no params)",
                           line=_line(data, "start"))

    arity = {k: len(v) for k, v in nt_params.items()}
    definitions: dict[str, Expr] = {}
    raw_defs = _as_mapping(data.get("definitions"), "definitions", _line(data, "definitions"))
    for def_name, text in raw_defs.items():
        line = _line(raw_defs, def_name)
        _name(def_name, "definition name", line)
        if def_name in TERMINALS or def_name in constants or def_name in nt_params or def_name in PRIMITIVES:
            raise GrammarError(f"definition {def_name!r} clashes with a terminal, constant, nonterminal or "
                               "primitive", line=line)
        scope = Scope(terminals=terminals, constants=tuple(constants), aliases=dict(definitions),
                      nonterminals=arity, primitives=primitives)
        text = _expression_text(text, f"definition {def_name}", line)
        definitions[def_name] = _parse_body(text, scope, f"definition {def_name}", line)

    nonterminals: dict[str, Nonterminal] = {}
    for nt_name, spec in raw_nts.items():
        nonterminals[nt_name] = _build_nonterminal(nt_name, spec, raw_nts, nt_params, arity, terminals,
                                                   constants, definitions, primitives)

    min_depth = _check_structure(start, nonterminals)
    limits = _build_limits(data.get("limits"), _line(data, "limits"))
    forbid = _build_constraints(data.get("constraints"), _line(data, "constraints"))
    seeds, seed_lines = _build_seeds(data.get("seeds"), _line(data, "seeds"), limits)
    return Grammar(
        name=name, path=path, description=description, start=start,
        terminals=terminals, primitives=primitives, constants=constants, definitions=definitions,
        nonterminals=nonterminals, limits=limits, forbid_nesting=forbid,
        seeds=seeds, min_depth=min_depth, seed_lines=seed_lines,
    )


def _build_terminals(data: dict) -> tuple[str, ...]:
    raw = _as_list(data.get("terminals", list(TERMINALS)), "terminals", _line(data, "terminals"))
    for t, line in zip(raw, _item_lines(raw, _line(data, "terminals"))):
        if not isinstance(t, str) or t not in TERMINALS:
            raise GrammarError(f"unknown terminal {_shown(t)} (terminals: {', '.join(TERMINALS)})", line=line)
    return tuple(dict.fromkeys(raw))


def _build_primitives(data: dict) -> tuple[str, ...]:
    raw = _as_list(data.get("primitives"), "primitives", _line(data, "primitives"))
    for p, line in zip(raw, _item_lines(raw, _line(data, "primitives"))):
        if not isinstance(p, str) or p not in PRIMITIVES:
            raise GrammarError(f"unknown primitive {_shown(p)} (primitives: {', '.join(sorted(PRIMITIVES))})",
                               line=line)
    return tuple(dict.fromkeys(list(ARITHMETIC) + raw))


def _nonterminal_name(name, raw_nts: dict, constants: dict) -> str:
    line = _line(raw_nts, name)
    _name(name, "nonterminal name", line)
    if name in TERMINALS or name in constants or name in PRIMITIVES:
        raise GrammarError(f"nonterminal {name!r} clashes with a terminal, constant or primitive", line=line)
    return name


def _nonterminal_params(name: str, spec, line) -> tuple[str, ...]:
    if not isinstance(spec, dict):
        raise GrammarError(f"nonterminal {name} must be a mapping with 'productions'", line=line)
    raw = _as_list(spec.get("params"), f"{name}.params", line, most=MAX_PARAMS)
    params = tuple(_name(p, f"parameter of {name}", line) for p in raw)
    if len(set(params)) != len(params):
        raise GrammarError(f"nonterminal {name}: repeated parameter name", line=line)
    return params


def _build_constants(raw, line) -> dict[str, Constant]:
    raw = _as_mapping(raw, "constants", line)
    return {name: _build_constant(name, spec, _line(raw, name)) for name, spec in raw.items()}


def _build_constant(name, spec, line) -> Constant:
    _name(name, "constant name", line, constant_name_problem)
    if not isinstance(spec, dict):
        raise GrammarError(f"constant {name} must be a mapping with default, low, high", line=line)
    _no_unknown(spec, {"default", "low", "high", "scale", "doc"}, f"constant {name}", line)
    for key in ("low", "high"):
        if key not in spec:
            raise GrammarError(f"constant {name}: missing {key!r}", line=line)
    low, high = (_number(spec[k], f"constant {name}: {k}", line) for k in ("low", "high"))
    default = _number(spec["default"], f"constant {name}: default", line) if "default" in spec else None
    if low >= high:
        raise GrammarError(f"constant {name}: inverted or empty bounds (low {low} >= high {high})", line=line)
    if not math.isfinite(high - low):
        raise GrammarError(f"constant {name}: bounds [{low}, {high}] are too far apart", line=line)
    default = (low + high) / 2 if default is None else default
    if not low <= default <= high:
        raise GrammarError(f"constant {name}: default {default} outside [{low}, {high}]", line=line)
    scale = spec.get("scale", "linear")
    if scale not in ("linear", "log"):
        raise GrammarError(f"constant {name}: scale must be 'linear' or 'log', not {_shown(scale)}", line=line)
    if scale == "log" and low <= 0:
        raise GrammarError(f"constant {name}: a log scale needs low > 0", line=line)
    return Constant(name, default, low, high, scale, _text(spec.get("doc"), f"constant {name}: doc", line))


def _build_nonterminal(name, spec, raw_nts, nt_params, arity, terminals, constants, definitions,
                       primitives) -> Nonterminal:
    """One nonterminal and its productions, each checked (keys, parameters, expressions,
    the increasing-order constraint) with its line."""
    line = _line(raw_nts, name)
    _no_unknown(spec, {"params", "productions", "increasing", "doc"}, f"nonterminal {name}", line)
    params = nt_params[name]
    prods_raw = spec.get("productions")
    if not isinstance(prods_raw, list) or not prods_raw:
        raise GrammarError(f"nonterminal {name} needs a non-empty list of productions", line=line)
    _as_list(prods_raw, f"{name}.productions", line)
    scope = Scope(terminals=terminals, constants=tuple(constants), aliases=definitions,
                  params=params, nonterminals=arity, primitives=primitives)
    productions: list[Production] = []
    for i, (raw, pl) in enumerate(zip(prods_raw, _item_lines(prods_raw, line))):
        prod = _build_production(name, i, raw, pl, scope)
        if any(p.label == prod.label for p in productions):
            raise GrammarError(f"nonterminal {name}: duplicate production name {prod.label!r}", line=pl)
        productions.append(prod)
    increasing = _build_increasing(name, spec["increasing"], params, line) if "increasing" in spec else None
    doc = _text(spec.get("doc"), f"nonterminal {name}: doc", _line(spec, "doc") or line)
    return Nonterminal(name, params, tuple(productions), increasing, doc, line)


def _build_production(nt_name: str, i: int, raw, line, scope: Scope) -> Production:
    """The i-th production of a nonterminal: an expression, or a mapping with name, expr,
    weight and doc."""
    if isinstance(raw, dict):
        _no_unknown(raw, {"name", "expr", "weight", "doc"}, f"production of {nt_name}", line)
        if "expr" not in raw:
            raise GrammarError(f"production of {nt_name} needs 'expr'", line=line)
        label = _name(raw.get("name", f"p{i}"), f"production name of {nt_name}", line)
        _text(raw.get("doc"), f"production {nt_name}.{label}: doc", line)
        weight = _number(raw.get("weight", 1.0), f"production {nt_name}.{label}: weight", line)
        if not 0 < weight <= MAX_WEIGHT:
            raise GrammarError(f"production {nt_name}.{label}: weight must be positive and at most "
                               f"{MAX_WEIGHT:g}, not {weight:g}", line=line)
        raw = raw["expr"]
    else:
        label, weight = f"p{i}", 1.0
    what = f"production {nt_name}.{label}"
    text = _expression_text(raw, what, line)
    body = _parse_body(text, scope, what, line)
    children: dict[str, str] = {}
    for node in body.walk():
        if node.op == "nt":
            children.setdefault(node.name, node.name.split(".")[0])
    return Production(label, text, body, tuple(children.items()), weight, line)


def _build_increasing(name: str, inc, params: tuple[str, ...], line) -> tuple[float, float]:
    if len(params) != 1:
        raise GrammarError(f"nonterminal {name}: 'increasing' needs exactly one parameter", line=line)
    if isinstance(inc, dict):
        _no_unknown(inc, {"domain"}, f"nonterminal {name}: increasing", line)
    domain = inc.get("domain") if isinstance(inc, dict) else None
    if not (isinstance(domain, list) and len(domain) == 2):
        raise GrammarError(f"nonterminal {name}: 'increasing' needs domain: [low, high]", line=line)
    lo, hi = (_number(v, f"nonterminal {name}: 'increasing' domain", line) for v in domain)
    if lo >= hi:
        raise GrammarError(f"nonterminal {name}: inverted 'increasing' domain [{lo}, {hi}]", line=line)
    if not math.isfinite(hi - lo):
        raise GrammarError(f"nonterminal {name}: 'increasing' domain [{lo}, {hi}] is too wide", line=line)
    return lo, hi


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
    raw = _as_mapping(raw, "limits", line)
    _no_unknown(raw, {"max_depth", "max_size"}, "limits", line)
    out = {}
    for key, most in (("max_depth", MAX_LIMIT_DEPTH), ("max_size", MAX_LIMIT_SIZE)):
        if key in raw:
            v = raw[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= most:
                raise GrammarError(f"limits.{key} must be an integer from 1 to {most}, not {_shown(v)}",
                                   line=_line(raw, key))
            out[key] = v
    return Limits(**out)


def _build_constraints(raw, line) -> tuple[tuple[str, str], ...]:
    raw = _as_mapping(raw, "constraints", line)
    _no_unknown(raw, {"forbid_nesting"}, "constraints", line)
    pairs = []
    for pair in _as_list(raw.get("forbid_nesting"), "forbid_nesting", line):
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(p, str) and p in PRIMITIVES for p in pair)):
            raise GrammarError(f"forbid_nesting entries are [outer, inner] primitive pairs, got {_shown(pair)}",
                               line=_line(raw, "forbid_nesting"))
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _build_seeds(raw, line, limits: Limits) -> tuple[dict[str, str], dict[str, int | None]]:
    """The seeds (zoo name: derivation text) and their lines. ``grammar.load`` parses each
    against the grammar; here each is bounded in length and nesting, as that parser recurses."""
    raw = _as_mapping(raw, "seeds", line)
    seeds = {}
    for name, text in raw.items():
        sl = _line(raw, name)
        _name(name, "seed name", sl)
        if not isinstance(text, str):
            raise GrammarError(f"seed {name} must be a derivation such as mpo(Link=logistic), not {_shown(text)}",
                               line=sl)
        if len(text) > MAX_EXPRESSION:
            raise GrammarError(f"seed {name} has {len(text)} characters (at most {MAX_EXPRESSION})", line=sl)
        _printable(text, f"seed {name}", sl)
        nesting = _derivation_nesting(text)
        if nesting is None:
            raise GrammarError(f"seed {name}: unbalanced parentheses", line=sl)
        if nesting >= limits.max_depth:
            raise GrammarError(f"seed {name} is deeper than limits.max_depth ({limits.max_depth})", line=sl)
        seeds[name] = text
    return seeds, {name: _line(raw, name) for name in seeds}


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
