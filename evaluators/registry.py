"""Evaluator registry: adding an evaluator is one module implementing
:class:`evaluators.interface.Evaluator` (with a ``Config`` dataclass that has
``validate``, ``to_dict`` and ``from_dict``) plus one line below."""

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


def config_from_dict(name: str, d: dict):
    """A stored evaluator configuration back as its dataclass."""
    return get(name).Config.from_dict(d)


def of_store(cfg: dict) -> str:
    """The evaluator a run store's config names (runs made before evaluators existed: mujoco)."""
    return cfg.get("evaluator", DEFAULT)
