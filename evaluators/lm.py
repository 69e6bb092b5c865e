"""The token-sequence evaluator (``--task lm``): offline preference optimisation of a small
causal transformer on a synthetic language with a known reward.

The language. A prompt is ``PROMPT`` content tokens; the ideal response is the prompt
reversed, then EOS. The ground-truth reward of a response y to a prompt x is

    R(x, y) = (1/K) sum_j [y_j = reversed(x)_j]  -  0.25 |len(y) - K| / K,     K = PROMPT,

in [-0.25, 1] (1 for the ideal response). Behaviour policies of graded quality q write
each token of the ideal response with probability q, and otherwise mostly copy the
prompt's token (a systematic error) or write a uniform one; they stop at the ideal
length with probability q (at a uniform length otherwise). On data dominated by poor
policies, imitation learns the error.

Data and settings mirror the MuJoCo suite: two responses to one prompt from two
behaviour policies, labelled by R (``clean``; ties at random), with labels flipped with
probability eps (``noisy``), from a pool weighted towards poor policies (``mixed``), or
with the rejected response written for another prompt (``shuffled``, a control: the
off-prompt response is always the rejected one). Prompts are split once and for all:
those with ``prompt_id % 4 == 0`` (a quarter) are evaluation prompts that no dataset
holds. The
reference is the transformer fitted by supervised fine-tuning on every response of
the data (both sides, so it does not see the labels). Each (loss, seed) trains the
reference with the shared trainer (log-likelihood = summed log-probabilities of the
response tokens and EOS, length = response tokens + EOS); fitness is the ground-truth
reward of the trained policy's responses (sampled at temperature 1, one per held-out
prompt, the same random numbers for every policy), normalised as
100 (R - R_random) / (R_ideal - R_random) with R_random the reward of uniform random
responses. Beside it, as diagnostics (the fitness does not use them): KL(policy ||
reference) per response, estimated on the same prompts and samples, and the normalised
reward of the policy's greedy decoding; a score can rise by moving far from the
reference, and these show whether it did.

Why it is a fair proxy: the losses see what they see on a language model (summed
sequence log-likelihoods of a chosen and a rejected response, their lengths, a
reference from SFT), the policy is autoregressive and its likelihood shares parameters
across tokens, and the score is the true reward of what the policy generates. Where it
is not: the vocabulary, sequences and model are tiny, the reward is a fixed rule rather
than human preference, and nothing here is pre-trained.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from evaluators import trainer
from evaluators.errors import InputError
from evaluators.interface import (TRAINER_OPTIONS, DataProgress, Evaluation, Option, OptionsMixin, Stage, encode,
                                  prepare_datasets, reference_terminals, trained_policy_terminals)
from evaluators.seeds import SEARCH_EVAL

EOS, SEP = 0, 1
CONTENT = 10                # content tokens 2 .. 2 + CONTENT - 1
VOCAB = 2 + CONTENT
PROMPT = 4                  # prompt tokens (K above)
MAX_RESPONSE = 6            # response tokens before EOS, at most
SEQ = PROMPT + 1 + MAX_RESPONSE + 1   # prompt, SEP, response, EOS (padded with EOS)
QUALITIES = (0.1, 0.3, 0.5, 0.7, 0.9)
COPY = 0.7                  # a behaviour policy's error copies the prompt's token with this probability
HEADS = 2
SETTINGS = ("clean", "noisy", "mixed", "shuffled")


@dataclasses.dataclass(frozen=True)
class LmDataConfig:
    task: str = "lm"
    setting: str = "noisy"
    eps: float = 0.3
    pairs: int = 2000
    seed: int = 0
    mixed_poor_fraction: float = 0.7   # mixed: share of responses from the two poorest policies

    def validate(self) -> "LmDataConfig":
        if self.setting not in SETTINGS:
            raise InputError(f"unknown setting {self.setting!r} for --task lm; known: {', '.join(SETTINGS)}")
        if not 0.0 <= self.eps <= 0.5:
            raise InputError(f"--eps must be in [0, 0.5], got {self.eps}")
        if self.pairs < 64:
            raise InputError(f"--pairs must be at least 64, got {self.pairs}")
        return self


@dataclasses.dataclass(frozen=True)
class LmModelConfig:
    width: int = 32     # attention heads: HEADS
    layers: int = 1
    sft_steps: int = 400
    sft_learning_rate: float = 3e-3


@dataclasses.dataclass(frozen=True)
class LmEvalConfig:
    prompts: int = 512   # evaluation prompts (never in a dataset), one sampled response each (temperature 1)
    seed: int = SEARCH_EVAL  # the bench and held-out scoring pass their own (``eval_seed``)


@dataclasses.dataclass(frozen=True)
class LmConfig(OptionsMixin):
    """Everything that defines a token-task evaluation; stored in run stores as "experiment"."""

    dataset: LmDataConfig = LmDataConfig()
    train: trainer.TrainConfig = trainer.TrainConfig()
    model: LmModelConfig = LmModelConfig()
    eval: LmEvalConfig = LmEvalConfig()
    data_seeds: tuple[int, ...] = ()

    # The options of `discover run` and `bench` (task, data_seed, eval_seed and
    # program_length are set by the commands themselves).
    OPTIONS = (
        Option("task", "dataset", "task"),
        Option("setting", "dataset", "setting", f"The data's defect: {', '.join(SETTINGS[:-1])} or {SETTINGS[-1]}.",
               choices=SETTINGS),
        Option("eps", "dataset", "eps", "Label-flip probability (--setting noisy only)."),
        Option("pairs", "dataset", "pairs", "Pairs in each dataset."),
        Option("reference_steps", "model", "sft_steps", "Training steps of each dataset's reference policy."),
        Option("data_seed", "dataset", "seed"),
        *TRAINER_OPTIONS,
        Option("eval_seed", "eval", "seed"),
    )
    TASKS = ("lm",)

    def pair_description(self) -> str:
        return "(token sequences)"

    def validate(self) -> "LmConfig":
        self.dataset.validate()
        self.train.validate()
        if self.model.sft_steps < 1:
            raise InputError(f"--reference-steps must be at least 1, got {self.model.sft_steps}")
        if len(set(self.data_seeds)) != len(self.data_seeds):
            raise InputError(f"data seeds repeat: {list(self.data_seeds)}")
        return self

    def seconds_per_run(self) -> float:
        """A conservative cost model of one training run and its scoring: about 2.5 us per
        (pair x token x training step), plus sampling the evaluation prompts' responses, and
        decoding them greedily for the diagnostics."""
        t = self.train
        return t.steps * t.batch_pairs * SEQ * 2.5e-6 + 2 * self.eval.prompts * MAX_RESPONSE * 2e-5

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "LmConfig":
        return LmConfig(LmDataConfig(**d["dataset"]), trainer.TrainConfig.from_dict(d["train"]),
                        LmModelConfig(**d["model"]), LmEvalConfig(**d["eval"]), tuple(d.get("data_seeds", ())))


# -- the language ---------------------------------------------------------------------

def ideal(prompts: np.ndarray) -> np.ndarray:
    """(N, PROMPT) ideal responses: the prompts reversed."""
    return prompts[:, ::-1]


def reward(prompts: np.ndarray, responses: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Ground-truth reward of responses ((N, MAX_RESPONSE) tokens, the first ``lengths`` used)."""
    target = ideal(prompts)
    k = min(PROMPT, MAX_RESPONSE)
    pos = np.arange(k)
    hits = ((responses[:, :k] == target[:, :k]) & (pos[None, :] < lengths[:, None])).sum(axis=1)
    return hits / PROMPT - 0.25 * np.abs(lengths - PROMPT) / PROMPT


DATA_VERSION = 2  # bump when the language or the data change: cached datasets are keyed by it


def prompt_ids(prompts: np.ndarray) -> np.ndarray:
    """Each prompt's index among the CONTENT ** PROMPT possible prompts."""
    return ((prompts - 2) * CONTENT ** np.arange(PROMPT - 1, -1, -1)).sum(axis=-1)


def sample_prompts(n: int, rng: np.random.Generator, evaluation: bool = False) -> np.ndarray:
    """``n`` prompts from the data's share of the prompt space, or (``evaluation``) from the
    evaluation share (``prompt_id % 4 == 0``): no dataset holds an evaluation prompt."""
    out = np.empty((0, PROMPT), np.int64)
    while len(out) < n:
        p = rng.integers(2, 2 + CONTENT, size=(2 * n + 8, PROMPT))
        out = np.concatenate([out, p[(prompt_ids(p) % 4 == 0) == evaluation]])
    return out[:n]


def behave(prompts: np.ndarray, quality: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Responses of behaviour policies of the given qualities (one per prompt): each token is
    the ideal one with probability q; otherwise the prompt's token at that position (the
    systematic error: copying instead of reversing) with probability COPY, else uniform."""
    n = len(prompts)
    q = np.asarray(quality, float)[:, None]
    pad = lambda a: np.concatenate([a, rng.integers(2, 2 + CONTENT, size=(n, MAX_RESPONSE - PROMPT))], axis=1)  # noqa: E731
    target, copy = pad(ideal(prompts)), pad(prompts)
    noise = np.where(rng.random((n, MAX_RESPONSE)) < COPY, copy, rng.integers(2, 2 + CONTENT, size=(n, MAX_RESPONSE)))
    tokens = np.where(rng.random((n, MAX_RESPONSE)) < q, target, noise)
    lengths = np.where(rng.random(n) < q[:, 0], PROMPT, rng.integers(1, MAX_RESPONSE + 1, size=n))
    return tokens, lengths


def sequences(prompts: np.ndarray, responses: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, SEQ) token sequences (prompt, SEP, response, EOS, EOS padding) and (N, SEQ) masks
    of the positions whose tokens are scored (the response and its EOS)."""
    n = len(prompts)
    seq = np.full((n, SEQ), EOS, np.int32)
    seq[:, :PROMPT] = prompts
    seq[:, PROMPT] = SEP
    pos = np.arange(MAX_RESPONSE)
    seq[:, PROMPT + 1:PROMPT + 1 + MAX_RESPONSE] = np.where(pos[None, :] < lengths[:, None], responses, EOS)
    j = np.arange(SEQ)[None, :] - (PROMPT + 1)
    mask = ((j >= 0) & (j <= lengths[:, None])).astype(np.float32)
    return seq, mask


@dataclasses.dataclass
class LmDataset:
    prompts: np.ndarray      # (N, PROMPT)
    tokens: np.ndarray       # (N, 2, SEQ): chosen, rejected
    mask: np.ndarray         # (N, 2, SEQ)
    lengths: np.ndarray      # (N, 2) response tokens + EOS
    rewards: np.ndarray      # (N, 2) ground truth of both sides
    flipped: np.ndarray      # (N,) the label disagrees with the reward

    def summary(self) -> dict[str, Any]:
        better = self.rewards[:, 0] > self.rewards[:, 1]
        worse = self.rewards[:, 0] < self.rewards[:, 1]
        return {"pairs": int(len(self.prompts)), "label_agreement": float(better.mean()),
                "label_disagreement": float(worse.mean()), "flip_rate": float(self.flipped.mean()),
                "reward_chosen": float(self.rewards[:, 0].mean()), "reward_rejected": float(self.rewards[:, 1].mean()),
                "digest": hashlib.sha256(self.tokens.tobytes() + self.mask.tobytes()).hexdigest()[:16]}


def build(config: LmDataConfig) -> LmDataset:
    """The preference pairs of ``config`` (deterministic in its seed)."""
    config.validate()
    rng = np.random.default_rng([0x1A, config.seed, SETTINGS.index(config.setting)])
    n = config.pairs
    prompts = sample_prompts(n, rng)
    if config.setting == "mixed":
        poor = rng.random((n, 2)) < config.mixed_poor_fraction
        which = np.where(poor, rng.integers(0, 2, (n, 2)), rng.integers(2, len(QUALITIES), (n, 2)))
    else:
        which = rng.integers(0, len(QUALITIES), (n, 2))
    q = np.asarray(QUALITIES)[which]
    a_tok, a_len = behave(prompts, q[:, 0], rng)
    b_tok, b_len = behave(prompts, q[:, 1], rng)
    other = prompts[np.roll(np.arange(n), 1)] if config.setting == "shuffled" else prompts
    ra, rb = reward(prompts, a_tok, a_len), reward(other, b_tok, b_len)
    a_first = np.where(ra == rb, rng.random(n) < 0.5, ra > rb)
    if config.setting == "shuffled":  # b is shown after another prompt: always the rejected side
        a_first = np.ones(n, bool)
    flipped = np.zeros(n, bool)
    if config.setting == "noisy":
        flipped = rng.random(n) < config.eps
    a_first = a_first ^ flipped
    a_seq, a_mask = sequences(prompts, a_tok, a_len)
    b_seq, b_mask = sequences(other, b_tok, b_len)
    pick = lambda a, b: np.where(a_first.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
    tokens = np.stack([pick(a_seq, b_seq), pick(b_seq, a_seq)], axis=1)
    mask = np.stack([pick(a_mask, b_mask), pick(b_mask, a_mask)], axis=1)
    lengths = np.stack([np.where(a_first, a_len, b_len), np.where(a_first, b_len, a_len)], axis=1) + 1
    rewards = np.stack([np.where(a_first, ra, rb), np.where(a_first, rb, ra)], axis=1)
    return LmDataset(prompts, tokens, mask, lengths.astype(np.float32), rewards, flipped)


# -- the policy: a small causal transformer ---------------------------------------------

def init_params(key, cfg: LmModelConfig) -> dict:
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


def score_responses(prompts: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rewards of generated continuations (..., N, MAX_RESPONSE + 1): cut at the first EOS
    (a response that never stops has MAX_RESPONSE tokens)."""
    is_eos = out == EOS
    lengths = np.where(is_eos.any(-1), is_eos.argmax(-1), MAX_RESPONSE)
    lengths = np.minimum(lengths, MAX_RESPONSE)
    flat = out.reshape(-1, out.shape[-1])[:, :MAX_RESPONSE]
    p = np.broadcast_to(prompts, out.shape[:-1] + (PROMPT,)).reshape(-1, PROMPT)
    return reward(p, flat, lengths.reshape(-1)).reshape(out.shape[:-1])


def random_reward(rng: np.random.Generator, n: int = 20000) -> float:
    """Expected reward of random responses (uniform length; each token uniform, or the
    prompt's, whose tokens are themselves uniform: the same expectation)."""
    prompts = sample_prompts(n, rng)
    tokens, lengths = behave(prompts, np.zeros(n), rng)
    return float(reward(prompts, tokens, lengths).mean())


R_IDEAL = 1.0


def _cache_path(config: LmConfig) -> str:
    from evaluators.cache import cache_dir

    key = hashlib.sha256(repr((DATA_VERSION, dataclasses.asdict(config.dataset),
                               dataclasses.asdict(config.model))).encode())
    return os.path.join(cache_dir(), "lm", f"{config.dataset.setting}-{key.hexdigest()[:16]}.npz")


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


def load_or_build(config: LmConfig, log: Callable[[str], None] | None = None,
                  rebuild: bool = False, stage: Stage | None = None) -> tuple[LmDataset, dict]:
    """The dataset of ``config.dataset`` and its SFT reference, cached by configuration
    (the data take milliseconds, the reference fit the rest)."""
    path = _cache_path(config)
    if os.path.exists(path) and not rebuild:
        z = np.load(path)
        ds = LmDataset(*(z[f] for f in ("prompts", "tokens", "mask", "lengths", "rewards", "flipped")))
        return ds, {k.removeprefix("ref_"): z[k] for k in z.files if k.startswith("ref_")}
    t0 = time.perf_counter()
    ds = build(config.dataset)
    if stage:
        stage("reference (SFT)", 0.0)
    ref = fit_reference(ds, config.model, config.dataset.seed)
    from evaluators import atomic

    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = {**dataclasses.asdict(ds), **{f"ref_{k}": v for k, v in ref.items()}}
    atomic.write_with(path, lambda f: np.savez(f, **arrays))
    if log:
        s = ds.summary()
        log(f"lm {config.dataset.setting} data (seed {config.dataset.seed}): {s['pairs']} pairs, label agreement "
            f"{s['label_agreement']:.3f}; reference fitted in {time.perf_counter() - t0:.0f} s")
    return ds, ref


def prepare(ds: LmDataset, ref: dict) -> trainer.PairData:
    tokens, mask = jnp.asarray(ds.tokens), jnp.asarray(ds.mask)
    ref_logp = sequence_log_likelihood({k: jnp.asarray(v) for k, v in ref.items()}, tokens, mask)
    return trainer.PairData({"tokens": tokens, "mask": mask}, ref_logp, jnp.asarray(ds.lengths))


class LmEvaluator:
    """Datasets, SFT references and prepared data of one :class:`LmConfig`, loaded once."""

    name = "lm"
    Config = LmConfig
    reference_label = "SFT"  # the reference is supervised fine-tuning on both responses

    def __init__(self, config: LmConfig = LmConfig(), log: Callable[[str], None] | None = None,
                 rebuild: bool = False, progress: DataProgress | None = None):
        self.config = config.validate()
        self.log = log

        def load(seed: int, stage: Stage) -> tuple:
            ds, ref = load_or_build(config.with_options(data_seed=seed), log, rebuild, stage)
            return ds, ref, prepare(ds, ref)

        self.loaded = prepare_datasets(config.seeds_of_data, load, progress)
        self.dataset, self.reference, self.data = self.loaded[0]
        self.training = trainer.TrainingData([r for _, r, _ in self.loaded], [d for _, _, d in self.loaded])
        self.eval_prompts = sample_prompts(config.eval.prompts, np.random.default_rng(config.eval.seed), True)
        self.r_random = random_reward(np.random.default_rng(config.eval.seed + 1))

    @property
    def program_shape(self):
        return self.config.train.shape

    def normalise(self, r):
        return 100.0 * (np.asarray(r) - self.r_random) / (R_IDEAL - self.r_random)

    def evaluate(self, exprs: Sequence, constants: Sequence[dict], seeds, *, eval_seed: int | None = None) -> Evaluation:
        programs, consts = encode(exprs, constants, self.program_shape)
        t0 = time.perf_counter()
        result = self._train(programs, consts, seeds, trainer.Progress(self.log) if self.log else None)
        t1 = time.perf_counter()
        P, S = result.status.shape
        prompts = self.eval_prompts if eval_seed is None else sample_prompts(
            self.config.eval.prompts, np.random.default_rng(eval_seed), True)
        flat = {k: np.asarray(v).reshape((P * S,) + v.shape[2:]) for k, v in result.params.items()}
        key = jax.random.PRNGKey(self.config.eval.seed if eval_seed is None else eval_seed)
        out = generate_population(flat, prompts, key)
        rewards = score_responses(prompts, out).mean(axis=-1).reshape(P, S)
        t2 = time.perf_counter()
        # Beside the fitness (which they leave unchanged): how far each policy moved from
        # its reference, and the score of its greedy decoding.
        datasets = (np.broadcast_to(np.asarray(seeds), (P, S)) % len(self.loaded)).reshape(-1)  # seeds: S or (P, S)
        refs = {k: np.stack([self.loaded[d][1][k] for d in datasets]) for k in flat}
        kl, greedy = diagnose_population(flat, refs, prompts, out)
        greedy = self.normalise(score_responses(prompts, greedy).mean(axis=-1)).reshape(P, S)
        return Evaluation(self.normalise(rewards), [result.reason(p) for p in range(P)],
                          diagnostics={"train_accuracy": result.train_accuracy, "final_loss": result.final_loss,
                                       "reward_w": result.reward_w, "reward_l": result.reward_l,
                                       "kl": kl.reshape(P, S), "greedy": greedy},
                          timing={"train_s": t1 - t0, "score_s": t2 - t1, "diagnose_s": time.perf_counter() - t2})

    def _train(self, programs, consts, seeds, progress=None) -> trainer.PopulationResult:
        """Every program with every seed, seed s on dataset s mod D."""
        return self.training.train(programs, consts, seeds, LIKELIHOOD, self.config.train, progress)

    def terminal_sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return reference_terminals(self.data, n, rng)

    def trained_samples(self, exprs: Sequence, constants: Sequence[dict], n: int,
                        rng: np.random.Generator) -> list[dict[str, np.ndarray] | None]:
        """Terminals at the end of training (see :func:`trained_policy_terminals`)."""
        return trained_policy_terminals(self._train, LIKELIHOOD, self.data, exprs, constants, self.program_shape,
                                        n, rng)

    def baseline(self) -> tuple[float, float]:
        """The SFT reference's score (mean over datasets, std over datasets or 0)."""
        scores = []
        for _, ref, _ in self.loaded:
            out = np.asarray(_generate({k: jnp.asarray(v) for k, v in ref.items()}, jnp.asarray(self.eval_prompts),
                                       jax.random.PRNGKey(self.config.eval.seed)))
            scores.append(float(self.normalise(score_responses(self.eval_prompts, out).mean())))
        return float(np.mean(scores)), float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0

    def describe(self) -> dict[str, Any]:
        return {"evaluator": self.name, "config": self.config.to_dict(), "task": "lm",
                "setting": self.config.dataset.setting,
                "dataset": {"path": _cache_path(self.config), **self.dataset.summary()},
                "datasets": [{"seed": s, **ds.summary()} for s, (ds, _, _) in zip(self.config.seeds_of_data,
                                                                                   self.loaded)],
                "r_random": self.r_random, "train": trainer.describe(self.config.train)}
