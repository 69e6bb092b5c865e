"""The token task's language: prompts, the ideal response, the ground-truth reward, behaviour
policies of graded quality and the preference pairs they make (NumPy only; the package's
docstring describes the task)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Callable

import numpy as np

EOS, SEP = 0, 1
CONTENT = 10                # content tokens 2 .. 2 + CONTENT - 1
VOCAB = 2 + CONTENT
PROMPT = 4                  # prompt tokens (K in the reward)
MAX_RESPONSE = 6            # response tokens before EOS, at most
SEQ = PROMPT + 1 + MAX_RESPONSE + 1   # prompt, SEP, response, EOS (padded with EOS)
QUALITIES = (0.1, 0.3, 0.5, 0.7, 0.9)
COPY = 0.7                  # a behaviour policy's error copies the prompt's token with this probability
SETTINGS = ("clean", "noisy", "mixed", "shuffled")
@dataclasses.dataclass(frozen=True)
class Language:
    """A token language: its ideal responses, its behaviour policies' systematic error, and
    how the reward credits right tokens."""

    target: Callable[[np.ndarray], np.ndarray]  # (N, PROMPT) prompts -> their ideal responses
    error: Callable[[np.ndarray], np.ndarray]  # prompts -> the systematic error's responses
    prefix_credit: bool  # a right token counts only if all before it are right (else each counts)


# "reverse": the ideal response is the prompt reversed, each right token earns credit, and a
# behaviour policy's error copies the prompt. "sum": harder on every count: token j of the
# ideal response is x_j + x_(K-1-j) modulo the alphabet (two prompt tokens per answer
# token), credit goes to the correct prefix only (a token counts if all before it are
# right: the reward is not a per-token sum), and the systematic error is the plain
# reversal, a plausible half of the answer.
LANGUAGES = {
    "reverse": Language(target=lambda p: p[:, ::-1], error=lambda p: p, prefix_credit=False),
    "sum": Language(target=lambda p: (p[:, ::-1] - 2 + p - 2) % CONTENT + 2, error=lambda p: p[:, ::-1],
                    prefix_credit=True),
}


def ideal(prompts: np.ndarray, language: str = "reverse") -> np.ndarray:
    """(N, PROMPT) ideal responses: the prompts reversed ("reverse"), or each reversed token
    plus the prompt's token at that position, modulo the alphabet ("sum")."""
    return LANGUAGES[language].target(prompts)


def reward(prompts: np.ndarray, responses: np.ndarray, lengths: np.ndarray, language: str = "reverse") -> np.ndarray:
    """Ground-truth reward of responses ((N, MAX_RESPONSE) tokens, the first ``lengths``
    used): the right tokens ("reverse") or the right prefix ("sum") over K, less the length
    penalty."""
    target = ideal(prompts, language)
    k = min(PROMPT, MAX_RESPONSE)
    pos = np.arange(k)
    right = (responses[:, :k] == target[:, :k]) & (pos[None, :] < lengths[:, None])
    hits = (np.cumprod(right, axis=1) if LANGUAGES[language].prefix_credit else right).sum(axis=1)
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


def behave(prompts: np.ndarray, quality: np.ndarray, rng: np.random.Generator,
           language: str = "reverse") -> tuple[np.ndarray, np.ndarray]:
    """Responses of behaviour policies of the given qualities (one per prompt): each token is
    the ideal one with probability q; otherwise the systematic error with probability COPY
    (the prompt's token at that position, "reverse"; the reversed prompt's, "sum"), else
    uniform."""
    n = len(prompts)
    q = np.asarray(quality, float)[:, None]
    pad = lambda a: np.concatenate([a, rng.integers(2, 2 + CONTENT, size=(n, MAX_RESPONSE - PROMPT))], axis=1)  # noqa: E731
    target, copy = pad(ideal(prompts, language)), pad(LANGUAGES[language].error(prompts))
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
    """A token-task dataset: prompts, both responses with masks and lengths, their rewards
    and which labels were flipped."""
    prompts: np.ndarray      # (N, PROMPT)
    tokens: np.ndarray       # (N, 2, SEQ): chosen, rejected
    mask: np.ndarray         # (N, 2, SEQ)
    lengths: np.ndarray      # (N, 2) response tokens + EOS
    rewards: np.ndarray      # (N, 2) ground truth of both sides
    flipped: np.ndarray      # (N,) the label disagrees with the reward

    def summary(self) -> dict[str, Any]:
        """Pairs, label agreement with the reward and flip rate, as JSON."""
        better = self.rewards[:, 0] > self.rewards[:, 1]
        worse = self.rewards[:, 0] < self.rewards[:, 1]
        return {"pairs": int(len(self.prompts)), "label_agreement": float(better.mean()),
                "label_disagreement": float(worse.mean()), "flip_rate": float(self.flipped.mean()),
                "reward_chosen": float(self.rewards[:, 0].mean()), "reward_rejected": float(self.rewards[:, 1].mean()),
                "digest": hashlib.sha256(self.tokens.tobytes() + self.mask.tobytes()).hexdigest()[:16]}


def build(config) -> LmDataset:
    """The preference pairs of ``config`` (an :class:`evaluators.lm.config.LmDataConfig`;
    deterministic in its seed)."""
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
    a_tok, a_len = behave(prompts, q[:, 0], rng, config.language)
    b_tok, b_len = behave(prompts, q[:, 1], rng, config.language)
    other = prompts[np.roll(np.arange(n), 1)] if config.setting == "shuffled" else prompts
    ra, rb = reward(prompts, a_tok, a_len, config.language), reward(other, b_tok, b_len, config.language)
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



def score_responses(prompts: np.ndarray, out: np.ndarray, language: str = "reverse") -> np.ndarray:
    """Rewards of generated continuations (..., N, MAX_RESPONSE + 1): cut at the first EOS
    (a response that never stops has MAX_RESPONSE tokens)."""
    is_eos = out == EOS
    lengths = np.where(is_eos.any(-1), is_eos.argmax(-1), MAX_RESPONSE)
    lengths = np.minimum(lengths, MAX_RESPONSE)
    flat = out.reshape(-1, out.shape[-1])[:, :MAX_RESPONSE]
    p = np.broadcast_to(prompts, out.shape[:-1] + (PROMPT,)).reshape(-1, PROMPT)
    return reward(p, flat, lengths.reshape(-1), language).reshape(out.shape[:-1])


def random_reward(rng: np.random.Generator, n: int = 20000, language: str = "reverse") -> float:
    """Expected reward of random responses (uniform length; each token uniform, or the
    prompt's, whose tokens are themselves uniform: the same expectation)."""
    prompts = sample_prompts(n, rng)
    tokens, lengths = behave(prompts, np.zeros(n), rng, language)
    return float(reward(prompts, tokens, lengths, language).mean())


R_IDEAL = 1.0
