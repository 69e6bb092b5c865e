"""HalfCheetah (gym ``HalfCheetah-v4`` semantics on brax's ``half_cheetah.xml``).

obs = [qpos[1:], qvel] (17); reward = forward velocity - 0.1 |a|^2; no termination;
1000 control steps of 5 x 10 ms.
"""

from evaluators.tasks.base import Task, always_healthy


def observation(qpos, qvel, xp):
    return xp.concatenate([qpos[..., 1:], qvel], axis=-1)


def reward(qpos_before, qpos_after, qvel_after, action, dt, xp):
    forward = (qpos_after[..., 0] - qpos_before[..., 0]) / dt
    return forward - 0.1 * xp.sum(action * action, axis=-1)


TASK = Task(
    name="half_cheetah",
    xml="half_cheetah.xml",
    frame_skip=5,
    episode_length=1000,
    observation=observation,
    reward=reward,
    healthy=always_healthy,
    reset_noise_scale=0.1,
    description="planar cheetah, gym HalfCheetah-v4 reward, no termination",
)
