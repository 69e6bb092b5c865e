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
    from grammar import derivation, language, symbolic, zoo

    g = language.load(file)
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
    from grammar import language, symbolic, zoo
    from grammar.expr import parse

    if grammar:
        g = language.load(grammar)
        e = g.parse(text)
        defaults = {c: g.constants[c].default for c in e.constants}
    else:
        g = language.load("mirror.yaml")
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
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@app.command("export")
def export_cmd(
    run: Optional[str] = typer.Argument(None, help="A run under results/ (or a path to one)."),
    zoo_name: Optional[str] = typer.Option(None, "--zoo", help="Export a zoo loss instead of a run's."),
    rank: int = typer.Option(1, "--rank", help="Which of the run's hall of fame (1 = best)."),
    fmt: str = typer.Option("jax", "--format", "-f", help="jax, torch or trl."),
    output: str = typer.Option(..., "--output", "-o", help="The .py file to write."),
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
        from discover.store import RunStore

        store = RunStore.open(run)
        entry = store.hall_of_fame_entry(rank)
        expr, constants = entry.expr, entry.constants
        title = f"Discovered loss, rank {rank} of run {store.name}"
        provenance = entry.provenance
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
    task: str = typer.Option("hopper"),
    setting: str = typer.Option("noisy", help="clean, noisy, mixed or shuffled."),
    eps: float = typer.Option(0.3, help="Label-flip probability (noisy), in [0, 0.5)."),
    pairs: int = typer.Option(2000),
    segment: int = typer.Option(25, help="Control steps per segment (H)."),
    seed: int = typer.Option(0),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if cached."),
):
    """Build (or load from the cache) a preference dataset and its reference policy; summarise it."""
    from evaluators import datasets, reference

    cfg = datasets.DatasetConfig(task=task, setting=setting, eps=eps, pairs=pairs, segment=segment, seed=seed)
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
    task: str = typer.Option("hopper"),
    setting: str = typer.Option("noisy", help="clean, noisy, mixed or shuffled."),
    eps: float = typer.Option(0.3, help="Label-flip probability (noisy)."),
    seeds: int = typer.Option(5, help="Inner training seeds per loss."),
    losses: Optional[str] = typer.Option(None, help="Comma-separated zoo losses (default: the whole zoo)."),
    pairs: int = typer.Option(2000),
    segment: int = typer.Option(25),
    data_seed: int = typer.Option(0),
    steps: int = typer.Option(200, help="Training steps per run."),
    batch: int = typer.Option(32, help="Pairs per batch."),
    lr: float = typer.Option(3e-4, help="Adam learning rate."),
    episodes: int = typer.Option(4, help="Evaluation episodes per trained policy."),
    backend: str = typer.Option("auto", help="auto, native or mjx."),
    name: Optional[str] = typer.Option(None, help="Output under results/NAME (default bench-TASK-SETTING)."),
    results_dir: str = typer.Option("results", help="Where runs are written."),
):
    """Evaluate zoo losses with identical data, seeds and budget; table, results.json and a bar chart."""
    from discover.bench import default_losses, experiment_config, run_bench
    from grammar import zoo

    names = [n.strip() for n in losses.split(",") if n.strip()] if losses else default_losses()
    for n in names:
        zoo.get(n)
    if seeds < 1:
        raise UsageProblem("--seeds must be at least 1")
    cfg = experiment_config(task, setting, eps, pairs, segment, data_seed, steps, batch, lr, episodes, backend)
    out_dir = os.path.join(results_dir, name or f"bench-{task}-{setting}")
    out = run_bench(cfg, names, list(range(seeds)), out_dir, log=console.print)
    table = Table(title=f"{task} {setting}" + (f" eps={eps:g}" if setting == "noisy" else "")
                  + f": normalised return, mean ± std over {seeds} seeds")
    for col in ("loss", "score", "train acc.", "closed form"):
        table.add_column(col)
    ref = out["reference"]
    table.add_row("[dim]reference (BC)[/]", f"[dim]{ref['mean']:.1f} ± {ref['std']:.1f}[/]", "", "")
    for r in sorted(out["losses"], key=lambda r: -(r["fitness"] if r["fitness"] is not None else -1e9)):
        score = f"{r['fitness']:.1f} ± {r['spread']:.1f}" if r["fitness"] is not None else f"[red]{r['reason']}[/]"
        table.add_row(r["name"], score, f"{r['train_accuracy']:.2f}", r["closed_form"])
    console.print(table)
    t = out["timing"]
    console.print(f"wrote {out_dir}/results.json and bench.png; training {t['train_s']:.1f} s, scoring "
                  f"{t['score_s']:.1f} s, total {t['total_s']:.1f} s, {out['compilations']} compilation(s)")


def main() -> None:
    """Entry point: runs the app, turning user errors into one line and exit code 2
    (typer itself reports bad options and arguments, also with exit code 2)."""
    with user_errors(UsageProblem):
        app()


if __name__ == "__main__":
    main()
