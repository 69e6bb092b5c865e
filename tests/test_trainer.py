"""The offline PO trainer: smoke tests on the tiny task."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from evaluators import mujoco, trainer
from evaluators.mujoco import fitness
from evaluators.interface import encode
from evaluators.device import bucket
from grammar import zoo
from grammar.expr import Expr


def test_reference_better_than_random(pendulum_evaluator):
    mean, _ = pendulum_evaluator.first_reference_score(episodes=10)
    # normalised: random actions score 0, the expert 100
    assert mean > 25.0


def test_reference_fit_never_draws_its_padding(pendulum_evaluator):
    """The behaviour-cloning fit pads its data to a shared length (so datasets whose live-step
    counts differ a little share a compilation) and draws only real rows: padding the same
    data with huge values changes nothing."""
    import jax
    import jax.numpy as jnp

    from evaluators.mujoco import policies as policy_io
    from evaluators.mujoco import reference

    cfg = reference.ReferenceConfig(steps=20, batch=64)
    obs, act = reference.cloning_data(pendulum_evaluator.dataset, cfg.order)
    lo, hi = policy_io.bin_edges(act, cfg.bins)
    params = policy_io.init_params(jax.random.PRNGKey(0), obs.shape[1], act.shape[1], cfg.hidden)
    n = len(obs)
    junk = lambda a, k: np.concatenate([a, np.full((k,) + a.shape[1:], 1e6, a.dtype)])  # noqa: E731
    fits = [reference._fit(params, junk(obs, k), junk(lo, k), junk(hi, k), jnp.int32(n), cfg) for k in (0, 37)]
    for name in params:
        np.testing.assert_array_equal(np.asarray(fits[0][name]), np.asarray(fits[1][name]))
    assert all(n <= bucket(n) <= 1.25 * n for n in range(1, 20000))
    assert len({bucket(n) for n in range(6200, 7000)}) == 1
    assert all(bucket(n, 8) % 8 == 0 and bucket(n, 8) >= bucket(n) for n in range(1, 2000))
    assert {bucket(n, least=64) for n in range(1, 65)} == {64} and bucket(65, least=64) == 80


@pytest.mark.slow
def test_population_trains_scores_and_compiles_once(pendulum_evaluator):
    exp = pendulum_evaluator
    names = ["dpo", "ipo", "orpo", "simpo"]
    before = trainer.compilations()
    scores = exp.evaluate([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names], seeds=[0, 1])
    assert scores.per_seed.shape == (4, 2) and scores.reasons == [None] * 4
    assert all(f is not None and np.isfinite(f) for f in scores.fitness)
    # part of the population again gives the same scores (deterministic, whatever runs share a
    # compiled chunk or pad it); other sizes and losses compile nothing new
    again = exp.evaluate([zoo.ZOO[n].expr for n in names[:3]], [zoo.ZOO[n].constants for n in names[:3]],
                         seeds=[0, 1])
    np.testing.assert_array_equal(again.per_seed, scores.per_seed[:3])
    other = ["hinge", "bco", "exo", "sppo"]
    exp.evaluate([zoo.ZOO[n].expr for n in other], [zoo.ZOO[n].constants for n in other], seeds=[0, 1])
    assert trainer.compilations() - before <= 1


def test_progress_is_reported_as_chunks_finish_and_changes_nothing(pendulum_evaluator):
    import jax

    exp = pendulum_evaluator
    names = ["dpo", "ipo", "orpo"]
    programs, consts = encode([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names],
                              exp.program_shape)
    calls, lines = [], []
    logged = trainer.Progress(lines.append, every_s=0.0)

    def progress(done, total):
        calls.append((done, total))
        logged(done, total)

    def train(**kw):
        return trainer.train_population(programs, consts, [0, 1], exp.reference, exp.data, mujoco.LIKELIHOOD,
                                        exp.config.train, **kw)

    with_progress, without = train(progress=progress), train()
    chunk = trainer.MAP_CHUNK * len(jax.local_devices())
    assert calls == [(min(k, 6), 6) for k in range(chunk, 6 + chunk, chunk)]
    # a line per finished chunk but the last (the caller reports the end)
    assert [line.split(" (")[0] for line in lines] == [f"training: {d}/6 runs trained" for d, _ in calls[:-1]]
    for k in without.params:
        np.testing.assert_array_equal(with_progress.params[k], without.params[k])
    np.testing.assert_array_equal(with_progress.final_loss, without.final_loss)


def test_non_finite_candidate_is_rejected_and_isolated(pendulum_evaluator):
    exp = pendulum_evaluator
    # log(logp_w): logp_w < 0, so the loss is nan from the first step
    bad = Expr.call("log", Expr.var("logp_w"))
    dpo = zoo.ZOO["dpo"]
    scores = exp.evaluate([dpo.expr, bad, dpo.expr, dpo.expr], [dpo.constants, {}, dpo.constants, dpo.constants],
                          seeds=[0, 1])
    assert scores.fitness[1] is None
    assert "non-finite loss at training step 0" in scores.reasons[1]
    assert scores.fitness[0] is not None and scores.reasons[0] is None
    # the healthy candidates are unaffected by their neighbour
    np.testing.assert_allclose(scores.fitness[0], scores.fitness[2])
    # each run's own score: nan where that run failed, the per-seed score elsewhere
    run = scores.diagnostics["run_score"]
    assert np.isnan(run[1]).all() and np.isnan(scores.per_seed[1]).all()
    np.testing.assert_array_equal(run[[0, 2, 3]], scores.per_seed[[0, 2, 3]])


def test_zero_budget_is_a_user_error():
    from evaluators.errors import InputError

    with pytest.raises(InputError, match="training steps must be at least 1"):
        trainer.TrainConfig(steps=0).validate()
    with pytest.raises(InputError, match="unknown backend"):
        fitness.EvalConfig(backend="gpu-please").validate()


def test_training_moves_the_policy(pendulum_evaluator):
    exp = pendulum_evaluator
    dpo = zoo.ZOO["dpo"]
    # 4 x 2 runs, the shape the population tests above compiled
    programs, consts = encode([dpo.expr] * 4, [dpo.constants] * 4, exp.program_shape)
    result = trainer.train_population(programs, consts, [0, 1], exp.reference, exp.data, mujoco.LIKELIHOOD,
                                      exp.config.train)
    moved = max(float(np.abs(result.params[k][0, 0] - exp.reference[k]).max()) for k in exp.reference)
    assert moved > 1e-4
    assert 0.0 <= result.train_accuracy[0, 0] <= 1.0


SHARD_SCRIPT = """
import json, jax, numpy as np
assert len(jax.local_devices()) == 2, jax.local_devices()
from evaluators.mujoco import MujocoConfig, MujocoEvaluator
from grammar import zoo
exp = MujocoEvaluator(MujocoConfig.from_dict(json.loads({config!r})))
names = ["dpo", "ipo", "orpo", "simpo"]
scores = exp.evaluate([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names], [0, 1])
np.save("{out}", scores.diagnostics["final_loss"])
"""


@pytest.mark.slow
def test_sharding_over_two_devices_matches_one(tmp_path, pendulum_evaluator):
    """The run axis split over two (virtual CPU) devices trains exactly what one device does."""
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "losses.npy"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    script = SHARD_SCRIPT.format(out=out, config=json.dumps(pendulum_evaluator.config.to_dict()))
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=600, capture_output=True)
    exp = pendulum_evaluator  # the script's configuration: its one-device program is compiled already
    names = ["dpo", "ipo", "orpo", "simpo"]
    scores = exp.evaluate([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names], [0, 1])
    np.testing.assert_allclose(np.load(out), scores.diagnostics["final_loss"], rtol=1e-5)


def test_recipe_warms_up_then_decays_linearly():
    cfg = trainer.TrainConfig(steps=100, learning_rate=1e-3, warmup=0.1)
    lr = cfg.learning_rate_at()
    assert float(lr(0)) == 0.0
    assert float(lr(10)) == pytest.approx(1e-3)
    assert float(lr(5)) == pytest.approx(5e-4)
    assert float(lr(55)) == pytest.approx(5e-4)
    assert float(lr(100)) == pytest.approx(0.0, abs=1e-12)
    assert trainer.TrainConfig(schedule="constant").learning_rate_at() == 3e-4
    # stored configurations from before the recipe keep a constant rate and the last iterate
    old = trainer.TrainConfig.from_dict({"steps": 200, "batch_pairs": 32, "learning_rate": 3e-4})
    assert old.schedule == "constant" and old.ema == 0.0


def test_scored_parameters_are_the_moving_average(pendulum_evaluator):
    """With ema = d, the scored parameters are d-weighted averages of the iterates: for a
    constant rate and d = 0.5 over 2 steps, (init / 4 + p1 / 4 + p2 / 2)."""
    exp = pendulum_evaluator
    dpo = zoo.ZOO["dpo"]
    programs, consts = encode([dpo.expr], [dpo.constants], exp.program_shape)
    base = dataclasses.replace(exp.config.train, steps=2, schedule="constant", ema=0.0)

    def train(cfg):
        r = trainer.train_population(programs, consts, [0], exp.reference, exp.data, mujoco.LIKELIHOOD, cfg)
        return {k: v[0, 0] for k, v in r.params.items()}

    iterates = train(dataclasses.replace(base, snapshots=2))  # the iterates after steps 1 and 2
    p1, p2 = ({k: v[i] for k, v in iterates.items()} for i in (0, 1))
    avg = train(dataclasses.replace(base, ema=0.5))
    for k in ("w0", "b0"):
        want = 0.25 * exp.reference[k] + 0.25 * p1[k] + 0.5 * p2[k]
        np.testing.assert_allclose(avg[k], want, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_several_datasets_in_one_program(pendulum_evaluator):
    """With two datasets, seed s trains on dataset s mod 2 from that dataset's reference: the
    same runs as on each dataset alone."""
    from evaluators.mujoco import MujocoEvaluator

    base = pendulum_evaluator.config
    both = MujocoEvaluator(base.with_data_seeds([0, 1]))
    second = MujocoEvaluator(base.with_options(data_seed=1))
    assert both.dataset.digest == pendulum_evaluator.dataset.digest
    assert second.dataset.digest != pendulum_evaluator.dataset.digest
    dpo = zoo.ZOO["dpo"]
    pooled = both.evaluate([dpo.expr], [dpo.constants], [0, 1, 2, 3]).diagnostics["final_loss"][0]
    alone0 = pendulum_evaluator.evaluate([dpo.expr], [dpo.constants], [0, 2]).diagnostics["final_loss"][0]
    alone1 = second.evaluate([dpo.expr], [dpo.constants], [1, 3]).diagnostics["final_loss"][0]
    np.testing.assert_allclose(pooled, [alone0[0], alone1[0], alone0[1], alone1[1]], rtol=1e-5)
    mean, spread = both.baseline()
    assert np.isfinite(mean) and spread >= 0
    with pytest.raises(ValueError, match="one reference per dataset"):
        trainer.TrainingData([both.reference], both.training.data)


@pytest.mark.slow
def test_batched_and_vmap_modes_train_what_map_mode_trains(pendulum_evaluator):
    """The CPU's two layouts (runs one after another; runs side by side through the policy)
    and the accelerator's (every run side by side, 15 runs padded to 16) train the same
    policies up to float32 rounding, scores included; a non-finite run stops alone in each,
    at the same step."""
    exp = pendulum_evaluator
    names = ["dpo", "ipo", "orpo", "simpo"]
    exprs = [zoo.ZOO[n].expr for n in names] + [Expr.call("log", Expr.var("logp_w"))]
    programs, consts = encode(exprs, [zoo.ZOO[n].constants for n in names] + [{}], exp.program_shape)
    results = {mode: trainer.train_population(programs, consts, [0, 1, 2], exp.reference, exp.data,
                                              mujoco.LIKELIHOOD, dataclasses.replace(exp.config.train, mode=mode))
               for mode in ("map", "batched", "vmap")}
    old = results["map"]
    assert (old.status[:4] == 0).all() and (old.status[4] == 1).all()
    old_scores = fitness.score_population(exp.task, exp.behaviour, old, exp.config.eval)[0][:4]
    for new in (results["batched"], results["vmap"]):
        np.testing.assert_array_equal(old.status, new.status)
        np.testing.assert_array_equal(old.failed_at, new.failed_at)
        for k in old.params:
            np.testing.assert_allclose(new.params[k], old.params[k], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(new.final_loss[:4], old.final_loss[:4], rtol=1e-4, atol=1e-5)
        scores = fitness.score_population(exp.task, exp.behaviour, new, exp.config.eval)[0][:4]
        np.testing.assert_allclose(scores, old_scores, atol=0.5)  # normalised return, points of 100


def test_batched_run_does_not_depend_on_its_chunk(pendulum_evaluator):
    """A run trained side by side with others gets the same parameters whichever runs share
    (or pad) its chunk."""
    exp = pendulum_evaluator
    cfg = dataclasses.replace(exp.config.train, mode="batched")

    def dpo_run(names):
        programs, consts = encode([zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names],
                                  exp.program_shape)
        r = trainer.train_population(programs, consts, [3], exp.reference, exp.data, mujoco.LIKELIHOOD, cfg)
        return {k: v[names.index("dpo"), 0] for k, v in r.params.items()}

    alone, shared = dpo_run(["dpo"]), dpo_run(["hinge", "orpo", "dpo", "ipo"])
    for k in alone:
        np.testing.assert_allclose(shared[k], alone[k], rtol=1e-6, atol=1e-7)
