"""The task interface: one MJCF model plus gym-style observation, reward and termination.

A task is written once, over an array namespace ``xp`` (``numpy`` for the native MuJoCo
backend, ``jax.numpy`` for MJX and for the PPO trainer), so that every simulator that
scores a policy computes the same observation, reward and termination.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any, Callable

ASSETS = resources.files("evaluators.mujoco.tasks") / "assets"


@dataclasses.dataclass(frozen=True)
class Task:
    """A MuJoCo control task.

    Attributes:
      name: registry name (``hopper``, ``walker2d``, ...).
      xml: file name of the MJCF model under ``evaluators/mujoco/tasks/assets``.
      frame_skip: physics steps per control step (the control period is
        ``frame_skip * model.opt.timestep``).
      episode_length: control steps per episode (truncation).
      observation: ``(qpos, qvel, xp) -> obs``.
      reward: ``(qpos_before, qpos_after, qvel_after, action, dt, xp) -> reward``.
      healthy: ``(qpos, qvel, xp) -> bool``; an unhealthy state ends the episode.
      reset_noise_scale: uniform noise on the initial ``qpos`` and ``qvel``.
      action_scale: ``ctrl = action_scale * action`` for actions in [-1, 1].
    """

    name: str
    xml: str
    frame_skip: int
    episode_length: int
    observation: Callable[..., Any]
    reward: Callable[..., Any]
    healthy: Callable[..., Any]
    reset_noise_scale: float = 5e-3
    action_scale: float = 1.0
    description: str = ""

    @property
    def xml_path(self) -> str:
        """The task's MuJoCo XML model file."""
        return str(ASSETS / self.xml)

    def mj_model(self):
        """A fresh ``mujoco.MjModel`` of this task."""
        import mujoco

        return mujoco.MjModel.from_xml_path(self.xml_path)


def always_healthy(qpos, qvel, xp):
    """A task whose episodes never end early."""
    return xp.ones(qpos.shape[:-1], bool)


def planar_observation(velocity_clip: float | None):
    """gym's planar locomotion observation: [qpos[1:], qvel] (x position hidden), the
    velocities clipped to +-``velocity_clip`` when given."""

    def observation(qpos, qvel, xp):
        v = qvel if velocity_clip is None else xp.clip(qvel, -velocity_clip, velocity_clip)
        return xp.concatenate([qpos[..., 1:], v], axis=-1)

    return observation


def forward_reward(healthy_bonus: float, ctrl_cost: float):
    """gym's locomotion reward: forward velocity of the root + bonus - ctrl_cost |a|^2."""

    def reward(qpos_before, qpos_after, qvel_after, action, dt, xp):
        forward = (qpos_after[..., 0] - qpos_before[..., 0]) / dt
        return forward + healthy_bonus - ctrl_cost * xp.sum(action * action, axis=-1)

    return reward
