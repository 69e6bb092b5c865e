"""Which names a grammar may give its constants, productions and itself.

A constant becomes a keyword argument of every exported loss, so its name must be a Python
identifier that shadows nothing the exported module uses: no keyword, builtin, module
(``jnp``, ``torch``), argument of ``loss`` or name the module defines. Production names
appear in derivations (``Link=logistic``) and grammar names in file names and provenance,
so they are plain identifiers too.
"""

from __future__ import annotations

import builtins
import keyword

from grammar.primitives import PRIMITIVES, TERMINALS

MAX_NAME = 64

# Names an exported module (JAX, PyTorch or TRL) binds or reads besides the constants.
EXPORT_NAMES = frozenset({
    "policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps",
    "chosen_lengths", "rejected_lengths", "progress",
    "jax", "jnp", "np", "torch", "trl", "math", "copy", "DPOTrainer", "DiscoveredLossDPOTrainer",
    "loss", "CONSTANTS", "EXPRESSION", "INPUTS", "LATEX", "TRL_VERIFIED", "TRL_ONLY_SETTINGS", "TRL_LOSS_SETTINGS",
})


# Closed forms are written in these (r_y = logp_y - ref_y, m_y = logp_y / len_y): a constant of
# that name would print as the alias.
CLOSED_FORM_ALIASES = frozenset({"r_w", "r_l", "m_w", "m_l"})


def identifier_problem(name: object) -> str | None:
    """Why ``name`` is not a plain identifier (letters, digits, underscores, not starting with a
    digit, at most MAX_NAME characters, ASCII), or None when it is one."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    if not (name.isascii() and name.isidentifier()):
        return "must be an ASCII identifier (letters, digits and underscores, not starting with a digit)"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    return None


def constant_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a constant (see the module docstring), or None."""
    problem = identifier_problem(name)
    if problem:
        return problem
    assert isinstance(name, str)
    if name.startswith("_"):
        return "starts with an underscore (reserved for the exported code's own names)"
    if name in TERMINALS or name in PRIMITIVES:
        return "clashes with a terminal or primitive"
    if name in CLOSED_FORM_ALIASES:
        return "is how closed forms write a log-ratio or a mean log-likelihood"
    if name in EXPORT_NAMES or hasattr(builtins, name):
        return "would shadow a name that exported losses use"
    return None
