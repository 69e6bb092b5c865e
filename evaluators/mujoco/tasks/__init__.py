"""Task registry. Adding a task is one module here that defines ``TASK`` plus one line below."""

from __future__ import annotations

import importlib

from evaluators.errors import InputError
from evaluators.mujoco.tasks.base import Task

TASK_MODULES = {
    "hopper": "evaluators.mujoco.tasks.hopper",
    "walker2d": "evaluators.mujoco.tasks.walker2d",
    "half_cheetah": "evaluators.mujoco.tasks.half_cheetah",
    "pendulum": "evaluators.mujoco.tasks.pendulum",
}


class UnknownTaskError(InputError):
    """A task name that is not registered (a user error)."""


def get_task(name: str) -> Task:
    """The task named ``name``; an :class:`UnknownTaskError` listing the tasks."""
    if name not in TASK_MODULES:
        raise UnknownTaskError(
            f"unknown task {name!r}; known tasks: {', '.join(sorted(TASK_MODULES))}"
        )
    return importlib.import_module(TASK_MODULES[name]).TASK


__all__ = ["Task", "TASK_MODULES", "UnknownTaskError", "get_task"]
