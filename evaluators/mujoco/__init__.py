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

from evaluators import lazy

# The public names of each module of the wing, imported on first use (evaluators.lazy).
__getattr__, __all__ = lazy.exports(__name__, {
    "config": ("MujocoConfig",),
    "evaluator": ("LIKELIHOOD", "MujocoEvaluator", "load_data", "prepare"),
})
