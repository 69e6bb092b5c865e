"""Shared test setup: a persistent JAX compilation cache and module-scoped fixtures."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
_CACHE = os.environ.get("JAX_COMPILATION_CACHE_DIR",
                        os.path.join(os.path.dirname(__file__), "..", ".cache", "jax"))

# Datasets and references built by tests go to a private cache, never the user's.
os.environ.setdefault("MPO_DISCOVER_CACHE", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".cache",
                                                                         "test-data")))

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.path.abspath(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


# Test files that take longest (about 20-50 s each with cold caches on 2 cores), longest
# first: the two workers take files in this order (``--no-loadscope-reorder``), so that
# neither is left with a long file at the end while the other idles. The rest follow in
# collection order.
SLOWEST_FIRST = ("test_lm.py", "test_cli_run.py", "test_backends.py", "test_search.py", "test_trainer.py",
                 "test_ray.py", "test_datasets.py", "test_interpreter.py")


def pytest_collection_modifyitems(config, items):
    stale = [name for name in SLOWEST_FIRST if not os.path.exists(os.path.join(os.path.dirname(__file__), name))]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py SLOWEST_FIRST names missing files: {stale}")
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order


@pytest.fixture(scope="session")
def mirror():
    from grammar import load as load_grammar

    return load_grammar("mirror.yaml")


@pytest.fixture(scope="session")
def free():
    from grammar import load as load_grammar

    return load_grammar("free.yaml")


def pair_inputs(rng: np.random.Generator, n: int, scale: float = 5.0, length: float = 10.0):
    """Random per-pair terminals with mean log-likelihoods below 0 (as probabilities give)."""
    def logp():
        return -np.abs(rng.normal(size=n)) * scale * length - 0.1 * length

    return {
        "logp_w": logp(), "logp_l": logp(), "ref_w": logp(), "ref_l": logp(),
        "len_w": np.full(n, length), "len_l": np.full(n, length),
        "t": rng.uniform(0, 1, size=n),
    }


@pytest.fixture(scope="session")
def pendulum_evaluator():
    """A small pendulum MuJoCo evaluator (dataset, reference, prepared data), built once."""
    from evaluators import trainer
    from evaluators.mujoco import datasets, fitness, reference
    from evaluators.mujoco import MujocoConfig, MujocoEvaluator

    config = MujocoConfig(
        dataset=datasets.DatasetConfig(task="pendulum", setting="clean", pairs=300, segment=20, seed=0),
        train=trainer.TrainConfig(steps=60, batch_pairs=16),
        eval=fitness.EvalConfig(episodes=3),
        reference=reference.ReferenceConfig(steps=800),
    )
    return MujocoEvaluator(config)
