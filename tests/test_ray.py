"""Scoring on a Ray cluster: a local cluster of 2 workers, started here, gives the results
of the single-process path, for one population and for a whole search, and survives a
worker process that dies during a generation."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

ray = pytest.importorskip("ray")  # the `ray` extra; CI installs it with the test extra

from discover.search import Search, SearchConfig  # noqa: E402
from discover.store import RunStore  # noqa: E402
from evaluators import remote  # noqa: E402
from evaluators.errors import InputError  # noqa: E402
from grammar import zoo  # noqa: E402
from toy_evaluator import ToyEvaluator  # noqa: E402

pytestmark = pytest.mark.slow
NAMES = ["dpo", "ipo", "sft", "orpo", "hinge"]
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def pool():
    env = {"PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]),
           "JAX_COMPILATION_CACHE_DIR": os.path.abspath(os.path.join(HERE, "..", ".cache", "jax")),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5"}
    ray.init(num_cpus=2, runtime_env={"env_vars": env}, logging_level="ERROR", log_to_driver=False,
             include_dashboard=False)
    p = remote.RayPool(None)
    yield p
    ray.shutdown()


@pytest.fixture(scope="module")
def toy():
    return ToyEvaluator()


def _losses(names=NAMES):
    return [zoo.ZOO[n].expr for n in names], [zoo.ZOO[n].constants for n in names]


def _same(a, b):
    np.testing.assert_array_equal(a.per_seed, b.per_seed)
    assert a.reasons == b.reasons and a.fitness == b.fitness
    for k in a.diagnostics:
        np.testing.assert_array_equal(np.asarray(a.diagnostics[k]), np.asarray(b.diagnostics[k]))


def test_two_workers_score_a_population_as_one_process_does(pool, toy):
    assert len(pool.actors) == 2 and len(set(pool.pids)) == 2 and os.getpid() not in pool.pids
    exprs, consts = _losses()
    on_ray = remote.RayEvaluator(toy, pool, "toy", toy.config.to_dict(), factory=ToyEvaluator)
    seeds = np.array([[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]])  # per-loss seeds are sliced with their shard
    _same(on_ray.evaluate(exprs, consts, seeds), toy.evaluate(exprs, consts, seeds))
    ev = on_ray.evaluate(exprs, consts, [0, 1])
    _same(ev, toy.evaluate(exprs, consts, [0, 1]))
    assert ev.timing["remote_s"] >= ev.timing["shard_s"] > 0


def test_a_search_on_ray_equals_the_single_process_search(pool, toy, mirror, tmp_path):
    config = SearchConfig(population=6, generations=2, es_trees=1, es_popsize=2, reevaluate=2, final_top=2,
                          holdout_seeds=(100, 101))

    def search(evaluator, name, stop_at=None):
        store = RunStore.create(str(tmp_path), name, {"search": config.to_dict(), "evaluator": "toy",
                                                      "experiment": toy.config.to_dict(),
                                                      "grammar_name": mirror.name}, mirror.path)
        s = Search(mirror, evaluator, config, store)
        s.run(None if stop_at is None else lambda gen, _: gen >= stop_at)
        if stop_at is not None:  # the head was interrupted: a new one resumes from the checkpoint
            s = Search(mirror, evaluator, config, store)
            s.restore(store.latest_checkpoint())
            s.run()
        return s

    on_ray = remote.RayEvaluator(toy, pool, "toy", toy.config.to_dict(), factory=ToyEvaluator)
    local = search(toy, "local")
    strip = lambda h: [{k: v for k, v in g.items() if not k.endswith("_s") and k != "seconds"} for g in h]  # noqa: E731
    resumed = search(on_ray, "ray-resumed", stop_at=1)
    assert strip(resumed.history) == strip(local.history)
    on_ray = search(on_ray, "ray")
    assert strip(on_ray.history) == strip(local.history)
    assert on_ray.cache.keys() == local.cache.keys()  # every candidate scored, with the same scores
    assert [r.get("fitness") for r in on_ray.cache.values()] == [r.get("fitness") for r in local.cache.values()]
    assert on_ray.best() == local.best()


class DyingToy(ToyEvaluator):
    """Kills its own worker process (as a crash or an OOM kill would) the first ``deaths``
    times it is asked to train a population holding ``victim``; counts deaths in a file."""

    def __init__(self, marker: str, victim: str, deaths: int):
        super().__init__()
        self.marker, self.victim, self.deaths = marker, victim, deaths

    def evaluate(self, exprs, constants, seeds, *, eval_seed=None):
        died = os.path.getsize(self.marker) if os.path.exists(self.marker) else 0
        if died < self.deaths and any(str(e) == self.victim for e in exprs):
            with open(self.marker, "a") as f:
                f.write("x")
            os._exit(1)
        return super().evaluate(exprs, constants, seeds, eval_seed=eval_seed)


def test_a_worker_killed_during_a_generation_changes_nothing(pool, toy, tmp_path):
    # The first 2 deaths: Ray restarts the actor and re-runs its shard there; the third (more
    # than its restarts): the actor is gone and the shard runs on the other worker.
    deaths = 3
    exprs, consts = _losses()
    marker = str(tmp_path / "deaths")
    factory = functools.partial(DyingToy, marker, str(exprs[0]), deaths)
    on_ray = remote.RayEvaluator(toy, pool, "toy", {"dying": deaths}, factory=factory)
    _same(on_ray.evaluate(exprs, consts, [0, 1]), toy.evaluate(exprs, consts, [0, 1]))
    assert os.path.getsize(marker) == deaths


class SampledToy(ToyEvaluator):
    """Declares ``trained_samples``, which says which process ran it."""

    abilities = frozenset({"trained_samples"})

    def trained_samples(self, exprs, constants, n, rng):
        return [{"pid": os.getpid()} for _ in exprs]


def test_optional_abilities_run_on_an_actor_or_are_refused(pool, toy):
    exprs, consts = _losses(["dpo"])
    on_ray = remote.RayEvaluator(SampledToy(), pool, "toy", {"sampled": True}, factory=SampledToy)
    assert on_ray.abilities == {"trained_samples"}
    assert on_ray.trained_samples(exprs, consts, 4, np.random.default_rng(0))[0]["pid"] in pool.pids
    plain = remote.RayEvaluator(toy, pool, "toy", toy.config.to_dict(), factory=ToyEvaluator)
    assert plain.abilities == frozenset()
    with pytest.raises(NotImplementedError, match="trained_samples"):
        plain.trained_samples(exprs, consts, 4, np.random.default_rng(0))
    with pytest.raises(NotImplementedError, match="training_curves"):
        plain.training_curves(exprs, consts, [0])


def test_a_cluster_without_room_for_an_actor_is_refused(pool, monkeypatch):
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"memory": 1.0})
    with pytest.raises(InputError, match="no CPU or GPU"):
        remote.RayPool(None)


def test_bad_and_unreachable_addresses_are_refused_at_once():
    with pytest.raises(InputError, match="bad Ray address"):
        remote.connect("head node:6379")
    with pytest.raises(InputError, match="cannot reach a Ray cluster at '127.0.0.1:9'"):
        remote.connect("127.0.0.1:9")  # discard port: nothing listens
