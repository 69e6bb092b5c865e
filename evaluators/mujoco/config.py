"""The MuJoCo wing's configuration: the dataset, training, evaluation and reference settings,
and the options ``discover run`` and ``bench`` take for its tasks."""

from __future__ import annotations

import dataclasses

import evaluators.mujoco.datasets as datasets
import evaluators.mujoco.fitness as fitness
import evaluators.mujoco.reference as reference
from evaluators import trainer
from evaluators.errors import InputError
from evaluators.interface import TRAINER_OPTIONS, TRAINING_PANEL, Option, OptionsMixin
from evaluators.mujoco.tasks import TASK_MODULES, get_task


@dataclasses.dataclass(frozen=True)
class MujocoConfig(OptionsMixin):
    """Everything that defines a MuJoCo evaluation; stored in run stores as "experiment"."""

    dataset: datasets.DatasetConfig = datasets.DatasetConfig()
    train: trainer.TrainConfig = trainer.TrainConfig()
    eval: fitness.EvalConfig = fitness.EvalConfig()
    reference: reference.ReferenceConfig = reference.ReferenceConfig()
    # Train on several datasets (data seeds; each with its own segments and reference):
    # a run with training seed s uses dataset data_seeds[s % len(data_seeds)]. Empty: the
    # one dataset of ``dataset.seed``.
    data_seeds: tuple[int, ...] = ()

    def validate(self) -> "MujocoConfig":
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
        Option("setting", "dataset", "setting", f"The data's defect: {', '.join(datasets.SETTINGS[:-1])} or "
               f"{datasets.SETTINGS[-1]}.", choices=datasets.SETTINGS),
        Option("eps", "dataset", "eps", "Label-flip probability (--setting noisy only)."),
        Option("pairs", "dataset", "pairs", "Pairs in each dataset."),
        Option("segment", "dataset", "segment", "Control steps per segment."),
        Option("label_horizon", "dataset", "label_horizon", "Steps whose return labels a pair."),
        Option("labels", "dataset", "labels", "expert (the expert continues both sides: labels judge the segment) "
               "or policy (each side's own policy continues it, as in v1 datasets).", choices=datasets.LABELS),
        Option("reference_steps", "reference", "steps", "Training steps of each dataset's reference policy."),
        Option("data_seed", "dataset", "seed"),
        *TRAINER_OPTIONS,
        Option("episodes", "eval", "episodes", "Evaluation episodes per trained policy.", TRAINING_PANEL),
        Option("backend", "eval", "backend", "Simulator (auto: MJX on accelerators).", TRAINING_PANEL,
               choices=fitness.BACKENDS),
        Option("eval_seed", "eval", "seed"),
    )
    TASKS = tuple(sorted(TASK_MODULES))

    def pair_description(self) -> str:
        return f"x {self.dataset.segment} steps"

    def seconds_per_run(self) -> float:
        """A conservative cost model of one training run and its scoring on a CPU core pair:
        about 2.5 us per (pair x control step x training step), and 1000-step episodes at
        about 150,000 physics steps per second (frame skip 4)."""
        t = self.train
        return t.steps * t.batch_pairs * self.dataset.segment * 2.5e-6 + self.eval.episodes * 1000 * 4 / 150_000

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "MujocoConfig":
        """A stored configuration; fields added since it was stored take the values it ran with."""
        return MujocoConfig(datasets.DatasetConfig.from_dict(d["dataset"]), trainer.TrainConfig.from_dict(d["train"]),
                            fitness.EvalConfig(**d["eval"]), reference.ReferenceConfig.from_dict(d["reference"]),
                            tuple(d.get("data_seeds", ())))
