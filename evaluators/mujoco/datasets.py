"""Preference datasets: pairs of H-step MuJoCo segments with known defects.

A pair is two continuations of the same "prompt" state (a state visited by one of the
behaviour policies), each by a behaviour policy acting stochastically; the state plays
the role of the prompt and the first ``segment`` control steps the role of the response.
Labels follow a Bradley-Terry model on the continuations' returns over the *label
horizon* (``label_horizon`` steps from the prompt state, or until the episode ends):
P(a preferred to b) = sigmoid((R_a - R_b) / T), with T = ``temperature`` x the standard
deviation of those returns.

Labels judge the response (``labels="expert"``, the default): after the segment, *both*
sides are continued by the same fixed policy (the expert behaviour policy, acting
stochastically), so the difference in return comes from the segments' own actions and
where they left the system, not from which policy would have kept acting. This is the
cheap form of the regret preference model of Contrastive Preference Learning (Hejna et
al. 2024), which labels MuJoCo segments by the expert's advantage. With
``labels="policy"`` each side's own behaviour policy continues it (datasets built before
this option existed): the label then mostly says which policy produced the segment, and
imitating the chosen side is filtered behaviour cloning. A share
``same_policy_fraction`` of pairs has both sides from the same policy at the same state,
so labels also tell actions apart at equal policy quality.

Why a label horizon longer than the segment: on Hopper (and Walker2d) the policies differ
in how long they stay up, not in how fast they move (the poorest behaviour policy earns
2.5 per step before falling at step ~125, the expert 3.5 per step for 1000 steps), so
the return of a 25-step segment barely tells them apart: the chosen segment came from
the better policy in 52% of pairs. Judged over 500 steps, 81% (measured on Hopper, clean
data). The response the loss sees is still the segment, as a labeller who watched where
each continuation led would label it. ``label_horizon = segment`` gives plain
segment-return labels. Settings:

- ``clean``: both continuations by policies drawn uniformly from the graded set;
- ``noisy``: clean, then every label flipped with probability ``eps`` (``eps = 0.5`` is
  a control: the labels carry nothing);
- ``mixed``: a share ``mixed_poor_fraction`` of pairs has both continuations by poor
  policies (normalised return below 50), so "chosen" is often only relatively better;
- ``shuffled``: clean, then each rejected segment is swapped for that of another pair,
  so chosen and rejected start from unrelated states.

Segments that reach a terminal state stop there (``alive`` masks the rest), so their
length ``len`` is the number of live steps. Generation is deterministic in the seed and
cached on disk, keyed by a hash of the configuration, the behaviour policies and this
module's version; the file stores a hash of its own arrays, checked on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import numpy as np

from evaluators import atomic
from evaluators.mujoco.behaviour import BehaviourSet, load_behaviour
from evaluators.cache import cache_dir
from evaluators.errors import InputError
from evaluators.interface import Stage
# The dataset's configuration lives with the wing's configuration; re-exported here.
from evaluators.mujoco.config import DATASET_VERSION, LABELS, SETTINGS, DatasetConfig  # noqa: F401
from evaluators.mujoco.tasks import get_task

ARRAYS = ("obs_w", "act_w", "alive_w", "ret_w", "pol_w", "obs_l", "act_l", "alive_l", "ret_l", "pol_l",
          "flipped", "prompt_policy")


@dataclasses.dataclass
class PreferenceDataset:
    """Arrays of N pairs (w = chosen, l = rejected); see the module docstring."""

    config: DatasetConfig
    arrays: dict[str, np.ndarray]
    digest: str
    behaviour_digest: str

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

    @property
    def size(self) -> int:
        """Pairs in the dataset."""
        return int(self.arrays["ret_w"].shape[0])

    @property
    def len_w(self) -> np.ndarray:
        """(N,) live steps of each chosen segment."""
        return self.arrays["alive_w"].sum(axis=1)

    @property
    def len_l(self) -> np.ndarray:
        """(N,) live steps of each rejected segment."""
        return self.arrays["alive_l"].sum(axis=1)

    def summary(self) -> dict[str, Any]:
        """Pairs, label agreement with the returns, flip rate and the mix of behaviour policies,
        as JSON."""
        a = self.arrays
        agree = float(np.mean(a["ret_w"] > a["ret_l"]) + 0.5 * np.mean(a["ret_w"] == a["ret_l"]))
        k = int(max(a["pol_w"].max(), a["pol_l"].max())) + 1
        hist = np.zeros((k, k), int)
        np.add.at(hist, (a["pol_w"], a["pol_l"]), 1)
        return {
            "pairs": self.size,
            "label_agreement": agree,  # chosen has the higher true segment return
            "flip_rate": float(a["flipped"].mean()),
            # which policy produced the chosen side: the better, the worse, or the same one
            "chosen_from_better_policy": float(np.mean(a["pol_w"] > a["pol_l"])),
            "chosen_from_worse_policy": float(np.mean(a["pol_w"] < a["pol_l"])),
            "same_policy": float(np.mean(a["pol_w"] == a["pol_l"])),
            "chosen_return_mean": float(a["ret_w"].mean()),
            "rejected_return_mean": float(a["ret_l"].mean()),
            "mean_len_w": float(self.len_w.mean()),
            "mean_len_l": float(self.len_l.mean()),
            "policy_pairs": hist.tolist(),  # [chosen policy][rejected policy], poorest first
            "digest": self.digest,
        }


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in ARRAYS:
        v = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(v.dtype).encode() + str(v.shape).encode())
        h.update(v.tobytes())
    return h.hexdigest()[:16]


class _AssignedActor:
    """Acts for a batch where environment i follows behaviour policy ``assign[i]`` (sampling)."""

    def __init__(self, behaviour: BehaviourSet, assign: np.ndarray, act_dim: int, rng: np.random.Generator,
                 switch_at: int | None = None, then: int | None = None):
        self.behaviour = behaviour
        self.assign = assign
        self.act_dim = act_dim
        self.rng = rng
        self.live = np.arange(len(assign))
        self.switch_at, self.then = switch_at, then  # from control step switch_at on, policy ``then`` acts
        self.steps = 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        import evaluators.mujoco.policies as policy_io

        which = self.assign[self.live]
        if self.switch_at is not None and self.steps >= self.switch_at:
            which = np.full_like(which, self.then)
        self.steps += 1
        out = np.zeros((len(obs), self.act_dim))
        noise = self.rng.standard_normal(out.shape)
        for k in np.unique(which):
            rows = which == k
            loc, std = policy_io.forward(self.behaviour.params[k], obs[rows], self.behaviour.spec, np)
            out[rows] = policy_io.noisy_action(loc, std, noise[rows], self.behaviour.spec)
        return out


def build(config: DatasetConfig, behaviour: BehaviourSet | None = None, nthread: int | None = None,
          stage: Stage | None = None) -> PreferenceDataset:
    """Generates a dataset (no caching; see :func:`load_or_build`). One function on
    purpose: it makes the random draws in one visible order, which the committed dataset
    digests depend on. ``stage`` hears what it is doing (the continuations take about 95%
    of the time)."""
    from evaluators.mujoco.backends.native import NativeSimulator, Trajectories

    config.validate()
    task = get_task(config.task)
    behaviour = behaviour or load_behaviour(config.task)
    K = len(behaviour.params)
    rng = np.random.default_rng(config.seed)
    sim = NativeSimulator(task, nthread)
    try:
        # 1. Prompt states: states visited by each behaviour policy, acting stochastically.
        if stage:
            stage("prompt states", 0.0)
        act_dim = sim.model.nu
        episodes = np.repeat(np.arange(K), config.prompt_episodes)
        states, alive = _run_recording_states(sim, _AssignedActor(behaviour, episodes, act_dim, rng),
                                              len(episodes), rng)
        live = [(e, t) for e in range(len(episodes)) for t in range(int(alive[e].sum()))]
        by_policy = {k: [i for i, (e, _) in enumerate(live) if episodes[e] == k] for k in range(K)}
        N = config.pairs
        prompt_policy = rng.integers(0, K, size=N)
        pick = np.array([by_policy[k][rng.integers(len(by_policy[k]))] for k in prompt_policy])
        prompt_states = np.stack([states[live[i][0], live[i][1]] for i in pick])

        # 2. Which policy continues each side.
        pol_a = rng.integers(0, K, size=N)
        pol_b = rng.integers(0, K, size=N)
        if config.setting == "mixed":
            # poor: below half of the expert's normalised return (policies are sorted by return)
            poor = max(1, int(np.sum(behaviour.normalise(behaviour.returns) < 50.0)))
            both_poor = rng.uniform(size=N) < config.mixed_poor_fraction
            pol_a = np.where(both_poor, rng.integers(0, poor, size=N), pol_a)
            pol_b = np.where(both_poor, rng.integers(0, poor, size=N), pol_b)
        if config.same_policy_fraction > 0:
            # Two responses of one policy at one state: only the segments' actions differ.
            pol_b = np.where(rng.uniform(size=N) < config.same_policy_fraction, pol_a, pol_b)

        # 3. Roll out both continuations from the same prompt state, on to the label horizon;
        #    the response is the first ``segment`` steps.
        assign = np.concatenate([pol_a, pol_b])
        H, L = config.segment, max(config.segment, min(config.label_horizon, task.episode_length))
        switch = dict(switch_at=H, then=K - 1) if config.labels == "expert" else {}
        def on_step(t: int, horizon: int) -> None:
            if stage and t % 10 == 0:
                stage(f"continuations {100 * t // horizon}%", 0.05 + 0.95 * t / horizon)

        run = sim.run(_AssignedActor(behaviour, assign, act_dim, rng, **switch), 2 * N, rng, horizon=L,
                      initial=np.concatenate([prompt_states, prompt_states]), record=True, on_step=on_step)
        seg = Trajectories(run.obs[:, :H], run.actions[:, :H], run.rewards[:, :H], run.alive[:, :H])
        ret = run.returns
        ret_a, ret_b = ret[:N], ret[N:]

        # 4. Bradley-Terry labels, then the setting's defect.
        T = config.temperature * max(float(np.std(ret)), 1e-6)
        p_a = 1.0 / (1.0 + np.exp(-np.clip((ret_a - ret_b) / T, -60, 60)))
        a_wins = rng.uniform(size=N) < p_a
        flipped = np.zeros(N, bool)
        if config.setting == "noisy":
            flipped = rng.uniform(size=N) < config.eps
            a_wins = a_wins ^ flipped
        w_idx = np.where(a_wins, np.arange(N), N + np.arange(N))
        l_idx = np.where(a_wins, N + np.arange(N), np.arange(N))
        if config.setting == "shuffled":
            l_idx = l_idx[_derangement(N, rng)]
        arrays = {
            "obs_w": seg.obs[w_idx], "act_w": seg.actions[w_idx], "alive_w": seg.alive[w_idx],
            "ret_w": ret[w_idx].astype(np.float32), "pol_w": assign[w_idx].astype(np.int32),
            "obs_l": seg.obs[l_idx], "act_l": seg.actions[l_idx], "alive_l": seg.alive[l_idx],
            "ret_l": ret[l_idx].astype(np.float32), "pol_l": assign[l_idx].astype(np.int32),
            "flipped": flipped, "prompt_policy": prompt_policy.astype(np.int32),
        }
    finally:
        sim.close()
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    return PreferenceDataset(config, arrays, _digest(arrays), behaviour.digest)


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    if n < 2:
        return np.arange(n)
    perm = rng.permutation(n)
    fixed = np.flatnonzero(perm == np.arange(n))
    for i in fixed:  # swap each fixed point with a neighbour
        j = (i + 1) % n
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _run_recording_states(sim, actor, n: int, rng: np.random.Generator):
    """Episodes from reset, keeping the full physics state at every step."""
    task = sim.task
    states = np.zeros((n, task.episode_length, sim.nstate))
    alive = np.zeros((n, task.episode_length), bool)
    current = sim.initial_states(n, rng)
    live = np.arange(n)
    for t in range(task.episode_length):
        if live.size == 0:
            break
        s = current[live]
        states[live, t] = s
        alive[live, t] = True
        actor.live = live
        obs = task.observation(s[:, sim.qpos_slice], s[:, sim.qvel_slice], np)
        nxt = sim.step(s, np.clip(actor(obs), -1.0, 1.0))
        current[live] = nxt
        live = live[task.healthy(nxt[:, sim.qpos_slice], nxt[:, sim.qvel_slice], np).astype(bool)]
    return states, alive


# --------------------------------------------------------------------------- cache
def path_for(config: DatasetConfig, behaviour_digest: str, directory: str | None = None) -> str:
    """Where the dataset of ``config`` is cached."""
    name = f"{config.task}-{config.setting}-{config.key(behaviour_digest)}.npz"
    return os.path.join(directory or os.path.join(cache_dir(), "datasets"), name)


def save(ds: PreferenceDataset, path: str) -> None:
    """Writes a dataset with its header (configuration, digests, version), atomically."""
    header = {"config": dataclasses.asdict(ds.config), "digest": ds.digest,
              "behaviour_digest": ds.behaviour_digest, "version": DATASET_VERSION}
    atomic.write_with(path, lambda f: np.savez_compressed(
        f, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **ds.arrays))


def load(path: str) -> PreferenceDataset:
    """Loads a cached dataset, checking its content hash. Raises InputError if corrupt."""
    try:
        with np.load(path) as z:
            header = json.loads(bytes(z["__header__"]).decode())
            arrays = {k: z[k] for k in ARRAYS}
    except Exception as e:  # noqa: BLE001 - any failure to read means a corrupt file
        raise InputError(f"dataset cache file {path} is corrupt ({type(e).__name__}); delete it or rebuild "
                         f"with --rebuild") from None
    if _digest(arrays) != header.get("digest"):
        raise InputError(f"dataset cache file {path} is corrupt (its content hash does not match); "
                         f"delete it or rebuild with --rebuild")
    return PreferenceDataset(DatasetConfig.from_dict(header["config"]), arrays, header["digest"],
                             header["behaviour_digest"])


def load_or_build(config: DatasetConfig, rebuild: bool = False, behaviour: BehaviourSet | None = None,
                  directory: str | None = None, log=None, stage: Stage | None = None,
                  ) -> tuple[PreferenceDataset, str, bool]:
    """The cached dataset for ``config`` (built on a miss, its stages told to ``stage``).
    Returns (dataset, path, built)."""
    config.validate()
    behaviour = behaviour or load_behaviour(config.task)
    path = path_for(config, behaviour.digest, directory)
    if os.path.exists(path) and not rebuild:
        ds = load(path)
        if ds.config != config or ds.behaviour_digest != behaviour.digest:
            raise InputError(f"dataset cache file {path} is stale (built from another configuration or "
                             f"other behaviour policies); rebuild with --rebuild")
        return ds, path, False
    if log:
        log(f"building {config.setting} {config.task} dataset: {config.pairs} pairs x {config.segment} steps")
    ds = build(config, behaviour, stage=stage)
    save(ds, path)
    return ds, path, True
