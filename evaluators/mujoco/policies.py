"""Gaussian MLP policies: one parameter format for behaviour policies and trained policies.

A policy is a pytree of arrays (``dict``) plus a static :class:`PolicySpec`, so it can be
vmapped, saved as ``.npz`` and evaluated by numpy (native MuJoCo rollouts) or JAX (MJX
rollouts, the offline trainer):

    obs_mean, obs_std        normaliser: x = clip((obs - obs_mean) / obs_std, +-obs_clip)
    w0, b0, ..., wK, bK      dense layers, ``spec.activation`` between them
    log_std                  (optional) state-independent log standard deviation

Without ``log_std`` the last layer outputs [loc, raw] and std = softplus(raw) + MIN_STD
(``spec.std == "softplus"``: brax, and the policies this project trains) or
exp(clip(raw, -20, 2)) (``"exp_clip"``: stable-baselines3's SAC).
With ``spec.squash`` the action is tanh of the Normal sample (brax's PPO); otherwise the
sample is clipped to [-1, 1] (stable-baselines3, and the policies this project trains).
The deterministic action, used to score a policy, is tanh(loc) or clip(loc, -1, 1).
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any, Mapping

import numpy as np

from evaluators import atomic

MIN_STD = 1e-3

Params = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """The static (non-array) part of a policy."""

    activation: str = "swish"
    squash: bool = False
    obs_clip: float | None = None
    std: str = "softplus"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}")
        if self.std not in ("softplus", "exp_clip"):
            raise ValueError(f"unknown std parameterisation {self.std!r}")


def _swish(x, xp):
    return x / (1.0 + xp.exp(-x))


ACTIVATIONS = {
    "swish": _swish,
    "relu": lambda x, xp: xp.maximum(x, 0.0),
    "tanh": lambda x, xp: xp.tanh(x),
}

# The spec of every policy the offline trainer trains (and of the behaviour-cloned reference).
TRAINED_SPEC = PolicySpec(activation="swish", squash=False, std="softplus")
# The observation normaliser: fitted once on the data, never trained.
NORMALISER = ("obs_mean", "obs_std")


def num_layers(params: Params) -> int:
    """Dense layers of a policy's parameters."""
    return sum(1 for k in params if k.startswith("w"))


def forward(params: Params, obs, spec: PolicySpec = PolicySpec(), xp=np):
    """Returns (loc, std) of the Normal for ``obs[..., obs_dim]``.

    Policies stacked on a leading axis take observations shaped (policies, batch, obs).
    """
    batched = np.ndim(params["obs_mean"]) == 2

    def row(v):
        return v[..., None, :] if batched else v

    x = (obs - row(params["obs_mean"])) / row(params["obs_std"])
    if spec.obs_clip is not None:
        x = xp.clip(x, -spec.obs_clip, spec.obs_clip)
    act = ACTIVATIONS[spec.activation]
    n = num_layers(params)
    for i in range(n):
        x = xp.matmul(x, params[f"w{i}"]) + row(params[f"b{i}"])
        if i < n - 1:
            x = act(x, xp)
    if "log_std" in params:
        return x, xp.exp(row(params["log_std"])) * xp.ones_like(x)
    act_dim = x.shape[-1] // 2
    loc, raw = x[..., :act_dim], x[..., act_dim:]
    if spec.std == "exp_clip":
        return loc, xp.exp(xp.clip(raw, -20.0, 2.0))
    return loc, xp.logaddexp(raw, 0.0) + MIN_STD


def to_action(u, spec: PolicySpec, xp=np):
    """A pre-squash value as an action in [-1, 1]: tanh(u) (squashed policies) or clip(u)."""
    return xp.tanh(u) if spec.squash else xp.clip(u, -1.0, 1.0)


def noisy_action(loc, std, noise, spec: PolicySpec):
    """The action of a Normal(loc, std) draw with standard normal ``noise`` (numpy)."""
    return to_action(loc + std * noise, spec)


def mode_action(params: Params, obs, spec: PolicySpec = PolicySpec(), xp=np):
    """The deterministic action (the mode of the action distribution)."""
    loc, _ = forward(params, obs, spec, xp)
    return to_action(loc, spec, xp)


def sample_action(params: Params, obs, rng: np.random.Generator, spec: PolicySpec = PolicySpec()):
    """A stochastic action (numpy), as a behaviour policy acts when collecting data."""
    loc, std = forward(params, obs, spec, np)
    return noisy_action(loc, std, rng.standard_normal(loc.shape), spec)


def init_params(key, obs_dim: int, act_dim: int, hidden=(64, 64), init_std: float = 0.5):
    """Lecun-uniform initialised parameters (JAX) with a state-dependent std near ``init_std``."""
    import jax
    import jax.numpy as jnp

    sizes = [obs_dim, *hidden, 2 * act_dim]
    params = {"obs_mean": jnp.zeros(obs_dim), "obs_std": jnp.ones(obs_dim)}
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        limit = jnp.sqrt(3.0 / fan_in)
        params[f"w{i}"] = jax.random.uniform(k, (fan_in, fan_out), minval=-limit, maxval=limit)
        params[f"b{i}"] = jnp.zeros(fan_out)
    last = len(sizes) - 2
    raw = float(np.log(np.expm1(init_std - MIN_STD)))
    params[f"w{last}"] = params[f"w{last}"] * 0.01
    params[f"b{last}"] = params[f"b{last}"].at[act_dim:].set(raw)
    return params


def save(path: str, params: Params, spec: PolicySpec, meta: Mapping[str, Any] | None = None) -> None:
    """Writes ``params``, ``spec`` and JSON ``meta`` to an ``.npz`` atomically."""
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    header = {"spec": dataclasses.asdict(spec), "meta": dict(meta or {})}
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic.write_bytes(path, buf.getvalue())


def load(path: str) -> tuple[dict[str, np.ndarray], PolicySpec, dict[str, Any]]:
    """A saved policy: (parameters, network spec, metadata header)."""
    with np.load(path) as z:
        params = {k: z[k] for k in z.files if k != "__header__"}
        header = json.loads(bytes(z["__header__"]).decode())
    return params, PolicySpec(**header["spec"]), header["meta"]


def stack(policies) -> dict[str, np.ndarray]:
    """Stacks policies with the same architecture along a new leading axis."""
    keys = policies[0].keys()
    return {k: np.stack([np.asarray(p[k]) for p in policies]) for k in keys}


# --------------------------------------------------------------------------- likelihood
# Responses are sequences of actions; an action's likelihood is the probability of its
# bin, as a language model gives a token: each action dimension is split into ``bins``
# equal bins on [-1, 1] (the outer bins extend to +-infinity, where clipping puts the
# mass), and log P(a | s) = sum_d log(Phi(z_hi) - Phi(z_lo)). Log-likelihoods are then
# <= 0 as for text, so ORPO's log-odds and SimPO's mean log-probabilities keep their
# meaning; for bins narrow against the policy's spread this is the log-density plus a
# constant.
_EDGE = 1e3


def bin_edges(actions, bins: int):
    """(lo, hi) edges of each action's bin; computed once for a fixed dataset."""
    edges = np.linspace(-1.0, 1.0, bins + 1)
    k = np.clip(np.floor((np.asarray(actions) + 1.0) / 2.0 * bins), 0, bins - 1).astype(int)
    lo = np.where(k == 0, -_EDGE, edges[k])
    hi = np.where(k == bins - 1, _EDGE, edges[k + 1])
    return lo.astype(np.float32), hi.astype(np.float32)


def binned_log_likelihood(loc, std, lo, hi):
    """log(Phi((hi - loc)/std) - Phi((lo - loc)/std)), summed over the last axis (JAX).

    Stable in both tails: above the mean the upper-tail form is used, and the
    difference of CDFs is taken as log Phi(a) + log(1 - exp(log Phi(b) - log Phi(a))).
    """
    import jax.numpy as jnp
    from jax.scipy.special import log_ndtr

    from grammar.primitives import PRIMITIVES

    zl, zh = (lo - loc) / std, (hi - loc) / std
    upper = zl > 0
    a = jnp.where(upper, -zl, zh)
    b = jnp.where(upper, -zh, zl)
    la, lb = log_ndtr(a), log_ndtr(b)
    gap = jnp.minimum(lb - la, -1e-6)
    return (la + PRIMITIVES["log1mexp"].jax(gap)).sum(axis=-1)
