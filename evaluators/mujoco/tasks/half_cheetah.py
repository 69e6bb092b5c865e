"""HalfCheetah (gym ``HalfCheetah-v4`` semantics on brax's ``half_cheetah.xml``).

obs = [qpos[1:], qvel] (17); reward = forward velocity - 0.1 |a|^2; no termination;
1000 control steps of 5 x 10 ms.
"""

from evaluators.mujoco.tasks.base import Task, always_healthy, forward_reward, planar_observation

TASK = Task(
    name="half_cheetah",
    xml="half_cheetah.xml",
    frame_skip=5,
    episode_length=1000,
    observation=planar_observation(None),
    reward=forward_reward(healthy_bonus=0.0, ctrl_cost=0.1),
    healthy=always_healthy,
    reset_noise_scale=0.1,
    description="planar cheetah, gym HalfCheetah-v4 reward, no termination",
)
