"""`discover bench`: the zoo (or a list of losses) with identical data, seeds and budget."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Callable, Sequence

import jax
import numpy as np

from discover import plots
from discover.rows import SPREAD_DDOF, loss_row
from discover.tuning import mirror_constants
from evaluators import atomic, registry
from evaluators import seeds as seed_spaces
from evaluators import trainer
from evaluators.interface import DataProgress, Evaluator
from grammar import symbolic, zoo
from grammar.losses import Loss


# Seeds the search never uses; tuning the baselines' constants uses yet others
# (evaluators/seeds.py keeps every namespace disjoint).
BENCH_SEED_BASE = seed_spaces.BENCH_TRAIN_BASE
BENCH_EVAL_SEED = seed_spaces.BENCH_EVAL
TUNE_SEEDS = seed_spaces.TUNE_TRAIN
TUNE_EVAL_SEED = seed_spaces.TUNE_EVAL
TUNE_POINTS = (0.1, 0.3, 0.5, 0.7, 0.9)  # positions in each constant's range, on its scale


def zoo_entries(names: Sequence[str]) -> list[Loss]:
    """Zoo losses by name, at the zoo's constants or, written ``NAME@CONSTANT=VALUE`` (one
    ``@`` per constant, e.g. ``dpo@beta=1``), at others within mirror.yaml's bounds."""
    from discover.errors import RunError

    out = []
    for spec in names:
        name, *settings = spec.split("@")
        z = zoo.get(name)
        constants = dict(z.constants)
        given = set()
        for setting in settings:
            key, _, value = setting.partition("=")
            if key in given:
                raise RunError(f"bad --losses entry {spec!r}: {key} is given twice")
            given.add(key)
            if key not in constants:
                raise RunError(f"bad --losses entry {spec!r}: {name} has no constant {key!r} "
                               f"(its constants: {', '.join(constants) or 'none'})")
            try:
                v = float(value)
            except ValueError:
                raise RunError(f"bad --losses entry {spec!r}: {key} needs a number, not {value!r}") from None
            c = mirror_constants().get(key)
            if c is not None and not c.low <= v <= c.high:
                raise RunError(f"bad --losses entry {spec!r}: {key} must be in [{c.low:g}, {c.high:g}]")
            constants[key] = v
        label = z.name if not settings else \
            f"{z.name} ({', '.join(f'{k}={constants[k]:g}' for k in sorted(given))})"
        if any(e.name == label for e in out):
            raise RunError(f"--losses names {label} twice")
        out.append(Loss(label, z.expr, constants, "zoo", z.reference))
    return out


def run_entries(specs: Sequence[str], results_dir: str) -> list[Loss]:
    """``RUN`` or ``RUN:RANK`` -> the run's rank-th loss (by held-out score when the run has
    finished), named ``RUN#RANK``."""
    return [loss for loss, _ in included_runs(specs, results_dir)]


def included_runs(specs: Sequence[str], results_dir: str) -> list[tuple[Loss, tuple[int, ...]]]:
    """:func:`run_entries` with the dataset seeds each run searched on (a bench must not
    score on them, and a loss's effective form is measured on the first)."""
    from discover.errors import RunError
    from discover.run_views import ranked_loss
    from discover.store import RunStore

    out = []
    for spec in specs:
        run, _, rank = spec.partition(":")
        try:
            r = int(rank) if rank else 1
        except ValueError:
            r = 0
        if r < 1:
            raise RunError(f"bad --include {spec!r}: use RUN or RUN:N, N the number discover show gives the loss "
                           "(from 1)")
        store = RunStore.open(run, results_dir)
        out.append((ranked_loss(store, r)[0], tuple(store.evaluator_config()[1].seeds_of_data)))
    return out


def static_ablations(entries: Sequence[Loss], points: Sequence[float] = (0.0, 1.0)) -> list[Loss]:
    """For each discovered loss that uses training progress t: the same formula with t frozen
    at each of ``points`` (0: its early-training form all along; 1: its late form). Scored
    alongside the scheduled loss, they show what the schedule itself buys."""
    from grammar.expr import Expr

    out = []
    for e in entries:
        if e.kind != "discovered" or "t" not in e.expr.terminals:
            continue
        for p in points:
            frozen = e.expr.substitute({("var", "t"): Expr.num(p)})
            out.append(e.derive(f"t={p:g}", f"{e.name} @ t={p:g}", frozen, dict(e.constants),
                                f"{e.source}; training progress t frozen at {p:g}"))
    return out


def effective_candidates(entries: Sequence[Loss]) -> list[Loss]:
    """The entries whose effective forms are measured: discovered losses, not t-frozen twins."""
    return [e for e in entries if e.kind == "discovered" and e.variant is None]


def effective_variants(entries: Sequence[Loss], inputs, threshold: float | None = None) -> list[Loss]:
    """For each discovered loss with additive terms below ``threshold`` of the gradient norm
    on ``inputs`` (see :mod:`grammar.effective`; one dict for all, or one per entry of
    :func:`effective_candidates`): the loss without them, to be scored beside it. Equal
    scores confirm that the pruned form is what the loss does on these data."""
    from grammar import effective

    chosen = effective_candidates(entries)
    per_entry = [inputs] * len(chosen) if isinstance(inputs, dict) else list(inputs)
    out = []
    for e, x in zip(chosen, per_entry):
        form = effective.effective_form(e.expr, e.constants, x,
                                        effective.THRESHOLD if threshold is None else threshold)
        if not form.pruned or not any(form.kept):
            continue
        dropped = ", ".join(f"{100 * s:.2g}%" for s, k in zip(form.shares, form.kept) if not k)
        out.append(e.derive("effective", f"{e.name} (effective)", form.expr,
                            {k: v for k, v in e.constants.items() if k in form.expr.constants},
                            f"{e.source}; terms with gradient shares {dropped} removed"))
    return out


def tuning_grid(constants: dict) -> list[dict]:
    """The default and five points across each constant's range (mirror.yaml's bounds and
    scales), all combinations."""
    import itertools

    bounds = mirror_constants()
    axes = []
    for name, default in constants.items():
        c = bounds[name]
        axes.append(sorted({float(default)} | {round(c.from_unit(u), 6) for u in TUNE_POINTS}))
    return [dict(zip(constants, combo)) for combo in itertools.product(*axes)]


TUNE_PARTS = (8, 6, 5, 4, 3, 2)  # the grid is scored in equal parts (one compiled program for all)


def _parts(n: int, least: int = 8) -> list[tuple[int, int]]:
    """[start, stop) of equal parts of ``n`` jobs: the first number of parts in TUNE_PARTS
    that divides ``n`` into parts of at least ``least`` jobs, else one part."""
    k = next((c for c in TUNE_PARTS if n % c == 0 and n // c >= least), 1)
    return [(i * n // k, (i + 1) * n // k) for i in range(k)]


def tune_zoo(evaluator: Evaluator, names: Sequence[str], log: Callable[[str], None] = print,
             done: "Checkpoints | None" = None,
             progress: Callable[[int, int, int, int], None] | None = None) -> tuple[dict[str, dict], float]:
    """Best constants of each zoo loss on the tuning seeds (grid search) and the seconds it
    took. The grid is scored in equal parts (a run's score does not depend on the others it
    is trained with), each part logged and, with ``done``, kept as a stage of the bench;
    ``progress(parts done, parts, runs trained for this part, tuning runs left)`` before the
    first part and after each (no runs for a part read back from an interrupted run)."""
    jobs = []
    for n in names:
        z = zoo.get(n)
        for consts in tuning_grid(z.constants) if z.constants else []:
            jobs.append((n, z.expr, consts))
    log(f"tuning the constants of {len(names)} baselines: {len(jobs)} settings x {len(TUNE_SEEDS)} seeds ...")
    began, fitness, parts = time.perf_counter(), [], _parts(len(jobs))
    if progress is not None:
        progress(0, len(parts), 0, len(jobs) * len(TUNE_SEEDS))
    earlier = 0.0  # seconds of parts that an interrupted run finished
    for k, (a, b) in enumerate(parts):
        stage = f"tune-part-{k + 1}-of-{len(parts)}"
        got = done.load(stage, shapes={"fitness": (b - a,)}) if done is not None else None
        if got is None:
            part_began = time.perf_counter()
            scores = evaluator.evaluate([j[1] for j in jobs[a:b]], [j[2] for j in jobs[a:b]], TUNE_SEEDS,
                                        eval_seed=TUNE_EVAL_SEED)
            f = np.array([np.nan if v is None else v for v in scores.fitness], dtype=np.float64)
            if done is not None:
                done.save(stage, {"fitness": f}, {"seconds": time.perf_counter() - part_began})
        else:
            f, earlier = got[0]["fitness"], earlier + got[1]["seconds"]
        fitness += [None if np.isnan(v) else float(v) for v in f]
        if progress is not None:
            progress(k + 1, len(parts), (b - a) * len(TUNE_SEEDS) if got is None else 0,
                     (len(jobs) - b) * len(TUNE_SEEDS))
        if len(parts) > 1:
            log(f"tuning: {b}/{len(jobs)} settings scored ({(time.perf_counter() - began) / 60:.1f} min"
                + (", some from an interrupted run)" if earlier else ")"))
    best: dict[str, tuple[float, dict]] = {}
    for (n, _, consts), f in zip(jobs, fitness):
        if f is not None and (n not in best or f > best[n][0]):
            best[n] = (f, consts)
    return {n: c for n, (_, c) in best.items()}, time.perf_counter() - began + earlier


def _evaluator(config, log: Callable[[str], None], wrap: Callable | None,
               data_progress: DataProgress | None = None) -> Evaluator:
    """The evaluator of ``config`` (by its task), its datasets' preparation told to
    ``data_progress``; with ``wrap`` (``discover.app.ray_wrapper``), its training runs on
    Ray actors."""
    local = registry.get(registry.for_task(config.task))(config, log=log, progress=data_progress)
    return local if wrap is None else wrap(local, local.name, config)


def tuned_entries(config, entries: Sequence[Loss], log: Callable[[str], None],
                  wrap: Callable | None = None, done: "Checkpoints | None" = None,
                  progress: Callable[[int, int, int, int], None] | None = None,
                  data_progress: DataProgress | None = None) -> tuple[list[Loss], dict, float]:
    """Each zoo loss with constants, also at the constants that score best on the tuning
    dataset (its own data seed, never a bench's) and tuning seeds; the tuned constants; the
    tuning's seconds (``progress``: see :func:`tune_zoo`)."""
    names = [e.name for e in entries if e.kind == "zoo" and e.constants and e.name in zoo.ZOO]  # not NAME@...
    if not names:
        log("tuning: none of these losses has constants to tune")
        return list(entries), {}, 0.0
    tuner = _evaluator(config.with_options(data_seed=seed_spaces.TUNE_DATA), log, wrap, data_progress)
    tuned, seconds = tune_zoo(tuner, names, log, done, progress)
    return with_tuned(entries, tuned), tuned, seconds


def with_tuned(entries: Sequence[Loss], tuned: dict[str, dict]) -> list[Loss]:
    """``entries``, then each zoo loss again at its tuned constants where tuning moved them."""
    extra = []
    for e in entries:
        if e.kind == "zoo" and e.name in tuned and tuned[e.name] != e.constants:
            consts = ", ".join(f"{k}={v:.3g}" for k, v in tuned[e.name].items())
            extra.append(e.derive("tuned", f"{e.name} (tuned: {consts})", e.expr, tuned[e.name],
                                  f"{e.source}; constants tuned on dataset seed {seed_spaces.TUNE_DATA}, training "
                                  f"seeds {', '.join(map(str, TUNE_SEEDS))}"))
    return list(entries) + extra


class Checkpoints:
    """The finished stages of a bench (the tuning, then each dataset), kept under
    ``OUT/partial/KEY/`` until results.json is written, so that an interrupted bench, run
    again with the same command, redoes only the stage it was in. KEY is a digest of
    everything that sets the scores (configuration, losses and their constants, seeds,
    datasets, the tuning grid and seeds, the JAX backend, the package version; not the
    code itself: resume with the code that started the bench). A stage is a .npz file
    (arrays, and its other fields as JSON, the key among them), written atomically; a
    damaged stage, or one of another shape, is redone. Stages of benches with other
    settings in the same folder are left alone."""

    DIAGNOSTICS = ("train_accuracy", "reward_w", "reward_l", "final_loss")
    # per-unit figures that some evaluators add (the token task: KL(policy || reference) on
    # the evaluation prompts and the greedy-decoding score), kept where every dataset has them
    TASK_DIAGNOSTICS = ("kl", "greedy")
    # each run's own score, nan where that run failed (evaluators.interface.run_scores): kept
    # so that a loss with a failed run still has the scores of its runs that trained
    RUN_SCORE = "run_score"

    def __init__(self, out_dir: str, key: str, log: Callable[[str], None] = print):
        self.root, self.key, self.log = os.path.join(out_dir, "partial"), key, log
        self.dir = os.path.join(self.root, key)
        self.loaded: dict[str, float] = {}  # stages read back, with the seconds they took
        others = sorted(d for d in os.listdir(self.root) if d != key) if os.path.isdir(self.root) else []
        if others:
            log(f"{self.root} also holds the stages of {len(others)} interrupted bench(es) with other settings "
                f"({', '.join(others)}); they are kept")

    @staticmethod
    def key_of(config, entries: Sequence[Loss], seeds: Sequence[int], data_seeds: Sequence[int], tune: bool) -> str:
        """The digest that names a bench's stages: everything that sets its scores (the class
        docstring lists it)."""
        try:
            package = version("mpo-discover")
        except PackageNotFoundError:
            package = None
        what = {"config": config.to_dict(), "seeds": [int(s) for s in seeds],
                "data_seeds": [int(d) for d in data_seeds], "tune": bool(tune),
                "losses": [[e.name, e.kind, str(e.expr), e.constants] for e in entries],
                "backend": jax.default_backend(), "version": package}
        if tune:
            what["tuning"] = {"seeds": list(TUNE_SEEDS), "eval_seed": TUNE_EVAL_SEED, "data": seed_spaces.TUNE_DATA,
                              "grids": {e.name: tuning_grid(e.constants) for e in entries
                                        if e.kind == "zoo" and e.constants and e.name in zoo.ZOO}}
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=float).encode()).hexdigest()[:16]

    def load(self, stage: str, needs: Sequence[str] = (), shapes: dict[str, tuple] | None = None,
             matches: dict | None = None) -> tuple[dict, dict] | None:
        """(arrays, fields) of a finished stage, or None (not there, or damaged: redone).
        ``needs`` names fields it must have, ``matches`` fields with their values, ``shapes``
        the leading shapes of arrays."""
        path = os.path.join(self.dir, f"{stage}.npz")
        if not os.path.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "fields"}
                fields = json.loads(str(z["fields"]))
            ok = (fields.get("key") == self.key and all(n in fields for n in ("seconds", *needs))
                  and all(fields.get(n) == v for n, v in (matches or {}).items())
                  and all(n in arrays and arrays[n].shape[:len(s)] == tuple(s) for n, s in (shapes or {}).items()))
        except Exception:  # noqa: BLE001 - any unreadable file is redone, whatever numpy raises for it
            ok = False
        if not ok:
            self.log(f"{path} is damaged or from another bench: redoing that stage")
            return None
        self.loaded[stage] = float(fields["seconds"])
        return arrays, fields

    def save(self, stage: str, arrays: dict, fields: dict) -> None:
        """Writes a finished stage: its arrays and fields (with the bench's key), atomically."""
        fields = {**fields, "key": self.key}
        atomic.write_with(os.path.join(self.dir, f"{stage}.npz"),
                          lambda f: np.savez(f, fields=np.array(json.dumps(fields, default=float)), **arrays))

    def finish(self) -> None:
        """Removes this bench's stages (its results.json is written), and ``partial/`` if empty."""
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.rmdir(self.root)
        except OSError:
            pass  # other benches' stages, or never created


def _pool(values: list[np.ndarray]) -> np.ndarray:
    """Per-dataset (P, S) arrays side by side: (P, D x S), unit (d, s) at column d x S + s."""
    return np.concatenate(values, axis=1)


def run_bench(config, entries: Sequence[Loss], seeds: Sequence[int], out_dir: str,
              log: Callable[[str], None] = print, tune: bool = False,
              data_seeds: Sequence[int] | None = None, wrap: Callable | None = None,
              effective_checked: Sequence[str] = (), progress: Callable[..., None] | None = None,
              data_progress: DataProgress | None = None) -> dict:
    """Trains every entry with every seed on each dataset (``data_seeds``; default the
    configuration's own), each dataset with its own reference; scores are pooled over
    (dataset, seed) units, and every loss is compared with the best baseline, paired by unit.
    ``wrap`` puts the training on Ray actors (see ``tuned_entries``); ``effective_checked``
    names the entries whose effective forms were measured (recorded in results.json).
    ``progress(stage=, done=, total=, runs=, runs_left=, best=)`` is called after each part
    of a stage ("tuning": parts of the grid; "datasets": one per dataset) with the training
    runs it took (0 when read back), the bench's training runs left (an estimate during the
    tuning, which adds tuned twins) and the best loss so far. Finished stages are kept in
    ``out_dir/partial/KEY/`` (see :class:`Checkpoints`) until results.json is written, so
    the same call after an interruption resumes. ``data_progress`` hears how the preparation
    of each stage's dataset goes."""
    started = time.perf_counter()
    data_seeds = list(data_seeds) if data_seeds is not None else [config.option("data_seed")]
    done = Checkpoints(out_dir, Checkpoints.key_of(config, entries, seeds, data_seeds, tune), log)
    tuned: dict[str, dict] = {}
    tune_s = 0.0
    report = progress or (lambda **_: None)

    def data_runs(n_entries: int) -> int:
        return n_entries * len(seeds) * len(data_seeds)

    if tune:
        entries, tuned, tune_s = _tuning_stage(
            config, entries, done, log, wrap,
            lambda d, t, runs, left: report(stage="tuning", done=d, total=t, runs=runs,
                                            runs_left=left + data_runs(len(entries)), best=None),
            data_progress)
    report(stage="datasets", done=0, total=len(data_seeds), runs=0, runs_left=data_runs(len(entries)), best=None)
    per_seed, reasons, diag, refs, abouts, timing = [], [None] * len(entries), {}, [], [], {}
    trained = Checkpoints.key_of(config, entries, seeds, data_seeds, tune)  # the losses after tuning
    for k, ds in enumerate(data_seeds):
        arrays, fields = _dataset_stage(config, entries, seeds, ds, f"dataset {k + 1}/{len(data_seeds)}", trained,
                                        done, log, wrap, data_progress)
        per_seed.append(arrays["per_seed"])
        reasons = [r or (f"dataset {ds}: {fields['reasons'][i]}" if fields["reasons"][i] else None)
                   for i, r in enumerate(reasons)]
        for name in done.DIAGNOSTICS + tuple(n for n in (*done.TASK_DIAGNOSTICS, done.RUN_SCORE) if n in arrays):
            diag.setdefault(name, []).append(arrays[name])
        refs.append(fields["reference"])
        abouts.append(fields["about"])
        for phase, sec in fields["timing"].items():
            timing[phase] = timing.get(phase, 0.0) + sec
        report(stage="datasets", done=k + 1, total=len(data_seeds),
               runs=0 if f"dataset-{ds}" in done.loaded else len(entries) * len(seeds),
               runs_left=(len(data_seeds) - k - 1) * len(entries) * len(seeds),
               best=_best_so_far(entries, _pool(per_seed), reasons))
    carried = sum(done.loaded.values())  # seconds that an earlier, interrupted run spent on its finished stages
    pooled = _pool(per_seed)
    diag = {name: _pool(v) for name, v in diag.items() if len(v) == len(data_seeds)}
    rows = [_row(z, i, pooled, reasons[i], diag, len(data_seeds)) for i, z in enumerate(entries)]
    _compare_with_best_baseline(rows)
    ref_sd = float(np.std(refs, ddof=1)) if len(refs) > 1 else 0.0
    out = {
        "task": config.task, "setting": config.option("setting"), "effective_checked": list(effective_checked),
        "best_baseline": next((r["vs_best_baseline"]["baseline"] for r in rows if r.get("vs_best_baseline")), None),
        "config": config.to_dict(), "seeds": list(seeds), "data_seeds": data_seeds,
        "units": [[ds, s] for ds in data_seeds for s in seeds],
        "dataset": abouts[0].get("dataset"), "datasets": [a.get("dataset") for a in abouts],
        # the reference's spread is over datasets (each has its own), not over episodes
        "reference": {"mean": float(np.mean(refs)), "std": ref_sd, "per_dataset": refs},
        "behaviour": abouts[0].get("behaviour"),
        "losses": rows,
        "spread_ddof": SPREAD_DDOF,
        "tuned": tuned,
        "timing": {"tune_s": tune_s, **timing, "total_s": time.perf_counter() - started + carried},
        "compilations": trainer.compilations(),
        "machine": {"platform": platform.platform(), "cpu": _cpu_model(), "cpus": os.cpu_count(),
                    "jax_backend": jax.default_backend(),
                    "devices": [str(d) for d in jax.local_devices()]},
    }
    if done.loaded:
        out["resumed_stages"] = list(done.loaded)  # finished by an earlier, interrupted run (timing counts them)
    _write(out, config, out_dir)
    done.finish()
    return out


def _best_so_far(entries: Sequence[Loss], units: np.ndarray, reasons: Sequence[str | None]) -> str | None:
    """The loss with the best mean over the (dataset, seed) units scored so far, and that mean."""
    finite = np.isfinite(units)
    ok = finite.any(axis=1) & np.array([r is None for r in reasons])
    if not ok.any():
        return None
    means = np.where(ok, np.where(finite, units, 0.0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1), -np.inf)
    i = int(np.argmax(means))
    return f"{entries[i].name} {means[i]:.1f}"


def _cpu_model() -> str:
    """The CPU's model name: CPU families differ in the last bit of floating-point kernels,
    which decides whether two benches' datasets (their digests) and rows can be merged."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write(out: dict, config, out_dir: str) -> None:
    """results.json and bench.png."""
    os.makedirs(out_dir, exist_ok=True)
    atomic.write_json(os.path.join(out_dir, "results.json"), out)
    title = config.provenance().title()
    rows = out["losses"]
    plots.bench_bars([r["name"] for r in rows], [r["fitness"] for r in rows], [r["spread"] for r in rows],
                     out["reference"]["mean"], title, os.path.join(out_dir, "bench.png"),
                     registry.reference_label_of_task(config.task))


def _tuning_stage(config, entries: Sequence[Loss], done: Checkpoints, log: Callable[[str], None],
                  wrap: Callable | None, progress: Callable[[int, int, int, int], None] | None = None,
                  data_progress: DataProgress | None = None) -> tuple[list[Loss], dict, float]:
    """The entries with their tuned twins, the tuned constants and the tuning's seconds:
    from ``done`` when an interrupted run of this bench finished the tuning."""
    stage = done.load("tune", needs=("tuned",))
    if stage is not None:
        tuned = stage[1]["tuned"]
        log(f"tuned constants of {len(tuned)} baselines: from {done.dir} (an interrupted run of this bench)")
        return with_tuned(entries, tuned), tuned, stage[1]["seconds"]
    entries, tuned, seconds = tuned_entries(config, entries, log, wrap, done, progress, data_progress)
    done.save("tune", {}, {"tuned": tuned, "seconds": seconds})
    return entries, tuned, seconds


def _dataset_stage(config, entries: Sequence[Loss], seeds: Sequence[int], ds: int, label: str, trained: str,
                   done: Checkpoints, log: Callable[[str], None], wrap: Callable | None,
                   data_progress: DataProgress | None = None) -> tuple[dict, dict]:
    """Every entry trained with every seed on dataset ``ds`` and scored: (arrays, fields), as
    :class:`Checkpoints` stores them; from ``done`` when an interrupted run finished it."""
    stage = done.load(f"dataset-{ds}", needs=("reasons", "reference", "about", "timing"),
                      shapes={n: (len(entries), len(seeds)) for n in ("per_seed", *Checkpoints.DIAGNOSTICS)},
                      matches={"losses": trained})
    if stage is not None:
        log(f"{label} (data seed {ds}): from {done.dir} (an interrupted run of this bench)")
        return stage
    began = time.perf_counter()
    evaluator = _evaluator(config.with_options(data_seed=ds), log, wrap, data_progress)
    log(f"{label} (data seed {ds}): training {len(entries)} losses x {len(seeds)} seeds ({config.train.steps} "
        f"steps, {config.train.batch_pairs} pairs per batch) ...")
    scores = evaluator.evaluate([z.expr for z in entries], [z.constants for z in entries], seeds)
    arrays = {"per_seed": scores.per_seed, **{n: np.asarray(scores.diagnostics[n], dtype=float)
                                              for n in (*done.DIAGNOSTICS, *done.TASK_DIAGNOSTICS, done.RUN_SCORE)
                                              if n in scores.diagnostics}}
    fields = {"reasons": scores.reasons, "reference": evaluator.baseline()[0], "about": evaluator.describe(),
              "timing": scores.timing, "losses": trained, "seconds": time.perf_counter() - began}
    done.save(f"dataset-{ds}", arrays, fields)
    return arrays, fields


def _row(entry: Loss, i: int, pooled: np.ndarray, reason: str | None, diag: dict, n_data: int) -> dict:
    """One loss's scores over every (dataset, seed) unit, per dataset, and its training diagnostics."""
    zoo_forms = _zoo_forms()
    units = pooled[i]
    failed = reason is not None
    by_data = units.reshape(n_data, -1)
    beta = entry.constants.get("beta")
    margin = float(np.mean(diag["reward_w"][i] - diag["reward_l"][i]))
    return loss_row(
        entry, units, reason, source=entry.source, base=entry.base or entry.name, variant=entry.variant,
        same_form_as=zoo_forms.get(symbolic.canonical_hash(entry.expr)) if entry.kind == "discovered" else None,
        per_dataset=[None if failed else float(v) for v in by_data.mean(axis=1)],
        train_accuracy=float(np.mean(diag["train_accuracy"][i])),
        # calibration at the end of training: mean log-ratios and the implicit reward margin
        reward_w=float(np.mean(diag["reward_w"][i])), reward_l=float(np.mean(diag["reward_l"][i])),
        margin=margin, beta_margin=None if beta is None else float(beta) * margin,
        final_loss=[float(v) for v in diag["final_loss"][i]],
        **{f: _task_diagnostic(diag[f][i], failed, n_data) for f in Checkpoints.TASK_DIAGNOSTICS if f in diag},
        **_run_scores(diag.get(Checkpoints.RUN_SCORE), i, failed),
    )


def _run_scores(run_score: np.ndarray | None, i: int, failed: bool) -> dict:
    """``run_scores`` of a failed loss (its units' own scores, None where that run failed),
    where the evaluator measured them; a loss that trained on every unit has them in
    ``per_seed``."""
    if not failed or run_score is None:
        return {}
    return {"run_scores": [None if np.isnan(v) else float(v) for v in run_score[i]]}


def _task_diagnostic(units: np.ndarray, failed: bool, n_data: int) -> dict:
    """A task diagnostic of one loss: its mean over units and per dataset (None if the loss failed)."""
    if failed:
        return {"mean": None, "per_dataset": None}
    return {"mean": float(np.mean(units)), "per_dataset": [float(v) for v in units.reshape(n_data, -1).mean(axis=1)]}


def _compare_with_best_baseline(rows: list[dict]) -> None:
    """Adds ``vs_best_baseline`` to every other scored row: the paired difference over
    units, its p-value, the TOST p-value of equivalence within the margin, and the
    minimum detectable effect (Holm's correction is the report's, over all its verdicts)."""
    from discover import stats

    baselines = [r for r in rows if r["kind"] == "zoo" and r["fitness"] is not None]
    if not baselines:
        return
    best = max(baselines, key=lambda r: r["fitness"])
    for r in rows:
        if r is best or r["fitness"] is None:
            continue
        diff = stats.paired_difference(r["per_seed"], best["per_seed"])
        d = np.asarray([np.nan if a is None or b is None else a - b for a, b in zip(r["per_seed"], best["per_seed"])])
        r["vs_best_baseline"] = {"baseline": best["name"], **diff,
                                 "tost_p": stats.tost(d), "margin": stats.EQUIVALENCE_MARGIN,
                                 "mde": stats.minimum_detectable_effect(diff["sd"], diff["n"])}


@functools.lru_cache(maxsize=1)
def _zoo_forms() -> dict[str, str]:
    return {symbolic.canonical_hash(z.expr): n for n, z in zoo.ZOO.items()}


def default_losses() -> list[str]:
    """The losses a bench trains when none are named: the whole zoo."""
    return [n for n in zoo.ZOO]

