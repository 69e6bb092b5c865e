"""Evaluator registry: adding an evaluator is one module implementing
:class:`evaluators.interface.Evaluator` (with a ``Config`` dataclass that has
``validate``, ``to_dict``, ``from_dict`` and ``seconds_per_run``) plus one line below."""

from __future__ import annotations

import importlib

from evaluators.errors import InputError

EVALUATORS = {
    "mujoco": "evaluators.mujoco:MujocoEvaluator",
    "lm": "evaluators.lm:LmEvaluator",
}
DEFAULT = "mujoco"
TASKS = {"lm": "lm"}  # tasks of evaluators other than the default (whose tasks are MuJoCo's)


def for_task(task: str) -> str:
    """The evaluator that serves ``--task TASK``."""
    return TASKS.get(task, DEFAULT)


def get(name: str) -> type:
    """The evaluator class registered as ``name``."""
    if name not in EVALUATORS:
        raise InputError(f"unknown evaluator {name!r}; known evaluators: {', '.join(sorted(EVALUATORS))}")
    module, _, cls = EVALUATORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def reference_label(name: str) -> str:
    """How tables and plots name the reference policy of evaluator ``name`` ("BC", "SFT")."""
    return getattr(get(name), "reference_label", "reference")


def reference_label_of_task(task: str) -> str:
    """The reference label of the evaluator that serves ``task`` (for stored benches)."""
    return reference_label(for_task(task))


def option_default(name: str, option: str):
    """Evaluator ``name``'s default for a ``run``/``bench`` option (through its configuration's
    ``OPTIONS``), or None where the option means nothing to it."""
    config = get(name).Config()
    where = config.OPTIONS.get(option)
    return None if where is None else getattr(getattr(config, where[0]), where[1])


def config_from_dict(name: str, d: dict):
    """A stored evaluator configuration back as its dataclass."""
    return get(name).Config.from_dict(d)


def of_store(cfg: dict) -> str:
    """The evaluator a run store's config names (runs made before evaluators existed: mujoco)."""
    return cfg.get("evaluator", DEFAULT)
