"""Export of a loss as a standalone Python module (JAX or PyTorch), or a TRL trainer.

The module imports only ``jax.numpy`` or ``torch`` and defines::

    loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
         reference_rejected_logps, *, chosen_lengths=None, rejected_lengths=None,
         progress=0.0, <constants with their defaults>) -> per-example losses

It computes the expression tree that was scored, primitive by primitive in the same
stable forms (not the simplified closed form, which is algebraically equal but may be
numerically worse); subexpressions used more than once become named locals. The closed
form (text and LaTeX), the constants and the provenance are in the docstring.
"""

from __future__ import annotations

import datetime
import textwrap
from typing import Mapping, Sequence

from grammar import symbolic
from grammar.expr import Expr, to_text
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
                return f"_scalar({_num(n.value)}, logp_w)"
            return _num(n.value)
        prim = PRIMITIVES[n.op]
        if prim.helper:
            helpers.add(prim.helper)
        args = [render(a, as_function_arg=not prim.infix) for a in n.args]
        return prim.expr[fmt].format(*args)

    for n in nodes:
        if n.op not in ("var", "const", "num") and uses[n] > 1 and n is not expr:
            name = f"v{len(names)}"
            lines.append(f"{name} = {render(n)}")
            names[n] = name
    return lines, render(expr), helpers


def _docstring(expr: Expr, constants: Mapping[str, float], title: str, provenance: str,
               parts: Sequence[str] | None = None) -> str:
    form = symbolic.text(expr)
    latex = symbolic.latex(expr)
    const_lines = "\n".join(f"    {k} = {v!r}" for k, v in constants.items()) or "    (none)"
    part_lines = ("Parts (in the grammar's terms):\n\n" + "\n".join(f"    {line}" for line in parts) + "\n\n"
                  if parts else "")
    return (
        f"{title}\n\n"
        f"Closed form (r_y = logp_y - ref_y, m_y = logp_y / len_y, t = progress):\n\n"
        f"    loss = {form}\n\n"
        f"{part_lines}"
        f"LaTeX: {latex}\n\n"
        f"Expression as scored: {to_text(expr)}\n\n"
        f"Constants (keyword arguments, defaults as discovered):\n{const_lines}\n\n"
        f"Provenance: {provenance}\n"
    )


def export_module(expr: Expr, constants: Mapping[str, float], fmt: str = "jax",
                  title: str = "A preference-optimisation loss.", provenance: str = "",
                  parts: Sequence[str] | None = None) -> str:
    """Source of a standalone module computing ``expr`` (see the module docstring). Long
    because it is a template: the module's sections in the order they are written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    missing = [c for c in expr.constants if c not in constants]
    if missing:
        raise ValueError(f"no value for constant(s) {missing}")
    constants = {k: float(constants[k]) for k in expr.constants}
    lines, result, helpers = _body(expr, fmt)
    used = set(expr.terminals)
    doc = _docstring(expr, constants, title, provenance or "exported by mpo-discover", parts)
    kw = "".join(f", {k}={v!r}" for k, v in constants.items())
    sig = (
        "def loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,\n"
        "         reference_rejected_logps, *, chosen_lengths=None, rejected_lengths=None,\n"
        f"         progress=0.0{kw}):"
    )
    if fmt == "jax":
        header = "import jax.numpy as jnp\n"
        prep = ["logp_w = jnp.asarray(policy_chosen_logps, jnp.float32)"]
        conv = "jnp.asarray({src}, jnp.float32)"
        ones = "jnp.ones_like(logp_w)"
        finish = "return jnp.broadcast_to({r}, logp_w.shape)"
        const_prep = [f"{k} = jnp.asarray({k}, jnp.float32)" for k in constants]
    else:
        header = "import torch\n"
        prep = ["logp_w = torch.as_tensor(policy_chosen_logps)",
                "if not torch.is_floating_point(logp_w):",
                "    logp_w = logp_w.float()"]
        conv = "torch.as_tensor({src}, dtype=logp_w.dtype, device=logp_w.device)"
        ones = "torch.ones_like(logp_w)"
        finish = "return torch.broadcast_to({r}, logp_w.shape)"
        const_prep = [f"{k} = _scalar({k}, logp_w)" for k in constants]
        helpers.add("_scalar")
    for term in ("logp_l", "ref_w", "ref_l"):
        if term in used:
            prep.append(f"{term} = {conv.format(src=ARGUMENTS[term])}")
    for term in ("len_w", "len_l"):
        if term in used:
            src = ARGUMENTS[term]
            prep.append(f"{term} = {ones} if {src} is None else {conv.format(src=src)}")
    if "t" in used:
        prep.append(f"t = {conv.format(src='progress')}")
    body = prep + const_prep + lines + [finish.format(r=result)]
    helper_src = []
    for h in sorted(helpers):
        if h == "_scalar":
            helper_src.append(
                "def _scalar(value, like):\n"
                "    return torch.as_tensor(value, dtype=like.dtype, device=like.device)\n")
        else:
            helper_src.append(SOURCE_HELPERS[fmt][h])
    stamp = datetime.date.today().isoformat()
    out = [
        f'r"""{doc}"""\n',
        f"# Generated by mpo-discover on {stamp}. Standalone: needs only "
        f"{'jax' if fmt == 'jax' else 'torch'}.\n",
        header,
        f"CONSTANTS = {constants!r}\n",
        f"EXPRESSION = {to_text(expr)!r}\n\n",
        *(h + "\n" for h in helper_src),
        sig + "\n"
        + textwrap.indent('"""Per-example losses; logps are summed log-likelihoods of each response."""\n'
                          + "\n".join(body) + "\n", "    "),
    ]
    return "\n".join(part.rstrip("\n") + "\n" for part in out)
