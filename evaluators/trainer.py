"""The offline preference-optimisation trainer: a population of losses, one jitted program.

For every candidate loss (an encoded program of the grammar's array interpreter, with
its constants) and every inner seed, a policy initialised from the reference is trained
on the preference pairs with optax Adam. The trainer is generic over the policy: the
evaluator supplies a :class:`LikelihoodModel` (the summed log-likelihood of both
responses of a batch of pairs under given parameters, and the parameters never trained)
and the pairs as :class:`PairData`; the interpreter as the loss, the non-finite guards,
the optimiser and the device layout are the same for every evaluator.

All runs of a population are one jitted function of array inputs: changing the losses
does not recompile. On a CPU the runs go in chunks of a fixed size, each chunk side by
side through the policy (one batched matrix product per layer) and one run after another
through the loss (the interpreter's ``switch`` mode, which must not be vmapped): the
"batched" mode; "map" trains the runs wholly one after another, as before. On an
accelerator every run goes side by side (``vmap``). With several local devices the run
axis is split across them with ``shard_map`` (a no-op with one device).

Every candidate sees the same batches for the same inner seed (common random numbers),
so differences in score come from the losses. A run whose loss, gradient or parameters
go non-finite stops updating at that step and is reported with the step and reason.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from evaluators.device import bucket
# The trainer's configuration lives in its own JAX-free module; its names are re-exported here.
from evaluators.trainer_config import MODES, SCHEDULES, TrainConfig  # noqa: F401
from grammar import interpreter

STATUS = {0: "ok", 1: "non-finite loss", 2: "non-finite gradient", 3: "non-finite parameters"}


@dataclasses.dataclass(frozen=True)
class LikelihoodModel:
    """The policy side of training, supplied by an evaluator.

    ``log_likelihood(params, inputs) -> (B, 2)``: summed log-likelihoods of the chosen
    ([:, 0]) and rejected ([:, 1]) responses of a batch of pairs, where ``inputs`` is the
    evaluator's pytree of per-pair arrays indexed on their leading axis. It must be a
    module-level function (it keys the compilation cache). ``frozen``: names of parameters
    that are never updated (e.g. an observation normaliser).
    """

    log_likelihood: Callable[[Any, Any], jnp.ndarray]
    frozen: tuple[str, ...] = ()


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["inputs", "ref_logp", "lengths"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class PairData:
    """Device arrays of N preference pairs, prepared once by the evaluator."""

    inputs: Any             # pytree of (N, ...) arrays: what ``LikelihoodModel.log_likelihood`` reads
    ref_logp: jnp.ndarray   # (N, 2) the reference's log-likelihoods, [:, 0] chosen, [:, 1] rejected
    lengths: jnp.ndarray    # (N, 2) response lengths (steps or tokens)

    @property
    def size(self) -> int:
        """Pairs in the data."""
        return int(self.ref_logp.shape[0])


def optimizer(learning_rate, grad_clip: float, params,
              frozen: Sequence[str] = ()) -> optax.GradientTransformation:
    """Adam (``learning_rate`` a float or an optax schedule) with global-norm clipping; the
    parameters named in ``frozen`` are not updated."""
    labels = {k: "frozen" if k in frozen else "train" for k in params}
    return optax.multi_transform(
        {"train": optax.chain(optax.clip_by_global_norm(grad_clip), optax.adam(learning_rate)),
         "frozen": optax.set_to_zero()}, labels)


def _pair_loss(logp, ref, lengths, program, consts, progress, imode: str):
    """The mean over a batch of the encoded loss of (B, 2) log-likelihoods ``logp``, and the
    batch's statistics [accuracy, mean r_w, mean r_l] (r = logp - ref)."""
    terms = interpreter.terminal_matrix({
        "logp_w": logp[:, 0], "logp_l": logp[:, 1], "ref_w": ref[:, 0], "ref_l": ref[:, 1],
        "len_w": lengths[:, 0], "len_l": lengths[:, 1], "t": progress})
    losses = interpreter.evaluate(program, terms, consts, imode)
    r_w, r_l = logp[:, 0] - ref[:, 0], logp[:, 1] - ref[:, 1]
    return losses.mean(), jnp.stack([(r_w - r_l > 0).mean(), r_w.mean(), r_l.mean()])


def _batch_index(key, i, config: TrainConfig, n: int):
    """The pairs of step ``i``: drawn from the run's seed alone (common random numbers)."""
    return jax.random.randint(jax.random.fold_in(key, i), (config.batch_pairs,), 0, n)


def _initial_carry(opt, init_params, config: TrainConfig):
    """(params, optimiser state, status, step of failure, last loss, averaged params)."""
    return (init_params, opt.init(init_params), jnp.int32(0), jnp.int32(-1), jnp.float32(jnp.nan),
            init_params if config.ema > 0 else ())


def _update(opt, config: TrainConfig, carry, i, loss, grads):
    """One optimiser step of one run, unless its loss, gradient or new parameters are
    non-finite: then the run keeps its parameters from here on and records why and when."""
    params, opt_state, status, failed_at, last_loss, avg = carry
    updates, new_opt = opt.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    finite_loss = jnp.isfinite(loss)
    finite_grad = jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    finite_params = jnp.all(jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(new_params)]))
    code = jnp.where(~finite_loss, 1, jnp.where(~finite_grad, 2, jnp.where(~finite_params, 3, 0)))
    ok = (status == 0) & (code == 0)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
    params = keep(new_params, params)
    opt_state = keep(new_opt, opt_state)
    if config.ema > 0:
        avg = keep(jax.tree.map(lambda a, p: config.ema * a + (1.0 - config.ema) * p, avg, params), avg)
    failed_at = jnp.where((status == 0) & (code != 0), i, failed_at)
    status = jnp.where(status == 0, code, status)
    last_loss = jnp.where(ok, loss, last_loss)
    return params, opt_state, status, failed_at, last_loss, avg


def _scan_steps(step, carry, config: TrainConfig, runs_axis: bool = False):
    """Runs ``step`` over the training steps: returns (scored params, status, step of failure,
    last loss, training statistics over the last tenth of the steps). With ``runs_axis``
    every carry leaf and statistic has a leading run axis, and so do the outputs."""
    # The scored parameters: the running average, or (ema = 0) the last iterate itself.
    scored = (lambda c: c[5]) if config.ema > 0 else (lambda c: c[0])  # noqa: E731
    steps = config.steps
    tail = max(1, steps // 10)  # training statistics: mean over the last tenth of the steps
    if not config.snapshots:
        carry, stats = jax.lax.scan(step, carry, jnp.arange(steps))
        return scored(carry), carry[2], carry[3], carry[4], stats[-tail:].mean(axis=0)
    # The same steps, cut into equal blocks; the parameters after each block are kept.
    every = steps // config.snapshots

    def block(carry, b):
        carry, stats = jax.lax.scan(step, carry, b * every + jnp.arange(every))
        return carry, (scored(carry), stats)

    carry, (snaps, stats) = jax.lax.scan(block, carry, jnp.arange(config.snapshots))
    stats = stats.reshape((-1,) + stats.shape[2:])[-tail:].mean(axis=0)
    if runs_axis:  # (snapshots, runs, ...) -> (runs, snapshots, ...)
        snaps = jax.tree.map(lambda a: jnp.moveaxis(a, 0, 1), snaps)
    return snaps, carry[2], carry[3], carry[4], stats


def _train_one(program, consts, seed, init_params, data: PairData, model: LikelihoodModel, config: TrainConfig,
               imode: str):
    """One run: returns (scored params, status code, step of failure, last loss, training
    statistics [accuracy, mean r_w, mean r_l] over the last tenth of the steps)."""
    opt = optimizer(config.learning_rate_at(), config.grad_clip, init_params, model.frozen)
    key = jax.random.PRNGKey(seed)

    def loss_fn(params, idx, progress):
        logp = model.log_likelihood(params, jax.tree.map(lambda a: a[idx], data.inputs))
        return _pair_loss(logp, data.ref_logp[idx], data.lengths[idx], program, consts, progress, imode)

    def step(carry, i):
        idx = _batch_index(key, i, config, data.size)
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(carry[0], idx, i / config.steps)
        return _update(opt, config, carry, i, loss, grads), stats

    return _scan_steps(step, _initial_carry(opt, init_params, config), config)


def _train_batched(programs, consts, seeds, which, init_params, data: PairData, model: LikelihoodModel,
                   config: TrainConfig, stacked: bool):
    """The runs of a chunk trained side by side, each exactly as :func:`_train_one` trains it.

    Per step, the policy's forward and backward pass (nearly all the work) is vmapped over
    the runs: each layer is one batched matrix product over every run's rows. Only the loss
    goes run by run (``lax.map``), so that the interpreter keeps its ``switch`` mode (a
    vmapped switch would compute every primitive); it maps the runs' (B, 2) log-likelihoods
    to the cotangents that the VJP of the batched forward pass turns into parameter
    gradients. Nothing mixes runs: a run's result does not depend on its neighbours.
    """
    opt = optimizer(config.learning_rate_at(), config.grad_clip, init_params, model.frozen)
    if stacked:  # leaves (D, ...): run r starts from its dataset's reference
        init = jax.tree.map(lambda a: a[which], init_params)
        pick = lambda a, d, idx: a[d, idx]  # noqa: E731
    else:
        init = jax.tree.map(lambda a: jnp.broadcast_to(a, seeds.shape + a.shape), init_params)
        pick = lambda a, d, idx: a[idx]  # noqa: E731
    n = data.ref_logp.shape[-2]
    keys = jax.vmap(jax.random.PRNGKey)(seeds)
    log_likelihood = jax.vmap(model.log_likelihood)

    def batch(key, d, i):
        idx = _batch_index(key, i, config, n)
        return jax.tree.map(lambda a: pick(a, d, idx), (data.inputs, data.ref_logp, data.lengths))

    def loss_and_cotangent(args):
        logp, ref, lengths, program, c, progress = args
        return jax.value_and_grad(_pair_loss, has_aux=True)(logp, ref, lengths, program, c, progress, "switch")

    def step(carry, i):
        inputs, ref, lengths = jax.vmap(batch, in_axes=(0, 0, None))(keys, which, i)
        logp, pullback = jax.vjp(lambda p: log_likelihood(p, inputs), carry[0])
        progress = jnp.broadcast_to(i / config.steps, seeds.shape)
        (loss, stats), d_logp = jax.lax.map(loss_and_cotangent, (logp, ref, lengths, programs, consts, progress))
        (grads,) = pullback(d_logp)
        carry = jax.vmap(functools.partial(_update, opt, config), in_axes=(0, None, 0, 0))(carry, i, loss, grads)
        return carry, stats

    carry = jax.vmap(lambda p: _initial_carry(opt, p, config))(init)
    return _scan_steps(step, carry, config, runs_axis=True)


_TRACES = [0]


def _run_axis(programs, consts, seeds, which, init_params, data: PairData, model: LikelihoodModel,
              config: TrainConfig, stacked: bool):
    """Trains the runs on this device: one after another (map) or side by side (vmap). With
    ``stacked``, ``init_params`` and ``data`` hold several datasets on a leading axis and
    run i trains on dataset ``which[i]`` from that dataset's reference."""
    mode = config.resolved_mode()
    if mode == "batched":
        return _train_batched(programs, consts, seeds, which, init_params, data, model, config, stacked)
    imode = "switch" if mode == "map" else "select"

    def one(args):
        prog, c, s, d = args
        if stacked:
            pick = lambda a: a[d]  # noqa: E731
            return _train_one(prog, c, s, jax.tree.map(pick, init_params), jax.tree.map(pick, data), model,
                              config, imode)
        return _train_one(prog, c, s, init_params, data, model, config, imode)

    if mode == "map":
        return jax.lax.map(one, (programs, consts, seeds, which))
    return jax.vmap(lambda p, c, s, d: one((p, c, s, d)))(programs, consts, seeds, which)


@functools.partial(jax.jit, static_argnames=("model", "config", "n_devices", "stacked"))
def _train_population(programs, consts, seeds, which, init_params, data: PairData, model: LikelihoodModel,
                      config: TrainConfig, n_devices: int = 1, stacked: bool = False):
    _TRACES[0] += 1  # runs only while tracing, i.e. once per compilation
    if n_devices == 1:
        return _run_axis(programs, consts, seeds, which, init_params, data, model, config, stacked)
    # Split the run axis over the local devices; each trains its share.
    from jax.sharding import PartitionSpec as P

    mesh = jax.sharding.Mesh(np.array(jax.local_devices()[:n_devices]), ("runs",))
    runs = P("runs")
    fn = jax.shard_map(lambda p, c, s, w, i, d: _run_axis(p, c, s, w, i, d, model, config, stacked), mesh=mesh,
                       in_specs=(runs, runs, runs, runs, P(), P()), out_specs=runs, check_vma=False)
    return fn(programs, consts, seeds, which, init_params, data)


@dataclasses.dataclass
class PopulationResult:
    """Trained parameters and training diagnostics of P candidates x S seeds."""

    params: dict[str, np.ndarray]  # leaves shaped (P, S, ...), or (P, S, snapshots, ...) with snapshots
    status: np.ndarray             # (P, S) codes of STATUS
    failed_at: np.ndarray          # (P, S) step of the first non-finite value, -1 if none
    final_loss: np.ndarray         # (P, S)
    train_accuracy: np.ndarray     # (P, S) share of pairs ranked right by the implicit reward
    # (P, S) mean log-ratios logp - ref of the chosen and rejected responses; the implicit
    # reward margin D = reward_w - reward_l (all over the last tenth of training)
    reward_w: np.ndarray
    reward_l: np.ndarray

    def reason(self, p: int) -> str | None:
        """Why candidate ``p`` failed (the first failed seed's reason and step), or None."""
        bad = [(int(self.status[p, s]), int(self.failed_at[p, s])) for s in range(self.status.shape[1])
               if self.status[p, s] != 0]
        if not bad:
            return None
        code, step = bad[0]
        return f"{STATUS[code]} at training step {step} (seed {len(bad)} of {self.status.shape[1]} failed)" \
            if len(bad) < self.status.shape[1] else f"{STATUS[code]} at training step {step}"


def train_population(programs: Sequence[interpreter.Program], constants: np.ndarray,
                     seeds: Sequence[int] | np.ndarray, reference: dict, data: PairData,
                     model: LikelihoodModel, config: TrainConfig,
                     datasets: Sequence[int] | np.ndarray | None = None,
                     progress: Callable[[int, int], None] | None = None) -> PopulationResult:
    """Trains every candidate with every seed; one compilation per shape of the data and,
    on an accelerator, per padded size of P x S (:func:`evaluators.device.bucket`).

    ``seeds`` is either S seeds shared by every candidate or a (P, S) matrix giving each
    candidate its own (the search re-trains elites on fresh seeds in the same program).
    With ``datasets`` (same shapes as ``seeds``: an index per run), ``reference`` and
    ``data`` hold D datasets stacked on a leading axis (:func:`stack_datasets`) and each run
    trains on its own dataset, from that dataset's reference. ``progress(runs_done, runs)``
    is called as runs finish where they train in chunks (the CPU's modes, see
    :class:`Progress`); a single program (vmap, shard_map) reports nothing."""
    seed_arr = np.asarray(seeds, np.int32)
    P = len(programs)
    if seed_arr.ndim == 1:
        seed_arr = np.tile(seed_arr, (P, 1))
    if seed_arr.ndim != 2 or seed_arr.shape[0] != P or seed_arr.shape[1] < 1:
        raise ValueError(f"seeds must be (S,) or ({P}, S), got shape {np.asarray(seeds).shape}")
    S = seed_arr.shape[1]
    which = np.zeros_like(seed_arr) if datasets is None else np.broadcast_to(np.asarray(datasets, np.int32),
                                                                                seed_arr.shape)
    stacked = interpreter.stack(programs)
    rep = lambda a: np.repeat(np.asarray(a), S, axis=0)  # noqa: E731
    flat_programs = {k: rep(v) for k, v in stacked.items()}
    flat_consts = rep(constants).astype(np.float32)
    flat_seeds = seed_arr.reshape(-1)
    flat_which = np.ascontiguousarray(which).reshape(-1)
    init = {k: jnp.asarray(v, jnp.float32) for k, v in reference.items()}
    runs = (flat_programs, flat_consts, flat_seeds, flat_which)
    train = functools.partial(_train_population, init_params=init, data=data, model=model, config=config,
                              stacked=datasets is not None)
    n_dev = len(jax.local_devices())
    if config.resolved_mode() in CHUNK:
        outputs = in_chunks(functools.partial(train, n_devices=n_dev), runs, P * S,
                            CHUNK[config.resolved_mode()] * n_dev, progress)
    else:
        # One program for every run, padded to a few sizes (a compilation serves a search's
        # varying populations) that the local devices divide (one device: no sharding).
        outputs = in_chunks(functools.partial(train, n_devices=n_dev), runs, P * S, bucket(P * S, n_dev, least=8))
    params, status, failed_at, loss, stats = outputs
    shape = lambda a: np.asarray(a).reshape((P, S) + np.asarray(a).shape[1:])  # noqa: E731
    stats = np.asarray(stats)
    return PopulationResult({k: shape(v) for k, v in params.items()}, shape(status), shape(failed_at),
                            shape(loss), shape(stats[:, 0]), shape(stats[:, 1]), shape(stats[:, 2]))


# On a CPU the runs go through one compiled program of this many runs (per device), called
# once per chunk: every population size then shares one compilation.
MAP_CHUNK = 4
CHUNK = {"map": MAP_CHUNK, "batched": MAP_CHUNK}


def in_chunks(fn, args, total: int, chunk: int, progress: Callable[[int, int], None] | None = None):
    """``fn(*args)`` over ``args`` (host arrays, or pytrees of them, with ``total`` rows) in
    chunks of ``chunk`` rows, the last one padded with copies of the final row; the outputs
    are those of the real rows. ``fn`` is then compiled for one shape, whatever ``total``.
    All chunks are dispatched before any result is read, so they queue without gaps; then
    ``progress(rows_done, total)`` is called as each chunk finishes."""
    padded = -(-total // chunk) * chunk
    args = jax.tree.map(lambda a: np.concatenate([a, np.repeat(a[-1:], padded - total, axis=0)]), args)
    outs = [fn(*jax.tree.map(lambda a: a[start:start + chunk], args)) for start in range(0, padded, chunk)]
    if progress is not None:
        for k, out in enumerate(outs):
            jax.block_until_ready(out)
            progress(min((k + 1) * chunk, total), total)
    return jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a])[:total], *outs)


class Progress:
    """A ``progress`` for :func:`train_population` that logs how many runs have trained, at
    most once every ``every_s`` seconds (so nothing for a population that trains faster)."""

    def __init__(self, log: Callable[[str], None], every_s: float = 60.0):
        self.log, self.every_s = log, every_s
        self.began = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self.last >= self.every_s:
            self.last = now
            self.log(f"training: {done}/{total} runs trained ({(now - self.began) / 60:.1f} min)")


def stack_datasets(references: Sequence[dict], data: Sequence[PairData]) -> tuple[dict, PairData]:
    """Several datasets (of equal shapes) and their references on a leading axis, for
    ``train_population(..., datasets=...)``."""
    ref = {k: np.stack([np.asarray(r[k]) for r in references]) for k in references[0]}
    return ref, jax.tree.map(lambda *a: jnp.stack(a), *data)


class TrainingData:
    """The D datasets an evaluator trains on, each with its reference parameters: the run
    with training seed s trains on dataset s mod D, from that dataset's reference (all D in
    one program, stacked once here)."""

    def __init__(self, references: Sequence[dict], data: Sequence[PairData]):
        if not data or len(references) != len(data):
            raise ValueError(f"need one reference per dataset, got {len(references)} for {len(data)}")
        self.references, self.data = list(references), list(data)
        self._stacked = stack_datasets(self.references, self.data) if len(self.data) > 1 else None

    def train(self, programs: Sequence[interpreter.Program], constants: np.ndarray, seeds, model: LikelihoodModel,
              config: TrainConfig, progress: Callable[[int, int], None] | None = None) -> PopulationResult:
        """:func:`train_population` with each run on its seed's dataset."""
        seeds = np.asarray(seeds)
        if self._stacked is None:
            return train_population(programs, constants, seeds, self.references[0], self.data[0], model, config,
                                    progress=progress)
        ref, data = self._stacked
        return train_population(programs, constants, seeds, ref, data, model, config,
                                datasets=seeds % len(self.data), progress=progress)


def compilations() -> int:
    """How many times the population trainer has been traced (and so compiled) in this process."""
    return _TRACES[0]


def describe(config: TrainConfig) -> dict[str, Any]:
    """The training configuration as JSON, with the layout it resolved to and the devices."""
    return {**dataclasses.asdict(config), "resolved_mode": config.resolved_mode(),
            "devices": [str(d) for d in jax.local_devices()]}
