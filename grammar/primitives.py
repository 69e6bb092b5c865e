"""The primitives of the loss language: each is one entry here, with all of its views.

Every primitive has

- a JAX form (``jax``), written in its numerically stable form. The array interpreter
  and the direct lowering both call it, so they compute the same thing;
- a sympy form (``sympy``) for closed forms and canonicalisation;
- export source (``source['jax']``, ``source['torch']``): a helper function definition
  for a standalone module, computing the same stable form;
- ``safe``: inputs at which the primitive and its gradient are finite. The interpreter
  computes every primitive at every step and selects one; unselected primitives see
  these inputs, so no NaN leaks into gradients from a branch that was not taken.

Stable forms: softplus(x) = logaddexp(x, 0); log_sigmoid(x) = -logaddexp(0, -x);
log1mexp(x) = log(1 - exp(x)) switches between log(-expm1(x)) and log1p(-exp(x)) at
-log 2 (Maechler 2012), with both branches' inputs guarded; x >= 0, which a sequence
whose every token has probability 1 in float32 gives (x = logp / len = 0 exactly), is
taken as -2^-24, the float32 spacing below 1 (log1mexp = -16.6 there, not -inf, and no
gradient flows through the guard). Without it, a log-odds loss of a policy trained that
far has an infinite value or a NaN gradient, and its run fails.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Callable

import sympy


class _ImportedOnUse:
    """A module imported on first attribute access: parsing, printing and simplifying
    losses (the command line, reports) do not import JAX; computing them does."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


jnp = _ImportedOnUse("jax.numpy")


# --------------------------------------------------------------------------- sympy forms
class softplus(sympy.Function):
    """softplus(x) = log(1 + exp(x))."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.log(2)

    def _latex(self, printer):
        return r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0])


class log_sigmoid(sympy.Function):
    """log_sigmoid(x) = log(1 / (1 + exp(-x))) = -softplus(-x)."""

    def fdiff(self, argindex=1):
        return sigmoid(-self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return -sympy.log(1 + sympy.exp(-x))

    def _latex(self, printer):
        return r"\log\sigma\left(%s\right)" % printer._print(self.args[0])


class sigmoid(sympy.Function):
    """sigmoid(x) = 1 / (1 + exp(-x))."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.Rational(1, 2)

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])


class log1mexp(sympy.Function):
    """log1mexp(x) = log(1 - exp(x)), for x < 0 (lowered with a guard at x >= 0: see above)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        return -sympy.exp(x) / (1 - sympy.exp(x))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 - sympy.exp(x))

    def _latex(self, printer):
        return r"\log\left(1 - e^{%s}\right)" % printer._print(self.args[0])


class logaddexp(sympy.Function):
    """logaddexp(x, y) = log(exp(x) + exp(y))."""

    def fdiff(self, argindex=1):
        x, y = self.args
        return sigmoid(x - y) if argindex == 1 else sigmoid(y - x)

    def _eval_rewrite_as_exp(self, x, y, **kwargs):
        return sympy.log(sympy.exp(x) + sympy.exp(y))

    def _latex(self, printer):
        return r"\operatorname{logaddexp}\left(%s, %s\right)" % tuple(printer._print(a) for a in self.args)


SYMPY_FUNCTIONS = {
    "softplus": softplus,
    "log_sigmoid": log_sigmoid,
    "sigmoid": sigmoid,
    "log1mexp": log1mexp,
    "logaddexp": logaddexp,
}


# --------------------------------------------------------------------------- JAX forms
def _softplus(x):
    return jnp.logaddexp(x, 0.0)


def _log_sigmoid(x):
    return -jnp.logaddexp(0.0, -x)


def _sigmoid(x):
    # tanh form: stable at both ends, and the same expression in every export.
    return 0.5 * jnp.tanh(0.5 * x) + 0.5


# log1mexp's input where x >= 0: a probability of 1 in float32 counts as 1 - 2^-24.
LOG1MEXP_EDGE = -(2.0 ** -24)


def _log1mexp(x):
    x = jnp.where(x < 0, x, LOG1MEXP_EDGE)
    small = x > -math.log(2.0)
    a = jnp.where(small, x, -1.0)
    b = jnp.where(small, -1.0, x)
    return jnp.where(small, jnp.log(-jnp.expm1(a)), jnp.log1p(-jnp.exp(b)))


SOURCE_HELPERS = {
    "jax": {
        "softplus": "def softplus(x):\n    return jnp.logaddexp(x, 0.0)\n",
        "log_sigmoid": "def log_sigmoid(x):\n    return -jnp.logaddexp(0.0, -x)\n",
        "sigmoid": "def sigmoid(x):\n    return 0.5 * jnp.tanh(0.5 * x) + 0.5\n",
        "log1mexp": (
            "def log1mexp(x):\n"
            "    \"\"\"log(1 - exp(x)) for x < 0, stable at both ends (Maechler 2012); x >= 0 (a\n"
            "    probability of 1 in float32) counts as -2**-24, so the value stays finite.\"\"\"\n"
            "    x = jnp.where(x < 0, x, -2.0 ** -24)\n"
            "    small = x > -0.6931471805599453\n"
            "    a = jnp.where(small, x, -1.0)\n"
            "    b = jnp.where(small, -1.0, x)\n"
            "    return jnp.where(small, jnp.log(-jnp.expm1(a)), jnp.log1p(-jnp.exp(b)))\n"
        ),
    },
    "torch": {
        "softplus": "def softplus(x):\n    return torch.logaddexp(x, torch.zeros_like(x))\n",
        "log_sigmoid": "def log_sigmoid(x):\n    return -torch.logaddexp(torch.zeros_like(x), -x)\n",
        "sigmoid": "def sigmoid(x):\n    return 0.5 * torch.tanh(0.5 * x) + 0.5\n",
        "log1mexp": (
            "def log1mexp(x):\n"
            "    \"\"\"log(1 - exp(x)) for x < 0, stable at both ends (Maechler 2012); x >= 0 (a\n"
            "    probability of 1 in float32) counts as -2**-24, so the value stays finite.\"\"\"\n"
            "    x = torch.where(x < 0, x, torch.full_like(x, -2.0 ** -24))\n"
            "    small = x > -0.6931471805599453\n"
            "    a = torch.where(small, x, torch.full_like(x, -1.0))\n"
            "    b = torch.where(small, torch.full_like(x, -1.0), x)\n"
            "    return torch.where(small, torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(b)))\n"
        ),
    },
}


@dataclasses.dataclass(frozen=True)
class Primitive:
    """One operation of the language.

    ``infix``: the operator symbol when printed infix (binary arithmetic), else None.
    ``expr``: export templates per format, with ``{0}``/``{1}`` for the arguments.
    ``helper``: name of a helper function the export must define, if any.
    """

    name: str
    arity: int
    jax_form: str | Callable   # the name of a jax.numpy function, or a stable form defined here
    sympy: Callable
    expr: dict
    safe: tuple[float, ...]
    infix: str | None = None
    helper: str | None = None
    doc: str = ""

    @property
    def jax(self) -> Callable:
        """The JAX form (JAX is imported on first use)."""
        return getattr(jnp, self.jax_form) if isinstance(self.jax_form, str) else self.jax_form


def _p(name, arity, jax_fn, sympy_fn, jax_src, torch_src, safe=None, infix=None, helper=None, doc=""):
    return Primitive(name, arity, jax_fn, sympy_fn, {"jax": jax_src, "torch": torch_src},
                     tuple(safe or (0.0,) * arity), infix, helper, doc)


_PRIMITIVES = [
    _p("add", 2, "add", lambda a, b: a + b, "({0} + {1})", "({0} + {1})", infix="+", doc="x + y"),
    _p("sub", 2, "subtract", lambda a, b: a - b, "({0} - {1})", "({0} - {1})", infix="-", doc="x - y"),
    _p("mul", 2, "multiply", lambda a, b: a * b, "({0} * {1})", "({0} * {1})", infix="*", doc="x * y"),
    _p("div", 2, "divide", lambda a, b: a / b, "({0} / {1})", "({0} / {1})", safe=(0.0, 1.0),
       infix="/", doc="x / y"),
    _p("neg", 1, "negative", lambda a: -a, "(-{0})", "(-{0})", doc="-x"),
    _p("square", 1, "square", lambda a: a**2, "({0} ** 2)", "({0} ** 2)", doc="x^2"),
    _p("exp", 1, "exp", sympy.exp, "jnp.exp({0})", "torch.exp({0})", doc="exp(x)"),
    _p("log", 1, "log", sympy.log, "jnp.log({0})", "torch.log({0})", safe=(1.0,), doc="log(x), x > 0"),
    _p("expm1", 1, "expm1", lambda a: sympy.exp(a) - 1, "jnp.expm1({0})", "torch.expm1({0})",
       doc="exp(x) - 1"),
    _p("log1p", 1, "log1p", lambda a: sympy.log(1 + a), "jnp.log1p({0})", "torch.log1p({0})",
       doc="log(1 + x), x > -1"),
    _p("softplus", 1, _softplus, softplus, "softplus({0})", "softplus({0})", helper="softplus",
       doc="log(1 + exp(x))"),
    _p("log_sigmoid", 1, _log_sigmoid, log_sigmoid, "log_sigmoid({0})", "log_sigmoid({0})",
       helper="log_sigmoid", doc="log sigmoid(x) = -softplus(-x)"),
    _p("sigmoid", 1, _sigmoid, sigmoid, "sigmoid({0})", "sigmoid({0})", helper="sigmoid",
       doc="1 / (1 + exp(-x))"),
    _p("log1mexp", 1, _log1mexp, log1mexp, "log1mexp({0})", "log1mexp({0})", safe=(-1.0,),
       helper="log1mexp", doc="log(1 - exp(x)), x < 0 (log-odds of a probability exp(x))"),
    _p("tanh", 1, "tanh", sympy.tanh, "jnp.tanh({0})", "torch.tanh({0})", doc="tanh(x)"),
    _p("abs", 1, "abs", sympy.Abs, "jnp.abs({0})", "torch.abs({0})", doc="|x|"),
    _p("relu", 1, lambda a: jnp.maximum(a, 0.0), lambda a: sympy.Max(a, 0),
       "jnp.maximum({0}, 0.0)", "torch.clamp({0}, min=0.0)", doc="max(x, 0)"),
    _p("max", 2, "maximum", sympy.Max, "jnp.maximum({0}, {1})", "torch.maximum({0}, {1})",
       doc="max(x, y)"),
    _p("min", 2, "minimum", sympy.Min, "jnp.minimum({0}, {1})", "torch.minimum({0}, {1})",
       doc="min(x, y)"),
    _p("logaddexp", 2, "logaddexp", logaddexp, "jnp.logaddexp({0}, {1})",
       "torch.logaddexp({0}, {1})", doc="log(exp(x) + exp(y))"),
]

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _PRIMITIVES}

# Arithmetic is always available; grammar files list the other primitives they use.
ARITHMETIC = ("add", "sub", "mul", "div", "neg")
INFIX = {p.infix: p.name for p in _PRIMITIVES if p.infix}

# The per-pair terminals (see grammar/README.md), in the interpreter's input order.
TERMINALS = ("logp_w", "logp_l", "ref_w", "ref_l", "len_w", "len_l", "t")
TERMINAL_DOCS = {
    "logp_w": "log-likelihood of the chosen response under the policy",
    "logp_l": "log-likelihood of the rejected response under the policy",
    "ref_w": "log-likelihood of the chosen response under the reference",
    "ref_l": "log-likelihood of the rejected response under the reference",
    "len_w": "length of the chosen response",
    "len_l": "length of the rejected response",
    "t": "training progress in [0, 1]",
}
