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


def ipo_norm(lw, ll, rw, rl, nw, nl, t, beta):
    # TRL's DPOTrainer, loss_type="ipo": each log-ratio divided by its completion length.
    a, b = _ratios(lw, ll, rw, rl)
    return (a / nw - b / nl - 1 / (2 * beta)) ** 2


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


def _mirror_dpo(mirror, lw, ll, rw, rl, nw, nl, beta):
    u_w = nw * (mirror(lw / nw) - mirror(rw / nw))
    u_l = nl * (mirror(ll / nl) - mirror(rl / nl))
    return -F.logsigmoid(beta * (u_w - u_l))


def dpo_tsallis(lw, ll, rw, rl, nw, nl, t, beta, alpha):
    # Tsallis mirror map in log space, q = 1 + alpha: ((e^x)^alpha - 1) / alpha.
    return _mirror_dpo(lambda x: (torch.exp(x) ** alpha - 1) / alpha, lw, ll, rw, rl, nw, nl, beta)


def dpo_log_odds(lw, ll, rw, rl, nw, nl, t, beta):
    # ORPO's log-odds of the mean token probability p = e^x: log(p / (1 - p)).
    return _mirror_dpo(lambda x: torch.log(torch.exp(x) / (1 - torch.exp(x))), lw, ll, rw, rl, nw, nl, beta)


def dpo_scheduled(lw, ll, rw, rl, nw, nl, t, beta):
    return t * dpo(lw, ll, rw, rl, nw, nl, t, beta)


def sft_decay(lw, ll, rw, rl, nw, nl, t):
    return -(1 - t) * lw / nw


REFERENCE = {f.__name__: f for f in [dpo, ipo, ipo_norm, hinge, cdpo, rdpo, exo, nca, bco, sppo, apo_zero,
                                     apo_down, discopop, simpo, orpo, sft_to_dpo, dpo_tsallis, dpo_log_odds,
                                     dpo_scheduled, sft_decay, sft]}
