"""The MuJoCo wing's configuration: the dataset, training, evaluation and reference settings,
and the options ``discover run`` and ``bench`` take for its tasks. Free of JAX (the
modules that use these settings re-export them), so that the command line reads the
options without importing the evaluator."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from evaluators import seeds
from evaluators.errors import InputError
from evaluators.mujoco.tasks import TASK_MODULES, get_task
from evaluators.options import TRAINER_OPTIONS, TRAINING_PANEL, Option, OptionsMixin
from evaluators.trainer_config import TrainConfig

SETTINGS = ("clean", "noisy", "mixed", "shuffled")
LABELS = ("expert", "policy")
DATASET_VERSION = 3


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """A MuJoCo preference dataset: task, setting, pairs, segment and label horizons, label
    noise and mix, and its seed."""
    task: str = "hopper"
    setting: str = "noisy"
    eps: float = 0.3
    pairs: int = 2000
    segment: int = 25
    seed: int = 0
    temperature: float = 0.05
    mixed_poor_fraction: float = 0.7
    prompt_episodes: int = 4
    label_horizon: int = 500  # steps whose return labels a pair (capped at the episode length)
    # "expert": after the segment, both sides are continued by the expert behaviour policy,
    # so the label judges the segment's own actions; "policy": each side's own policy
    # continues it (datasets built before labels were configurable).
    labels: str = "expert"
    same_policy_fraction: float = 0.25  # pairs whose two sides come from the same policy

    # Stored configurations without these fields were built as follows.
    LEGACY = {"labels": "policy", "same_policy_fraction": 0.0}

    def validate(self) -> "DatasetConfig":
        """This configuration, checked (an :class:`InputError` naming the option)."""
        get_task(self.task)  # raises for an unknown task
        if self.setting not in SETTINGS:
            raise InputError(f"unknown setting {self.setting!r}; --setting takes {', '.join(SETTINGS)}")
        if not 0.0 <= self.eps <= 0.5:
            raise InputError(f"--eps must be in [0, 0.5] (0.5: labels carry nothing), got {self.eps}")
        if self.labels not in LABELS:
            raise InputError(f"unknown labels {self.labels!r}; --labels takes {', '.join(LABELS)}")
        if not 0.0 <= self.same_policy_fraction <= 1.0:
            raise InputError(f"same_policy_fraction must be in [0, 1], got {self.same_policy_fraction}")
        if self.pairs < 1:
            raise InputError(f"--pairs must be at least 1, got {self.pairs}")
        if self.segment < 1:
            raise InputError(f"--segment: segment length must be at least 1, got {self.segment}")
        if self.label_horizon < self.segment:
            raise InputError(f"--label-horizon ({self.label_horizon}) must be at least --segment "
                             f"({self.segment})")
        if not self.temperature > 0:
            raise InputError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.mixed_poor_fraction <= 1.0:
            raise InputError(f"mixed_poor_fraction must be in [0, 1], got {self.mixed_poor_fraction}")
        return self

    @property
    def effective_eps(self) -> float:
        """The label-flip probability the data have (0 unless the setting is noisy)."""
        return self.eps if self.setting == "noisy" else 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetConfig":
        """A stored configuration; fields it lacks take the values it was built with."""
        return cls(**{**cls.LEGACY, **d})

    def key(self, behaviour_digest: str) -> str:
        """The dataset's cache key: its configuration (as older keys were made) and the
        behaviour policies' digest."""
        fields = dataclasses.asdict(self)
        if self.setting != "noisy":
            fields["eps"] = 0.0  # eps only matters for noisy data
        for name, value in self.LEGACY.items():  # datasets built before a field existed keep their key
            if fields[name] == value:
                del fields[name]
        blob = json.dumps({"config": fields, "policies": behaviour_digest, "version": DATASET_VERSION},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


BACKENDS = ("auto", "native", "mjx")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How trained policies are scored: episodes, start-state seed, simulator and horizon."""
    # One trained policy's return varies by about 17 points from episode to episode on
    # Hopper (benchmarks/fitness_noise.py): 16 episodes keep that below the seed spread.
    episodes: int = 16
    seed: int = seeds.SEARCH_EVAL
    backend: str = "auto"
    horizon: int | None = None  # control steps per episode (default: the task's)

    def validate(self) -> "EvalConfig":
        """This configuration, checked (an :class:`InputError` naming the option)."""
        if self.backend not in BACKENDS:
            raise InputError(f"unknown backend {self.backend!r}; --backend takes {', '.join(BACKENDS)}")
        if self.episodes < 1:
            raise InputError(f"--episodes: evaluation episodes must be at least 1, got {self.episodes}")
        return self

    def resolved_backend(self) -> str:
        """The simulator used: the one asked for, or the device's default for "auto"."""
        if self.backend != "auto":
            return self.backend
        from evaluators.device import simulator_backend  # lazy: it imports JAX

        return simulator_backend()


@dataclasses.dataclass(frozen=True)
class ReferenceConfig:
    """The reference policy's behaviour cloning: network, bins, steps, batch, learning rate
    and seed."""
    hidden: tuple[int, ...] = (64, 64)
    steps: int = 3000
    batch: int = 512
    learning_rate: float = 1e-3
    bins: int = 41
    seed: int = 0
    # "content": the segments in an order set by their content, so the reference does not
    # depend on the labels (clean and noisy variants of the same segments share it);
    # "pairs": chosen then rejected (references fitted before this option existed).
    order: str = "content"

    LEGACY = {"order": "pairs"}  # stored configurations without these fields were fitted so

    @classmethod
    def from_dict(cls, d: dict) -> "ReferenceConfig":
        """A stored configuration; fields it lacks take the values it was fitted with."""
        d = {**cls.LEGACY, **d}
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)

    def validate(self) -> "ReferenceConfig":
        """This configuration, checked (an :class:`InputError` naming the option)."""
        if self.steps < 1:
            raise InputError(f"--reference-steps must be at least 1, got {self.steps}")
        return self

    def key(self, dataset_digest: str) -> str:
        """The reference's cache key: its configuration (as older keys were made) and the
        dataset's digest."""
        fields = dataclasses.asdict(self)
        for name, value in self.LEGACY.items():  # references fitted before a field existed keep their key
            if fields[name] == value:
                del fields[name]
        blob = json.dumps({"config": fields, "dataset": dataset_digest}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class MujocoConfig(OptionsMixin):
    """Everything that defines a MuJoCo evaluation; stored in run stores as "experiment"."""

    dataset: DatasetConfig = DatasetConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    reference: ReferenceConfig = ReferenceConfig()
    # Train on several datasets (data seeds; each with its own segments and reference):
    # a run with training seed s uses dataset data_seeds[s % len(data_seeds)]. Empty: the
    # one dataset of ``dataset.seed``.
    data_seeds: tuple[int, ...] = ()

    def validate(self) -> "MujocoConfig":
        """This configuration, every section checked."""
        self.dataset.validate()
        self.train.validate()
        self.eval.validate()
        self.reference.validate()
        get_task(self.dataset.task)
        if len(set(self.data_seeds)) != len(self.data_seeds):
            raise InputError(f"data seeds repeat: {list(self.data_seeds)}")
        if self.reference.bins != self.train.bins:
            raise InputError("the reference and the trainer must use the same action bins")
        return self

    # The options of `discover run` and `bench` (task, data_seed, eval_seed and
    # program_length are set by the commands themselves).
    OPTIONS = (
        Option("task", "dataset", "task"),
        Option("setting", "dataset", "setting", f"The data's defect: {', '.join(SETTINGS[:-1])} or "
               f"{SETTINGS[-1]}.", choices=SETTINGS),
        Option("eps", "dataset", "eps", "Label-flip probability (--setting noisy only)."),
        Option("pairs", "dataset", "pairs", "Pairs in each dataset."),
        Option("segment", "dataset", "segment", "Control steps per segment."),
        Option("label_horizon", "dataset", "label_horizon", "Steps whose return labels a pair."),
        Option("labels", "dataset", "labels", "expert (the expert continues both sides: labels judge the segment) "
               "or policy (each side's own policy continues it, as in v1 datasets).", choices=LABELS),
        Option("reference_steps", "reference", "steps", "Training steps of each dataset's reference policy."),
        Option("data_seed", "dataset", "seed"),
        *TRAINER_OPTIONS,
        Option("episodes", "eval", "episodes", "Evaluation episodes per trained policy.", TRAINING_PANEL),
        Option("backend", "eval", "backend", "Simulator (auto: MJX on accelerators).", TRAINING_PANEL,
               choices=BACKENDS),
        Option("eval_seed", "eval", "seed"),
    )
    TASKS = tuple(sorted(TASK_MODULES))

    def pair_description(self) -> str:
        """How the console describes one pair of this task's data."""
        return f"x {self.dataset.segment} steps"

    def seconds_per_run(self) -> float:
        """A conservative cost model of one training run and its scoring on a CPU core pair:
        about 2.5 us per (pair x control step x training step), and 1000-step episodes at
        about 150,000 physics steps per second (frame skip 4)."""
        t = self.train
        return t.steps * t.batch_pairs * self.dataset.segment * 2.5e-6 + self.eval.episodes * 1000 * 4 / 150_000

    def to_dict(self) -> dict:
        """As stored in a run's or bench's configuration."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "MujocoConfig":
        """A stored configuration; fields added since it was stored take the values it ran with."""
        return MujocoConfig(DatasetConfig.from_dict(d["dataset"]), TrainConfig.from_dict(d["train"]),
                            EvalConfig(**d["eval"]), ReferenceConfig.from_dict(d["reference"]),
                            tuple(d.get("data_seeds", ())))
