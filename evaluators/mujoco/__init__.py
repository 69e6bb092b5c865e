"""The MuJoCo wing: offline preference optimisation on locomotion data, scored by return.

:mod:`~evaluators.mujoco.tasks` (the simulated tasks and their models),
:mod:`~evaluators.mujoco.behaviour` (the committed behaviour policies that write the data),
:mod:`~evaluators.mujoco.datasets` (preference pairs of segments),
:mod:`~evaluators.mujoco.reference` (the behaviour-cloned reference),
:mod:`~evaluators.mujoco.policies` (the Gaussian MLP policy and its binned likelihood),
:mod:`~evaluators.mujoco.backends` (native MuJoCo and MJX rollouts),
:mod:`~evaluators.mujoco.fitness` (normalised return),
:mod:`~evaluators.mujoco.config` (the configuration and its options) and
:mod:`~evaluators.mujoco.evaluator` (:class:`MujocoEvaluator`).
"""

import importlib

# The public names of each module of the wing. They are imported on first use (PEP 562),
# so that reading the configuration (``evaluators.mujoco.config``, as the command line does
# for its options) does not import the evaluator and JAX.
_EXPORTS = {
    "config": ("MujocoConfig",),
    "evaluator": ("LIKELIHOOD", "MujocoEvaluator", "load_data", "prepare"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
