"""What a person sees of a run in the terminal: progress lines, hall of fame, held-out
table; and its plots. (The markdown report of committed results is markdown_report.py.)"""

from __future__ import annotations

import os

from rich.table import Table

from discover import plots
from discover.errors import RunError
from discover.store import RunStore
from discover.records import expression_of
from grammar.expr import Expr


def _fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def generation_line(info: dict, total: int, eta_s: float | None) -> str:
    rate = info["new"] / max(info["seconds"], 1e-9)
    eta = f", ETA {eta_s / 60:.1f} min" if eta_s is not None else ""
    form = info.get("best_closed_form") or "-"
    if len(form) > 90:
        form = form[:87] + "..."
    seeds = f" ({info['best_seeds']} seeds)" if info.get("best_seeds") else ""
    again = f"  re-trained {info['reevaluated']}" if info.get("reevaluated") else ""
    return (f"[bold]gen {info['generation'] + 1}/{total}[/]  best {_fmt(info['best_fitness'])}{seeds}  "
            f"gen best {_fmt(info['generation_best'])}  median {_fmt(info['median'])}  "
            f"{rate * 60:.0f} cand/min{again}  cache hits {info['cache_hits']}  rejected {info['rejected']}  "
            f"compilations {info['compilations']}  {info['elapsed_s'] / 60:.1f} min{eta}\n    {form}")


def final_table(final: dict, latex: bool = False) -> Table:
    table = Table(title=f"held-out scores ({len(final['holdout_seeds'])} unseen inner seeds, unseen evaluation "
                        f"episodes): normalised return, mean ± std over seeds", show_lines=False)
    for col in ("loss", "held-out", "search (seeds)", "complexity", "closed form", "constants"):
        table.add_column(col, overflow="fold")
    ref = final["reference"]
    table.add_row("[dim]reference (BC)[/]", f"[dim]{ref['mean']:.1f} ± {ref['std']:.1f}[/]", "", "", "", "")
    rows = sorted(final["rows"], key=lambda r: -(r["heldout_mean"] if r["heldout_mean"] is not None else -1e9))
    for r in rows:
        if r["kind"] == "discovered":
            same = f" (= {r['zoo_form']} form)" if r.get("zoo_form") else ""
            name = f"[bold green]discovered {r['name']}[/]{same}"
        else:
            name = r["name"]
        held = (f"{r['heldout_mean']:.1f} ± {r['heldout_std']:.1f}" if r["heldout_mean"] is not None
                else f"[red]{r['reason']}[/]")
        consts = ", ".join(f"{k}={v:.3g}" for k, v in r["constants"].items())
        search = _fmt(r["search_fitness"]) + (f" ({r['search_seeds']})" if r.get("search_seeds") else "")
        table.add_row(name, held, search, str(r["complexity"]),
                      r["latex"] if latex else r["closed_form"], consts)
    return table


def hall_of_fame_table(hof: dict, latex: bool = False, top: int = 10) -> Table:
    table = Table(title="hall of fame (best per structure, search fitness on the search's inner seeds)")
    for col in ("rank", "fitness", "± over seeds", "seeds", "complexity", "closed form", "constants", "origin"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(hof["ranked"][:top], 1):
        from grammar import symbolic

        form = r["closed_form"]
        if latex:
            form = symbolic.latex(expression_of(r))
        consts = ", ".join(f"{k}={v:.3g}" for k, v in r["constants"].items())
        table.add_row(str(i), _fmt(r["fitness"]), _fmt(r["spread"]), str(len(r.get("per_seed") or [])),
                      str(r["complexity"]), form, consts, r["origin"])
    return table


def pareto_table(hof: dict) -> Table:
    table = Table(title="Pareto front (fitness vs complexity)")
    for col in ("complexity", "fitness", "closed form"):
        table.add_column(col, overflow="fold")
    for r in hof["pareto"]:
        table.add_row(str(r["complexity"]), _fmt(r["fitness"]), r["closed_form"])
    return table


def data_of(cfg: dict) -> str:
    """What a run was scored on, from its stored config: "task hopper, setting noisy, eps 0.3"
    for the MuJoCo evaluator, the evaluator's name otherwise."""
    from evaluators import registry

    name = registry.of_store(cfg)
    data = cfg.get("experiment", {}).get("dataset") if name == "mujoco" else None
    if not data:
        return f"evaluator {name}"
    return (f"task {data['task']}, setting {data['setting']}"
            + (f", eps {data['eps']}" if data["setting"] == "noisy" else ""))


def ranked_entry(store: RunStore, rank: int) -> tuple[Expr, dict, str]:
    """(expression, constants, provenance) of the run's rank-th loss: by held-out score when
    the run has finished, else by search fitness."""
    if rank < 1:
        raise RunError("--rank starts at 1")
    if store.has("final.json"):
        final = store.read("final.json")
        rows = sorted([r for r in final["rows"] if r["kind"] == "discovered" and r["heldout_mean"] is not None],
                      key=lambda r: -r["heldout_mean"])
        basis = "held-out score"
        scores = lambda r: f"held-out {r['heldout_mean']:.1f} ± {r['heldout_std']:.1f}"  # noqa: E731
    elif store.has("hall_of_fame.json"):
        rows = store.read("hall_of_fame.json")["ranked"]
        basis = "search fitness"
        scores = lambda r: f"search fitness {r['fitness']:.1f}"  # noqa: E731
    else:
        rows = [r for r in store.candidates() if r.get("fitness") is not None]
        rows.sort(key=lambda r: -r["fitness"])
        basis = "search fitness (run in progress)"
        scores = lambda r: f"search fitness {r['fitness']:.1f}"  # noqa: E731
    if not rows:
        raise RunError(f"run {store.name} has no scored loss yet")
    if rank > len(rows):
        raise RunError(f"run {store.name} has {len(rows)} ranked losses; --rank {rank} is out of range")
    row = rows[rank - 1]
    cfg = store.config()
    provenance = (f"mpo-discover run {store.name} (grammar {cfg['grammar_name']}, {data_of(cfg)}), "
                  f"rank {rank} by {basis}: {scores(row)}; derivation {row.get('derivation')}")
    return expression_of(row), row["constants"], provenance


def write_plots(store: RunStore, history: list[dict], hof: dict) -> list[str]:
    out = []
    final = store.read("final.json") if store.has("final.json") else {}
    curves = final.get("training_curves") or {}
    if curves:
        out.append(plots.training_curves(curves["steps"], curves["curves"], curves["reference"],
                                         store.file("training_curves.png"),
                                         f"run {store.name}: held-out training curves"))
    if history:
        gens = [h["generation"] + 1 for h in history]
        out.append(plots.fitness_over_generations(
            gens, [h["best_fitness"] for h in history], [h["median"] for h in history],
            store.file("fitness.png"), f"run {store.name}: fitness over generations"))
    scored = [r for r in store.candidates() if r.get("fitness") is not None]
    if scored:
        out.append(plots.pareto([r["complexity"] for r in scored], [r["fitness"] for r in scored],
                                [(r["complexity"], r["fitness"]) for r in hof["pareto"]],
                                store.file("pareto.png"), f"run {store.name}: Pareto front"))
    return [os.path.relpath(p) for p in out]
