"""One-shot accelerator check of the MJX path: parity, rollout throughput, trainer
throughput and one generation of the default search on ``--backend mjx``.

Writes one file, ``results/benchmarks/gpu_check-<platform>-<size>-<date>[-<checks>].txt``
(the checks named only when not all ran, so an earlier record is never overwritten), with
every figure and the machine it came from. On an accelerator (the default ``--size full``, on Hopper) it
takes a few minutes; ``--size small`` runs the same steps with small shapes on the
pendulum, and is how it is tested on a CPU (``tests/test_backends.py``).

    python benchmarks/gpu_check.py [--size full|small] [--checks parity,rollouts,generations,large]
                                   [--envs 512,2048] [--steps 1000] [--no-halving]
                                   [--out results/benchmarks]

``--envs`` and ``--steps`` change the rollout check's batch sizes and control steps; the
header records ``XLA_FLAGS`` when set, so that runs under different XLA options (one
process each: XLA reads them once) can be told apart.

A check that fails is written down with the end of its traceback and the next one runs,
so one run of a few minutes on a borrowed machine says as much as it can.

1. parity: MJX against native MuJoCo, same policies and start states (Hopper, relative
   difference of returns over a short horizon; on a GPU MJX computes in float32);
2. MJX rollouts with the policy in the loop: physics steps per second at several batch
   sizes;
3. the population trainer (vmap on accelerators): candidate trainings per hour at the
   default budget;
4. generations of the default search (Hopper, mirror.yaml, successive halving) scored on
   ``--backend mjx``: seconds per generation once compiled (the steady state) and candidate
   trainings per hour including scoring;
5. the same at a large population (256 in the full mode, without halving: one scoring call
   per generation).

The file is rewritten after every check, so a run stopped at its time limit keeps what
it measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import traceback

import jax
import numpy as np

SIZES = {
    # task, envs for throughput, control steps, population, training steps, pairs, segment, episodes,
    # reference steps (None: the default); small runs every step on the cheapest task (pendulum), so
    # that a CPU test of it stays short (its dataset and reference are those of tests/test_cli_run.py)
    "full": dict(task="hopper", envs=(512, 2048, 8192), steps=1000, population=32, train_steps=200, pairs=2000,
                 segment=25, episodes=16, parity_envs=8, parity_steps=40, reference_steps=None, generations=3,
                 large_population=256, large_generations=2),
    "small": dict(task="pendulum", envs=(16,), steps=100, population=4, train_steps=20, pairs=200, segment=20,
                  episodes=2, parity_envs=8, parity_steps=100, reference_steps=800, generations=2,
                  large_population=None, large_generations=None),
}
# In the small mode parity, the rollout step and the generation's scoring (4 losses x 2
# seeds x 2 episodes) all run 16 environments in chunks of 100 control steps: one MJX
# compilation on a CPU, which tests/test_backends.py's early-stop test shares.


def parity(size: dict) -> str:
    from evaluators.mujoco import policies as policy_io
    from evaluators.mujoco.backends import mjx, native
    from evaluators.mujoco.tasks import get_task

    task = get_task(size["task"])
    m = task.mj_model()
    obs_dim = len(task.observation(m.qpos0, np.zeros(m.nv), np))
    pols = []
    for i in range(size["parity_envs"]):
        p = jax.tree.map(np.asarray, policy_io.init_params(jax.random.PRNGKey(i), obs_dim, m.nu))
        p["w2"] = p["w2"] * 30.0  # make the actions matter
        pols.append(p)
    stacked = policy_io.stack(pols)
    steps = size["parity_steps"]
    a = native.evaluate_returns(task, stacked, policy_io.PolicySpec(), episodes=2, seed=3, horizon=steps)
    b = mjx.evaluate_returns(task, stacked, policy_io.PolicySpec(), episodes=2, seed=3, horizon=steps)
    rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1.0)))
    return f"parity ({size['task']}, {steps} control steps, {a.size} episodes): max relative difference {rel:.2e}"


def rollouts(size: dict) -> list[str]:
    """MJX physics steps per second at each batch size of ``size["envs"]`` (no episode ends)."""
    return [_rollouts(size, n) for n in size["envs"]]


def _rollouts(size: dict, n: int) -> str:
    from evaluators.mujoco import policies as policy_io
    from evaluators.mujoco.backends import mjx, native
    from evaluators.mujoco.tasks import get_task

    task = get_task(size["task"])
    model = task.mj_model()
    rng = np.random.default_rng(0)
    steps = size["steps"]
    obs_dim = len(task.observation(model.qpos0, np.zeros(model.nv), np))
    pols = [jax.tree.map(np.asarray, policy_io.init_params(jax.random.PRNGKey(i), obs_dim, model.nu))
            for i in range(max(n // 8, 1))]
    stacked = {k: np.repeat(v, n // len(pols), axis=0) for k, v in policy_io.stack(pols).items()}
    qpos, qvel = native.initial_qpos_qvel(task, model, n, rng)
    # the scoring's own simulator (its chunks of control steps), every step simulated even
    # once an episode has ended: a batch steps every environment either way
    msim = mjx.simulator(task)
    t0 = time.perf_counter()
    msim.run(stacked, policy_io.PolicySpec(), qpos, qvel, steps, stop_early=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    msim.run(stacked, policy_io.PolicySpec(), qpos, qvel, steps, stop_early=False)
    run = time.perf_counter() - t0
    physics = n * steps * task.frame_skip
    return (f"MJX rollouts, policy in the loop ({n} envs x {steps} control steps x {task.frame_skip}): "
            f"{physics / run:,.0f} physics steps/s (compile {first - run:.1f} s)")


_EXPERIMENTS: dict = {}


def _experiment(size: dict):
    """The MuJoCo evaluator of ``size`` on ``--backend mjx``, built once (its dataset and
    reference too) for the checks that share it."""
    from evaluators.mujoco import MujocoConfig, MujocoEvaluator

    cfg = MujocoConfig().with_options(task=size["task"], setting="noisy", pairs=size["pairs"],
                                      segment=size["segment"], steps=size["train_steps"], episodes=size["episodes"],
                                      reference_steps=size["reference_steps"], backend="mjx")
    key = repr(cfg.to_dict())
    if key not in _EXPERIMENTS:
        started = time.perf_counter()
        _EXPERIMENTS[key] = MujocoEvaluator(
            cfg, log=lambda m: print(f"  [{time.perf_counter() - started:.0f} s] {m}", flush=True))
    return _EXPERIMENTS[key]


def trainer_and_generation(size: dict, tmp: str) -> list[str]:
    from evaluators import trainer
    from grammar import zoo

    exp = _experiment(size)
    cfg = exp.config
    names = list(zoo.ZOO)[: size["population"]]
    losses = [zoo.ZOO[n] for n in names]
    exp.evaluate([z.expr for z in losses], [z.constants for z in losses], [0, 1])  # compile
    ev = exp.evaluate([z.expr for z in losses], [z.constants for z in losses], [0, 1])
    runs = len(losses) * 2
    lines = [f"trainer ({trainer.describe(cfg.train)['resolved_mode']}, {cfg.train.steps} steps x "
             f"{cfg.train.batch_pairs} pairs): {runs} runs in {ev.timing['train_s']:.1f} s -> "
             f"{3600 * runs / ev.timing['train_s']:,.0f} training runs (loss x seed) per hour; scoring on MJX "
             f"{ev.timing['score_s']:.1f} s"]
    return lines + search_generations(size, tmp, size["population"], size["generations"],
                                      halving=size.get("halving", True))


def large_population(size: dict, tmp: str) -> list[str]:
    return search_generations(size, tmp, size["large_population"], size["large_generations"], halving=False)


def search_generations(size: dict, tmp: str, population: int, generations: int, halving: bool = True) -> list[str]:
    """Generations of the default search at ``population``: each one's seconds, and the
    steady state (every generation after the first, which compiles)."""
    from discover.search import Search, SearchConfig
    from discover.store import RunStore
    from grammar import load as load_grammar

    exp = _experiment(size)
    g = load_grammar("mirror.yaml")
    # The default search's shape (successive halving, re-evaluation of elites) at this
    # population: its rungs change the batch from call to call, which the padded sizes of
    # the trainer and the MJX scoring absorb after the first generation.
    # (The small mode trains all seeds at once, as the trainer check above: on a CPU each
    # new batch size would cost MJX a compilation of half a minute.)
    small = dict(es_trees=1, es_popsize=2, reevaluate=0, inner_seeds=(0, 1), halving=False)
    search_cfg = SearchConfig(population=population, generations=generations,
                              **(small if population < 16 else {"halving": halving}))
    store = RunStore.create(os.path.join(tmp, f"p{population}"), "gpu-check",
                            {"search": search_cfg.to_dict(), "experiment": exp.config.to_dict(),
                             "grammar_name": g.name}, g.path)
    trained, runs_by_generation = [0], []
    evaluate = exp.evaluate

    def counting(exprs, constants, seeds, **kw):  # training runs: losses x seeds of every call
        trained[0] += len(exprs) * np.asarray(seeds).shape[-1]
        return evaluate(exprs, constants, seeds, **kw)

    exp.evaluate = counting
    try:
        started = time.perf_counter()

        def report(info: dict) -> None:  # progress, so that a run stopped at its limit shows how far it got
            runs_by_generation.append(trained[0])
            print(f"  population {population}, generation {info['generation']}: {info['seconds']:.1f} s "
                  f"({time.perf_counter() - started:.0f} s since the search started)", flush=True)

        search = Search(g, exp, search_cfg, store, report=report,
                        phase=lambda m: print(f"  population {population}: {m} "
                                              f"({time.perf_counter() - started:.0f} s)", flush=True))
        search.run()
    finally:
        exp.evaluate = evaluate
    runs = np.diff([0] + runs_by_generation)
    lines = []
    for h, n in zip(search.history, runs):
        lines.append(f"generation {h['generation']} of {population} candidates"
                     f"{' (successive halving)' if search_cfg.halving else ''} on "
                     f"--backend mjx: {h['seconds']:.1f} s (train {h['train_s']:.1f}, score {h['score_s']:.1f}), "
                     f"{n} training runs; best fitness {h['best_fitness']:.1f}")
    steady = search.history[1:]
    seconds = sum(h["seconds"] for h in steady)
    runs = int(runs[1:].sum())
    lines.append(f"steady state at population {population} (generations 1-{len(search.history) - 1}): "
                 f"{seconds / len(steady):.1f} s per generation, {runs / len(steady):.0f} training runs per "
                 f"generation, {3600 * runs / seconds:,.0f} candidate trainings (loss x seed) per hour including "
                 f"scoring")
    return lines


def _versions() -> str:
    import mujoco

    devices = jax.devices()
    kind = getattr(devices[0], "device_kind", "?")
    return (f"JAX {jax.__version__} backend {jax.default_backend()}, {len(devices)} device(s) ({kind}); "
            f"MuJoCo {mujoco.__version__}; numpy {np.__version__}; Python {platform.python_version()}")


def _step(lines: list[str], name: str, fn, *args) -> bool:
    """Runs one check; a failure is written down (its last traceback lines) and the next runs."""
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as e:  # noqa: BLE001 - a check that breaks is a result, not a reason to stop
        tail = traceback.format_exc().strip().splitlines()[-6:]
        lines.append(f"{name}: FAILED after {time.perf_counter() - t0:.0f} s: {type(e).__name__}: {e}")
        lines.extend("    " + t for t in tail)
        print("\n".join(lines[-1 - len(tail):]), flush=True)
        return False
    for line in [out] if isinstance(out, str) else out:
        lines.append(line)
        print(line, flush=True)
    return True


CHECKS = ("parity", "rollouts", "generations", "large")


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--checks", default=None,
                    help=f"the checks to run, comma-separated, of {','.join(CHECKS)} (default: all those of "
                         "the size; only the full size has large)")
    ap.add_argument("--envs", default=None, help="the rollout check's batch sizes, comma-separated")
    ap.add_argument("--steps", type=int, default=None, help="the rollout check's control steps")
    ap.add_argument("--no-halving", action="store_true",
                    help="the generations check without successive halving: one training and one scoring call "
                         "per generation")
    ap.add_argument("--out", default=os.path.join("results", "benchmarks"))
    args = ap.parse_args(argv)
    size = dict(SIZES[args.size])
    try:
        if args.envs is not None:
            size["envs"] = tuple(int(n) for n in args.envs.split(","))
            if not size["envs"] or min(size["envs"]) < 1:
                raise ValueError(args.envs)
    except ValueError:
        ap.error(f"--envs: {args.envs!r} is not a comma-separated list of positive integers")
    size["halving"] = not args.no_halving
    if args.steps is not None:
        if args.steps < 1:
            ap.error(f"--steps: {args.steps} is not a positive number of control steps")
        size["steps"] = args.steps
    applicable = [c for c in CHECKS if c != "large" or size["large_population"]]
    chosen = applicable if args.checks is None else [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CHECKS))
    if unknown or not chosen:
        ap.error(f"--checks: {', '.join(unknown) or 'none given'}; choose from {', '.join(CHECKS)}")
    if "large" in chosen and not size["large_population"]:
        ap.error(f"--checks large: --size {args.size} has no large population")
    chosen = [c for c in CHECKS if c in chosen]
    started = time.perf_counter()
    lines = [f"gpu_check --size {args.size} --checks {','.join(chosen)}{' --no-halving' if args.no_halving else ''} on "
             f"{platform.node() or 'unknown'}, {time.strftime('%Y-%m-%d')}: {_versions()}"
             + (f"; XLA_FLAGS={os.environ['XLA_FLAGS']}" if os.environ.get("XLA_FLAGS") else "")]
    print(lines[0], flush=True)
    os.makedirs(args.out, exist_ok=True)
    which = ("" if chosen == applicable else "-" + "_".join(chosen)) + ("-nohalving" if args.no_halving else "")
    path = os.path.join(args.out, f"gpu_check-{jax.default_backend()}-{args.size}-{time.strftime('%Y-%m-%d')}{which}.txt")

    def write(ok: bool | None = None) -> None:
        tail = [] if ok is None else [f"total {time.perf_counter() - started:.0f} s; "
                                      f"{'all checks ran' if ok else 'SOME CHECKS FAILED'}"]
        with open(path, "w") as f:
            f.write("\n".join(lines + tail) + "\n")

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        checks = {"parity": ("parity", parity, size), "rollouts": ("MJX rollouts", rollouts, size),
                  "generations": ("trainer and generations", trainer_and_generation, size, tmp),
                  "large": (f"population {size['large_population']}", large_population, size, tmp)}
        for key in CHECKS:
            if key not in chosen:
                continue
            name, fn, *fargs = checks[key]
            ok &= _step(lines, name, fn, *fargs)
            write()
    write(ok)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    if "SOME CHECKS FAILED" in open(main()).read():
        raise SystemExit(1)
