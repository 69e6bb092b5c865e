"""The token-sequence task: its language, data, policy likelihood and evaluator."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evaluators import lm, trainer
from evaluators.errors import InputError
from evaluators.interface import Evaluator
from grammar import zoo


def test_reward_is_one_for_the_ideal_response_and_lower_for_errors():
    rng = np.random.default_rng(0)
    prompts = lm.sample_prompts(50, rng)
    ideal = np.concatenate([lm.ideal(prompts), np.full((50, lm.MAX_RESPONSE - lm.PROMPT), 2)], axis=1)
    full = np.full(50, lm.PROMPT)
    assert np.all(lm.reward(prompts, ideal, full) == 1.0)
    assert np.all(lm.reward(prompts, ideal, full + 2) == 1.0 - 0.25 * 2 / lm.PROMPT)  # too long
    wrong = ideal.copy()
    wrong[:, 0] = np.where(wrong[:, 0] == 2, 3, 2)
    assert np.all(lm.reward(prompts, wrong, full) == 1.0 - 1 / lm.PROMPT)


def test_the_sum_language_adds_two_prompt_tokens_and_credits_the_right_prefix_only():
    prompts = np.array([[2, 3, 4, 11], [11, 11, 2, 5]])
    target = lm.ideal(prompts, "sum")  # x_j + x_(K-1-j) on content indices 0..9, modulo 10
    np.testing.assert_array_equal(target, [[2 + 9, 2 + 3, 2 + 3, 2 + 9], [2 + 2, 2 + 9, 2 + 9, 2 + 2]])
    full = np.full(2, lm.PROMPT)
    pad = np.full((2, lm.MAX_RESPONSE - lm.PROMPT), 2)
    answer = np.concatenate([target, pad], axis=1)
    assert np.all(lm.reward(prompts, answer, full, "sum") == 1.0)
    late = answer.copy()
    late[:, 3] = np.where(late[:, 3] == 2, 3, 2)
    early = answer.copy()
    early[:, 0] = np.where(early[:, 0] == 2, 3, 2)
    assert np.all(lm.reward(prompts, late, full, "sum") == 0.75)
    assert np.all(lm.reward(prompts, early, full, "sum") == 0.0)  # the right tokens after a wrong one earn nothing
    assert np.all(lm.reward(prompts, early, full, "reverse") < 1.0)
    # the data: the systematic error is the plain reversal, labels follow the prefix reward
    cfg = lm.LmDataConfig(setting="clean", pairs=400, seed=3, language="sum")
    ds = lm.build(cfg)
    assert not np.array_equal(ds.tokens, lm.build(lm.LmDataConfig(setting="clean", pairs=400, seed=3)).tokens)
    assert np.all(ds.rewards[:, 0] >= ds.rewards[:, 1])
    for side in (0, 1):  # the labels' rewards are the sum language's, recomputed from the tokens
        resp = ds.tokens[:, side, lm.PROMPT + 1:lm.PROMPT + 1 + lm.MAX_RESPONSE]
        np.testing.assert_array_equal(lm.reward(ds.prompts, resp, ds.lengths[:, side] - 1, "sum"), ds.rewards[:, side])
    assert lm.random_reward(np.random.default_rng(0), 4000, "sum") < lm.random_reward(np.random.default_rng(0), 4000)
    tokens, _ = lm.behave(ds.prompts, np.zeros(400), np.random.default_rng(0), "sum")
    assert 0.6 < np.mean(tokens[:, :lm.PROMPT] == ds.prompts[:, ::-1]) < 0.85  # COPY, and chance
    with pytest.raises(InputError, match="unknown language 'nosuch'"):
        lm.LmDataConfig(language="nosuch").validate()


def test_datasets_of_the_first_language_keep_their_cache_keys():
    import dataclasses
    import hashlib
    import os

    from evaluators.lm.evaluator import _cache_path

    cfg = lm.LmConfig()
    old = {k: v for k, v in dataclasses.asdict(cfg.dataset).items() if k != "language"}
    key = hashlib.sha256(repr((lm.DATA_VERSION, old, dataclasses.asdict(cfg.model))).encode()).hexdigest()[:16]
    assert os.path.basename(_cache_path(cfg)) == f"noisy-{key}.npz"
    assert _cache_path(cfg.with_options(language="sum")) != _cache_path(cfg)


@pytest.mark.parametrize("setting", lm.SETTINGS)
def test_datasets_are_deterministic_and_labelled_by_the_reward(setting):
    cfg = lm.LmDataConfig(setting=setting, eps=0.3, pairs=400, seed=3)
    a, b = lm.build(cfg), lm.build(cfg)
    assert a.summary()["digest"] == b.summary()["digest"]
    assert lm.build(lm.LmDataConfig(setting=setting, pairs=400, seed=4)).summary()["digest"] != a.summary()["digest"]
    s = a.summary()
    if setting == "noisy":
        assert 0.25 < s["flip_rate"] < 0.35 and s["label_disagreement"] > 0.15
    elif setting == "shuffled":  # the chosen side is always the on-prompt response
        assert s["flip_rate"] == 0.0
    else:
        assert s["label_disagreement"] == 0.0  # the chosen side never has the lower reward
    # every sequence: the prompt, SEP, then exactly `length` scored tokens (the response and EOS)
    assert np.all(a.tokens[:, :, lm.PROMPT] == lm.SEP)
    assert np.array_equal(a.mask.sum(-1), a.lengths)
    if setting != "shuffled":
        assert np.array_equal(a.tokens[:, 0, :lm.PROMPT], a.tokens[:, 1, :lm.PROMPT])
    if setting in ("clean", "mixed"):
        assert np.all(a.rewards[:, 0] >= a.rewards[:, 1])


def test_evaluation_prompts_are_in_no_dataset_and_the_search_scores_on_its_own_draws():
    from evaluators import seeds

    data = np.concatenate([lm.build(lm.LmDataConfig(setting=s, pairs=500, seed=k)).prompts
                           for s in lm.SETTINGS for k in (0, 1)])
    evaluation = lm.sample_prompts(512, np.random.default_rng(0), evaluation=True)
    assert not set(lm.prompt_ids(data)) & set(lm.prompt_ids(evaluation))
    assert lm.LmEvalConfig().seed == seeds.SEARCH_EVAL != seeds.BENCH_EVAL


def test_shuffled_pairs_reject_the_answer_to_another_prompt():
    ds = lm.build(lm.LmDataConfig(setting="shuffled", pairs=300))
    assert np.array_equal(ds.tokens[:, 0, :lm.PROMPT], ds.prompts)
    assert not np.array_equal(ds.tokens[:, 1, :lm.PROMPT], ds.prompts)


def test_mixed_data_teach_imitation_the_systematic_error():
    """Most responses in mixed data copy the prompt where the ideal reverses it."""
    ds = lm.build(lm.LmDataConfig(setting="mixed", pairs=2000))
    resp = ds.tokens[:, :, lm.PROMPT + 1:lm.PROMPT + 1 + lm.PROMPT].reshape(-1, lm.PROMPT)
    prompts = np.repeat(ds.prompts, 2, axis=0)
    first = resp[:, 0]
    assert (first == prompts[:, 0]).mean() > (first == prompts[:, -1]).mean()


def test_sequence_likelihood_sums_the_masked_next_token_log_probabilities():
    # jitted here: one compilation each instead of one per operation
    params = jax.jit(lm.init_params, static_argnums=1)(jax.random.PRNGKey(0), lm.LmModelConfig(width=16))
    logits = jax.jit(lm.logits)
    ds = lm.build(lm.LmDataConfig(setting="clean", pairs=64))
    tokens, mask = ds.tokens[:4, 0], ds.mask[:4, 0]
    got = jax.jit(lm.sequence_log_likelihood)(params, jnp.asarray(tokens), jnp.asarray(mask))
    # by hand: position t's token scored by the logits at t - 1 (valid by causality, checked below)
    logp = np.asarray(jax.nn.log_softmax(logits(params, jnp.asarray(tokens)), axis=-1))
    want = [sum(logp[i, t - 1, tokens[i, t]] for t in range(1, lm.SEQ) if mask[i, t]) for i in range(4)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
    # causal: changing a later token leaves the likelihood of earlier ones unchanged
    changed = tokens.copy()
    changed[:, -1] = (tokens[:, -1] + 1) % lm.VOCAB
    np.testing.assert_allclose(logits(params, jnp.asarray(tokens))[:, :-1],
                               logits(params, jnp.asarray(changed))[:, :-1], atol=1e-5)


def test_policies_are_sampled_in_chunks_of_one_compilation():
    """Sampling P policies in chunks gives what one call over all P gives, and every P
    shares the chunk's compilation."""
    cfg = lm.LmModelConfig(width=16)
    init = jax.jit(lm.init_params, static_argnums=1)
    pols = [init(jax.random.PRNGKey(i), cfg) for i in range(11)]
    params = {k: np.stack([np.asarray(p[k]) for p in pols]) for k in pols[0]}
    prompts = lm.sample_prompts(16, np.random.default_rng(0), True)
    key = jax.random.PRNGKey(3)
    for n in (3, 11):
        sub = {k: v[:n] for k, v in params.items()}
        want = np.asarray(lm.model._generate_population(sub, jnp.asarray(prompts), key))
        np.testing.assert_array_equal(lm.generate_population(sub, prompts, key), want)
    compiled = lm.model._generate_population._cache_size()
    lm.generate_population({k: v[:5] for k, v in params.items()}, prompts, key)
    assert lm.model._generate_population._cache_size() == compiled


@pytest.fixture(scope="module")
def small():
    cfg = lm.LmConfig(dataset=lm.LmDataConfig(setting="mixed", pairs=256),
                      train=trainer.TrainConfig(steps=60, batch_pairs=16, learning_rate=1e-3),
                      model=lm.LmModelConfig(width=16, sft_steps=150), eval=lm.LmEvalConfig(prompts=128))
    return lm.LmEvaluator(cfg)


@pytest.mark.slow
def test_the_token_evaluator_trains_and_scores_through_the_interface(small):
    assert isinstance(small, Evaluator)
    ref, _ = small.baseline()
    names = ["dpo", "sft"]
    ev = small.evaluate([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names], [0, 1])
    assert ev.per_seed.shape == (2, 2) and ev.reasons == [None, None]
    # DPO learns from the preference what imitation of the (mostly poor) responses cannot
    assert ev.fitness[0] > ref + 5 and ev.fitness[0] > ev.fitness[1]
    again = small.evaluate([zoo.ZOO[n].expr for n in names[::-1]], [zoo.ZOO[n].constants for n in names[::-1]],
                           [0, 1])  # the same shapes: nothing compiles again
    np.testing.assert_array_equal(again.per_seed[1], ev.per_seed[0])  # a run's score is its own
    x = small.terminal_sample(32, np.random.default_rng(0))
    assert np.all(x["logp_w"] < 0) and np.all(x["len_w"] >= 1)


@pytest.mark.slow
def test_the_token_evaluator_reports_kl_to_the_reference_and_the_greedy_score(small):
    """Beside the fitness: KL(policy || reference) and the greedy-decoding score. A loss with
    no gradient leaves the reference where it is (KL 0, the reference's greedy score);
    DPO moves away from it."""
    from grammar.expr import parse

    still = parse("0 * r_w", zoo.alias_scope(()))
    dpo = zoo.ZOO["dpo"]
    ev = small.evaluate([still, dpo.expr], [{}, dpo.constants], [0, 1])
    assert ev.diagnostics["kl"].shape == ev.diagnostics["greedy"].shape == (2, 2)
    np.testing.assert_allclose(ev.diagnostics["kl"][0], 0.0, atol=1e-6)  # the averaged policy rounds
    ref = {k: jnp.asarray(v) for k, v in small.reference.items()}
    greedy = lm.score_responses(small.eval_prompts, np.asarray(lm.model._greedy(ref, jnp.asarray(small.eval_prompts))))
    np.testing.assert_allclose(ev.diagnostics["greedy"][0], small.normalise(greedy.mean()), rtol=1e-6)
    assert np.all(ev.diagnostics["kl"][1] > 0.01)


@pytest.mark.slow
def test_discover_run_and_bench_on_the_token_task(tmp_path, monkeypatch, capsys):
    """`discover run --task lm` and `discover bench --task lm`, small, in this process."""
    import json
    import sys

    from discover.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    # 64 evaluation prompts: the run re-scores every zoo loss on 5 held-out seeds, and at the
    # default 512 sampling them takes most of this test's time
    small = ["--task", "lm", "--setting", "mixed", "--pairs", "128", "--steps", "20", "--batch", "16",
             "--reference-steps", "150", "--prompts", "64"]
    # Halving and re-training are tested on the pendulum; here only the token task's path
    # through the commands is, as small as it goes.
    for args in (["run", "--grammar", "mirror.yaml", *small, "--population", "10", "--generations", "1",
                  "--datasets", "1", "--no-halving", "--reevaluate", "0", "--final-top", "2", "--name", "lm-run"],
                 ["bench", *small, "--datasets", "1", "--seeds", "4", "--losses", "dpo,sft",
                  "--include", "lm-run:1", "--name", "lm-bench"]):
        monkeypatch.setattr(sys, "argv", ["discover", *args])
        try:
            main()
        except SystemExit as e:
            assert not e.code, capsys.readouterr().err
    out = " ".join(capsys.readouterr().out.split())  # wrapping depends on the console's width
    assert "token sequences" in out and "lm-run#1" in out
    assert "reference (SFT)" in out and "reference (BC)" not in out  # the evaluator names its reference
    config = json.loads((tmp_path / "results" / "lm-run" / "config.json").read_text())
    assert config["evaluator"] == "lm" and config["experiment"]["dataset"]["setting"] == "mixed"
    assert config["experiment"]["model"]["sft_steps"] == 150 and config["experiment"]["eval"]["prompts"] == 64
    bench = json.loads((tmp_path / "results" / "lm-bench" / "results.json").read_text())
    assert [r["name"] for r in bench["losses"]] == ["dpo", "sft", "lm-run#1"]
    assert all(r["fitness"] is not None for r in bench["losses"]) and bench["task"] == "lm"
    assert all(r["kl"]["mean"] >= 0 and len(r["greedy"]["per_dataset"]) == 1 for r in bench["losses"])
    assert "greedy: the score of the policy's greedy decoding" in out


@pytest.mark.slow
def test_the_evaluator_scores_in_its_own_language(small):
    """With --language sum the data, the random baseline and the reference's score follow
    the sum language (the same model shapes, so the same compiled programs)."""
    import dataclasses

    hard = lm.LmEvaluator(dataclasses.replace(small.config, dataset=dataclasses.replace(small.config.dataset,
                                                                                        language="sum")))
    assert hard.r_random == lm.random_reward(np.random.default_rng(hard.config.eval.seed + 1), language="sum")
    assert hard.r_random != small.r_random
    ref = {k: jnp.asarray(v) for k, v in hard.loaded[0].reference.items()}
    out = np.asarray(lm.model._generate(ref, jnp.asarray(hard.eval_prompts), jax.random.PRNGKey(hard.config.eval.seed)))
    want = hard.normalise(lm.score_responses(hard.eval_prompts, out, "sum").mean())
    assert hard.reference_score(hard.loaded[0]) == pytest.approx(want)
    assert hard.reference_score(hard.loaded[0]) != pytest.approx(
        hard.normalise(lm.score_responses(hard.eval_prompts, out).mean()))
    ev = hard.evaluate([zoo.ZOO["sft"].expr], [{}], [0])
    assert np.isfinite(ev.per_seed).all() and ev.diagnostics["greedy"].shape == (1, 1)
