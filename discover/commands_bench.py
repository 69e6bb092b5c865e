"""`discover bench` (the zoo and discovered losses on identical data, seeds and budget) and `discover report`."""

from __future__ import annotations

import os
import time
from typing import Optional

import typer

from discover.app import (CLUSTER_PANEL, DATA_PANEL, LOSSES_PANEL, OUTPUT_PANEL, RAY_ACTORS_HELP, RAY_HELP,
                          EvaluatorRequest, UsageProblem, app, check_batch, console, ray_wrapper,
                          takes_evaluator_options, write_output)
from discover.store import run_name_problem
from evaluators.seeds import BENCH_DATA_BASE


# short_help: the command list keeps a docstring's line breaks; one line reads at any width
@app.command("bench", short_help="Score zoo and discovered losses with identical data, seeds and budget.")
@takes_evaluator_options
def bench_cmd(
    ctx: typer.Context,
    losses: Optional[str] = typer.Option(None, help="Comma-separated zoo losses (default: the whole zoo; \"\": "
                                                    "none, only the --include ones); NAME@CONSTANT=VALUE sets a "
                                                    "constant (e.g. dpo@beta=1).",
                                         rich_help_panel=LOSSES_PANEL),
    include: list[str] = typer.Option([], "--include", help="Also a discovered loss: RUN or RUN:RANK (repeatable).",
                                      rich_help_panel=LOSSES_PANEL),
    ablate_t: bool = typer.Option(False, "--ablate-t", help="Also each included loss that uses training "
                                                           "progress t, with t frozen at 0 and at 1.",
                                  rich_help_panel=LOSSES_PANEL),
    effective: bool = typer.Option(False, "--effective", help="Also each included loss without its additive "
                                                               "terms below 1% of the gradient norm (its effective "
                                                               "form on the first dataset its run searched on: at "
                                                               "the reference, t across [0, 1], and at the end of "
                                                               "its own training, t = 1).",
                                   rich_help_panel=LOSSES_PANEL),
    tune: bool = typer.Option(False, "--tune", help="Also tune each baseline's constants (grid, on a separate "
                                                   "dataset and seeds) and report it at its best constants.",
                              rich_help_panel=LOSSES_PANEL),
    seeds: int = typer.Option(10, help="Training seeds per loss and dataset.", rich_help_panel=LOSSES_PANEL),
    request: EvaluatorRequest = None,  # --task and the evaluators' options (takes_evaluator_options)
    datasets: int = typer.Option(5, help="Datasets, each with its own segments and reference (data seeds "
                                         "DATA_SEED, DATA_SEED + 1, ...).", rich_help_panel=DATA_PANEL),
    data_seed: int = typer.Option(BENCH_DATA_BASE, help="The first dataset seed (default: held-out datasets "
                                                        "that no search or tuning uses).",
                                  rich_help_panel=DATA_PANEL),
    name: Optional[str] = typer.Option(None, help="Output under results/NAME (default bench-TASK-SETTING).",
                                       rich_help_panel=OUTPUT_PANEL),
    results_dir: str = typer.Option("results", help="Where runs are written.", rich_help_panel=OUTPUT_PANEL),
    ray: Optional[str] = typer.Option(None, "--ray", help=RAY_HELP, rich_help_panel=CLUSTER_PANEL),
    ray_actors: Optional[int] = typer.Option(None, "--ray-actors", help=RAY_ACTORS_HELP,
                                             rich_help_panel=CLUSTER_PANEL),
):
    """Score zoo losses (and discovered ones) with identical data, seeds and budget, on
    datasets and seeds no search uses: scores pooled over (dataset, seed), paired differences
    to the best baseline with equivalence tests; results.json and a bar chart. Finished
    stages (tuning, each dataset) are kept under results/NAME/partial/ until results.json
    is written: an interrupted bench, run again with the same options, resumes."""
    from discover import bench
    from evaluators import registry

    request.refuse_options_it_lacks()
    names = [n.strip() for n in losses.split(",") if n.strip()] if losses is not None else bench.default_losses()
    included = bench.included_runs(include, results_dir)
    searched = {e.name: searched_on for e, searched_on in included}
    entries = bench.zoo_entries(names) + [e for e, _ in included]
    if not entries:
        raise UsageProblem("nothing to bench: --losses \"\" names no zoo loss and no --include names a run")
    if ablate_t:
        entries += bench.static_ablations(entries)
    if not 1 <= seeds <= 999:
        raise UsageProblem("--seeds must be at least 1 (and at most 999)")
    try:
        data_seeds = bench.seed_spaces.bench_data(datasets, data_seed)
    except ValueError as e:
        raise UsageProblem(f"--datasets/--data-seed: {e}") from None
    for entry, searched_on in included:
        if overlap := sorted(set(searched_on) & set(data_seeds)):
            raise UsageProblem(f"--datasets/--data-seed: the bench's datasets include {entry.name}'s search datasets "
                               f"(data seeds {', '.join(map(str, overlap))}); choose --data-seed so that they are "
                               f"held out")
    cfg = request.config(data_seed=data_seeds[0], eval_seed=bench.BENCH_EVAL_SEED).validate()
    check_batch(cfg)
    if name is not None and (problem := run_name_problem(name)):
        raise UsageProblem(f"bad --name {name[:40]!r}: it {problem}")
    data = cfg.provenance()
    out_dir = os.path.join(results_dir, name or f"bench-{data.name()}")
    wrap = ray_wrapper(ray, ray_actors)
    checked = [e.name for e in bench.effective_candidates(entries)] if effective else []
    if effective:
        entries += bench.effective_variants(entries, _search_data_inputs(cfg, bench.effective_candidates(entries),
                                                                         searched))
    with BenchProgress() as progress:
        out = bench.run_bench(cfg, entries, bench.seed_spaces.bench_train(seeds), out_dir, log=progress.log, tune=tune,
                              data_seeds=data_seeds, wrap=wrap, effective_checked=checked, progress=progress,
                              data_progress=progress.data)
    title = f"{data.title()}: normalised return, mean ± std over {datasets} datasets x {seeds} seeds"
    _print_bench(out, title, registry.reference_label(request.evaluator), out_dir)


class BenchProgress:
    """What a bench reports as it goes (see ``bench.run_bench``'s ``progress``): on a
    terminal, a bar of its stage (tuning parts, datasets) with the time left at the pace of
    the training runs so far and the best loss so far, the latest log line beneath; else a
    plain line after each part."""

    def __init__(self):
        from discover.progress import Bar

        self.bar = Bar(console, "bench", None, count="preparing")
        self.began, self.runs = time.time(), 0

    def __enter__(self) -> "BenchProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def log(self, text: str) -> None:
        """Prints a line of the bench's log above the bar and shows it as the bar's phase."""
        console.print(text)
        self.bar.update(phase=str(text).strip()[:60])

    def data(self, ready: float, total: int, what: str) -> None:
        """How the preparation of a stage's dataset goes (its stage, as the phase)."""
        self.bar.update(phase=f"preparing {what.split(': ', 1)[-1]}" if ready < total else "")

    def __call__(self, stage: str, done: int, total: int, runs: int, runs_left: int, best: str | None) -> None:
        from discover.progress import clock

        self.runs += runs
        left = (time.time() - self.began) / self.runs * runs_left if self.runs else None
        count = f"{stage} {done}/{total}"
        self.bar.update(done, total=total, count=count, best=None if best is None else f"best {best}", phase="",
                        seconds_left=left)
        if not self.bar.shown and done:
            console.print(f"bench: {count}, {clock(time.time() - self.began)} elapsed"
                          + (f", ETA {clock(left)}" if left is not None else "") + (f"; best {best}" if best else ""),
                          highlight=False)


# beside a loss's score where the task reports them: (results.json field, label, format)
TASK_FIGURES = (("kl", "KL", ".2f"), ("greedy", "greedy", ".1f"))


def _print_bench(out: dict, title: str, kind: str, out_dir: str) -> None:
    """A bench's table (reference, then every loss by score) and where it was written."""
    from discover.run_views import entries_view

    ref = out["reference"]
    rows = [(f"[dim]reference ({kind})  {ref['mean']:.1f} ± {ref['std']:.1f} over datasets[/]", "", [])]
    for r in sorted(out["losses"], key=lambda r: -(r["fitness"] if r["fitness"] is not None else -1e9)):
        score = f"{r['fitness']:.1f} ± {r['spread']:.1f}" if r["fitness"] is not None else f"[red]{r['reason']}[/]"
        vs = r.get("vs_best_baseline")
        diff = (f"  vs {vs['baseline']} {vs['mean']:+.1f} [{vs['low']:+.1f}, {vs['high']:+.1f}]"
                if vs and vs["low"] is not None else "")
        name_ = f"[bold green]{r['name']}[/]" if r["kind"] == "discovered" else f"[bold]{r['name']}[/]"
        bd = "" if r.get("beta_margin") is None else f"  β·D {r['beta_margin']:.2f}"
        task = "".join(f"  {label} {r[f]['mean']:{fmt}}" for f, label, fmt in TASK_FIGURES
                       if r.get(f, {}).get("mean") is not None)
        rows.append((f"{name_}  {score}{diff}  train acc. {r['train_accuracy']:.2f}{bd}{task}", r["closed_form"], []))
    console.print(entries_view(title, rows))
    if any(r.get("kl") for r in out["losses"]):
        console.print("KL: KL(policy || reference) per response, on the evaluation prompts; greedy: the score of "
                      "the policy's greedy decoding (the fitness samples at temperature 1)")
    t = out["timing"]
    phases = "".join(f"{label} {t[k]:.1f} s, " for k, label in (("train_s", "training"), ("score_s", "scoring"),
                                                                ("diagnose_s", "diagnostics")) if k in t)
    console.print(f"wrote {out_dir}/results.json and bench.png; {phases}total {t['total_s']:.1f} s, "
                  f"{out['compilations']} compilation(s) in this process")



def _search_data_inputs(cfg, entries, searched: dict) -> list[tuple]:
    """Where each entry's effective form is measured: 256 pairs of the first dataset its
    search trained on (``searched``: entry name -> its run's data seeds) at the reference
    (t across [0, 1]) and 256 at the policy the entry trained to there (t = 1); see
    :func:`evaluators.interface.effective_inputs`."""
    from evaluators import registry
    from evaluators.interface import effective_inputs
    from evaluators.seeds import SEARCH_DATA

    groups: dict[int, list] = {}  # first search dataset -> its entries, in order
    for e in entries:
        groups.setdefault(searched.get(e.name, SEARCH_DATA)[0], []).append(e)
    inputs: dict[str, tuple] = {}
    for seed, group in groups.items():
        evaluator = registry.get(registry.for_task(cfg.task))(cfg.with_options(data_seed=seed), log=console.print)
        found = effective_inputs(evaluator, [e.expr for e in group], [e.constants for e in group])
        inputs.update((e.name, x) for e, x in zip(group, found))
    return [inputs[e.name] for e in entries]


@app.command("report")
def report_cmd(
    spec: str = typer.Option("results/headline_v2.yaml", help="The report spec: a headline spec (settings: search "
                                                              "and bench), a suite spec (clean, control, settings) "
                                                              "or a v1 spec (searches)."),
    output: str = typer.Option("results/REPORT.md", "--output", "-o"),
    results_dir: str = typer.Option("results"),
    bench: Optional[str] = typer.Option(None, "--bench", help="Instead: print one bench as a markdown table."),
    suite: Optional[str] = typer.Option(None, "--suite", help="The diagnostic-suite report of this spec (the same "
                                                              "as --spec SPEC)."),
    readme: Optional[str] = typer.Option(None, "--readme", help="Also put a headline spec's summary table into this "
                                                                "file, between its lines '<!-- begin: discover "
                                                                "report summary -->' and '<!-- end: discover report "
                                                                "summary -->'."),
):
    """Write the markdown report (tables, verdicts, transfer matrix) from committed results."""
    from discover import headline_report, markdown_report, suite_report

    if bench:
        print(markdown_report.bench_summary(markdown_report._load_bench(results_dir, bench)))
        return
    spec = suite or spec
    kind = markdown_report.load_spec(spec)
    builder = (suite_report.build if "clean" in kind else markdown_report.build if "searches" in kind
               else headline_report.build)
    if readme and builder is not headline_report.build:
        raise UsageProblem("--readme takes the summary table of a headline spec (settings: search and bench)")
    if readme:
        replace_block(readme, [])  # the file and its markers are checked before any work
        text, table = headline_report.build_with_summary(spec, results_dir)
    else:
        text = builder(spec, results_dir)
    write_output(output, text)
    console.print(f"wrote {output}")
    if readme:
        write_output(readme, replace_block(readme, table))
        console.print(f"updated the summary table in {readme}")


BEGIN, END = "<!-- begin: discover report summary -->", "<!-- end: discover report summary -->"


def replace_block(path: str, lines: list[str]) -> str:
    """The text of ``path`` with the lines between its BEGIN and END markers replaced."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageProblem(f"cannot read {path}: {e.strerror}") from None
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise UsageProblem(f"{path} needs one line '{BEGIN}' and, after it, one line '{END}'")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail
