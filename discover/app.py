"""The ``discover`` app: its typer groups, consoles, the user-error type of the CLI, and the
defaults of every option (taken from the config dataclasses, where each is written once).
The commands live in ``discover/commands_*.py``, one module per group."""

from __future__ import annotations

import os
from typing import Iterable, Literal

import typer
from rich.console import Console

from discover.constant_search import ES_ALGORITHMS
from discover.search import SearchConfig
from evaluators.datasets import LABELS, SETTINGS, DatasetConfig
from evaluators.fitness import BACKENDS, EvalConfig
from evaluators import registry
from evaluators.tasks import TASK_MODULES
from evaluators.trainer import TrainConfig

app = typer.Typer(
    add_completion=True,
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

# Every default of the commands comes from here.
DATA, TRAIN, EVAL, SEARCH = DatasetConfig(), TrainConfig(), EvalConfig(), SearchConfig()
LABELS_HELP = ("expert (the expert continues both sides: labels judge the segment) or policy (each side's own "
               "policy continues it, as in v1 datasets).")

MUJOCO_TASKS = tuple(sorted(TASK_MODULES))
TASKS = MUJOCO_TASKS + tuple(sorted(registry.TASKS))  # every --task of run and bench, the token task last

TASK_HELP = f"A MuJoCo task ({', '.join(MUJOCO_TASKS)}) or lm (the token task)."
MUJOCO_TASK_HELP = f"A MuJoCo task: {', '.join(MUJOCO_TASKS[:-1])} or {MUJOCO_TASKS[-1]}."
SETTING_HELP = f"The data's defect: {', '.join(SETTINGS[:-1])} or {SETTINGS[-1]}."

# The panels of the long commands' --help (typer's rich_help_panel).
SEARCH_PANEL, LOSSES_PANEL, DATA_PANEL, TRAINING_PANEL, OUTPUT_PANEL, CLUSTER_PANEL = (
    "Search", "Losses and seeds", "Data", "Training and scoring", "Output", "Cluster")


def one_of(flag: str, what: str, values: tuple[str, ...]):
    """The ``parser`` of an option with a fixed set of values, whose annotation
    ``Literal[values]`` lists them in --help and for shell completion: any other value is a
    one-line user error naming the option and its values (typer's own is a framed block)."""

    def parse(value: str) -> str:
        if value in values:
            return value
        raise UsageProblem(f"unknown {what} {value!r}; {flag} takes {', '.join(values)}")

    return parse


# Options with fixed values: (annotation, parser) of each.
Task, parse_task = Literal[TASKS], one_of("--task", "task", TASKS)
MujocoTask, parse_mujoco_task = Literal[MUJOCO_TASKS], one_of("--task", "task", MUJOCO_TASKS)
Setting, parse_setting = Literal[SETTINGS], one_of("--setting", "setting", SETTINGS)
Labels, parse_labels = Literal[LABELS], one_of("--labels", "labels", LABELS)
Backend, parse_backend = Literal[BACKENDS], one_of("--backend", "backend", BACKENDS)
Es, parse_es = Literal[ES_ALGORITHMS], one_of("--es", "constant search", ES_ALGORITHMS)
EXPORT_FORMATS = ("jax", "torch", "trl")
ExportFormat, parse_export_format = Literal[EXPORT_FORMATS], one_of("--format", "format", EXPORT_FORMATS)

REFERENCE_STEPS_HELP = ("Training steps of each dataset's reference policy (default, per evaluator: " + ", ".join(
    f"{registry.option_default(name, 'reference_steps')} for {name} ({registry.reference_label(name)})"
    for name in registry.EVALUATORS if registry.option_default(name, "reference_steps") is not None) + ").")

RAY_HELP = ("Score on a Ray cluster: auto (RAY_ADDRESS, or the cluster started here with `ray start --head`), "
            "HOST:PORT of its head, or local (a one-machine cluster started for this command). Needs the ray extra.")
RAY_ACTORS_HELP = "Ray actors (default: one per GPU of the cluster, else one per CPU)."


def ray_wrapper(address: str | None, actors: int | None):
    """None without --ray; else a function that puts an evaluator's training on the cluster's
    actors. The cluster is joined and checked (address, room for the actors) at once."""
    if address is None:
        if actors is not None:
            raise UsageProblem("--ray-actors needs --ray")
        return None
    if actors is not None and actors < 1:
        raise UsageProblem("--ray-actors must be at least 1")
    from evaluators import remote

    pool = remote.RayPool(address, actors, log=console.print)  # joined and checked before any work

    def wrap(local, name, config):
        return remote.RayEvaluator(local, pool, name, config.to_dict())

    return wrap


class UsageProblem(Exception):
    """A bad combination of options (a user error)."""


def given_on_command_line(ctx: typer.Context) -> set[str]:
    """The options (parameter names) the user typed, as opposed to their defaults."""
    return {name for name in ctx.params
            if (src := ctx.get_parameter_source(name)) is not None and src.name == "COMMANDLINE"}


def refuse_foreign_options(given: Iterable[str], task: str) -> None:
    """A user error when a ``given`` option (parameter name) means nothing to the evaluator of
    ``task`` (its configuration's ``FOREIGN`` options: --segment with --task lm, ...)."""
    from evaluators import registry

    config = registry.get(registry.for_task(task)).Config
    foreign = [name for name in getattr(config, "FOREIGN", ()) if name in set(given)]
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise UsageProblem(f"{flags} {'does' if len(foreign) == 1 else 'do'} not apply to --task {task} "
                           f"({getattr(config, 'FOREIGN_OWNER', 'options of other evaluators')})")


def check_task(task: str) -> None:
    """A user error unless ``task`` is a task of some evaluator (the list names them all)."""
    if task not in TASKS:
        raise UsageProblem(f"unknown task {task!r}; --task takes {', '.join(TASKS)}")


def refuse_ignored_options(given: Iterable[str], setting: str) -> None:
    """A user error when a ``given`` option means nothing with the others: --eps (the
    label-flip probability) with any setting but noisy."""
    if setting != "noisy" and "eps" in set(given):
        raise UsageProblem(f"--eps applies to --setting noisy only, not {setting} (drop --eps, or use "
                           "--setting noisy)")


def check_batch(config) -> None:
    """A user error when a training batch would hold more pairs than the dataset has."""
    batch, pairs = config.train.batch_pairs, config.dataset.pairs
    if batch > pairs:
        raise UsageProblem(f"--batch {batch} is larger than the dataset (--pairs {pairs}); lower --batch or "
                           "raise --pairs")


def check_output(path: str) -> None:
    """A user error unless ``path`` can be written: its directory exists and is writable, and
    it is not a directory itself. Checked before any work."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UsageProblem(f"output is a directory: {path} (give a file name)")
    if not os.path.isdir(directory):
        raise UsageProblem(f"output directory does not exist: {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageProblem(f"cannot write into {directory}: permission denied")


def write_output(path: str, text: str) -> None:
    """Writes a file the user asked for, atomically (see :func:`check_output`)."""
    from evaluators import atomic

    check_output(path)
    try:
        atomic.write_text(path, text)
    except OSError as e:
        raise UsageProblem(f"cannot write {path}: {e.strerror}") from None
