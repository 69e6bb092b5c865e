"""Independent, straightforward implementations of the zoo losses (float64 torch).

Written from each paper's formula the way TRL writes them (``F.logsigmoid``,
``torch.sigmoid``, ``torch.exp``), without the engine's primitives or stable rewrites,
so the tests compare the engine with the formula rather than with itself.
"""

import torch
import torch.nn.functional as F


def _ratios(lw, ll, rw, rl):
    return lw - rw, ll - rl


def dpo(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return -F.logsigmoid(beta * (a - b))


def ipo(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return (a - b - 1 / (2 * beta)) ** 2


def hinge(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return torch.relu(1 - beta * (a - b))


def cdpo(lw, ll, rw, rl, nw, nl, t, beta, eps):
    a, b = _ratios(lw, ll, rw, rl)
    x = beta * (a - b)
    return -F.logsigmoid(x) * (1 - eps) - F.logsigmoid(-x) * eps


def rdpo(lw, ll, rw, rl, nw, nl, t, beta, eps):
    a, b = _ratios(lw, ll, rw, rl)
    x = beta * (a - b)
    return (-F.logsigmoid(x) * (1 - eps) + F.logsigmoid(-x) * eps) / (1 - 2 * eps)


def exo(lw, ll, rw, rl, nw, nl, t, beta, eps):
    a, b = _ratios(lw, ll, rw, rl)
    x = beta * (a - b)
    return torch.sigmoid(x) * (F.logsigmoid(x) - torch.log(1 - eps)) + torch.sigmoid(-x) * (
        F.logsigmoid(-x) - torch.log(eps))


def nca(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return -F.logsigmoid(beta * a) - 0.5 * F.logsigmoid(-beta * a) - 0.5 * F.logsigmoid(-beta * b)


def bco(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return -F.logsigmoid(beta * a) - F.logsigmoid(-beta * b)


def sppo(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return (a - 0.5 / beta) ** 2 + (b + 0.5 / beta) ** 2


def apo_zero(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return 1 - torch.sigmoid(beta * a) + torch.sigmoid(beta * b)


def apo_down(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return torch.sigmoid(beta * a) + 1 - torch.sigmoid(beta * (a - b))


def discopop(lw, ll, rw, rl, nw, nl, t, beta, tau):
    a, b = _ratios(lw, ll, rw, rl)
    logits = beta * (a - b)
    modulation = torch.sigmoid(logits / tau)
    return -F.logsigmoid(logits) * (1 - modulation) + torch.exp(-logits) * modulation


def simpo(lw, ll, rw, rl, nw, nl, t, beta, gamma):
    return -F.logsigmoid(beta * (lw / nw - ll / nl) - gamma)


def orpo(lw, ll, rw, rl, nw, nl, t, lam):
    mw, ml = lw / nw, ll / nl
    log_odds = (mw - ml) - (torch.log1p(-torch.exp(mw)) - torch.log1p(-torch.exp(ml)))
    return -mw - lam * F.logsigmoid(log_odds)


def sft_to_dpo(lw, ll, rw, rl, nw, nl, t, beta):
    a, b = _ratios(lw, ll, rw, rl)
    return (1 - t) * (-lw / nw) + t * (-F.logsigmoid(beta * (a - b)))


def sft(lw, ll, rw, rl, nw, nl, t):
    return -lw / nw


REFERENCE = {f.__name__: f for f in [dpo, ipo, hinge, cdpo, rdpo, exo, nca, bco, sppo, apo_zero,
                                     apo_down, discopop, simpo, orpo, sft_to_dpo, sft]}
