"""The reference policy: behaviour cloning on the dataset.

The reference is fitted to every live step of both segments of every pair (chosen and
rejected alike, in an order that does not depend on the labels), by maximum likelihood
under the same binned likelihood that preference
training uses. It is therefore the behaviour mixture that generated the data, which is
the reference that DPO's derivation assumes (the data are samples of pi_ref), rather
than SFT on the chosen responses. A Gaussian MLP (2 x 64, swish) with the observation
normaliser set from the dataset; cached next to the dataset it was fitted to.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

import evaluators.mujoco.policies as policy_io
# The reference's configuration lives with the wing's configuration; re-exported here.
from evaluators.mujoco.config import ReferenceConfig  # noqa: F401
from evaluators.mujoco.datasets import PreferenceDataset
from evaluators.device import bucket


def cloning_data(dataset: PreferenceDataset, order: str) -> tuple[np.ndarray, np.ndarray]:
    """(observations, actions) of every live step of both segments of every pair. With
    ``order="content"`` the segments are sorted by their first observation and actions, so
    two datasets holding the same segments with other labels give the same arrays."""
    obs = np.concatenate([dataset.obs_w, dataset.obs_l])
    act = np.concatenate([dataset.act_w, dataset.act_l])
    alive = np.concatenate([dataset.alive_w, dataset.alive_l])
    if order == "content":
        keys = np.concatenate([obs[:, 0], act[:, 0]], axis=1)
        perm = np.lexsort(keys.T[::-1])
        obs, act, alive = obs[perm], act[perm], alive[perm]
    obs = obs.reshape(-1, obs.shape[-1])
    act = act.reshape(-1, act.shape[-1])
    keep = alive.reshape(-1) > 0
    return obs[keep], act[keep]


def behaviour_cloning(dataset: PreferenceDataset, config: ReferenceConfig = ReferenceConfig()) -> dict:
    """The reference policy: maximum likelihood of the dataset's actions (both sides of every
    pair, no labels seen) under the binned Gaussian policy."""
    obs, act = cloning_data(dataset, config.order)
    lo, hi = policy_io.bin_edges(act, config.bins)
    params = policy_io.init_params(jax.random.PRNGKey(config.seed), obs.shape[1], act.shape[1], config.hidden,
                                   init_std=0.3)
    params["obs_mean"] = jnp.asarray(obs.mean(axis=0), jnp.float32)
    params["obs_std"] = jnp.asarray(np.maximum(obs.std(axis=0), 1e-3), jnp.float32)
    n = len(obs)
    if n == 0:
        raise ValueError("the dataset has no live steps to clone")
    pad = lambda a: jnp.asarray(np.concatenate([a, np.zeros((bucket(n) - n,) + a.shape[1:], a.dtype)]))  # noqa: E731
    fitted = _fit(params, pad(obs), pad(lo), pad(hi), jnp.int32(n), config)
    return {k: np.asarray(v) for k, v in fitted.items()}


@functools.partial(jax.jit, static_argnames="config")
def _fit(params, obs, lo, hi, n, config: ReferenceConfig):
    """Maximum likelihood by Adam on random minibatches of the first ``n`` rows (the rest is
    padding, never drawn); the data and ``n`` are arguments, not constants of the program,
    so datasets of one padded length share a compilation."""
    from evaluators.trainer import optimizer

    key = jax.random.PRNGKey(config.seed)
    opt = optimizer(config.learning_rate, 10.0, params, policy_io.NORMALISER)

    def nll(p, idx):
        loc, std = policy_io.forward(p, obs[idx], policy_io.TRAINED_SPEC, jnp)
        return -policy_io.binned_log_likelihood(loc, std, lo[idx], hi[idx]).mean()

    def step(carry, i):
        p, s = carry
        idx = jax.random.randint(jax.random.fold_in(key, i), (config.batch,), 0, n)
        g = jax.grad(nll)(p, idx)
        u, s = opt.update(g, s, p)
        return (jax.tree.map(lambda a, b: a + b, p, u), s), None

    (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(config.steps))
    return p


def load_or_fit(dataset: PreferenceDataset, dataset_path: str, config: ReferenceConfig = ReferenceConfig(),
                rebuild: bool = False) -> tuple[dict, str]:
    """The cached reference for ``dataset`` (fitted on a miss). Returns (params, path)."""
    from evaluators.errors import InputError

    path = f"{os.path.splitext(dataset_path)[0]}.ref-{config.key(dataset.digest)}.npz"
    if os.path.exists(path) and not rebuild:
        try:
            params, _, meta = policy_io.load(path)
        except Exception as e:  # noqa: BLE001 - unreadable means corrupt
            raise InputError(f"reference cache file {path} is corrupt ({type(e).__name__}); rebuild with "
                             f"--rebuild") from None
        if meta.get("dataset_digest") != dataset.digest:
            raise InputError(f"reference cache file {path} is stale (fitted to another dataset); rebuild with "
                             f"--rebuild")
        return params, path
    params = behaviour_cloning(dataset, config)
    policy_io.save(path, params, policy_io.TRAINED_SPEC, {"dataset_digest": dataset.digest,
                                               "config": dataclasses.asdict(config)})
    return params, path
