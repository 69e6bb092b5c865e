"""Walker2d (gym ``Walker2d-v4`` semantics on brax's Euler ``walker2d.xml``).

obs = [qpos[1:], clip(qvel, -10, 10)] (17); reward = forward velocity + 1 - 1e-3 |a|^2;
the episode ends when the torso leaves 0.8-2.0 m height or tilts beyond 1 rad.
"""

from evaluators.mujoco.tasks.base import Task, forward_reward, planar_observation

TORSO_HEIGHT = 1.25


def healthy(qpos, qvel, xp):
    """Walker2d's Gymnasium health test: torso height and angle in range."""
    z = qpos[..., 1] + TORSO_HEIGHT
    angle = qpos[..., 2]
    return (z > 0.8) & (z < 2.0) & (xp.abs(angle) < 1.0)


TASK = Task(
    name="walker2d",
    xml="walker2d.xml",
    frame_skip=4,
    episode_length=1000,
    observation=planar_observation(10.0),
    reward=forward_reward(healthy_bonus=1.0, ctrl_cost=1e-3),
    healthy=healthy,
    description="planar biped, gym Walker2d-v4 reward and termination",
)
