"""Hopper (gym ``Hopper-v4`` semantics on brax's Euler ``hopper.xml``).

obs = [qpos[1:], clip(qvel, -10, 10)] (11); reward = forward velocity of the torso + 1
(healthy bonus) - 1e-3 |a|^2; the episode ends when the torso is below 0.7 m, tilts
beyond 0.2 rad, or any joint state leaves [-100, 100]; 1000 control steps of 4 x 2 ms.
"""

from evaluators.mujoco.tasks.base import Task, forward_reward, planar_observation

# brax's hopper.xml puts the slide joints at the torso (z = 1.25 m) without a joint ref,
# so qpos[1] is the displacement of the torso from its initial height.
TORSO_HEIGHT = 1.25


def healthy(qpos, qvel, xp):
    """Hopper's Gymnasium health test: torso height and angle in range, the state bounded."""
    state = xp.concatenate([qpos[..., 2:], qvel], axis=-1)
    z = qpos[..., 1] + TORSO_HEIGHT
    angle = qpos[..., 2]
    return (
        xp.all(xp.abs(state) < 100.0, axis=-1)
        & (z > 0.7)
        & (xp.abs(angle) < 0.2)
    )


TASK = Task(
    name="hopper",
    xml="hopper.xml",
    frame_skip=4,
    episode_length=1000,
    observation=planar_observation(10.0),
    reward=forward_reward(healthy_bonus=1.0, ctrl_cost=1e-3),
    healthy=healthy,
    description="one-legged hopper, gym Hopper-v4 reward and termination",
)
