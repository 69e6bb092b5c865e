"""The search and its runs: `discover run`, `show`, `plot`."""

from __future__ import annotations

import os
import time
from typing import Optional

import typer

from discover.app import (CLUSTER_PANEL, DATA_PANEL, OUTPUT_PANEL, RAY_ACTORS_HELP, RAY_HELP, SEARCH, SEARCH_PANEL, Es,
                          EvaluatorRequest, UsageProblem, app, check_batch, console, parse_es, ray_wrapper,
                          takes_evaluator_options)
from discover.errors import for_markup
from evaluators.seeds import (BENCH_DATA_BASE, CONFOUND_DATA, SEARCH_DATA, STUDY_HELD_OUT, TUNE_DATA,
                             TUNE_DATA_SEEDS)

HELD_OUT = 20  # datasets from BENCH_DATA_BASE on that a search never trains on (a bench's defaults)


@app.command("run")
@takes_evaluator_options
def run_cmd(
    ctx: typer.Context,
    grammar: Optional[str] = typer.Option(None, "--grammar", help="Grammar file or name (e.g. mirror.yaml).",
                                          rich_help_panel=SEARCH_PANEL),
    population: int = typer.Option(SEARCH.population, help="New candidates trained per generation.",
                                   rich_help_panel=SEARCH_PANEL),
    generations: int = typer.Option(SEARCH.generations, help="Generations.", rich_help_panel=SEARCH_PANEL),
    seed: int = typer.Option(SEARCH.seed, help="Search seed.", rich_help_panel=SEARCH_PANEL),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop starting generations after this "
                                                                         "many minutes.",
                                               rich_help_panel=SEARCH_PANEL),
    es: Es = typer.Option(SEARCH.es, parser=parse_es, metavar="ES", help="Evolution strategy of the constant "
                                                                      "search: snes, cma_es or open_es.",
                           rich_help_panel=SEARCH_PANEL),
    reevaluate: int = typer.Option(SEARCH.reevaluate, help="Elites re-trained on fresh seeds per generation (0: off).",
                                   rich_help_panel=SEARCH_PANEL),
    halving: bool = typer.Option(SEARCH.halving, "--halving/--no-halving",
                                 help="Successive halving: new candidates train on one seed first, the best are "
                                      "promoted to the other seeds (2 x POPULATION runs per generation instead of "
                                      "POPULATION x seeds).", rich_help_panel=SEARCH_PANEL),
    max_seeds: int = typer.Option(SEARCH.max_seeds, help="Seeds after which an elite is no longer re-trained.",
                                  rich_help_panel=SEARCH_PANEL),
    final_top: int = typer.Option(SEARCH.final_top, help="Discovered losses re-scored on held-out seeds at the end.",
                                  rich_help_panel=SEARCH_PANEL),
    request: EvaluatorRequest = None,  # --task and the evaluators' options (takes_evaluator_options)
    datasets: int = typer.Option(len(SEARCH_DATA), help="Datasets the fitness spans (data seeds 0, 1, ...; each "
                                                        "with its own reference); training seed s uses dataset s "
                                                        "mod DATASETS.", rich_help_panel=DATA_PANEL),
    data_seed: int = typer.Option(SEARCH_DATA[0], help="The first dataset seed: the search trains on data seeds "
                                                       "DATA_SEED ... DATA_SEED + DATASETS - 1 (independent searches "
                                                       "of one setting on their own data; never the tuning datasets "
                                                       f"{TUNE_DATA_SEEDS[0]}-{TUNE_DATA_SEEDS[-1]} or held-out "
                                                       f"ones: {BENCH_DATA_BASE}-{BENCH_DATA_BASE + HELD_OUT - 1}, "
                                                       f"{CONFOUND_DATA[0]}-{CONFOUND_DATA[-1]}, "
                                                       f"{STUDY_HELD_OUT[0]}-{STUDY_HELD_OUT[-1]}).",
                                  rich_help_panel=DATA_PANEL),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: GRAMMAR-TASK-SETTING-SEED).",
                                       rich_help_panel=OUTPUT_PANEL),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue this run from its last checkpoint.",
                                         rich_help_panel=OUTPUT_PANEL),
    results_dir: str = typer.Option("results", help="Where runs are written.", rich_help_panel=OUTPUT_PANEL),
    ray: Optional[str] = typer.Option(None, "--ray", help=RAY_HELP, rich_help_panel=CLUSTER_PANEL),
    ray_actors: Optional[int] = typer.Option(None, "--ray-actors", help=RAY_ACTORS_HELP,
                                             rich_help_panel=CLUSTER_PANEL),
):
    """Search a grammar for preference losses; print the hall of fame as closed forms."""
    if resume:
        store, g, search_cfg, evaluator_name, exp_cfg = _resumed(resume, results_dir)
        _warn_ignored_on_resume(ctx)
        state = store.latest_checkpoint()
        if store.has("final.json") and state is not None and state["generation"] + 1 >= search_cfg.generations:
            console.print(f"run [bold]{store.name}[/] is finished ({search_cfg.generations} generations, held-out "
                          f"scores in final.json): nothing to resume. [bold]discover show {store.name}[/] prints "
                          "its results.")
            return
        wrap = ray_wrapper(ray, ray_actors)
    else:
        request.refuse_options_it_lacks()
        g, search_cfg, evaluator_name, exp_cfg = _validated(
            grammar, request,
            dict(population=population, generations=generations, seed=seed, es=es, reevaluate=reevaluate, halving=halving,
                 max_seeds=max_seeds, final_top=final_top, time_limit_min=time_limit), datasets, data_seed)
        wrap = ray_wrapper(ray, ray_actors)  # the cluster is joined and checked after the options, before any work
        store = _new_store(g, search_cfg, evaluator_name, exp_cfg, name, results_dir)
    run_search(g, evaluator_name, exp_cfg, search_cfg, store, wrap)


def run_search(g, evaluator_name: str, exp_cfg, search_cfg, store, wrap=None) -> None:
    """A validated run, new or restored from its store, to its end: generations, hall of fame,
    held-out re-scoring, plots (``discover run`` and ``discover.run``)."""
    started = time.time()
    search, status = _search(g, evaluator_name, exp_cfg, search_cfg, store, started, wrap)
    _run_generations(search, status, store, started)
    _finish(search, store, started)


# What --resume takes from the command line; every other option is the run's own, from its store.
RESUME_OPTIONS = ("resume", "results_dir", "ray", "ray_actors")


def _warn_ignored_on_resume(ctx: typer.Context) -> None:
    given = [name for name in ctx.params if name not in RESUME_OPTIONS
             and (src := ctx.get_parameter_source(name)) is not None and src.name == "COMMANDLINE"]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        console.print(f"[yellow]ignored with --resume: {flags}[/] (a run resumes with the settings it was "
                      "created with, in its config.json)")


def _resumed(resume: str, results_dir: str):
    """(store, grammar, search config, evaluator name, evaluator config) of a run to resume."""
    from discover.search import SearchConfig
    from discover.store import RunStore
    from grammar import load as load_grammar

    store = RunStore.open(resume, results_dir)
    cfg = store.config()
    g = load_grammar(store.file("grammar.yaml"))
    evaluator_name, exp_cfg = store.evaluator_config()
    console.print(f"resuming run [bold]{for_markup(store.name)}[/] ({for_markup(store.path)})")
    return store, g, SearchConfig.from_dict(cfg["search"]), evaluator_name, exp_cfg


def _validated(grammar: Optional[str], request: EvaluatorRequest, search_options: dict, datasets: int,
               data_seed: int = SEARCH_DATA[0]):
    """(grammar, search config, evaluator name, evaluator config) of a new run, the whole
    request validated before any work."""
    from discover.search import SearchConfig
    from grammar import load as load_grammar

    if grammar is None:
        raise UsageProblem("give --grammar FILE (e.g. --grammar mirror.yaml), or --resume RUN")
    g = load_grammar(grammar)
    if not 1 <= datasets <= TUNE_DATA - SEARCH_DATA[0]:
        raise UsageProblem(f"--datasets must be between 1 and {TUNE_DATA - SEARCH_DATA[0]}, not {datasets}")
    seeds = range(data_seed, data_seed + datasets)
    if data_seed < 0:
        raise UsageProblem(f"--data-seed must be at least 0, not {data_seed}")
    reserved = (set(TUNE_DATA_SEEDS) | {TUNE_DATA} | set(range(BENCH_DATA_BASE, BENCH_DATA_BASE + HELD_OUT))
                | set(CONFOUND_DATA) | set(STUDY_HELD_OUT))
    if reserved & set(seeds):
        raise UsageProblem(f"--data-seed {data_seed} with --datasets {datasets} uses data seeds "
                           f"{', '.join(map(str, sorted(reserved & set(seeds))))}, kept for tuning and held-out "
                           f"benches; pick seeds outside {TUNE_DATA_SEEDS[0]}-{TUNE_DATA_SEEDS[-1]}, "
                           f"{BENCH_DATA_BASE}-{BENCH_DATA_BASE + HELD_OUT - 1}, {CONFOUND_DATA[0]}-"
                           f"{CONFOUND_DATA[-1]} and {STUDY_HELD_OUT[0]}-{STUDY_HELD_OUT[-1]}")
    evaluator_name = request.evaluator
    exp_cfg = request.config()
    # a program as long as the grammar's longest loss, at least the evaluator's default
    exp_cfg = exp_cfg.with_options(program_length=max(exp_cfg.option("program_length") or 0, g.limits.max_size))
    exp_cfg = exp_cfg.with_data_seeds(seeds)
    search_cfg = SearchConfig(**search_options).validate()
    exp_cfg.validate()
    check_batch(exp_cfg)
    time_limit = search_cfg.time_limit_min
    if time_limit is not None:
        # a conservative cost of one generation: its runs times the evaluator's estimate of one
        estimate = search_cfg.runs_per_generation() * exp_cfg.seconds_per_run() + 30
        if time_limit * 60 < estimate:
            raise UsageProblem(f"--time-limit {time_limit:g} min is shorter than one generation (about "
                               f"{estimate / 60:.1f} min with these settings); raise it or lower "
                               f"--population or --steps")
    return g, search_cfg, evaluator_name, exp_cfg


def _new_store(g, search_cfg, evaluator_name: str, exp_cfg, name: Optional[str], results_dir: str):
    """The run store of a new (validated) run."""
    from discover.store import RunStore

    store = RunStore.create(results_dir, name or f"{g.name}-{exp_cfg.provenance().name()}-s{search_cfg.seed}", {
        "search": search_cfg.to_dict(), "evaluator": evaluator_name, "experiment": exp_cfg.to_dict(),
        "grammar_name": g.name, "grammar_path": g.path, "command": "discover run", "versions": _versions()},
        g.path)
    console.print(f"run [bold]{store.name}[/] -> {store.path}")
    return store


def _search(g, evaluator_name: str, exp_cfg, search_cfg, store, started: float, wrap=None):
    """The search over the evaluator (data and reference built or loaded; its training on
    Ray actors with ``wrap``), restored from the store's last checkpoint if it has one, and
    the progress bar it reports to (one plain line per generation, bar or not)."""
    from discover import run_views
    from discover.progress import Bar, DataBar
    from discover.search import Search
    from evaluators import registry

    n_data = len(exp_cfg.seeds_of_data)
    with DataBar(console, f"preparing dataset{'s' if n_data > 1 else ''} and reference{'s' if n_data > 1 else ''}",
                 n_data) as bar:
        evaluator = registry.get(evaluator_name)(exp_cfg, log=console.print, progress=bar)
        if wrap is not None:
            evaluator = wrap(evaluator, evaluator_name, exp_cfg)
    ref_mean, ref_std = evaluator.baseline()
    d = exp_cfg.provenance()
    console.print(f"task {d.task}" + (f", {d.setting} data" if d.setting else "")
                  + (f" (eps {d.eps:g})" if d.setting == "noisy" and d.eps is not None else "")
                  + f", {n_data} dataset{'s' if n_data > 1 else ''}" + (f" of {d.pairs} pairs" if d.pairs else "")
                  + (f" {d.pair}" if d.pair else "")
                  + f"; reference scores {ref_mean:.1f} ± {ref_std:.1f}; "
                  f"{search_cfg.population} candidates x {len(search_cfg.inner_seeds)} seeds per generation, "
                  f"{exp_cfg.train.steps} training steps each")
    G = search_cfg.generations
    bar = Bar(console, "search", G, count=f"gen 0/{G}")

    def on_generation(info):
        done = info["generation"] + 1
        left = seconds_left(search, done)
        console.print(run_views.generation_line(info, G, left), highlight=False)
        bar.update(done, count=f"gen {done}/{G}", best=f"best {info['best_fitness']:.1f}"
                   if info.get("best_fitness") is not None else None, phase="", seconds_left=left)

    def on_phase(text):
        bar.update(phase=text.split(": ", 1)[-1])

    search = Search(g, evaluator, search_cfg, store, report=on_generation, phase=on_phase)
    state = store.latest_checkpoint()
    if state is not None:
        search.restore(state)
        console.print(f"restored generation {search.generation + 1} of {G} "
                      f"({len(search.cache)} candidates known)")
        bar.update(search.generation + 1, count=f"gen {search.generation + 1}/{G}")
    return search, bar


def generation_seconds(search) -> float | None:
    """The mean time of the search's last three generations (None before the first)."""
    recent = search.history[-3:]
    return sum(h["seconds"] for h in recent) / len(recent) if recent else None


def final_seconds(search) -> float | None:
    """An estimate of the end of a run: the held-out re-scoring (the best losses and the zoo
    on the held-out seeds) at the pace of the last generations' training runs (their
    training and scoring, not their proposing), plus the training curves and plots; None
    before the first generation has been timed."""
    from grammar import zoo

    cfg, recent = search.config, search.history[-3:]
    if not recent:
        return None
    if all("runs" in h and "train_s" in h for h in recent):
        per_run = sum(h["train_s"] + h.get("score_s", 0.0) for h in recent) / max(sum(h["runs"] for h in recent), 1)
    else:  # generations recorded before their runs were
        per_run = generation_seconds(search) / cfg.runs_per_generation()
    return per_run * (cfg.final_top + len(zoo.ZOO)) * len(cfg.holdout_seeds) + 30


def seconds_left(search, generations_done: int) -> float | None:
    """The time left in a run after ``generations_done`` generations, its final re-scoring
    included (None before the first generation has been timed)."""
    per_generation = generation_seconds(search)
    if per_generation is None:
        return None
    return (search.config.generations - generations_done) * per_generation + final_seconds(search)


def _run_generations(search, bar, store, started: float) -> None:
    """Runs the remaining generations; stops early for the time limit; Ctrl-C keeps what is saved."""
    cfg = search.config

    def should_stop(gen, elapsed):
        if cfg.time_limit_min is None or not search.history:
            return False
        last = search.history[-1]["seconds"]
        if (time.time() - started) + last + final_seconds(search) > cfg.time_limit_min * 60:
            console.print(f"[yellow]time limit: stopping after generation {gen}[/]")
            return True
        return False

    try:
        with bar:
            search.run(should_stop)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]; generations up to {search.generation + 1} are saved. "
                      f"Resume with: discover run --resume {store.name}")
        raise typer.Exit(130) from None


def _finish(search, store, started: float) -> None:
    """Hall of fame, held-out re-scoring, training curves, plots, and what to do next."""
    from discover import run_views
    from discover.progress import Bar, clock
    from evaluators import atomic

    hof = search.hall_of_fame()
    store.write("hall_of_fame.json", hof)
    atomic.write_text(store.file("hall_of_fame.csv"), hall_of_fame_csv(hof))
    left = final_seconds(search)
    cfg = search.config
    console.print(f"re-scoring the best {cfg.final_top} losses and the zoo on {len(cfg.holdout_seeds)} held-out "
                  "seeds" + (f" (about {clock(left)})" if left is not None else "") + " ...")
    with Bar(console, "held-out re-scoring", 2, count="1/2") as bar:
        bar.update(phase="the best losses and the zoo on held-out seeds", seconds_left=left)
        final = search.final_evaluation(log=lambda m: None)
        bar.update(1, count="2/2", phase="training curves of the best loss and DPO", seconds_left=30)
        final["training_curves"] = search.training_curves(final)
    final["wall_s"] = search.elapsed_before + (time.time() - started)
    final["generations_run"] = search.generation + 1
    store.write("final.json", final)
    plots_written = run_views.write_plots(store, search.history, hof)
    for view in run_views.show_views(store):
        console.print(view)
    halted = f" ({search.stats['halted']} stopped after one seed)" if search.stats.get("halted") else ""
    console.print(f"{search.stats['trained']} candidates trained{halted}, {search.stats['reevaluated']} elite "
                  f"re-trainings on fresh seeds, {search.stats['cache_hits']} cache hits, "
                  f"{search.stats['rejected']} rejected, {trainer_compilations()} compilation(s); wall time "
                  f"{(time.time() - started) / 60:.1f} min this session. Results in {store.path} "
                  f"({', '.join(os.path.basename(p) for p in plots_written)}).")
    console.print(f"Export the best: discover export {store.name} --rank 1 --format torch --output loss.py")


def hall_of_fame_csv(hof: dict) -> str:
    """The hall of fame (``hall_of_fame.json``'s ranked losses) as CSV, for a spreadsheet or
    a DataFrame: rank by search fitness, fitness and spread over the search seeds,
    complexity, closed form, derivation, constants as JSON."""
    import csv
    import io
    import json

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["search_rank", "fitness", "spread", "complexity", "closed_form", "derivation", "constants"])
    for rank, r in enumerate(hof["ranked"], 1):
        writer.writerow([rank, r["fitness"], r.get("spread"), r["complexity"], r.get("closed_form", ""),
                         r.get("derivation", ""), json.dumps(r["constants"], sort_keys=True)])
    return out.getvalue()


def trainer_compilations() -> int:
    """How many times the trainer compiled in this process (for the closing summary)."""
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
    top: int = typer.Option(10, min=1, help="Losses shown, numbered as export --rank takes them (the held-out "
                                            "table of a finished run is shown whole)."),
    effective: bool = typer.Option(False, "--effective", help="Also each discovered loss's effective form on the "
                                                             "run's data, at the reference and at the end of the "
                                                             "loss's own training (one run each): terms under 1% "
                                                             "of the gradient removed (loads the run's datasets, "
                                                             "building them if needed)."),
    relatives: bool = typer.Option(False, "--relatives", help="Also each discovered loss's nearest hand-designed "
                                                             "losses: the zoo losses whose gradient fields point "
                                                             "the same way on the inputs of --effective (cosine, "
                                                             "each at the best point of a grid over its "
                                                             "constants)."),
    results_dir: str = typer.Option("results"),
):
    """Show a run: held-out table, hall of fame with closed forms, parts and constants, Pareto front."""
    from discover import run_views
    from discover.store import RunStore

    store = RunStore.open(run, results_dir)
    cfg = store.config()
    console.print(f"run [bold]{for_markup(store.name)}[/]: grammar {for_markup(cfg['grammar_name'])}, "
                  f"{for_markup(run_views.data_of(cfg))}, population {cfg['search']['population']}, "
                  f"generations {cfg['search']['generations']}")
    if not run_views.finished(store):
        console.print("[yellow]run not finished: losses numbered by search fitness so far[/]")
    for view in run_views.show_views(store, latex=latex, top=top):
        console.print(view)
    if effective or relatives:
        from discover.records import expression_of
        from evaluators.interface import effective_inputs

        shown_losses = run_views.numbered_losses(store)[:top]
        rows = [e.row for e in shown_losses]
        names = [f"loss {e.number}" for e in shown_losses]
        with console.status("loading the run's data and training each loss once (seed 0) ..."):
            inputs = effective_inputs(_run_evaluator(store), [expression_of(r) for r in rows],
                                      [r["constants"] for r in rows])
        lines = run_views.effective_lines(rows, inputs, names) if effective else []
        if relatives:
            with console.status("comparing each loss with the zoo ..."):
                lines += run_views.relatives_lines(rows, inputs, names)
        for line in lines:
            console.print(line, highlight=False, soft_wrap=True)


def _run_evaluator(store):
    """The evaluator of a stored run (its datasets loaded, built if needed)."""
    from evaluators import registry

    from discover.progress import DataBar

    name, config = store.evaluator_config()
    with DataBar(console, "preparing the run's datasets", len(config.seeds_of_data)) as bar:
        return registry.get(name)(config, log=console.print, progress=bar)


def _run_inputs(store) -> dict:
    """Terminals of 256 pairs of a run's data at the reference, t across [0, 1]."""
    from evaluators.interface import probe_inputs

    return probe_inputs(_run_evaluator(store))


# short_help: the command list keeps a docstring's line breaks; one line reads at any width
@app.command("plot", short_help="Write PNG plots of a run: fitness, Pareto front, training curves, loss shapes.")
def plot_cmd(
    run: str = typer.Argument(...),
    shapes: bool = typer.Option(True, "--shapes/--no-shapes", help="Also the loss shapes of the best losses next "
                                                                 "to DPO, IPO and the best baseline (loads the "
                                                                 "run's data)."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", help="Where the PNGs go (default: a plots/ "
                                                                         "folder in the run, so the plots the run "
                                                                         "wrote itself are never overwritten)."),
    results_dir: str = typer.Option("results"),
):
    """Write PNG plots of a run: fitness over generations, the Pareto front, training
    curves, and the shapes of its best losses against the margin (loss_shapes.png)."""
    from discover import records, run_views
    from discover.store import RunStore

    store = RunStore.open(run, results_dir)
    out_dir = output_dir or store.file("plots")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise UsageProblem(f"cannot write plots into {out_dir}: {e.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise UsageProblem(f"cannot write plots into {out_dir}: permission denied")
    state = store.latest_checkpoint()
    history = state.get("history", []) if state else []
    hof = records.hall_of_fame(store.candidates())
    for path in run_views.write_plots(store, history, hof, out_dir):
        console.print(f"wrote {for_markup(path)}")
    if shapes:
        with console.status("loading the run's data ..."):
            inputs = _run_inputs(store)
        console.print(f"wrote {for_markup(run_views.write_loss_shapes(store, hof, inputs, out_dir=out_dir))}")
