"""Evaluator registry: adding an evaluator is one module implementing
:class:`evaluators.interface.Evaluator`, with a ``Config`` dataclass (``validate``,
``to_dict``, ``from_dict``, ``seconds_per_run``, and from
:class:`evaluators.interface.OptionsMixin` its ``OPTIONS`` and ``TASKS``), plus one line
below, and its ``Config`` in a module free of JAX, named in ``CONFIGS``, so that the
command line reads the options without importing the evaluator. ``discover run`` and
``bench`` take their evaluator options and ``--task`` from these declarations."""

from __future__ import annotations

import importlib

from evaluators.errors import InputError

EVALUATORS = {
    "mujoco": "evaluators.mujoco:MujocoEvaluator",
    "lm": "evaluators.lm:LmEvaluator",
}
# Each evaluator's ``Config`` (the class its evaluator names as ``Config``), where a module
# without JAX holds it; an evaluator not named here is imported to reach its ``Config``.
CONFIGS = {
    "mujoco": "evaluators.mujoco.config:MujocoConfig",
    "lm": "evaluators.lm.config:LmConfig",
}
DEFAULT = "mujoco"


def get(name: str) -> type:
    """The evaluator class registered as ``name``."""
    if name not in EVALUATORS:
        raise InputError(f"unknown evaluator {name!r}; known evaluators: {', '.join(sorted(EVALUATORS))}")
    return _load(EVALUATORS[name])


def config_class(name: str) -> type:
    """The configuration class of the evaluator registered as ``name`` (its ``Config``),
    without importing the evaluator where :data:`CONFIGS` names it."""
    if name in CONFIGS and name in EVALUATORS:
        return _load(CONFIGS[name])
    return get(name).Config


def _load(entry: str) -> type:
    module, _, cls = entry.partition(":")
    return getattr(importlib.import_module(module), cls)


def tasks() -> dict[str, str]:
    """Every task of every evaluator, with the evaluator that serves it (the default
    evaluator's tasks first)."""
    out: dict[str, str] = {}
    for name in (DEFAULT, *(n for n in EVALUATORS if n != DEFAULT)):
        for task in config_class(name).TASKS:
            out.setdefault(task, name)
    return out


def for_task(task: str) -> str:
    """The evaluator that serves ``--task TASK`` (the evaluators are imported one by one,
    the default first, until one declares it)."""
    for name in (DEFAULT, *(n for n in EVALUATORS if n != DEFAULT)):
        if task in config_class(name).TASKS:
            return name
    raise InputError(f"unknown task {task!r}; --task takes {', '.join(tasks())}")


def default_task() -> str:
    """The task of ``discover run`` and ``bench`` without ``--task``."""
    return config_class(DEFAULT)().task


def reference_label(name: str) -> str:
    """How tables and plots name the reference policy of evaluator ``name`` ("BC", "SFT")."""
    return getattr(get(name), "reference_label", "reference")


def reference_label_of_task(task: str) -> str:
    """The reference label of the evaluator that serves ``task`` (for stored benches)."""
    return reference_label(for_task(task))


def option_default(name: str, option: str):
    """Evaluator ``name``'s default for an option it declares, or None where the option
    means nothing to it."""
    return config_class(name)().option(option)


def config_from_dict(name: str, d: dict):
    """A stored evaluator configuration back as its dataclass."""
    return config_class(name).from_dict(d)


def of_store(cfg: dict) -> str:
    """The evaluator a run store's config names (runs made before evaluators existed: mujoco)."""
    return cfg.get("evaluator", DEFAULT)
