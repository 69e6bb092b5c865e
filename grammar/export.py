"""Export of a loss as a standalone Python module (JAX or PyTorch).

The module imports only ``jax.numpy`` or ``torch`` and defines::

    loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
         reference_rejected_logps, *, <chosen_lengths, rejected_lengths, progress: those the
         loss uses, required>, <constants with their discovered defaults>) -> per-example losses

It computes the expression tree that was scored, primitive by primitive in the same stable
forms (not the simplified closed form, which is algebraically equal but may be numerically
worse), after removing what cannot change its value: terms multiplied by zero, additions of
zero, products by one and arithmetic on literals (so a constant that only scaled a dead term
leaves the signature). Subexpressions used more than once become locals ``_s0, _s1, ...``,
which no constant can shadow. The short closed form, the derivation and the provenance are
in the docstring; ``LATEX`` and ``EXPRESSION`` hold the LaTeX form and the tree exported (the
scored tree without the terms removed above).

Everything that reaches the source from a run or a grammar file (names, provenance, parts)
is data: it is escaped into string literals, and the finished source is parsed back and
refused unless it holds exactly the intended docstring and definitions.
"""

from __future__ import annotations

import ast
import datetime
import math
import textwrap
from typing import Iterable, Mapping, Sequence

import numpy as np

from grammar import symbolic
from grammar.errors import GrammarError
from grammar.expr import Expr, to_text
from grammar.identifiers import constant_name_problem
from grammar.primitives import PRIMITIVES, SOURCE_HELPERS

FORMATS = ("jax", "torch")

ARGUMENTS = {
    "logp_w": "policy_chosen_logps",
    "logp_l": "policy_rejected_logps",
    "ref_w": "reference_chosen_logps",
    "ref_l": "reference_rejected_logps",
    "len_w": "chosen_lengths",
    "len_l": "rejected_lengths",
    "t": "progress",
}
# The keyword-only inputs, in signature order: present (and required) only when the loss uses them.
OPTIONAL_INPUTS = ("len_w", "len_l", "t")
IMPORTS = {"jax": "jax.numpy", "torch": "torch"}


# --------------------------------------------------------------------------- simplification
def _is_num(e: Expr, value: float | None = None) -> bool:
    return e.op == "num" and (value is None or e.value == value)


def prune(expr: Expr) -> Expr:
    """``expr`` without what cannot change its value where it is finite: x * 0 -> 0, x + 0 -> x,
    x - 0 -> x, 0 - x -> -x, x * 1 -> x, x / 1 -> x, 0 / x -> 0, --x -> x, and primitives of
    literals evaluated (when finite). Bottom-up over the DAG, so shared subtrees stay shared."""
    memo: dict[Expr, Expr] = {}
    for node in expr.unique_nodes():
        if not node.args:
            memo[node] = node
            continue
        args = tuple(memo[a] for a in node.args)
        memo[node] = _simplify(node.op, args) or Expr(node.op, args, node.name, node.value)
    return memo[expr]


def _simplify(op: str, args: tuple[Expr, ...]) -> Expr | None:
    if all(_is_num(a) for a in args):
        # in float32, as the engine computes literals, so the folded value is the scored one
        value = float(PRIMITIVES[op].jax(*[np.float32(a.value) for a in args]))
        return Expr.num(value) if math.isfinite(value) else None
    if op == "mul" and (_is_num(args[0], 0.0) or _is_num(args[1], 0.0)):
        return Expr.num(0.0)
    if op == "mul" and _is_num(args[0], 1.0):
        return args[1]
    if op in ("mul", "div") and _is_num(args[1], 1.0):
        return args[0]
    if op == "div" and _is_num(args[0], 0.0):
        return Expr.num(0.0)
    if op == "add" and _is_num(args[0], 0.0):
        return args[1]
    if op in ("add", "sub") and _is_num(args[1], 0.0):
        return args[0]
    if op == "sub" and _is_num(args[0], 0.0):
        return Expr.call("neg", args[1])
    if op == "neg" and args[0].op == "neg":
        return args[0].args[0]
    return None


# --------------------------------------------------------------------------- checks
def check_constants(expr: Expr, constants: Mapping[str, float]) -> dict[str, float]:
    """The constants ``expr`` uses, as floats: each named so that it shadows nothing in the
    exported module and finite. Raises :class:`GrammarError` (a user error) otherwise."""
    missing = [c for c in expr.constants if c not in constants]
    if missing:
        raise GrammarError(f"no value for constant(s) {', '.join(missing)}")
    out = {}
    for name in expr.constants:
        problem = constant_name_problem(name)
        if problem:
            raise GrammarError(f"cannot export a constant named {name!r}: the name {problem}")
        try:
            value = float(constants[name])
        except (TypeError, ValueError):
            raise GrammarError(f"constant {name} is not a number: {constants[name]!r}") from None
        if not math.isfinite(value):
            raise GrammarError(f"cannot export constant {name} = {value}: not finite")
        out[name] = value
    return out


def printable(text: str, one_line: bool = False) -> str:
    """``text`` with control characters shown as escapes (\\x1b, ...), so that text from a run
    or grammar file cannot drive a terminal or an editor; ``one_line`` escapes newlines too."""
    keep = "" if one_line else "\n"
    return "".join(c if c.isprintable() or c in keep else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


def docstring_literal(doc: str) -> str:
    """``doc`` as a triple-quoted Python literal that evaluates back to exactly ``doc``."""
    if "\\" not in doc and '"""' not in doc and not doc.endswith('"') and "\r" not in doc:
        return f'"""{doc}"""'
    escaped = doc.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r")
    return f'"""{escaped}"""'


def check_source(source: str, doc: str, imports: Iterable[str], names: Iterable[str]) -> None:
    """Refuses generated ``source`` unless it parses, its docstring is exactly ``doc``, and its
    other top-level statements are imports of ``imports``, definitions of ``names`` and
    assignments of literals to ``names``: nothing a string from a run or grammar could add."""
    imports, names = set(imports), set(names)
    try:
        tree = ast.parse(source)
    except SyntaxError as e:  # a bug in the templates, or an escape that failed
        raise GrammarError(f"refusing to write an export that does not parse: {e.msg} (line {e.lineno})") from None
    if ast.get_docstring(tree, clean=False) != doc:
        raise GrammarError("refusing to write an export whose docstring is not the intended text")

    def bad(what: str) -> GrammarError:
        return GrammarError(f"refusing to write an export with an unexpected top-level statement: {what}")

    for node in tree.body[1:]:
        if isinstance(node, ast.Import):
            if any(a.name not in imports for a in node.names):
                raise bad(f"import of {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.ImportFrom):
            if node.module not in imports:
                raise bad(f"import from {node.module}")
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            if node.name not in names:
                raise bad(f"definition of {node.name}")
            if node.decorator_list:
                raise bad(f"a decorator of {node.name}")
            if isinstance(node, ast.FunctionDef):
                for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                    try:
                        ast.literal_eval(default)
                    except ValueError:
                        raise bad(f"a computed default of {node.name}") from None
        elif isinstance(node, ast.Assign):
            targets = [t.id if isinstance(t, ast.Name) else None for t in node.targets]
            if any(t not in names for t in targets):
                raise bad("an assignment")
            try:
                ast.literal_eval(node.value)
            except ValueError:
                raise bad(f"a computed value for {targets[0]}") from None
        else:
            raise bad(type(node).__name__)


# --------------------------------------------------------------------------- source
def _num(v: float) -> str:
    return repr(float(v))


def _body(expr: Expr, fmt: str) -> tuple[list[str], str, set[str]]:
    """Statements, the result expression and the helpers used."""
    nodes = expr.unique_nodes()
    uses: dict[Expr, int] = {n: 0 for n in nodes}
    for n in nodes:
        for a in n.args:
            uses[a] += 1
    names: dict[Expr, str] = {}
    lines: list[str] = []
    helpers: set[str] = set()

    def render(n: Expr, as_function_arg: bool = False) -> str:
        if n in names:
            return names[n]
        if n.op in ("var", "const"):
            return n.name
        if n.op == "num":
            if fmt == "torch" and as_function_arg:
                helpers.add("_scalar")
                return f"_scalar({_num(n.value)}, logp_w)"
            return _num(n.value)
        prim = PRIMITIVES[n.op]
        if prim.helper:
            helpers.add(prim.helper)
        args = [render(a, as_function_arg=not prim.infix) for a in n.args]
        return prim.expr[fmt].format(*args)

    for n in nodes:
        if n.op not in ("var", "const", "num") and uses[n] > 1 and n is not expr:
            name = f"_s{len(names)}"
            lines.append(f"{name} = {render(n)}")
            names[n] = name
    return lines, render(expr), helpers


def inputs_of(expr: Expr) -> tuple[str, ...]:
    """The keyword-only inputs (``chosen_lengths``, ...) that the exported ``loss`` requires."""
    used = set(expr.terminals)
    return tuple(ARGUMENTS[t] for t in OPTIONAL_INPUTS if t in used)


def definitions(expr: Expr, constants: Mapping[str, float], fmt: str) -> tuple[str, set[str]]:
    """The module's definitions after its docstring and import (helpers, ``CONSTANTS``,
    ``INPUTS``, ``EXPRESSION``, ``LATEX`` and ``loss``) for a pruned ``expr`` and checked
    ``constants``; and the top-level names they define."""
    lines, result, helpers = _body(expr, fmt)
    used = set(expr.terminals)
    inputs = inputs_of(expr)
    kw = "".join(f", {k}={v!r}" for k, v in constants.items())
    sig = ("def loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,\n"
           "         reference_rejected_logps" + (", *, " + ", ".join(inputs) if inputs else "")
           + (", *" if kw and not inputs else "") + kw + "):")
    if fmt == "jax":
        prep = ["logp_w = jnp.asarray(policy_chosen_logps)",
                "if not jnp.issubdtype(logp_w.dtype, jnp.floating):",
                "    logp_w = logp_w.astype(jnp.float32)"]
        conv = "jnp.asarray({src}, logp_w.dtype)"
        shapes = "jnp.broadcast_shapes({})"
    else:
        prep = ["logp_w = torch.as_tensor(policy_chosen_logps)",
                "if not torch.is_floating_point(logp_w):",
                "    logp_w = logp_w.float()"]
        conv = "torch.as_tensor({src}, dtype=logp_w.dtype, device=logp_w.device)"
        shapes = "torch.broadcast_shapes({})"
    for term in ("logp_l", "ref_w", "ref_l", "len_w", "len_l", "t"):
        if term in used:
            prep.append(f"{term} = {conv.format(src=ARGUMENTS[term])}")
    const_prep = [f"{k} = {conv.format(src=k)}" for k in constants]
    # Per-example losses in the shape of the four log-probabilities and of the inputs and
    # constants the loss uses, broadcast together (a scalar log-probability with a vector of
    # lengths gives a vector; a loss that ignores an input still gives one value per example)
    lib = "jnp" if fmt == "jax" else "torch"
    unused_shape = "jnp.shape({})" if fmt == "jax" else "torch.as_tensor({}).shape"
    shaped = ["logp_w.shape"]
    shaped += [f"{t}.shape" if t in used else unused_shape.format(ARGUMENTS[t]) for t in ("logp_l", "ref_w", "ref_l")]
    shaped += [f"{t}.shape" for t in ("len_w", "len_l", "t") if t in used] + [f"{k}.shape" for k in constants]
    finish = (f"_shape = {shapes.format(', '.join(shaped))}\n"
              f"return {lib}.broadcast_to({{r}}, _shape)")
    if expr.op == "num":  # a bare number: a tensor of the inputs' dtype (torch.broadcast_to takes tensors only)
        if fmt == "torch":
            result = f"_scalar({result}, logp_w)"
            helpers.add("_scalar")
        else:
            result = f"jnp.asarray({result}, logp_w.dtype)"
    body = prep + const_prep + lines + [finish.format(r=result)]
    helper_src = []
    for h in sorted(helpers):
        if h == "_scalar":
            helper_src.append(
                "def _scalar(value, like):\n"
                "    return torch.as_tensor(value, dtype=like.dtype, device=like.device)\n")
        else:
            helper_src.append(SOURCE_HELPERS[fmt][h])
    needs = (" and " + ", ".join(inputs) if inputs else "")
    out = [
        f"CONSTANTS = {dict(constants)!r}\n",
        f"INPUTS = {inputs!r}\n",
        f"EXPRESSION = {to_text(expr)!r}\n",
        f"LATEX = {symbolic.latex(expr)!r}\n\n",
        *(h + "\n" for h in helper_src),
        sig + "\n"
        + textwrap.indent(f'"""Per-example losses from the summed log-probabilities{needs}."""\n'
                          + "\n".join(body) + "\n", "    "),
    ]
    names = {"CONSTANTS", "INPUTS", "EXPRESSION", "LATEX", "loss"} | {
        h.split("(")[0].removeprefix("def ") for h in helper_src}
    return "\n".join(part.rstrip("\n") + "\n" for part in out), names


def docstring(expr: Expr, constants: Mapping[str, float], title: str, provenance: str,
              derivation: str | None = None, parts: Sequence[str] | None = None) -> str:
    """The module's docstring: title, short closed form, derivation and parts, inputs,
    constants and provenance (each untrusted string with its control characters escaped)."""
    form = "\n".join(f"    {line}" for line in symbolic.compact(expr))
    inputs = inputs_of(expr)
    const_lines = "\n".join(f"    {k} = {v!r}" for k, v in constants.items()) or "    (none)"
    sections = [
        printable(title, one_line=True),
        f"Closed form (r_y = logp_y - ref_y, m_y = logp_y / len_y, t = progress):\n\n{form}",
    ]
    if derivation:
        sections.append(f"Derivation: {printable(derivation, one_line=True)}")
    if parts:
        sections.append("Parts (in the grammar's terms):\n\n"
                        + "\n".join(f"    {printable(line, one_line=True)}" for line in parts))
    sections.append("Inputs besides the four log-probabilities: "
                    + (", ".join(inputs) + " (required: the loss uses them)" if inputs else "none"))
    sections.append(f"Constants (keyword arguments, defaults as discovered):\n{const_lines}")
    sections.append(f"Provenance: {printable(provenance or 'exported by mpo-discover', one_line=True)}")
    sections.append("LATEX holds the closed form in LaTeX; EXPRESSION the tree computed here (the scored "
                    "tree without terms that cannot change its value).")
    return "\n\n".join(sections) + "\n"


def prepare(expr: Expr, constants: Mapping[str, float]) -> tuple[Expr, dict[str, float]]:
    """``expr`` pruned and the constants it still uses, checked (see :func:`check_constants`)."""
    check_constants(expr, constants)  # every constant of the scored tree, before pruning hides one
    pruned = prune(expr)
    return pruned, check_constants(pruned, constants)


def export_module(expr: Expr, constants: Mapping[str, float], fmt: str = "jax",
                  title: str = "A preference-optimisation loss.", provenance: str = "",
                  parts: Sequence[str] | None = None, derivation: str | None = None) -> str:
    """Source of a standalone module computing ``expr`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    expr, constants = prepare(expr, constants)
    doc = docstring(expr, constants, title, provenance, derivation, parts)
    defs, names = definitions(expr, constants, fmt)
    header = "import jax.numpy as jnp\n" if fmt == "jax" else "import torch\n"
    source = (docstring_literal(doc) + "\n\n"
              + f"# Generated by mpo-discover on {datetime.date.today().isoformat()}. Standalone: needs only "
              + f"{'jax' if fmt == 'jax' else 'torch'}.\n"
              + header + "\n" + defs)
    check_source(source, doc, [IMPORTS[fmt]], names)
    return source
