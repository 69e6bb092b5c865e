"""The ``discover`` command line (typer + rich).

Errors a user can cause (a bad grammar file, an unknown task, a missing run) are
reported in one line on stderr with exit code 2 and no traceback; anything else is a
bug and raises.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from discover.errors import user_errors
from discover.search import SearchConfig
from evaluators.datasets import DatasetConfig
from evaluators.fitness import EvalConfig
from evaluators.trainer import TrainConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Discover preference-optimisation losses as readable formulas "
         "(Mirror Preference Optimization, searched by evolution on MuJoCo preference data).",
)
grammar_app = typer.Typer(no_args_is_help=True, help="Inspect and validate grammar files.")
app.add_typer(grammar_app, name="grammar")
data_app = typer.Typer(no_args_is_help=True, help="Behaviour policies and preference datasets.")
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

# Every default below comes from the config dataclasses, where it is written once.
DATA, TRAIN, EVAL, SEARCH = DatasetConfig(), TrainConfig(), EvalConfig(), SearchConfig()


class UsageProblem(Exception):
    """A bad combination of options (a user error)."""


# --------------------------------------------------------------------------- grammar side
@app.command("zoo")
def zoo_cmd(latex: bool = typer.Option(False, "--latex", help="Show LaTeX instead of text.")):
    """List the hand-designed losses (the zoo): name, closed form, reference."""
    from grammar import symbolic, zoo

    table = Table(title="The zoo (r_y = logp_y - ref_y, m_y = logp_y / len_y, t = progress)",
                  show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("closed form")
    table.add_column("constants")
    table.add_column("reference")
    for name, z in zoo.ZOO.items():
        form = symbolic.latex(z.expr) if latex else symbolic.text(z.expr)
        consts = ", ".join(f"{k}={v:g}" for k, v in z.constants.items())
        table.add_row(name, form, consts, z.reference)
    console.print(table)


@grammar_app.command("check")
def grammar_check(
    file: str = typer.Argument(..., help="Grammar file, or the name of a shipped one (mirror.yaml)."),
    depth: int = typer.Option(2, help="Count distinct canonical trees up to this derivation depth."),
    limit: int = typer.Option(1000, help="Enumerate at most this many derivations."),
):
    """Validate a grammar file and summarise it."""
    from grammar import derivation, symbolic, zoo
    from grammar import load as load_grammar

    g = load_grammar(file)
    console.print(f"[bold green]valid[/] grammar [bold]{g.name}[/] ({g.path}); start symbol {g.start}")
    if g.description:
        console.print(g.description)
    nts = Table(title="nonterminals")
    for col in ("name", "params", "productions"):
        nts.add_column(col)
    for nt in g.nonterminals.values():
        extra = f" [dim](increasing on {list(nt.increasing)})[/]" if nt.increasing else ""
        nts.add_row(nt.name, ", ".join(nt.params) or "-",
                    ", ".join(p.label for p in nt.productions) + extra)
    console.print(nts)
    console.print(f"[bold]primitives[/]: {', '.join(g.primitives)}")
    console.print(f"[bold]terminals[/]: {', '.join(g.terminals)}")
    consts = Table(title="constants")
    for col in ("name", "default", "low", "high", "scale"):
        consts.add_column(col)
    for c in g.constants.values():
        consts.add_row(c.name, f"{c.default:g}", f"{c.low:g}", f"{c.high:g}", c.scale)
    console.print(consts)
    console.print(f"[bold]limits[/]: max_depth {g.limits.max_depth}, max_size {g.limits.max_size}; "
                  f"forbidden nestings: {', '.join(f'{a}({b}(.))' for a, b in g.forbid_nesting) or 'none'}")
    if g.seeds:
        seeds = Table(title="seeds (derivations of zoo losses)")
        for col in ("zoo loss", "derivation", "matches zoo formula"):
            seeds.add_column(col)
        for name, text in g.seeds.items():
            e = derivation.expand(g, derivation.parse_derivation(g, text))
            if name in zoo.ZOO:
                ok = symbolic.canonical_hash(e) == symbolic.canonical_hash(zoo.ZOO[name].expr)
                mark = "[green]yes[/]" if ok else "[red]NO[/]"
            else:
                mark = "[yellow]not a zoo loss[/]"
            seeds.add_row(name, text, mark)
        console.print(seeds)
    started = time.time()
    nodes, truncated = derivation.enumerate_nodes(g, depth, limit)
    hashes, valid = set(), 0
    with console.status(f"canonicalising {len(nodes)} derivations ..."):
        for n in nodes:
            e = derivation.expand(g, n)
            if derivation.check(g, n, e) is None:
                valid += 1
                hashes.add(symbolic.canonical_hash(e))
    more = "at least " if truncated else ""
    console.print(f"up to derivation depth {depth}: {more}{len(nodes)} derivations, {valid} valid, "
                  f"[bold]{len(hashes)} distinct canonical losses[/] ({time.time() - started:.1f} s)")


@app.command("expr", context_settings={"ignore_unknown_options": True})
def expr_cmd(
    text: str = typer.Argument(..., help="A loss in the text form, e.g. '-log_sigmoid(beta*(r_w - r_l))'."),
    grammar: Optional[str] = typer.Option(None, "--grammar",
                                          help="Resolve names with this grammar's definitions and constants."),
):
    """Parse a loss; print its closed form, LaTeX, canonical hash and complexity."""
    from grammar import load as load_grammar
    from grammar import symbolic, zoo
    from grammar.expr import parse

    if grammar:
        g = load_grammar(grammar)
        e = g.parse(text)
        defaults = {c: g.constants[c].default for c in e.constants}
    else:
        g = load_grammar("mirror.yaml")
        e = parse(text, zoo.alias_scope(tuple(g.constants)))
        defaults = {c: g.constants[c].default for c in e.constants}
    h = symbolic.canonical_hash(e)
    console.print("[bold]closed form[/]")
    console.print(symbolic.pretty(e, wrap_line=False), soft_wrap=True, highlight=False)
    console.print(f"[bold]text[/]        {symbolic.text(e)}", soft_wrap=True, highlight=False)
    console.print(f"[bold]LaTeX[/]       {symbolic.latex(e)}", soft_wrap=True, highlight=False)
    console.print(f"[bold]canonical[/]   {symbolic.canonical(e)}", soft_wrap=True, highlight=False)
    console.print(f"[bold]hash[/]        {h}")
    console.print(f"[bold]complexity[/]  {symbolic.complexity(e)}")
    console.print(f"[bold]constants[/]   {', '.join(f'{k} (default {v:g})' for k, v in defaults.items()) or 'none'}")
    same = [n for n, z in zoo.ZOO.items() if symbolic.canonical_hash(z.expr) == h]
    if same:
        console.print(f"[bold]zoo[/]         same canonical form as {', '.join(same)}")


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(directory):
        raise UsageProblem(f"output directory does not exist: {directory}")
    from evaluators import atomic

    atomic.write_text(path, text)


@app.command("export")
def export_cmd(
    run: Optional[str] = typer.Argument(None, help="A run under results/ (or a path to one)."),
    zoo_name: Optional[str] = typer.Option(None, "--zoo", help="Export a zoo loss instead of a run's."),
    rank: int = typer.Option(1, "--rank", help="Which of the run's hall of fame (1 = best)."),
    fmt: str = typer.Option("jax", "--format", "-f", help="jax, torch or trl."),
    output: str = typer.Option(..., "--output", "-o", help="The .py file to write."),
    results_dir: str = typer.Option("results", help="Where runs are."),
):
    """Write a loss as a standalone Python module (JAX or PyTorch) or a TRL trainer."""
    from grammar import export, zoo

    if fmt not in ("jax", "torch", "trl"):
        raise UsageProblem(f"--format must be jax, torch or trl, not {fmt!r}")
    if (run is None) == (zoo_name is None):
        raise UsageProblem("give either a RUN or --zoo NAME")
    if zoo_name:
        z = zoo.get(zoo_name)
        expr, constants = z.expr, z.constants
        title, provenance = f"{zoo_name}: {z.formula}", z.reference
    else:
        from discover.report import ranked_entry
        from discover.store import RunStore

        store = RunStore.open(run, results_dir)
        expr, constants, provenance = ranked_entry(store, rank)
        title = f"Discovered loss, rank {rank} of run {store.name}"
    if fmt == "trl":
        src = export.export_trl(expr, constants, title, provenance)
    else:
        src = export.export_module(expr, constants, fmt, title, provenance)
    _write_atomic(output, src)
    console.print(f"wrote {output} ({fmt}): {title}")


# --------------------------------------------------------------------------- evaluators side
@data_app.command("policies")
def data_policies(
    task: str = typer.Option("hopper", help="Task (hopper, walker2d, half_cheetah, pendulum)."),
    trainer: str = typer.Option("sac", help="sac or sb3 (stable-baselines3, native MuJoCo) or brax (PPO on MJX)."),
    steps: Optional[int] = typer.Option(None, help="Environment steps (default: per task)."),
    episodes: int = typer.Option(10, help="Episodes to measure each checkpoint's return."),
    out: Optional[str] = typer.Option(None, help="Directory (default: evaluators/behaviour_policies/TASK)."),
    seed: int = typer.Option(0),
):
    """Train behaviour policies of graded quality with an existing RL trainer and keep
    checkpoints at about 10, 30, 50, 70, 90 and 100% of the best return."""
    from evaluators.behaviour import default_config, train_behaviour_policies
    from evaluators.tasks import get_task

    t = get_task(task)
    if trainer not in ("sac", "sb3", "brax"):
        raise UsageProblem(f"--trainer must be sac, sb3 or brax, not {trainer!r}")
    if steps is not None and steps < 1:
        raise UsageProblem("--steps must be positive")
    overrides = {"trainer": trainer, "seed": seed}
    if steps:
        overrides["num_timesteps"] = steps
    cfg = default_config(task, **overrides)
    kept = train_behaviour_policies(t, cfg, episodes=episodes, out_dir=out, log=console.print)
    table = Table(title=f"behaviour policies for {task}")
    for col in ("name", "training step", "return (mean ± std)"):
        table.add_column(col)
    for k in kept:
        table.add_row(k["name"], f"{k['ppo_step']:,d}", f"{k['return']:.1f} ± {k['return_std']:.1f}")
    console.print(table)


@data_app.command("build")
def data_build(
    task: str = typer.Option(DATA.task),
    setting: str = typer.Option(DATA.setting, help="clean, noisy, mixed or shuffled."),
    eps: float = typer.Option(DATA.eps, help="Label-flip probability (noisy), in [0, 0.5)."),
    pairs: int = typer.Option(DATA.pairs),
    segment: int = typer.Option(DATA.segment, help="Control steps per segment (H)."),
    label_horizon: int = typer.Option(DATA.label_horizon, help="Steps whose return labels a pair (at least --segment)."),
    seed: int = typer.Option(DATA.seed),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if cached."),
):
    """Build (or load from the cache) a preference dataset and its reference policy; summarise it."""
    from evaluators import datasets, reference

    cfg = datasets.DatasetConfig(task=task, setting=setting, eps=eps, pairs=pairs, segment=segment, seed=seed,
                                 label_horizon=label_horizon).validate()
    ds, path, built = datasets.load_or_build(cfg, rebuild=rebuild, log=console.print)
    _, ref_path = reference.load_or_fit(ds, path, rebuild=rebuild)
    s = ds.summary()
    console.print(f"{'built' if built else 'cached'}: {path}")
    console.print(f"reference (behaviour cloning): {ref_path}")
    table = Table(title=f"{task} {setting} dataset ({s['pairs']} pairs x {segment} steps, digest {s['digest']})")
    table.add_column("measure")
    table.add_column("value")
    table.add_row("label agreement with true returns", f"{s['label_agreement']:.3f}")
    table.add_row("measured flip rate", f"{s['flip_rate']:.3f}" + (f" (eps {eps})" if setting == "noisy" else ""))
    table.add_row("segment return, chosen / rejected", f"{s['chosen_return_mean']:.1f} / {s['rejected_return_mean']:.1f}")
    table.add_row("live steps, chosen / rejected", f"{s['mean_len_w']:.1f} / {s['mean_len_l']:.1f}")
    console.print(table)
    hist = Table(title="pairs by behaviour policy (rows: chosen, columns: rejected; poorest first)")
    k = len(s["policy_pairs"])
    hist.add_column("")
    for j in range(k):
        hist.add_column(f"q{j}")
    for i, row in enumerate(s["policy_pairs"]):
        hist.add_row(f"q{i}", *[str(v) for v in row])
    console.print(hist)


@app.command("bench")
def bench_cmd(
    task: str = typer.Option(DATA.task),
    setting: str = typer.Option(DATA.setting, help="clean, noisy, mixed or shuffled."),
    eps: float = typer.Option(DATA.eps, help="Label-flip probability (noisy)."),
    seeds: int = typer.Option(5, help="Inner training seeds per loss."),
    losses: Optional[str] = typer.Option(None, help="Comma-separated zoo losses (default: the whole zoo)."),
    include: list[str] = typer.Option([], "--include", help="Also a discovered loss: RUN or RUN:RANK (repeatable)."),
    ablate_t: bool = typer.Option(False, "--ablate-t", help="Also each included loss that uses training "
                                                           "progress t, with t frozen at 0 and at 1."),
    tune: bool = typer.Option(False, "--tune", help="Also tune each baseline's constants (grid, on separate seeds) "
                                                   "and report it at its best constants."),
    pairs: int = typer.Option(DATA.pairs),
    segment: int = typer.Option(DATA.segment),
    label_horizon: int = typer.Option(DATA.label_horizon, help="Steps whose return labels a pair."),
    data_seed: int = typer.Option(DATA.seed),
    steps: int = typer.Option(TRAIN.steps, help="Training steps per run."),
    batch: int = typer.Option(TRAIN.batch_pairs, help="Pairs per batch."),
    lr: float = typer.Option(TRAIN.learning_rate, help="Adam learning rate."),
    episodes: int = typer.Option(EVAL.episodes, help="Evaluation episodes per trained policy."),
    backend: str = typer.Option(EVAL.backend, help="auto, native or mjx."),
    name: Optional[str] = typer.Option(None, help="Output under results/NAME (default bench-TASK-SETTING)."),
    results_dir: str = typer.Option("results", help="Where runs are written."),
):
    """Evaluate zoo losses (and discovered ones) with identical data, seeds and budget, on
    seeds no search uses; table with paired differences to the best baseline, results.json
    and a bar chart."""
    from discover import bench
    from evaluators.mujoco import MujocoConfig

    names = [n.strip() for n in losses.split(",") if n.strip()] if losses else bench.default_losses()
    entries = bench.zoo_entries(names) + bench.run_entries(include, results_dir)
    if ablate_t:
        entries += bench.static_ablations(entries)
    if not 1 <= seeds <= 999:
        raise UsageProblem("--seeds must be at least 1 (and at most 999)")
    cfg = MujocoConfig().with_options(
        task=task, setting=setting, eps=eps, pairs=pairs, segment=segment, data_seed=data_seed,
        label_horizon=label_horizon, steps=steps, batch=batch, lr=lr, episodes=episodes, backend=backend,
        eval_seed=bench.BENCH_EVAL_SEED).validate()
    out_dir = os.path.join(results_dir, name or f"bench-{task}-{setting}")
    out = bench.run_bench(cfg, entries, bench.seed_spaces.bench_train(seeds), out_dir,
                          log=console.print, tune=tune)
    table = Table(title=f"{task} {setting}" + (f" eps={eps:g}" if setting == "noisy" else "")
                  + f": normalised return, mean ± std over {seeds} seeds")
    for col in ("loss", "score", f"vs {out['best_baseline']} (95% CI)", "train acc.", "closed form"):
        table.add_column(col, overflow="fold")
    ref = out["reference"]
    table.add_row("[dim]reference (BC)[/]", f"[dim]{ref['mean']:.1f} ± {ref['std']:.1f}[/]", "", "", "")
    for r in sorted(out["losses"], key=lambda r: -(r["fitness"] if r["fitness"] is not None else -1e9)):
        score = f"{r['fitness']:.1f} ± {r['spread']:.1f}" if r["fitness"] is not None else f"[red]{r['reason']}[/]"
        vs = r.get("vs_best_baseline")
        diff = (f"{vs['mean']:+.1f} [{vs['low']:+.1f}, {vs['high']:+.1f}]" if vs and vs["low"] is not None
                else "")
        name_ = f"[bold green]{r['name']}[/]" if r["kind"] == "discovered" else r["name"]
        table.add_row(name_, score, diff, f"{r['train_accuracy']:.2f}", r["closed_form"])
    console.print(table)
    t = out["timing"]
    console.print(f"wrote {out_dir}/results.json and bench.png; training {t['train_s']:.1f} s, scoring "
                  f"{t['score_s']:.1f} s, total {t['total_s']:.1f} s, {out['compilations']} compilation(s)")


# --------------------------------------------------------------------------- the search
def estimate_generation_seconds(search, exp_config) -> float:
    """A conservative cost model of one generation on this machine (for --time-limit checks):
    about 2.5 us per (pair x step x training step) per run, plus scoring and compilation."""
    t = exp_config.train
    runs = search.population * len(search.inner_seeds)
    train = runs * t.steps * t.batch_pairs * exp_config.dataset.segment * 2.5e-6
    score = runs * exp_config.eval.episodes * 1000 * 4 / 150_000
    return train + score


@app.command("run")
def run_cmd(
    grammar: Optional[str] = typer.Option(None, "--grammar", help="Grammar file or name (e.g. mirror.yaml)."),
    task: str = typer.Option(DATA.task, help="Task (hopper, walker2d, half_cheetah, pendulum)."),
    setting: str = typer.Option(DATA.setting, help="clean, noisy, mixed or shuffled."),
    eps: float = typer.Option(DATA.eps, help="Label-flip probability for noisy data."),
    population: int = typer.Option(SEARCH.population, help="New candidates trained per generation."),
    generations: int = typer.Option(SEARCH.generations, help="Generations."),
    seed: int = typer.Option(SEARCH.seed, help="Search seed."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop starting generations after this many minutes."),
    backend: str = typer.Option(EVAL.backend, help="Simulator: auto (MJX on accelerators), native or mjx."),
    steps: int = typer.Option(TRAIN.steps, help="Training steps per candidate."),
    batch: int = typer.Option(TRAIN.batch_pairs, help="Pairs per training batch."),
    lr: float = typer.Option(TRAIN.learning_rate, help="Adam learning rate of the inner loop."),
    pairs: int = typer.Option(DATA.pairs, help="Pairs in the dataset."),
    segment: int = typer.Option(DATA.segment, help="Control steps per segment."),
    label_horizon: int = typer.Option(DATA.label_horizon, help="Steps whose return labels a pair."),
    episodes: int = typer.Option(EVAL.episodes, help="Evaluation episodes per trained policy."),
    es: str = typer.Option(SEARCH.es, help="Constant search: snes, cma_es or open_es."),
    reevaluate: int = typer.Option(SEARCH.reevaluate, help="Elites re-trained on fresh seeds per generation (0: off)."),
    max_seeds: int = typer.Option(SEARCH.max_seeds, help="Seeds after which an elite is no longer re-trained."),
    final_top: int = typer.Option(SEARCH.final_top, help="Discovered losses re-scored on held-out seeds at the end."),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: GRAMMAR-TASK-SETTING-SEED)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue this run from its last checkpoint."),
    results_dir: str = typer.Option("results", help="Where runs are written."),
):
    """Search a grammar for preference losses; print the hall of fame as closed forms."""
    from discover import report
    from discover.search import Search
    from evaluators import registry
    from evaluators.mujoco import MujocoConfig
    from discover.store import RunStore
    from grammar import load as load_grammar
    from grammar import zoo

    if resume:
        store = RunStore.open(resume, results_dir)
        cfg = store.config()
        g = load_grammar(store.file("grammar.yaml"))
        search_cfg = SearchConfig.from_dict(cfg["search"])
        evaluator_name = registry.of_store(cfg)
        exp_cfg = registry.config_from_dict(evaluator_name, cfg["experiment"])
        console.print(f"resuming run [bold]{store.name}[/] ({store.path})")
    else:
        if grammar is None:
            raise UsageProblem("give --grammar FILE (e.g. --grammar mirror.yaml), or --resume RUN")
        g = load_grammar(grammar)
        evaluator_name = "mujoco"
        exp_cfg = MujocoConfig().with_options(
            task=task, setting=setting, eps=eps, pairs=pairs, segment=segment, label_horizon=label_horizon,
            steps=steps, batch=batch, lr=lr, episodes=episodes, backend=backend,
            program_length=max(TRAIN.program_length, g.limits.max_size))
        search_cfg = SearchConfig(population=population, generations=generations, seed=seed, es=es,
                                  reevaluate=reevaluate, max_seeds=max_seeds, final_top=final_top,
                                  time_limit_min=time_limit).validate()
        exp_cfg.validate()
        if time_limit is not None:
            estimate = estimate_generation_seconds(search_cfg, exp_cfg) + 30
            if time_limit * 60 < estimate:
                raise UsageProblem(f"--time-limit {time_limit:g} min is shorter than one generation (about "
                                   f"{estimate / 60:.1f} min with these settings); raise it or lower "
                                   f"--population or --steps")
        run_name = name or f"{g.name}-{task}-{setting}-s{seed}"
        store = RunStore.create(results_dir, run_name, {
            "search": search_cfg.to_dict(), "evaluator": evaluator_name, "experiment": exp_cfg.to_dict(),
            "grammar_name": g.name,
            "grammar_path": g.path, "command": "discover run", "versions": _versions()}, g.path)
        console.print(f"run [bold]{store.name}[/] -> {store.path}")

    started = time.time()
    with console.status("preparing the dataset and the reference policy ..."):
        evaluator = registry.get(evaluator_name)(exp_cfg, log=console.print)
    ref_mean, ref_std = evaluator.baseline()
    d = exp_cfg.dataset
    console.print(f"task {d.task}, {d.setting} data" + (f" (eps {d.eps:g})" if d.setting == "noisy" else "")
                  + f", {d.pairs} pairs x {d.segment} steps; reference (BC) scores {ref_mean:.1f} ± {ref_std:.1f}; "
                  f"{search_cfg.population} candidates x {len(search_cfg.inner_seeds)} seeds per generation, "
                  f"{exp_cfg.train.steps} training steps each")

    def on_generation(info):
        done = info["generation"] + 1
        remaining = search_cfg.generations - done
        avg = sum(h["seconds"] for h in search.history[-3:]) / max(len(search.history[-3:]), 1)
        console.print(report.generation_line(info, search_cfg.generations, remaining * avg if remaining else 0.0),
                      highlight=False)

    status = console.status("starting ...")

    def on_phase(text):
        status.update(f"{text}  [dim]({(time.time() - started) / 60:.1f} min)[/]")

    search = Search(g, evaluator, search_cfg, store, report=on_generation, phase=on_phase)
    state = store.latest_checkpoint()
    if state is not None:
        search.restore(state)
        console.print(f"restored generation {search.generation + 1} of {search_cfg.generations} "
                      f"({len(search.cache)} candidates known)")

    def should_stop(gen, elapsed):
        if search_cfg.time_limit_min is None or not search.history:
            return False
        last = search.history[-1]["seconds"]
        final = last * (search_cfg.final_top + len(zoo.ZOO)) * len(search_cfg.holdout_seeds) / (
            search_cfg.population * len(search_cfg.inner_seeds)) + 20
        if (time.time() - started) + last + final > search_cfg.time_limit_min * 60:
            console.print(f"[yellow]time limit: stopping after generation {gen}[/]")
            return True
        return False

    try:
        with status:
            search.run(should_stop)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]; generations up to {search.generation + 1} are saved. "
                      f"Resume with: discover run --resume {store.name}")
        raise typer.Exit(130) from None
    hof = search.hall_of_fame()
    store.write("hall_of_fame.json", hof)
    with console.status("re-scoring the best losses and the zoo on held-out seeds ..."):
        final = search.final_evaluation(log=lambda m: None)
    with console.status("training curves of the best loss and DPO ..."):
        final["training_curves"] = search.training_curves(final)
    final["wall_s"] = search.elapsed_before + (time.time() - started)
    final["generations_run"] = search.generation + 1
    store.write("final.json", final)
    plots_written = report.write_plots(store, search.history, hof)
    console.print(report.pareto_table(hof))
    console.print(report.final_table(final))
    console.print(f"{search.stats['trained']} candidates trained, {search.stats['reevaluated']} elite "
                  f"re-trainings on fresh seeds, {search.stats['cache_hits']} cache hits, "
                  f"{search.stats['rejected']} rejected, {trainer_compilations()} compilation(s); wall time "
                  f"{(time.time() - started) / 60:.1f} min this session. Results in {store.path} "
                  f"({', '.join(os.path.basename(p) for p in plots_written)}).")
    console.print(f"Export the best: discover export {store.name} --rank 1 --format torch --output loss.py")


def trainer_compilations() -> int:
    from evaluators import trainer

    return trainer.compilations()


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("jax", "mujoco", "mujoco-mjx", "evosax", "optax", "sympy", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


@app.command("show")
def show_cmd(
    run: str = typer.Argument(..., help="A run under results/ (or a path to one)."),
    latex: bool = typer.Option(False, "--latex", help="Closed forms in LaTeX."),
    top: int = typer.Option(10, help="Rows of the hall of fame."),
    results_dir: str = typer.Option("results"),
):
    """Show a run: held-out table, hall of fame with closed forms and constants, Pareto front."""
    from discover import report
    from discover.store import RunStore

    store = RunStore.open(run, results_dir)
    cfg = store.config()
    d = cfg["experiment"]["dataset"]
    console.print(f"run [bold]{store.name}[/]: grammar {cfg['grammar_name']}, task {d['task']}, {d['setting']}"
                  + (f" (eps {d['eps']})" if d["setting"] == "noisy" else "")
                  + f", population {cfg['search']['population']}, generations {cfg['search']['generations']}")
    if store.has("hall_of_fame.json"):
        hof = store.read("hall_of_fame.json", "hall of fame")
    else:
        from discover import records

        hof = records.hall_of_fame(store.candidates())
        console.print("[yellow]run not finished: hall of fame from the candidates so far[/]")
    console.print(report.hall_of_fame_table(hof, latex=latex, top=top))
    console.print(report.pareto_table(hof))
    if store.has("final.json"):
        console.print(report.final_table(store.read("final.json", "final results"), latex=latex))


@app.command("plot")
def plot_cmd(run: str = typer.Argument(...), results_dir: str = typer.Option("results")):
    """Write PNG plots of a run: fitness over generations and the Pareto front."""
    from discover import records, report
    from discover.store import RunStore

    store = RunStore.open(run, results_dir)
    state = store.latest_checkpoint()
    history = state.get("history", []) if state else []
    hof = records.hall_of_fame(store.candidates())
    for path in report.write_plots(store, history, hof):
        console.print(f"wrote {path}")


@app.command("report")
def report_cmd(
    spec: str = typer.Option("results/report.yaml", help="The report spec (which searches and benches)."),
    output: str = typer.Option("results/REPORT.md", "--output", "-o"),
    results_dir: str = typer.Option("results"),
    bench: Optional[str] = typer.Option(None, "--bench", help="Instead: print one bench as a markdown table."),
):
    """Write the markdown report (tables, verdicts, transfer matrix) from committed results."""
    from discover import markdown_report

    if bench:
        print(markdown_report.bench_summary(markdown_report._load_bench(results_dir, bench)))
        return
    path = markdown_report.write(spec, output, results_dir)
    console.print(f"wrote {path}")


def main() -> None:
    """Entry point: runs the app, turning user errors into one line and exit code 2
    (typer itself reports bad options and arguments, also with exit code 2)."""
    with user_errors(UsageProblem):
        app()


if __name__ == "__main__":
    main()
