"""Scoring populations on a Ray cluster: the same :class:`~evaluators.interface.Evaluator`,
with ``evaluate`` split into shards of losses run by Ray actors.

Each actor builds the evaluator once (datasets, references; on a node without them
they are built into that node's cache, deterministically) and keeps it, so its trainer
compiles once per shape, not per shard: every shard of a call has the same number of
losses (the last one padded by repeating its last loss). A loss's scores depend only on
its program, constants and seeds (every policy is scored from the same start states),
so a Ray run gives the results of the single-process path on the same hardware and
software (an actor fits its own reference and trains its shard at its own batch size: on
other hardware or a GPU's vmap, results agree only to numerical precision).

Faults: an actor whose process dies is restarted by Ray (its evaluator rebuilt) and its
shard re-run; if it cannot be restarted, the shard goes to another live actor. An
unreachable address or a cluster with nothing to run an actor on is an
:class:`~evaluators.errors.InputError`, raised before any work.

    pool = RayPool("auto")                                   # or "HOST:PORT"
    evaluator = RayEvaluator(local_evaluator, pool, "mujoco", config.to_dict())
    evaluator.evaluate(exprs, constants, seeds)              # shards across the actors

Needs the ``ray`` extra (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import socket
import time
from typing import Any, Callable, Sequence

import numpy as np

from evaluators.errors import InputError
from evaluators.interface import ABILITIES, Evaluation, has_ability

RAY_VERIFIED = ("2.60",)  # Ray releases the pool was tested against (major.minor)
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5})$")


def build_registered(name: str, config: dict):
    """The registry's evaluator ``name`` built from a stored configuration (in an actor)."""
    from evaluators import registry

    return registry.get(name)(registry.config_from_dict(name, config))


class _EvaluatorActor:
    """Holds the evaluators it was asked for (the last few, by key) in one worker process."""

    def __init__(self, threads: int | None = None):
        # An actor given CPUs keeps to them: simulation threads, and no multi-threaded Eigen
        # in XLA (read when JAX first computes, which in this fresh process has not happened).
        if threads:
            os.environ["MPO_DISCOVER_THREADS"] = str(threads)
            os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""),
                                                "--xla_cpu_multi_thread_eigen=false"]).strip()
        self._evaluators: dict[str, Any] = {}

    def pid(self) -> int:
        return os.getpid()

    def _evaluator(self, key: str, factory: Callable[[], Any]):
        if key not in self._evaluators:
            if len(self._evaluators) >= 2:
                self._evaluators.pop(next(iter(self._evaluators)))
            self._evaluators[key] = factory()
        return self._evaluators[key]

    def evaluate(self, key: str, factory: Callable[[], Any], exprs, constants, seeds, eval_seed):
        t0 = time.perf_counter()
        ev = self._evaluator(key, factory).evaluate(exprs, constants, seeds, eval_seed=eval_seed)
        ev.timing["shard_s"] = time.perf_counter() - t0
        return ev

    def call(self, key: str, factory: Callable[[], Any], ability: str, args: tuple, kwargs: dict):
        """One of the evaluator's optional abilities (:data:`~evaluators.interface.ABILITIES`)."""
        return getattr(self._evaluator(key, factory), ability)(*args, **kwargs)


def _check_version(ray) -> None:
    if ".".join(ray.__version__.split(".")[:2]) not in RAY_VERIFIED:
        raise InputError(f"ray {ray.__version__} is not a release this was verified against "
                         f"({', '.join(v + '.x' for v in RAY_VERIFIED)}); install it with pip install -e '.[ray]'")


def connect(address: str | None):
    """Connects to the cluster at ``address`` ("auto": ``RAY_ADDRESS`` or the cluster started
    on this machine with ``ray start --head``; "local": a new one-machine cluster in this
    process; HOST:PORT or ray://HOST:PORT), or uses the one this process already joined."""
    ray = _import_ray()
    if address is not None:
        check_address(address)
    if ray.is_initialized():
        return ray
    if address is None:
        raise InputError("no Ray address given and this process has not joined a cluster")
    try:
        ray.init(address=address, logging_level="ERROR",  # "local": always a new cluster
                 log_to_driver=False, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot reach a Ray cluster at {address!r}: {first}") from e
    return ray


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise InputError("--ray needs Ray: pip install -e '.[ray]'") from e
    _check_version(ray)
    return ray


def check_address(address: str) -> None:
    """A Ray address's form, and for HOST:PORT that something answers there (Ray itself
    retries an unreachable head for minutes); Ray is installed at a verified release."""
    _import_ray()
    if not _ADDRESS.match(address):
        raise InputError(f"bad Ray address {address!r}: use auto, local, HOST:PORT or ray://HOST:PORT")
    if address not in ("auto", "local"):
        _check_reachable(address)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP connection says it at once."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise InputError(f"cannot reach a Ray cluster at {address!r}: {e.strerror or e}") from None


class RayPool:
    """Actors on a Ray cluster, each holding evaluators, that run shards of a population."""

    def __init__(self, address: str | None = "auto", actors: int | None = None,
                 log: Callable[[str], None] | None = None):
        ray = connect(address)
        self._ray = ray
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        per_actor = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        capacity = gpus or cpus
        if capacity < 1:
            raise InputError(f"the Ray cluster at {address!r} has no CPU or GPU to run an actor on "
                             "(are any workers connected?)")
        n = actors or capacity
        if n > capacity:
            raise InputError(f"{n} actors asked for, but the Ray cluster has room for {capacity} "
                             f"({'GPUs' if gpus else 'CPUs'})")
        remote = ray.remote(max_restarts=2, max_task_retries=2, **per_actor)(_EvaluatorActor)
        self.actors = [remote.remote(None if gpus else 1) for _ in range(n)]
        self._dead: set[int] = set()
        self.pids = ray.get([a.pid.remote() for a in self.actors], timeout=300)
        if log:
            log(f"Ray: {n} actors on {len(ray.nodes())} node(s) ({'1 GPU' if gpus else '1 CPU'} each)")

    def evaluate(self, key: str, factory: Callable[[], Any], exprs: Sequence, constants: Sequence[dict],
                 seeds, eval_seed: int | None = None) -> Evaluation:
        """``evaluate`` of the evaluator ``factory()`` builds, its losses split into equal shards."""
        ray = self._ray
        t0 = time.perf_counter()
        P = len(exprs)
        if P == 0:
            raise ValueError("no losses to evaluate")
        seeds = np.asarray(seeds)
        n = min(len(self.actors) - len(self._dead), P) or 1
        size = math.ceil(P / n)
        shards = [list(range(i, min(P, i + size))) for i in range(0, P, size)]

        def submit(k: int, actor):
            idx = shards[k] + [shards[k][-1]] * (size - len(shards[k]))
            s = seeds[idx] if seeds.ndim == 2 else seeds
            return actor.evaluate.remote(key, factory, [exprs[i] for i in idx], [constants[i] for i in idx],
                                         s, eval_seed)

        alive = [i for i in range(len(self.actors)) if i not in self._dead] or list(range(len(self.actors)))
        pending = {submit(k, self.actors[alive[k % len(alive)]]): (k, alive[k % len(alive)])
                   for k in range(len(shards))}
        done: dict[int, Evaluation] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            k, a = pending.pop(ref)
            try:
                done[k] = ray.get(ref)
            except ray.exceptions.RayActorError:
                self._dead.add(a)
                alive = [i for i in range(len(self.actors)) if i not in self._dead]
                if not alive:
                    raise RuntimeError("every Ray actor died; no worker left to run the population on") from None
                b = alive[k % len(alive)]
                pending[submit(k, self.actors[b])] = (k, b)
        return _merge([done[k] for k in range(len(shards))], [len(s) for s in shards],
                      time.perf_counter() - t0)

    def call(self, key: str, factory: Callable[[], Any], ability: str, *args, **kwargs):
        """An optional ability of the evaluator ``factory()`` builds, run whole on one live actor
        (the next one if that actor dies)."""
        for a in [i for i in range(len(self.actors)) if i not in self._dead]:
            try:
                return self._ray.get(self.actors[a].call.remote(key, factory, ability, args, kwargs))
            except self._ray.exceptions.RayActorError:
                self._dead.add(a)
        raise RuntimeError("every Ray actor died; no worker left to run the population on")

    def close(self) -> None:
        """Kills the pool's actors."""
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []


def _merge(parts: list[Evaluation], sizes: list[int], wall: float) -> Evaluation:
    """One Evaluation from the shards' (padding dropped); timing: the slowest shard's phases
    and the wall time of the whole call (its excess over the slowest shard is overhead)."""
    per_seed = np.concatenate([p.per_seed[:n] for p, n in zip(parts, sizes)])
    reasons = [r for p, n in zip(parts, sizes) for r in p.reasons[:n]]
    names = set.intersection(*(set(p.diagnostics) for p in parts))
    diagnostics = {k: np.concatenate([np.asarray(p.diagnostics[k])[:n] for p, n in zip(parts, sizes)])
                   for k in sorted(names)}
    timing = {k: max(p.timing.get(k, 0.0) for p in parts) for k in parts[0].timing}
    timing["remote_s"] = wall
    return Evaluation(per_seed, reasons, diagnostics, timing)


class RayEvaluator:
    """An evaluator whose ``evaluate`` runs on a :class:`RayPool`; the validity gates' sample,
    the reference's score and descriptions come from ``local``, the same evaluator built in
    this process. Its optional abilities are those of ``local``, each run on one actor (they
    train, so they never run here)."""

    def __init__(self, local, pool: RayPool, name: str, config: dict,
                 factory: Callable[[], Any] | None = None):
        self.local = local
        self.pool = pool
        self.name = local.name
        self.reference_label = local.reference_label
        self.program_shape = local.program_shape
        self.abilities = frozenset(local.abilities)
        self._factory = factory or functools.partial(build_registered, name, config)
        self._key = f"{name}:{json.dumps(config, sort_keys=True, default=str)}"

    def evaluate(self, exprs, constants, seeds, *, eval_seed=None) -> Evaluation:
        """Trains and scores the population on the pool's actors (sharded, merged in order)."""
        return self.pool.evaluate(self._key, self._factory, exprs, constants, seeds, eval_seed)

    def _on_an_actor(self, ability: str, *args, **kwargs):
        if not has_ability(self, ability):
            raise NotImplementedError(f"evaluator {self.name!r} does not declare the ability {ability!r}")
        return self.pool.call(self._key, self._factory, ability, *args, **kwargs)

    def trained_samples(self, exprs, constants, n, rng):
        """The local evaluator's ``trained_samples``, run whole on one actor."""
        return self._on_an_actor("trained_samples", exprs, constants, n, rng)

    def training_curves(self, exprs, constants, seeds, points=8, eval_seed=None):
        """The local evaluator's ``training_curves``, run whole on one actor."""
        return self._on_an_actor("training_curves", exprs, constants, seeds, points, eval_seed=eval_seed)

    def terminal_sample(self, n, rng):
        """The local evaluator's sample of pair terminals (no training)."""
        return self.local.terminal_sample(n, rng)

    def baseline(self):
        """The local evaluator's reference score."""
        return self.local.baseline()

    def describe(self):
        """The local evaluator's description."""
        return self.local.describe()

    def __getattr__(self, name):  # the local evaluator's data (its config, ...); never an ability
        if name == "local" or name in ABILITIES:
            raise AttributeError(name)
        return getattr(self.local, name)
