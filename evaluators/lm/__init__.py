"""The token-task wing (``--task lm``): offline preference optimisation of a small
causal transformer on a synthetic language with a known reward.

The language. A prompt is ``PROMPT`` content tokens; the ideal response is the prompt
reversed, then EOS. The ground-truth reward of a response y to a prompt x is

    R(x, y) = (1/K) sum_j [y_j = reversed(x)_j]  -  0.25 |len(y) - K| / K,     K = PROMPT,

in [-0.25, 1] (1 for the ideal response). Behaviour policies of graded quality q write
each token of the ideal response with probability q, and otherwise mostly copy the
prompt's token (a systematic error) or write a uniform one; they stop at the ideal
length with probability q (at a uniform length otherwise). On data dominated by poor
policies, imitation learns the error.

A harder language (``language="sum"``, ``--language sum``): answer token j is
x_j + x_(K-1-j) modulo the alphabet, the reward credits the correct prefix only (a right
token after a wrong one earns nothing), and the systematic error is the plain reversal
(see :data:`~evaluators.lm.language.LANGUAGES`).

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

The wing: :mod:`~evaluators.lm.language` (the language and its data, NumPy only),
:mod:`~evaluators.lm.config` (the configuration and its options),
:mod:`~evaluators.lm.model` (the transformer, decoding, the SFT reference) and
:mod:`~evaluators.lm.evaluator` (:class:`LmEvaluator`); their public names are
re-exported here.
"""

from evaluators import lazy

# The public names of each module of the wing, imported on first use (evaluators.lazy).
__getattr__, __all__ = lazy.exports(__name__, {
    "config": ("LmConfig", "LmDataConfig", "LmEvalConfig", "LmModelConfig"),
    "evaluator": ("LmEvaluator", "load_or_build", "prepare"),
    "language": ("CONTENT", "COPY", "DATA_VERSION", "EOS", "MAX_RESPONSE", "PROMPT", "QUALITIES", "R_IDEAL",
                 "LANGUAGES", "SEP", "SEQ", "SETTINGS", "VOCAB", "LmDataset", "behave", "build", "ideal", "prompt_ids",
                 "random_reward", "reward", "sample_prompts", "score_responses", "sequences"),
    "model": ("HEADS", "LIKELIHOOD", "diagnose_population", "fit_reference", "generate_population",
              "init_params", "logits", "pair_log_likelihood", "sequence_log_likelihood"),
})
