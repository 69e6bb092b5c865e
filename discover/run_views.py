"""What a person sees of a run in the terminal: progress lines, hall of fame, held-out
table; and its plots. (The markdown report of committed results is markdown_report.py.)"""

from __future__ import annotations

import dataclasses
import os

from discover import plots, records
from discover.errors import RunError, for_markup
from grammar.errors import GrammarError
from discover.store import RunStore
from evaluators import atomic
from discover.records import expression_of, loss_of
from discover.rows import spread_ddof, spread_label
from grammar.losses import Loss


def _fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def generation_line(info: dict, total: int, eta_s: float | None) -> str:
    """The console line of a finished generation: best and median fitness, pace, counts and
    the time left, with the best loss's closed form beneath."""
    rate = info["new"] / max(info["seconds"], 1e-9)
    eta = f", ETA {eta_s / 60:.1f} min" if eta_s is not None else ""
    form = info.get("best_closed_form") or "-"
    if len(form) > 90:
        form = form[:87] + "..."
    seeds = f" ({info['best_seeds']} seeds)" if info.get("best_seeds") else ""
    again = f"  re-trained {info['reevaluated']}" if info.get("reevaluated") else ""
    promoted = f" ({info['promoted']} promoted)" if info.get("promoted") is not None else ""
    return (f"[bold]gen {info['generation'] + 1}/{total}[/]  best {_fmt(info['best_fitness'])}{seeds}  "
            f"gen best {_fmt(info['generation_best'])}  median {_fmt(info['median'])}  "
            f"{rate * 60:.0f} cand/min{promoted}{again}  cache hits {info['cache_hits']}  rejected {info['rejected']}  "
            f"compilations {info['compilations']}  {info['elapsed_s'] / 60:.1f} min{eta}\n    {form}")


def _form(row: dict, latex: bool) -> tuple[str, list[str]]:
    """A row's closed form, recomputed from its stored expression (never the stored text, which
    a hand-edited file could make disagree with what export writes): one line, or (when
    subexpressions repeat) its compact form with them bound once: (first line, further lines)."""
    from grammar import symbolic

    expr = expression_of(row)
    if latex:
        return symbolic.latex(expr), []
    lines = symbolic.compact(expr)
    if len(lines) == 1:
        return lines[0].removeprefix("loss = "), []
    return lines[0], lines[1:]


def entries_view(title: str, rows: list[tuple[str, str, list[str]]]):
    """A titled list of entries: a header line of figures, then the entry's formula lines
    beneath it, indented and wrapped at the terminal's width (readable at 80 columns)."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    items = [Text(title, style="bold italic")]
    for header, form, extra in rows:
        items.append(Text.from_markup(header))
        for line in ([form] if form else []) + extra:
            items.append(Padding(Text(line, overflow="fold"), (0, 0, 0, 6)))
    return Group(*items)


def reference_label(store: RunStore) -> str:
    """How this run's evaluator names its reference policy ("BC", "SFT")."""
    from evaluators import registry

    return registry.reference_label(registry.of_store(store.config()))


def _constants(row: dict) -> str:
    consts = ", ".join(f"{for_markup(k)}={v:.3g}" for k, v in row["constants"].items())
    return f"  [dim]{consts}[/]" if consts else ""


def final_table(final: dict, numbers: dict[str, int] | None = None, latex: bool = False,
                parts: dict[str, list[str]] | None = None, label: str = "BC"):
    """The held-out table: the reference, then every re-scored loss (zoo and discovered) by
    score, each with its closed form (and its parts, when ``parts`` maps a row's key to them)
    on its own lines; ``numbers`` maps a discovered row's key to its number (see
    :func:`numbered_losses`), ``label`` names the reference."""
    ref = final["reference"]
    rows = [(f"[dim]{'reference (' + label + ')':<24}{ref['mean']:.1f} ± {ref['std']:.1f}[/]", "", [])]
    for r in sorted(final["rows"], key=lambda r: -(r["fitness"] if r["fitness"] is not None else -1e9)):
        if r["kind"] == "discovered":
            same = f" (= {for_markup(r['zoo_form'])} form)" if r.get("zoo_form") else ""
            number = (numbers or {}).get(row_key(r))
            name = f"[bold green]loss {number if number is not None else for_markup(r['name'])}[/]{same}"
        else:
            name = for_markup(r["name"])
        held = (f"{r['fitness']:.1f} ± {r['spread']:.1f}" if r["fitness"] is not None
                else f"[red]{for_markup(str(r['reason']))}[/]")
        seeds = f" ({r['search_seeds']} seeds)" if r.get("search_seeds") else ""  # not recorded by the first runs
        search = (f"  search {_fmt(r['search_fitness'])}{seeds}"
                  if r.get("search_fitness") is not None else "")
        extra = [for_markup(line) for line in (parts or {}).get(row_key(r), [])] if r["kind"] == "discovered" else []
        first, more = _form(r, latex)
        rows.append((f"{name}  {held}{search}  complexity {r['complexity']}" + _constants(r), first, more + extra))
    return entries_view(f"held-out scores ({len(final['holdout_seeds'])} unseen inner seeds, unseen evaluation "
                        f"episodes): normalised return, mean ± std over seeds "
                        f"({spread_label(spread_ddof(final, 'final.json'))}); export a loss with "
                        f"discover export RUN --rank N", rows)


def numbered_table(losses: list[NumberedLoss], title: str, latex: bool = False,
                   parts: dict[str, list[str]] | None = None):
    """Numbered losses by search fitness (the hall of fame, or its part not re-scored on
    held-out seeds), each with its closed form and its parts beneath."""
    rows = []
    for entry in losses:
        r = entry.row
        first, more = _form(r, latex)
        rows.append((f"[bold]loss {entry.number}[/]  search fitness {_fmt(r['fitness'])} ± {_fmt(r.get('spread'))} "
                     f"over {len(r.get('per_seed') or [])} seeds  complexity {r['complexity']}  origin "
                     f"{for_markup(str(r.get('origin')))}" + _constants(r),
                     first, more + [for_markup(line) for line in (parts or {}).get(row_key(r), [])]))
    return entries_view(title, rows)


def pareto_table(hof: dict, numbers: dict[str, int] | None = None):
    """The Pareto front of fitness against complexity: a loss with a number is named by it
    (its formula is printed above), others by their closed form."""
    rows = []
    for r in hof["pareto"]:
        number = (numbers or {}).get(row_key(r))
        if number is not None:
            rows.append((f"complexity {r['complexity']}  fitness {_fmt(r['fitness'])}  = loss {number}", "", []))
        else:
            rows.append((f"complexity {r['complexity']}  fitness {_fmt(r['fitness'])}", _form(r, False)[0], []))
    return entries_view("Pareto front (search fitness vs complexity)", rows)


def show_views(store: RunStore, latex: bool = False, top: int = 10) -> list:
    """What ``discover show`` prints after its header: the held-out table first (when the run
    has finished), then the numbered losses not in it (up to ``top`` in all), then the Pareto
    front. Every loss appears once, under the number that ``export --rank`` takes."""
    losses = numbered_losses(store)
    numbers = {row_key(entry.row): entry.number for entry in losses}
    views = []
    if finished(store):
        final = store.final()
        held = [r for r in final["rows"] if r["kind"] == "discovered"]
        views.append(final_table(final, numbers, latex, parts_of(store, held), reference_label(store)))
        rest = [e for e in losses if not e.basis.startswith("held-out")]
        rest = rest[:max(0, top - (len(losses) - len(rest)))]
        title = "more of the hall of fame (best per structure; search fitness, not re-scored on held-out seeds)"
    else:
        rest, title = losses[:top], "hall of fame (best per structure, search fitness on the search's inner seeds)"
    if rest:
        views.append(numbered_table(rest, title, latex, parts_of(store, [e.row for e in rest])))
    printed = {row_key(e.row) for e in losses[:top]} | {row_key(e.row) for e in losses if e.basis.startswith("held")}
    views.append(pareto_table(_hall_of_fame(store), {k: n for k, n in numbers.items() if k in printed}))
    return views


def parts_of(store: RunStore, rows: list[dict]) -> dict[str, list[str]]:
    """Each row's parts in its grammar's terms, by :func:`row_key`, for rows that carry a
    derivation; the run's own copy of its grammar reads them."""
    from grammar import derivation
    from grammar import load as load_grammar
    from grammar import parts

    if not store.has("grammar.yaml"):
        return {}
    g = load_grammar(store.file("grammar.yaml"))
    out = {}
    for r in rows:
        if r.get("derivation"):
            try:
                node = derivation.parse_derivation(g, r["derivation"])
            except GrammarError:  # a row from another version of the grammar: no parts
                continue
            out[row_key(r)] = parts.lines(g, node)
    return out


def write_loss_shapes(store: RunStore, hof: dict, inputs: dict, top: int = 3, out_dir: str | None = None) -> str:
    """loss_shapes.png and .json of the run's best ``top`` losses (by held-out score when the
    run has finished), DPO, IPO and the best zoo baseline, at a typical pair of its data."""
    from discover import loss_shapes
    from grammar import zoo

    best = [(f"loss {e.number}", e.row) for e in numbered_losses(store)[:top]]
    baseline = None
    if store.has("final.json"):
        rows = [r for r in store.final()["rows"] if r["fitness"] is not None and r["kind"] == "zoo"]
        baseline = max(rows, key=lambda r: r["fitness"])["name"] if rows else None
    entries = [loss_of(r, name) for name, r in best]
    entries += [zoo.ZOO[name].loss() for name in dict.fromkeys(["dpo", "ipo"] + ([baseline] if baseline else []))
                if name in zoo.ZOO]  # a run's baseline row may name a loss the zoo no longer has
    curves = loss_shapes.curves(entries, loss_shapes.typical_pair(inputs))
    if store.has("grammar.yaml"):
        from grammar import load as load_grammar

        g = load_grammar(store.file("grammar.yaml"))
        derived = [(name, r["derivation"], r["constants"]) for name, r in best if r.get("derivation")]
        derived += [(n, g.seeds[n], zoo.ZOO[n].constants) for n in ("dpo",) if n in g.seeds]
        curves["mirrors"] = loss_shapes.mirror_curves(g, derived, inputs)
    atomic.write_json(_target(store, out_dir, "loss_shapes.json"), curves)
    pair = curves["pair"]
    return shown_path(plots.loss_shapes(
        curves, _target(store, out_dir, "loss_shapes.png"),
        f"run {store.name}: losses against the margin at a typical pair (ref_w {pair['ref_w']:.0f}, ref_l "
        f"{pair['ref_l']:.0f}, lengths {pair['len_w']:.0f} / {pair['len_l']:.0f})"))


def effective_lines(rows: list[dict], inputs, names: list[str] | None = None) -> list[str]:
    """Each row's effective form on ``inputs`` (one dict, or one per row): its terms with
    their shares of the gradient, the loss without those under the threshold, and whether
    that is a zoo loss's form."""
    from grammar import effective, symbolic, zoo

    zoo_forms = {symbolic.canonical_hash(z.expr): n for n, z in zoo.ZOO.items()}
    out = [f"effective forms (terms under {effective.THRESHOLD:.0%} of the gradient norm removed; on 256 pairs of "
           "the run's first dataset at the reference policy, t across [0, 1], and 256 at the policy the loss "
           "trained to there, t = 1)"]
    per_row = [inputs] * len(rows) if isinstance(inputs, dict) else list(inputs)
    for i, (r, x) in enumerate(zip(rows, per_row)):
        expr = expression_of(r)
        form = effective.effective_form(expr, r["constants"], x)
        out.append(f"{names[i] if names else r.get('name', r.get('key'))}:")
        for term, share, kept in zip(form.terms, form.shares, form.kept):
            out.append(f"      {share:7.2%}  {'' if kept else '(inert) '}{symbolic.text(term)}")
        same = zoo_forms.get(symbolic.canonical_hash(form.expr))
        verdict = "no term is inert" if not form.pruned else f"effective form: {symbolic.text(form.expr)}"
        out.append(f"      {verdict}" + (f"  (= the zoo's {same} form)" if same else ""))
    return out


def zoo_relatives(expr, constants: dict, inputs):
    """Every zoo loss at the best point of its constant grid (the tuning's grid, which
    reaches mirror.yaml's bounds, as a search's constants do), by the cosine of its gradient
    field with that of ``expr`` on ``inputs``, most similar first
    (:func:`grammar.relatives.nearest`)."""
    from grammar import relatives, zoo

    from discover.tuning import constant_grid, mirror_constants

    bounds = mirror_constants()

    candidates = [(name, z.expr, constant_grid(z.constants, bounds)) for name, z in zoo.ZOO.items()]
    return relatives.nearest(expr, constants, inputs, candidates)


def relatives_lines(rows: list[dict], inputs, names: list[str] | None = None, top: int = 3) -> list[str]:
    """Each row's ``top`` nearest zoo losses (:func:`zoo_relatives`) on ``inputs`` (one
    dict, or one per row, as for :func:`effective_lines`)."""
    out = ["nearest hand-designed relatives (cosine of the gradient fields d loss / d(logp_w, logp_l) on the "
           "inputs of the effective forms, the mean of the start's and the end's; each zoo loss at the best point "
           "of a grid over its constants; 1 = the same direction and weighting of pairs)"]
    per_row = [inputs] * len(rows) if isinstance(inputs, dict) else list(inputs)
    for i, (r, x) in enumerate(zip(rows, per_row)):
        out.append(f"{names[i] if names else r.get('name', r.get('key'))}:")
        try:
            ranked = zoo_relatives(expression_of(r), r["constants"], x)
        except ValueError as e:
            out.append(f"      not measured: {e}")
            continue
        for rel in ranked[:top]:
            shown = ", ".join(f"{k}={v:.3g}" for k, v in sorted(rel.constants.items()))
            sets = " / ".join(f"{c:.3f}" for c in rel.per_set)
            out.append(f"      {rel.cosine:6.3f}  {rel.name}" + (f" ({shown})" if shown else "")
                       + (f"  [start / end {sets}]" if len(rel.per_set) == 2 else ""))
    return out


def data_of(cfg: dict) -> str:
    """What a run was scored on, from its stored config: "task hopper, setting noisy, eps 0.3"
    for the MuJoCo evaluator, "evaluator lm, setting mixed" for another with a setting, the
    evaluator's name otherwise."""
    from evaluators import registry

    name = registry.of_store(cfg)
    data = cfg.get("experiment", {}).get("dataset")
    if not isinstance(data, dict) or "setting" not in data:
        return f"evaluator {name}"
    noise = f", eps {data['eps']}" if data["setting"] == "noisy" and "eps" in data else ""
    if name != "mujoco":
        return f"evaluator {name}, setting {data['setting']}{noise}"
    return f"task {data['task']}, setting {data['setting']}{noise}"


@dataclasses.dataclass(frozen=True)
class NumberedLoss:
    """A run's loss in the one numbering that ``show``, ``export``, ``plot``, ``bench
    --include RUN:N`` and the Python API share: ``row`` is its stored record, ``basis`` what
    its number ranks it by, ``score`` that score as people read it."""

    number: int
    row: dict
    basis: str
    score: str


def finished(store: RunStore) -> bool:
    """Whether the run re-scored its best losses on held-out seeds (it has final.json)."""
    return store.has("final.json")


def _hall_of_fame(store: RunStore) -> dict:
    """The stored hall of fame, or (a run still going, or one that lost the file) the one its
    candidates give."""
    return store.hall_of_fame() if store.has("hall_of_fame.json") else records.hall_of_fame(store.candidates())


def row_key(row: dict) -> str:
    """A stored row's candidate key; rows of the first runs, written without one, get it from
    their expression and constants (as the search computed it)."""
    if row.get("key"):
        return row["key"]
    from grammar import symbolic

    return records.candidate_key(symbolic.canonical_hash(expression_of(row)), row["constants"])


def numbered_losses(store: RunStore) -> list[NumberedLoss]:
    """The run's losses, numbered from 1. After a finished run: the losses re-scored on
    held-out seeds, best held-out score first (those that failed there after them), then the
    rest of the hall of fame (best per structure) by search fitness. Before: the hall of fame
    so far, by search fitness."""
    hof = _hall_of_fame(store)
    if not finished(store):
        basis = "search fitness" if store.has("hall_of_fame.json") else "search fitness (run in progress)"
        return [NumberedLoss(i, r, basis, f"search fitness {_fmt(r['fitness'])}")
                for i, r in enumerate(hof["ranked"], 1)]
    held = [r for r in store.final()["rows"] if r["kind"] == "discovered"]
    held.sort(key=lambda r: (r["fitness"] is None, -(r["fitness"] or 0.0)))
    out = [NumberedLoss(i, r, "held-out score",
                        f"held-out {r['fitness']:.1f} ± {r['spread']:.1f}" if r["fitness"] is not None
                        else f"held-out: failed ({r.get('reason')})")
           for i, r in enumerate(held, 1)]
    seen = {row_key(r) for r in held}
    rest = [r for r in hof["ranked"] if row_key(r) not in seen]
    out += [NumberedLoss(len(out) + i, r, "search fitness (not re-scored on held-out seeds)",
                         f"search fitness {_fmt(r['fitness'])}") for i, r in enumerate(rest, 1)]
    return out


def ranked_loss(store: RunStore, rank: int) -> tuple[Loss, str | None]:
    """The run's loss number ``rank`` (see :func:`numbered_losses`), named ``RUN#RANK`` with
    its provenance as source, and its derivation."""
    if rank < 1:
        raise RunError(f"loss numbers start at 1, not {rank}")
    losses = numbered_losses(store)
    if not losses:
        raise RunError(f"run {store.name} has no scored loss yet")
    if rank > len(losses):
        raise RunError(f"run {store.name} has {len(losses)} numbered losses (see discover show {store.name}); "
                       f"loss {rank} is not one of them")
    entry = losses[rank - 1]
    row = entry.row
    cfg = store.config()
    provenance = (f"mpo-discover run {store.name} (grammar {cfg['grammar_name']}, {data_of(cfg)}), "
                  f"loss {rank} by {entry.basis}: {entry.score}; derivation {row.get('derivation')}")
    return (Loss(f"{store.name}#{rank}", expression_of(row), dict(row["constants"]), "discovered", provenance),
            row.get("derivation"))


def _target(store: RunStore, out_dir: str | None, name: str) -> str:
    """Where a plot goes: ``out_dir`` (created) if given, else the run folder."""
    if out_dir is None:
        return store.file(name)
    os.makedirs(out_dir, exist_ok=True)
    return os.path.join(out_dir, name)


def write_plots(store: RunStore, history: list[dict], hof: dict, out_dir: str | None = None) -> list[str]:
    """training_curves.png, fitness.png (with the held-out scores of loss 1 and the best
    baseline, and the reference, once the run has finished) and pareto.png, into ``out_dir``
    (default: the run folder)."""
    out = []
    final = store.final() if store.has("final.json") else {}
    curves = final.get("training_curves") or {}
    label = reference_label(store)
    if curves:
        out.append(plots.training_curves(curves["steps"], curves["curves"], curves["reference"],
                                         _target(store, out_dir, "training_curves.png"),
                                         f"run {store.name}: held-out training curves", label))
    if history:
        held, reference = {}, None
        if final:
            numbered = numbered_losses(store)
            if numbered and numbered[0].row.get("fitness") is not None and numbered[0].basis == "held-out score":
                held["loss 1"] = numbered[0].row["fitness"]
            zoo_rows = [r for r in final["rows"] if r["kind"] == "zoo" and r["fitness"] is not None]
            if zoo_rows:
                best = max(zoo_rows, key=lambda r: r["fitness"])
                held[f"best baseline ({best['name']})"] = best["fitness"]
            reference = (final["reference"]["mean"], label)
        gens = [h["generation"] + 1 for h in history]
        out.append(plots.fitness_over_generations(
            gens, [h["best_fitness"] for h in history], [h["median"] for h in history],
            _target(store, out_dir, "fitness.png"), f"run {store.name}: fitness over generations", held, reference))
    scored = [r for r in store.candidates() if r.get("fitness") is not None]
    if scored:
        out.append(plots.pareto([r["complexity"] for r in scored], [r["fitness"] for r in scored],
                                [(r["complexity"], r["fitness"]) for r in hof["pareto"]],
                                _target(store, out_dir, "pareto.png"), f"run {store.name}: Pareto front"))
    return [shown_path(p) for p in out]


def shown_path(path: str) -> str:
    """A written file's path as a user reads it: relative to the working directory when it
    lies below it, as given otherwise (not ``../../tmp/...``)."""
    rel = os.path.relpath(path)
    return path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel
