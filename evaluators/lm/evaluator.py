"""The token task's evaluator: each dataset and its SFT reference (cached by configuration),
training with the shared trainer, and fitness as the normalised ground-truth reward of the
trained policies' sampled responses (see the package's docstring)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from evaluators import atomic, trainer
from evaluators.cache import cache_dir
from evaluators.interface import DataProgress, Stage
from evaluators.lm.config import LmConfig
from evaluators.lm.language import (DATA_VERSION, R_IDEAL, LmDataset, build, random_reward, sample_prompts,
                                    score_responses)
from evaluators.lm.model import (LIKELIHOOD, _generate, diagnose_population, fit_reference, generate_population,
                                 sequence_log_likelihood)
from evaluators.pairwise import LoadedData, PairwiseEvaluator


def _cache_path(config: LmConfig) -> str:
    """Where the dataset of ``config`` and its reference are cached (keyed by the data's
    version and the data and model settings)."""
    data = dataclasses.asdict(config.dataset)
    if data["language"] == "reverse":  # the first language: its datasets keep the keys they had
        del data["language"]
    key = hashlib.sha256(repr((DATA_VERSION, data, dataclasses.asdict(config.model))).encode())
    return os.path.join(cache_dir(), "lm", f"{config.dataset.setting}-{key.hexdigest()[:16]}.npz")


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
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = {**dataclasses.asdict(ds), **{f"ref_{k}": v for k, v in ref.items()}}
    atomic.write_with(path, lambda f: np.savez(f, **arrays))
    if log:
        s = ds.summary()
        log(f"lm {config.dataset.setting} data (seed {config.dataset.seed}): {s['pairs']} pairs, label agreement "
            f"{s['label_agreement']:.3f}; reference fitted in {time.perf_counter() - t0:.0f} s")
    return ds, ref


def prepare(ds: LmDataset, ref: dict) -> trainer.PairData:
    """The dataset as device arrays: tokens, scored-token masks, the reference's
    log-likelihoods and the response lengths."""
    tokens, mask = jnp.asarray(ds.tokens), jnp.asarray(ds.mask)
    ref_logp = sequence_log_likelihood({k: jnp.asarray(v) for k, v in ref.items()}, tokens, mask)
    return trainer.PairData({"tokens": tokens, "mask": mask}, ref_logp, jnp.asarray(ds.lengths))


class LmEvaluator(PairwiseEvaluator):
    """Datasets, SFT references and prepared data of one :class:`LmConfig`, loaded once;
    fitness is the normalised ground-truth reward of sampled responses."""

    name = "lm"
    Config = LmConfig
    reference_label = "SFT"  # the reference is supervised fine-tuning on both responses
    likelihood = LIKELIHOOD

    def __init__(self, config: LmConfig = LmConfig(), log: Callable[[str], None] | None = None,
                 rebuild: bool = False, progress: DataProgress | None = None):
        super().__init__(config, log, rebuild, progress)
        self.eval_prompts = sample_prompts(config.eval.prompts, np.random.default_rng(config.eval.seed), True)
        self.language = config.dataset.language
        self.r_random = random_reward(np.random.default_rng(config.eval.seed + 1), language=self.language)

    def load_dataset(self, config: LmConfig, rebuild: bool, stage: Stage) -> LoadedData:
        """One dataset of the task (built on a cache miss) and its SFT reference, prepared."""
        ds, ref = load_or_build(config, self.log, rebuild, stage)
        return LoadedData(ds, _cache_path(config), ref, prepare(ds, ref))

    def normalise(self, r):
        """Rewards on the fitness scale: 0 for random responses, 100 for the ideal one."""
        return 100.0 * (np.asarray(r) - self.r_random) / (R_IDEAL - self.r_random)

    def score(self, result, seeds, eval_seed, timing):
        """Normalised rewards of sampled responses; beside them (the fitness does not use
        them) how far each policy moved from its reference (``kl``) and the score of its
        greedy decoding (``greedy``)."""
        t1 = time.perf_counter()
        P, S = result.status.shape
        prompts = self.eval_prompts if eval_seed is None else sample_prompts(
            self.config.eval.prompts, np.random.default_rng(eval_seed), True)
        flat = {k: np.asarray(v).reshape((P * S,) + v.shape[2:]) for k, v in result.params.items()}
        key = jax.random.PRNGKey(self.config.eval.seed if eval_seed is None else eval_seed)
        out = generate_population(flat, prompts, key)
        rewards = score_responses(prompts, out, self.language).mean(axis=-1).reshape(P, S)
        t2 = time.perf_counter()
        datasets = (np.broadcast_to(seeds, (P, S)) % len(self.loaded)).reshape(-1)  # seeds: S or (P, S)
        refs = {k: np.stack([self.loaded[d].reference[k] for d in datasets]) for k in flat}
        kl, greedy = diagnose_population(flat, refs, prompts, out)
        greedy = self.normalise(score_responses(prompts, greedy, self.language).mean(axis=-1)).reshape(P, S)
        timing.update(score_s=t2 - t1, diagnose_s=time.perf_counter() - t2)
        return self.normalise(rewards), {"kl": kl.reshape(P, S), "greedy": greedy}

    def reference_score(self, loaded: LoadedData) -> float:
        """The normalised reward of an SFT reference's sampled responses."""
        out = np.asarray(_generate({k: jnp.asarray(v) for k, v in loaded.reference.items()},
                                   jnp.asarray(self.eval_prompts), jax.random.PRNGKey(self.config.eval.seed)))
        return float(self.normalise(score_responses(self.eval_prompts, out, self.language).mean()))

    def describe_scoring(self) -> dict:
        """How this evaluator scores a policy, for run stores and reports."""
        return {"r_random": self.r_random}
