"""The Python API: run a search or load a run, and take its losses as a table, sympy,
LaTeX, in-memory JAX or PyTorch functions, exported files or a TRL trainer.

    >>> import discover
    >>> run = discover.load("results/default-run-v3")
    >>> print(run)                 # the numbered losses, as discover show numbers them
    >>> loss = run.torch(1)        # loss 1 as a PyTorch function
    >>> run.export(1, "jax", "my_loss.py")

Losses are numbered from 1 as ``discover show`` and ``discover export --rank`` number them
(after a finished run: best held-out score first, then the rest of the hall of fame).
"""

from __future__ import annotations

import dataclasses
import os
import types
from typing import Any, Callable

from discover import run_views
from discover.errors import RunError
from discover.store import RunStore
from grammar.losses import Loss

FORMATS = ("jax", "torch", "trl")


def source_of(loss: Loss, fmt: str, title: str, derivation_text: str | None, grammar) -> str:
    """Source of ``loss`` exported as ``fmt`` (jax, torch or trl), with its parts in the terms
    of ``grammar`` when ``derivation_text`` names its derivation. What ``discover export``
    writes."""
    from grammar import derivation, export, export_trl, parts

    if fmt not in FORMATS:
        raise RunError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    described = parts.lines(grammar, derivation.parse_derivation(grammar, derivation_text)) if derivation_text else None
    if fmt == "trl":
        return export_trl.export_trl(loss.expr, loss.constants, title, loss.source, described, derivation_text)
    return export.export_module(loss.expr, loss.constants, fmt, title, loss.source, described, derivation_text)


def module_of(source: str, name: str) -> types.ModuleType:
    """An exported module's source run in memory, as a module named ``name`` (no file)."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - our own checked export
    return module


@dataclasses.dataclass
class Discovery:
    """A run of the engine, finished or not: its numbered losses and their views."""

    store: RunStore

    @property
    def name(self) -> str:
        """The run's name (its folder's)."""
        return self.store.name

    def _entry(self, i: int) -> run_views.NumberedLoss:
        losses = run_views.numbered_losses(self.store)
        if not 1 <= i <= len(losses):
            raise RunError(f"run {self.name} has losses 1 to {len(losses)}, not {i}")
        return losses[i - 1]

    @property
    def equations(self) -> list[dict[str, Any]]:
        """One dict per loss (``pandas.DataFrame(run.equations)`` makes it a table): number,
        held-out score and spread (None when not re-scored) with the ddof of that spread,
        search fitness, complexity, closed form, derivation, constants, and what the number
        ranks by."""
        from discover.records import expression_of
        from discover.rows import spread_ddof
        from grammar import symbolic

        ddof = spread_ddof(self.store.final(), "final.json") if self.store.has("final.json") else None
        out = []
        for e in run_views.numbered_losses(self.store):
            r = e.row
            held = e.basis.startswith("held-out")
            out.append({
                "number": e.number,
                "held_out": r.get("fitness") if held else None,
                "spread": r.get("spread") if held else None,
                "spread_ddof": ddof if held else None,
                "search_fitness": r.get("search_fitness") if held else r.get("fitness"),
                "complexity": r["complexity"],
                "closed_form": symbolic.text(expression_of(r)),
                "derivation": r.get("derivation"),
                "constants": dict(r["constants"]),
                "ranked_by": e.basis,
            })
        return out

    def loss(self, i: int) -> Loss:
        """Loss ``i`` (its expression as scored, its constants and provenance)."""
        self._entry(i)
        return run_views.ranked_loss(self.store, i)[0]

    def sympy(self, i: int):
        """Loss ``i``'s closed form as a sympy expression (constants as symbols)."""
        from grammar import symbolic

        return symbolic.closed_form(self.loss(i).expr)

    def latex(self, i: int) -> str:
        """Loss ``i``'s closed form in LaTeX."""
        from grammar import symbolic

        return symbolic.latex(self.loss(i).expr)

    def source(self, i: int, fmt: str = "jax") -> str:
        """Loss ``i`` exported as Python source (jax, torch or trl), as ``discover export`` writes it."""
        from grammar import load as load_grammar

        self._entry(i)
        loss, derivation_text = run_views.ranked_loss(self.store, i)
        return source_of(loss, fmt, f"Discovered loss {i} of run {self.name}", derivation_text,
                         load_grammar(self.store.file("grammar.yaml")))

    def jax(self, i: int) -> Callable:
        """Loss ``i`` as an in-memory JAX function (the exported ``loss``: per-example losses
        from the four summed log-probabilities; its constants are keyword arguments)."""
        return module_of(self.source(i, "jax"), f"{self.name}_loss_{i}_jax").loss

    def torch(self, i: int) -> Callable:
        """Loss ``i`` as an in-memory PyTorch function (see :meth:`jax`)."""
        return module_of(self.source(i, "torch"), f"{self.name}_loss_{i}_torch").loss

    def trl_trainer(self, i: int) -> type:
        """A TRL ``DPOTrainer`` subclass that trains loss ``i`` (needs the trl extra)."""
        return module_of(self.source(i, "trl"), f"{self.name}_loss_{i}_trl").DiscoveredLossDPOTrainer

    def export(self, i: int, fmt: str, path: str) -> str:
        """Writes loss ``i`` as a standalone module (jax, torch or trl) to ``path``; returns it."""
        from evaluators import atomic

        source = self.source(i, fmt)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise RunError(f"output directory does not exist: {directory}")
        return atomic.write_text(path, source)

    def __repr__(self) -> str:
        equations = self.equations
        lines = [f"Discovery({self.name!r}): {len(equations)} losses"]
        for eq in equations:
            score = (f"held-out {eq['held_out']:.1f}" if eq["held_out"] is not None
                     else f"search {eq['search_fitness']:.1f}" if eq["search_fitness"] is not None else "unscored")
            lines.append(f"{eq['number']:>3}  {score:<15} complexity {eq['complexity']:<4} {eq['closed_form']}")
        return "\n".join(lines)


def load(run: str, results_dir: str = "results") -> Discovery:
    """A run by name (under ``results_dir``) or path, finished or still running."""
    return Discovery(RunStore(os.path.abspath(RunStore.open(run, results_dir).path)))


def run(grammar: str = "mirror.yaml", task: str | None = None, name: str | None = None,
        results_dir: str = "results", datasets: int | None = None, data_seed: int | None = None,
        **options) -> Discovery:
    """Runs a search as ``discover run`` does (same validation, store, console output) and
    returns it (named like the command: ``discover.search`` is the search module).
    ``options`` are ``discover run``'s options with underscores: the search's (population,
    generations, seed, ...) and those the task's evaluator declares (setting, eps, steps,
    batch, lr, ...); defaults as there (the task's evaluator's own; ``task`` None: the
    default task); ``datasets``, ``data_seed``: as --datasets, --data-seed."""
    from discover import commands_search
    from discover.app import SEARCH, EvaluatorRequest, evaluator_options
    from evaluators import registry
    from evaluators.seeds import SEARCH_DATA

    search_options = dict(population=SEARCH.population, generations=SEARCH.generations, seed=SEARCH.seed,
                          es=SEARCH.es, reevaluate=SEARCH.reevaluate, halving=SEARCH.halving,
                          max_seeds=SEARCH.max_seeds, final_top=SEARCH.final_top, time_limit_min=None)
    evaluator_names = set(evaluator_options())
    unknown = set(options) - evaluator_names - set(search_options)
    if unknown:
        raise RunError(f"unknown option(s) {', '.join(sorted(unknown))} (options: "
                       f"{', '.join(sorted(evaluator_names | set(search_options)))})")
    request = EvaluatorRequest(task or registry.default_task(),
                               {k: v for k, v in options.items() if k in evaluator_names and v is not None})
    request.refuse_options_it_lacks()
    search_options.update({k: v for k, v in options.items() if k in search_options})
    g, search_cfg, evaluator_name, exp_cfg = commands_search._validated(
        grammar, request, search_options, len(SEARCH_DATA) if datasets is None else datasets,
        SEARCH_DATA[0] if data_seed is None else data_seed)
    store = commands_search._new_store(g, search_cfg, evaluator_name, exp_cfg, name, results_dir)
    commands_search.run_search(g, evaluator_name, exp_cfg, search_cfg, store)
    return Discovery(RunStore(os.path.abspath(store.path)))
