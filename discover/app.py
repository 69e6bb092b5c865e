"""The ``discover`` app: its typer groups, consoles, the user-error type of the CLI, the
defaults of the search's options (from its config dataclass, where each is written once),
and the evaluator options of ``run`` and ``bench``: ``--task`` and every option an
evaluator's configuration declares (:class:`evaluators.interface.Option`), each at the
default of the task's own evaluator. The commands live in ``discover/commands_*.py``,
one module per group."""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any, Callable, Iterable, Literal, Optional

import typer
from rich.console import Console

from discover.search_config import ES_ALGORITHMS, SearchConfig
from evaluators import registry
from evaluators.options import DATA_PANEL

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

# The search's defaults; the evaluators' come from their own configurations.
SEARCH = SearchConfig()

# The panels of the long commands' --help (typer's rich_help_panel); the evaluators' options
# go to DATA_PANEL and TRAINING_PANEL.
SEARCH_PANEL, LOSSES_PANEL, OUTPUT_PANEL, CLUSTER_PANEL = "Search", "Losses and seeds", "Output", "Cluster"


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
Es, parse_es = Literal[ES_ALGORITHMS], one_of("--es", "constant search", ES_ALGORITHMS)
EXPORT_FORMATS = ("jax", "torch", "trl")
ExportFormat, parse_export_format = Literal[EXPORT_FORMATS], one_of("--format", "format", EXPORT_FORMATS)


def flag(name: str) -> str:
    """The command-line flag of an option (parameter) name: reference_steps -> --reference-steps."""
    return "--" + name.replace("_", "-")


def evaluator_options() -> dict[str, list[tuple[str, Any, Any]]]:
    """Every command-line option of every registered evaluator: name -> [(evaluator, its
    :class:`~evaluators.interface.Option`, its default there)], the default evaluator's
    options first."""
    out: dict[str, list[tuple[str, Any, Any]]] = {}
    for name in (registry.DEFAULT, *(n for n in registry.EVALUATORS if n != registry.DEFAULT)):
        config = registry.config_class(name)()
        for option in config.command_line_options():
            out.setdefault(option.name, []).append((name, option, config.option(option.name)))
    return out


@dataclasses.dataclass(frozen=True)
class EvaluatorRequest:
    """The evaluator part of a ``run`` or ``bench`` command line: the task and the
    evaluator options given on it (the others keep the defaults of the task's evaluator)."""

    task: str
    given: dict[str, Any]

    @property
    def evaluator(self) -> str:
        """The evaluator that serves the task."""
        return registry.for_task(self.task)

    def refuse_options_it_lacks(self) -> None:
        """A user error when an option given means nothing to the task's evaluator."""
        refuse_foreign_options(self.given, self.task)
        config = self.config()
        refuse_ignored_options(self.given, config.option("setting"))

    def config(self, **set_by_command):
        """The task's evaluator's configuration with the options given (not validated);
        ``set_by_command``: options the command sets itself (data_seed, eval_seed, ...)."""
        return registry.config_class(self.evaluator)().with_options(task=self.task, **self.given, **set_by_command)


def refuse_foreign_options(given: Iterable[str], task: str) -> None:
    """A user error when a ``given`` option (parameter name) is an evaluator option that the
    evaluator of ``task`` does not declare (--segment with --task lm, ...); other names
    (the search's options) pass."""
    declared = registry.config_class(registry.for_task(task)).declared()
    owners = evaluator_options()
    foreign = sorted(name for name in set(given) if name in owners and name not in declared)
    if foreign:
        flags = ", ".join(flag(name) for name in foreign)
        evaluators = list(dict.fromkeys(evaluator for name in foreign for evaluator, _, _ in owners[name]))
        raise UsageProblem(f"{flags} {'does' if len(foreign) == 1 else 'do'} not apply to --task {task} "
                           f"({'an option' if len(foreign) == 1 else 'options'} of the "
                           f"{' and '.join(evaluators)} evaluator{'s' if len(evaluators) > 1 else ''})")


def _default_text(owners: list[tuple[str, Any, Any]]) -> str:
    """The defaults of an option, per evaluator: "3000 for mujoco, 400 for lm"."""
    return ", ".join(f"{d} for {name}" for name, _, d in owners)


def _task_parameter() -> inspect.Parameter:
    """``--task``: every task of every evaluator, the default evaluator's first."""
    tasks = registry.tasks()
    by_evaluator: dict[str, list[str]] = {}
    for task, name in tasks.items():
        by_evaluator.setdefault(name, []).append(task)
    help_ = ("The task, and with it the evaluator: " + "; ".join(f"{', '.join(t)} ({name})"
                                                                 for name, t in by_evaluator.items()) + ".")
    names = tuple(tasks)
    return inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Literal[names],
                             default=typer.Option(registry.default_task(), parser=one_of("--task", "task", names),
                                                  metavar="TASK", help=help_, rich_help_panel=DATA_PANEL))


def _option_parameters() -> list[inspect.Parameter]:
    """One parameter per evaluator option. Its default is the one every evaluator shares,
    else None and --help says each evaluator's; an option not typed takes the default of
    the task's evaluator in any case (:class:`EvaluatorRequest` holds only those typed)."""
    out = []
    for name, owners in evaluator_options().items():
        option, default = owners[0][1], owners[0][2]
        shared = len(owners) == len(registry.EVALUATORS) and len({repr(d) for _, _, d in owners}) == 1
        choices = tuple(dict.fromkeys(c for _, o, _ in owners for c in o.choices))
        annotation = Literal[choices] if choices else type(default)
        extra = {"parser": one_of(flag(name), name.replace("_", " "), choices)} if choices else {}
        out.append(inspect.Parameter(
            name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Optional[annotation],
            default=typer.Option(default if shared else None, flag(name), help=option.help,
                                 show_default=True if shared else _default_text(owners),
                                 rich_help_panel=option.panel, **extra)))
    return out


EVALUATOR_COMMANDS: list[Callable] = []


def takes_evaluator_options(command: Callable) -> Callable:
    """A command ``command(ctx, ..., request: EvaluatorRequest, ...)`` as typer sees it: in
    the place of ``request``, ``--task`` and every command-line option of every registered
    evaluator (each at the default of the task's evaluator), declared anew whenever the
    app runs (:func:`declare_evaluator_options`). The command gets the task and the options
    given as an :class:`EvaluatorRequest`; options the task's evaluator lacks are its to
    refuse (:meth:`EvaluatorRequest.refuse_options_it_lacks`)."""

    def call(ctx: typer.Context, **kwargs):
        options = {name: kwargs.pop(name) for name in call.option_names}
        typed = given_on_command_line(ctx)
        request = EvaluatorRequest(kwargs.pop("task"), {k: v for k, v in options.items() if k in typed})
        return command(ctx, **kwargs, request=request)

    call.__name__, call.__qualname__, call.__doc__, call.__module__ = (
        command.__name__, command.__qualname__, command.__doc__, command.__module__)
    call.command = command
    EVALUATOR_COMMANDS.append(call)
    _declare(call)
    return call


def _declare(call: Callable) -> None:
    """Sets the signature that typer reads from the evaluators registered now."""
    options = _option_parameters()
    params = []
    for p in inspect.signature(call.command, eval_str=True).parameters.values():
        if p.name == "request":
            params += [_task_parameter(), *options]
        elif p.name in {o.name for o in options}:
            raise TypeError(f"{call.__name__}'s parameter {p.name} is also an evaluator option")
        else:
            params.append(p)
    call.__signature__ = inspect.Signature(params)
    call.__annotations__ = {p.name: p.annotation for p in params}
    call.option_names = [o.name for o in options]


def declare_evaluator_options() -> None:
    """Declares the evaluator options of ``run`` and ``bench`` from the evaluators registered
    now (an evaluator registered after import, as the tests' toy, gets its options)."""
    for call in EVALUATOR_COMMANDS:
        _declare(call)


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


def refuse_ignored_options(given: Iterable[str], setting: str | None) -> None:
    """A user error when a ``given`` option means nothing with the others: --eps (the
    label-flip probability) with any setting but noisy (None: data without settings)."""
    if setting is not None and setting != "noisy" and "eps" in set(given):
        raise UsageProblem(f"--eps applies to --setting noisy only, not {setting} (drop --eps, or use "
                           "--setting noisy)")


def check_batch(config) -> None:
    """A user error when a training batch would hold more pairs than the dataset has (where
    the evaluator has both options)."""
    batch, pairs = config.option("batch"), config.option("pairs")
    if batch is not None and pairs is not None and batch > pairs:
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
