"""Commands on losses and grammars: `zoo`, `expr`, `grammar check`, `export`."""

from __future__ import annotations

import sys
import time
from typing import Optional

import typer
from rich.table import Table

from discover.app import (ExportFormat, UsageProblem, app, check_output, console, grammar_app, parse_export_format,
                          write_output)


@app.command("zoo")
def zoo_cmd(latex: bool = typer.Option(False, "--latex", help="Show LaTeX instead of text.")):
    """List the hand-designed losses (the zoo): name, constants, closed form, reference."""
    from rich.markup import escape

    from discover.run_views import entries_view
    from grammar import symbolic, zoo

    # Each loss as a header line, then its formula and reference beneath it, wrapped at the
    # terminal's width: a table column would cut long formulas at 80 columns.
    rows = []
    for name, z in zoo.ZOO.items():
        form = symbolic.latex(z.expr) if latex else symbolic.text(z.expr)
        consts = ", ".join(f"{k}={v:g}" for k, v in z.constants.items())
        rows.append((f"[bold]{escape(name)}[/]" + (f"  [dim]{escape(consts)}[/]" if consts else ""), form,
                     [z.reference]))
    console.print(entries_view("The zoo (r_y = logp_y - ref_y, m_y = logp_y / len_y, t = progress)", rows),
                  highlight=False)


@grammar_app.command("check")
def grammar_check(
    file: str = typer.Argument(..., help="Grammar file, or the name of a shipped one (mirror.yaml)."),
    depth: int = typer.Option(2, help="Count distinct canonical trees up to this derivation depth."),
    limit: int = typer.Option(1000, help="Enumerate at most this many derivations."),
):
    """Validate a grammar file and summarise it."""
    from discover.errors import for_markup as shown
    from grammar import derivation, symbolic, zoo
    from grammar import load as load_grammar

    # Every name and text below comes from the file: escaped, so that it prints as written.
    g = load_grammar(file)
    console.print(f"[bold green]valid[/] grammar [bold]{shown(g.name)}[/] ({shown(g.path)}); "
                  f"start symbol {shown(g.start)}")
    if g.description:
        console.print(shown(g.description, lines=True))
    nts = Table(title="nonterminals")
    for col in ("name", "params", "productions"):
        nts.add_column(col)
    for nt in g.nonterminals.values():
        extra = f" [dim](increasing on {list(nt.increasing)})[/]" if nt.increasing else ""
        nts.add_row(shown(nt.name), shown(", ".join(nt.params) or "-"),
                    shown(", ".join(p.label for p in nt.productions)) + extra)
    console.print(nts)
    console.print(f"[bold]primitives[/]: {shown(', '.join(g.primitives))}")
    console.print(f"[bold]terminals[/]: {shown(', '.join(g.terminals))}")
    consts = Table(title="constants")
    for col in ("name", "default", "low", "high", "scale"):
        consts.add_column(col)
    for c in g.constants.values():
        consts.add_row(shown(c.name), f"{c.default:g}", f"{c.low:g}", f"{c.high:g}", shown(c.scale))
    console.print(consts)
    console.print(f"[bold]limits[/]: max_depth {g.limits.max_depth}, max_size {g.limits.max_size}; "
                  f"forbidden nestings: {shown(', '.join(f'{a}({b}(.))' for a, b in g.forbid_nesting) or 'none')}")
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
            seeds.add_row(shown(name), shown(text), mark)
        console.print(seeds)
    started = time.time()
    nodes, truncated = derivation.enumerate_nodes(g, depth, limit)
    hashes, valid, invalid = set(), 0, {}
    with console.status(f"canonicalising {len(nodes)} derivations ..."):
        for n in nodes:
            e = derivation.expand(g, n)
            reason = derivation.check(g, n, e)
            if reason is None:
                valid += 1
                hashes.add(symbolic.canonical_hash(e))
            else:
                invalid.setdefault(reason, derivation.to_text(n))
    more = "at least " if truncated else ""
    console.print(f"up to derivation depth {depth}: {more}{len(nodes)} derivations, {valid} valid, "
                  f"[bold]{len(hashes)} distinct canonical losses[/] ({time.time() - started:.1f} s)")
    for reason, example in list(invalid.items())[:INVALID_SHOWN]:  # why the others are not
        console.print(f"  invalid: {shown(reason)} (e.g. {shown(example)})", soft_wrap=True, highlight=False)
    if len(invalid) > INVALID_SHOWN:
        console.print(f"  ... and {len(invalid) - INVALID_SHOWN} more reasons")


INVALID_SHOWN = 5  # reasons for invalid derivations that grammar check lists


@app.command("expr", context_settings={"ignore_unknown_options": True})
def expr_cmd(
    text: str = typer.Argument(..., help="A loss in the text form, e.g. '-log_sigmoid(beta*(r_w - r_l))'."),
    grammar: Optional[str] = typer.Option(None, "--grammar",
                                          help="Resolve names with this grammar's definitions and constants."),
):
    """Parse a loss; print its closed form, LaTeX, canonical hash and complexity."""
    from discover.errors import for_markup as shown
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
    if reason := symbolic.undefined(e):
        from discover.store import cut

        raise UsageProblem(f"the loss {cut(text)!r} {reason}")
    h = symbolic.canonical_hash(e)
    # names may come from a grammar file: every form is escaped, so that it prints as written
    console.print("[bold]closed form[/]")
    console.print(shown(symbolic.pretty(e, wrap_line=False), lines=True), soft_wrap=True, highlight=False)
    console.print(f"[bold]text[/]        {shown(symbolic.text(e))}", soft_wrap=True, highlight=False)
    console.print(f"[bold]LaTeX[/]       {shown(symbolic.latex(e))}", soft_wrap=True, highlight=False)
    unexpanded = "" if symbolic.expanded(e) else "  [dim](not expanded: over the size budget)[/]"
    console.print(f"[bold]canonical[/]   {shown(symbolic.canonical(e))}{unexpanded}", soft_wrap=True,
                  highlight=False)
    console.print(f"[bold]hash[/]        {h}")
    console.print(f"[bold]complexity[/]  {symbolic.complexity(e)}")
    console.print(f"[bold]constants[/]   "
                  f"{shown(', '.join(f'{k} (default {v:g})' for k, v in defaults.items()) or 'none')}")
    for line in symbolic.compact(e)[:-1]:
        console.print(f"[bold]compact[/]     {shown(line)}", soft_wrap=True, highlight=False)
    same = [n for n, z in zoo.ZOO.items() if symbolic.canonical_hash(z.expr) == h]
    if same:
        console.print(f"[bold]zoo[/]         same canonical form as {', '.join(same)}")
        seed = next((g.seeds[n] for n in same if n in g.seeds), None)
        if seed:
            from grammar import derivation, parts

            console.print(f"[bold]parts[/]       (as {shown(g.name)}.yaml derives {same[0]})")
            for line in parts.lines(g, derivation.parse_derivation(g, seed)):
                console.print(f"  {shown(line)}", soft_wrap=True, highlight=False)


@app.command("export")
def export_cmd(
    run: Optional[str] = typer.Argument(None, help="A run under results/ (or a path to one)."),
    zoo_name: Optional[str] = typer.Option(None, "--zoo", help="Export a zoo loss instead of a run's."),
    rank: Optional[int] = typer.Option(None, "--rank", help="Which of the run's losses: the number discover show "
                                                            "gives it (default 1 = best held-out score of a "
                                                            "finished run)."),
    fmt: ExportFormat = typer.Option("jax", "--format", "-f", parser=parse_export_format,
                                     help="A JAX or PyTorch module, or a TRL trainer."),
    output: str = typer.Option(..., "--output", "-o", help="The .py file to write (- for standard output)."),
    results_dir: str = typer.Option("results", help="Where runs are."),
):
    """Write a loss as a standalone Python module (JAX or PyTorch) or a TRL trainer."""
    from grammar import export, zoo

    if (run is None) == (zoo_name is None):
        raise UsageProblem("give either a RUN or --zoo NAME")
    if zoo_name is not None and rank is not None:
        raise UsageProblem("--rank numbers a run's losses; a zoo loss is named by --zoo alone")
    rank = 1 if rank is None else rank
    if output != "-":
        check_output(output)
    from discover.api import source_of
    from grammar import load as load_grammar

    if zoo_name is not None:
        z = zoo.get(zoo_name)
        loss, title = z.loss(), f"{zoo_name}: {z.formula}"
        g = load_grammar("mirror.yaml")
        text = g.seeds.get(zoo_name)
    else:
        from discover.run_views import ranked_loss
        from discover.store import RunStore

        store = RunStore.open(run, results_dir)
        loss, text = ranked_loss(store, rank)
        title = f"Discovered loss {rank} of run {store.name}"
        g = load_grammar(store.file("grammar.yaml"))
    src = source_of(loss, fmt, title, text, g)
    if output == "-":
        sys.stdout.write(src)
        return
    write_output(output, src)
    console.print(f"wrote {output} ({fmt}): {export.printable(title, one_line=True)}", markup=False,
                  highlight=False)
