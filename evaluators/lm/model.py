"""The token task's policy: a small causal transformer, its sequence log-likelihood (the
trainer's likelihood model), sampling and greedy decoding of populations, the KL to the
reference, and the SFT fit of the reference."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from evaluators import trainer
from evaluators.lm.config import LmModelConfig
from evaluators.lm.language import EOS, MAX_RESPONSE, PROMPT, SEP, SEQ, VOCAB, LmDataset

HEADS = 2


def init_params(key, cfg: LmModelConfig) -> dict:
    """Random initial parameters of the tiny transformer of ``cfg``."""
    d, ks = cfg.width, jax.random.split(key, 4 + 6 * cfg.layers)
    p = {"embed": 0.1 * jax.random.normal(ks[0], (VOCAB, d)), "pos": 0.1 * jax.random.normal(ks[1], (SEQ, d)),
         "out": jax.random.normal(ks[2], (d, VOCAB)) / np.sqrt(d), "ln_f": jnp.ones(d)}
    for i in range(cfg.layers):
        k = ks[4 + 6 * i:4 + 6 * (i + 1)]
        p[f"qkv{i}"] = jax.random.normal(k[0], (d, 3 * d)) / np.sqrt(d)
        p[f"proj{i}"] = jax.random.normal(k[1], (d, d)) / np.sqrt(d) * 0.5
        p[f"up{i}"] = jax.random.normal(k[2], (d, 2 * d)) / np.sqrt(d)
        p[f"down{i}"] = jax.random.normal(k[3], (2 * d, d)) / np.sqrt(2 * d) * 0.5
        p[f"ln1_{i}"] = jnp.ones(d)
        p[f"ln2_{i}"] = jnp.ones(d)
    return {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}


def _norm(x, g):
    return g * (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5)


def logits(params: dict, tokens: jnp.ndarray) -> jnp.ndarray:
    """(..., n, VOCAB) next-token logits of (..., n) token sequences (n <= SEQ)."""
    layers = sum(1 for k in params if k.startswith("qkv"))
    d = params["embed"].shape[1]
    heads = HEADS
    n = tokens.shape[-1]
    x = params["embed"][tokens] + params["pos"][:n]
    causal = jnp.tril(jnp.ones((n, n), bool))
    for i in range(layers):
        h = _norm(x, params[f"ln1_{i}"])
        q, k, v = jnp.split(h @ params[f"qkv{i}"], 3, axis=-1)
        split = lambda a: a.reshape(a.shape[:-1] + (heads, d // heads))  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        att = jnp.einsum("...qhd,...khd->...hqk", q, k) / np.sqrt(d // heads)
        att = jax.nn.softmax(jnp.where(causal, att, -1e9), axis=-1)
        x = x + jnp.einsum("...hqk,...khd->...qhd", att, v).reshape(x.shape) @ params[f"proj{i}"]
        x = x + jax.nn.gelu(_norm(x, params[f"ln2_{i}"]) @ params[f"up{i}"]) @ params[f"down{i}"]
    return _norm(x, params["ln_f"]) @ params["out"]


def sequence_log_likelihood(params: dict, tokens: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Summed log-probabilities of the masked tokens, each given the tokens before it."""
    logp = jax.nn.log_softmax(logits(params, tokens[..., :-1]), axis=-1)
    picked = jnp.take_along_axis(logp, tokens[..., 1:, None], axis=-1)[..., 0]
    return (picked * mask[..., 1:]).sum(axis=-1)


def pair_log_likelihood(params, inputs) -> jnp.ndarray:
    """(B, 2) log-likelihoods of the chosen and rejected responses."""
    return sequence_log_likelihood(params, inputs["tokens"], inputs["mask"])


LIKELIHOOD = trainer.LikelihoodModel(pair_log_likelihood)


def _decode(params: dict, prompts: jnp.ndarray, choose: Callable) -> jnp.ndarray:
    """(N, MAX_RESPONSE + 1) continuations of the prompts (after SEP), token j picked by
    ``choose(logits_j, j)``."""
    n = prompts.shape[0]
    seq = jnp.zeros((n, SEQ), jnp.int32).at[:, :PROMPT].set(prompts).at[:, PROMPT].set(SEP)

    def step(seq, j):
        return seq.at[:, PROMPT + 1 + j].set(choose(logits(params, seq)[:, PROMPT + j], j)), None

    seq, _ = jax.lax.scan(step, seq, jnp.arange(MAX_RESPONSE + 1))
    return seq[:, PROMPT + 1:]


@jax.jit
def _generate(params: dict, prompts: jnp.ndarray, key: jnp.ndarray) -> jnp.ndarray:
    """(N, MAX_RESPONSE + 1) sampled continuations of the prompts (after SEP), temperature 1;
    the same ``key`` gives every policy the same random numbers."""
    return _decode(params, prompts, lambda z, j: jax.random.categorical(jax.random.fold_in(key, j), z, axis=-1))


def _greedy(params: dict, prompts: jnp.ndarray) -> jnp.ndarray:
    """(N, MAX_RESPONSE + 1) greedy continuations (the most likely token at each step)."""
    return _decode(params, prompts, lambda z, j: jnp.argmax(z, axis=-1))


def _kl_to_reference(params: dict, ref: dict, prompts: jnp.ndarray, out: jnp.ndarray) -> jnp.ndarray:
    """(N,) KL(policy || reference) of the continuation, estimated on the policy's own
    continuations ``out``: along each, the exact KL of the next-token distributions summed
    over the steps taken (up to and including the first EOS), an unbiased estimate of the
    KL between the two distributions over responses."""
    n = prompts.shape[0]
    seq = jnp.concatenate([prompts.astype(jnp.int32), jnp.full((n, 1), SEP, jnp.int32), out.astype(jnp.int32)], 1)
    lp = jax.nn.log_softmax(logits(params, seq[:, :-1])[:, PROMPT:], axis=-1)
    lq = jax.nn.log_softmax(logits(ref, seq[:, :-1])[:, PROMPT:], axis=-1)
    step_kl = (jnp.exp(lp) * (lp - lq)).sum(-1)
    eos = out == EOS
    taken = (jnp.cumsum(eos, axis=1) - eos) == 0  # no EOS before this step
    return (step_kl * taken).sum(-1)


_generate_population = jax.jit(jax.vmap(_generate, in_axes=(0, None, None)))


@jax.jit
def _diagnose_population(params: dict, refs: dict, prompts: jnp.ndarray, out: jnp.ndarray):
    """Per policy (leading axis of ``params``, ``refs`` and ``out``): the mean KL to its
    reference over the prompts and its (N, MAX_RESPONSE + 1) greedy continuations."""
    kl = jax.vmap(_kl_to_reference, in_axes=(0, 0, None, 0))(params, refs, prompts, out).mean(-1)
    return kl, jax.vmap(_greedy, in_axes=(0, None))(params, prompts)

# Policies sampled per compiled call: every population size shares one compilation.
GENERATE_CHUNK = 8


def generate_population(params: dict, prompts: np.ndarray, key: jnp.ndarray) -> np.ndarray:
    """(P, N, MAX_RESPONSE + 1) continuations by P policies (``params`` with a leading P axis),
    sampled :data:`GENERATE_CHUNK` policies at a time (the samples do not depend on the chunk:
    each policy gets the same random numbers and its own rows of every product)."""
    P = len(next(iter(params.values())))
    prompts = jnp.asarray(prompts)
    return trainer.in_chunks(lambda p: _generate_population(p, prompts, key), (params,), P, GENERATE_CHUNK)


def diagnose_population(params: dict, refs: dict, prompts: np.ndarray,
                        out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P,) KL(policy || reference) on the prompts, estimated on the sampled continuations
    ``out`` (P, N, MAX_RESPONSE + 1), and (P, N, MAX_RESPONSE + 1) greedy continuations, of P
    policies with their references (``refs``, one per policy), in chunks as
    :func:`generate_population`."""
    P = len(next(iter(params.values())))
    prompts = jnp.asarray(prompts)
    return trainer.in_chunks(lambda p, r, o: _diagnose_population(p, r, prompts, o), (params, refs, out), P,
                             GENERATE_CHUNK)



def fit_reference(ds: LmDataset, cfg: LmModelConfig, seed: int) -> dict:
    """Supervised fine-tuning on every response of the data (both sides: no labels seen)."""
    params = init_params(jax.random.PRNGKey(seed), cfg)  # eagerly: jitted, XLA rounds some values differently
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), cfg.sft_steps)
    fitted = _sft(params, jnp.asarray(ds.tokens.reshape(-1, SEQ)), jnp.asarray(ds.mask.reshape(-1, SEQ)), keys, cfg)
    return {k: np.asarray(v) for k, v in fitted.items()}


@functools.partial(jax.jit, static_argnames="cfg")
def _sft(params, tokens, mask, keys, cfg: LmModelConfig):
    """Adam on minibatches of 64 sequences, one per key; the data are arguments (not
    constants of the program), so datasets of one shape share a compilation."""
    opt = optax.adam(cfg.sft_learning_rate)

    def step(carry, key):
        params, state = carry
        idx = jax.random.randint(key, (64,), 0, tokens.shape[0])
        loss = lambda p: -sequence_log_likelihood(p, tokens[idx], mask[idx]).mean()  # noqa: E731
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), keys)
    return params

