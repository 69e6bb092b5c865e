"""Walker2d (gym ``Walker2d-v4`` semantics on brax's Euler ``walker2d.xml``).

obs = [qpos[1:], clip(qvel, -10, 10)] (17); reward = forward velocity + 1 - 1e-3 |a|^2;
the episode ends when the torso leaves 0.8-2.0 m height or tilts beyond 1 rad.
"""

from evaluators.tasks.base import Task

TORSO_HEIGHT = 1.25


def observation(qpos, qvel, xp):
    return xp.concatenate([qpos[..., 1:], xp.clip(qvel, -10.0, 10.0)], axis=-1)


def reward(qpos_before, qpos_after, qvel_after, action, dt, xp):
    forward = (qpos_after[..., 0] - qpos_before[..., 0]) / dt
    return forward + 1.0 - 1e-3 * xp.sum(action * action, axis=-1)


def healthy(qpos, qvel, xp):
    z = qpos[..., 1] + TORSO_HEIGHT
    angle = qpos[..., 2]
    return (z > 0.8) & (z < 2.0) & (xp.abs(angle) < 1.0)


TASK = Task(
    name="walker2d",
    xml="walker2d.xml",
    frame_skip=4,
    episode_length=1000,
    observation=observation,
    reward=reward,
    healthy=healthy,
    description="planar biped, gym Walker2d-v4 reward and termination",
)
