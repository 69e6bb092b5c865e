"""The option surface of an evaluator's configuration: the options ``discover run`` and
``bench`` take for it (:class:`Option`, declared in its ``OPTIONS``), the tasks it serves
and what its data is (:class:`Provenance`). Free of JAX, so that the command line can build
its options and answer --help without importing an evaluator."""

from __future__ import annotations

import dataclasses


# The --help panels of ``discover run`` and ``bench`` that an evaluator's options go to.
DATA_PANEL, TRAINING_PANEL = "Data", "Training and scoring"

# Options that ``discover run`` and ``bench`` set themselves (the task, which dataset, which
# evaluation start states, the program length a grammar needs): an evaluator declares those
# it has (without help: they are not options of its own), and the others are skipped.
SET_BY_COMMANDS = ("task", "data_seed", "eval_seed", "program_length")


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of an evaluator's configuration, as TRL's config fields carry their help:
    ``--NAME`` (``name`` with dashes) of ``discover run`` and ``bench`` sets ``field`` of the
    configuration's section ``section`` ("" for a field of the configuration itself). Its
    default is that field's default, written once, in the configuration. ``help`` None: an
    option the commands set themselves (:data:`SET_BY_COMMANDS`), not on the command line;
    ``choices``: its values where they are fixed; ``panel``: where --help lists it."""

    name: str
    section: str
    field: str
    help: str | None = None
    panel: str = DATA_PANEL
    choices: tuple[str, ...] = ()


# The options of the shared trainer (:class:`evaluators.trainer.TrainConfig`, section
# "train"), for the ``OPTIONS`` of every evaluator that trains with it.
TRAINER_OPTIONS = (
    Option("steps", "train", "steps", "Training steps per run.", TRAINING_PANEL),
    Option("batch", "train", "batch_pairs", "Pairs per training batch (at most --pairs).", TRAINING_PANEL),
    Option("lr", "train", "learning_rate", "Adam learning rate of the inner loop.", TRAINING_PANEL),
    Option("program_length", "train", "program_length"),
)


@dataclasses.dataclass(frozen=True)
class Provenance:
    """What a configuration trains on, as run names, console lines and bench titles say it:
    the task, and the data's setting, label-flip probability and pairs where the evaluator
    has them (None otherwise); ``pair`` what follows the number of pairs in a console line
    ("x 25 steps", "(token sequences)")."""

    task: str
    setting: str | None = None
    eps: float | None = None
    pairs: int | None = None
    pair: str | None = None

    def title(self) -> str:
        """"hopper noisy (eps 0.1)", "hopper clean", "toy"."""
        noisy = self.setting == "noisy" and self.eps is not None
        return " ".join(filter(None, (self.task, self.setting))) + (f" (eps {self.eps:g})" if noisy else "")

    def name(self) -> str:
        """A run's name part: "hopper-noisy", "toy"."""
        return "-".join(filter(None, (self.task, self.setting)))


class OptionsMixin:
    """The option surface of an evaluator configuration (a frozen dataclass, usually with
    sections): ``OPTIONS`` declares its options (:class:`Option`), ``TASKS`` the tasks it
    serves (``--task``; the registry finds an evaluator by them), and
    :meth:`pair_description` what its pairs are. ``discover run`` and ``bench`` build their
    evaluator options from these, so no evaluator names another's options. Several
    datasets: ``data_seeds`` (empty: the one of the ``data_seed`` option)."""

    OPTIONS: tuple[Option, ...] = ()
    TASKS: tuple[str, ...] = ()

    @classmethod
    def declared(cls) -> dict[str, Option]:
        """Its options by name."""
        return {o.name: o for o in cls.OPTIONS}

    @classmethod
    def command_line_options(cls) -> tuple[Option, ...]:
        """The options a user gives on the command line (those with help)."""
        return tuple(o for o in cls.OPTIONS if o.help is not None)

    def option(self, name: str):
        """The value of option ``name``, or None where this configuration has no such option."""
        o = self.declared().get(name)
        if o is None:
            return None
        section = getattr(self, o.section) if o.section else self
        return getattr(section, o.field)

    @property
    def task(self) -> str:
        """The task it trains on: its ``task`` option, else the one task it serves."""
        return self.option("task") or self.TASKS[0]

    def provenance(self) -> Provenance:
        """Its task and data as the store, console lines and bench titles say them."""
        return Provenance(self.task, self.option("setting"), self.option("eps"), self.option("pairs"),
                          self.pair_description())

    def pair_description(self) -> str | None:
        """What follows the number of pairs in a console line ("x 25 steps"), or None."""
        return None

    @property
    def seeds_of_data(self) -> tuple[int, ...]:
        """The dataset seeds trained on (``data_seeds``, or that of the ``data_seed`` option)."""
        return getattr(self, "data_seeds", ()) or (self.option("data_seed"),)

    def with_options(self, **options):
        """This configuration with the named options replaced; None keeps the current value.
        Options of :data:`SET_BY_COMMANDS` it does not declare are skipped; any other
        unknown option is a bug (the commands refuse options a task does not have). Naming
        ``data_seed`` trains on that one dataset (it clears ``data_seeds``)."""
        declared = self.declared()
        unknown = set(options) - set(declared) - set(SET_BY_COMMANDS)
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}")
        top: dict = {}
        sections: dict[str, dict] = {}
        for name, value in options.items():
            if value is not None and name in declared:
                o = declared[name]
                (sections.setdefault(o.section, {}) if o.section else top)[o.field] = value
        if options.get("data_seed") is not None and getattr(self, "data_seeds", ()):
            top["data_seeds"] = ()  # one dataset named: no longer the several of with_data_seeds
        return dataclasses.replace(self, **top, **{k: dataclasses.replace(getattr(self, k), **v)
                                                  for k, v in sections.items()})

    def with_data_seeds(self, data_seeds):
        """This configuration trained on the datasets of ``data_seeds``."""
        seeds = tuple(int(v) for v in data_seeds)
        return dataclasses.replace(self.with_options(data_seed=seeds[0]), data_seeds=seeds if len(seeds) > 1 else ())
