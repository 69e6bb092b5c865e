"""Inverted pendulum (gym ``InvertedPendulum-v4`` semantics), the tiny task for fast tests.

obs = [qpos, qvel] (4); reward 1 per step while the pole is within 0.2 rad of upright;
the episode ends when it is not; 200 control steps of 2 x 20 ms (gym uses 1000; 200
keeps tests fast and still separates good from poor policies).
"""

from evaluators.mujoco.tasks.base import Task


def observation(qpos, qvel, xp):
    """The cart-pole observation: positions and velocities."""
    return xp.concatenate([qpos, qvel], axis=-1)


def reward(qpos_before, qpos_after, qvel_after, action, dt, xp):
    """One point per step the pole stays up."""
    return xp.ones(qpos_after.shape[:-1])


def healthy(qpos, qvel, xp):
    """Whether the pole is still up (Gymnasium's InvertedPendulum)."""
    return xp.abs(qpos[..., 1]) <= 0.2


TASK = Task(
    name="pendulum",
    xml="inverted_pendulum.xml",
    frame_skip=2,
    episode_length=200,
    observation=observation,
    reward=reward,
    healthy=healthy,
    reset_noise_scale=0.01,
    action_scale=3.0,
    description="cart-pole balance, gym InvertedPendulum-v4 (200-step episodes); for tests",
)
