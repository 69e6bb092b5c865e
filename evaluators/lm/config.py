"""The token task's configuration: data, model, evaluation and training settings, and the
options ``discover run`` and ``bench`` take for ``--task lm``. Free of JAX, so that the
command line reads the options without importing the evaluator."""

from __future__ import annotations

import dataclasses

from evaluators.errors import InputError
from evaluators.lm.language import LANGUAGES, MAX_RESPONSE, SEQ, SETTINGS
from evaluators.options import TRAINER_OPTIONS, Option, OptionsMixin
from evaluators.seeds import SEARCH_EVAL
from evaluators.trainer_config import TrainConfig


@dataclasses.dataclass(frozen=True)
class LmDataConfig:
    """The token task's data: setting, pairs, label noise, the dataset's seed and the
    language (see :data:`evaluators.lm.language.LANGUAGES`)."""
    task: str = "lm"
    setting: str = "noisy"
    eps: float = 0.3
    pairs: int = 2000
    seed: int = 0
    mixed_poor_fraction: float = 0.7   # mixed: share of responses from the two poorest policies
    language: str = "reverse"

    def validate(self) -> "LmDataConfig":
        """This configuration, checked (an :class:`InputError` naming the option)."""
        if self.setting not in SETTINGS:
            raise InputError(f"unknown setting {self.setting!r} for --task lm; known: {', '.join(SETTINGS)}")
        if self.language not in LANGUAGES:
            raise InputError(f"unknown language {self.language!r} for --task lm; known: {', '.join(LANGUAGES)}")
        if not 0.0 <= self.eps <= 0.5:
            raise InputError(f"--eps must be in [0, 0.5], got {self.eps}")
        if self.pairs < 64:
            raise InputError(f"--pairs must be at least 64, got {self.pairs}")
        return self


@dataclasses.dataclass(frozen=True)
class LmModelConfig:
    """The tiny transformer: its width and its reference's supervised fine-tuning."""
    width: int = 32     # attention heads: model.HEADS
    layers: int = 1
    sft_steps: int = 400
    sft_learning_rate: float = 3e-3


@dataclasses.dataclass(frozen=True)
class LmEvalConfig:
    """How trained policies are scored: evaluation prompts and their seed."""
    prompts: int = 512   # evaluation prompts (never in a dataset), one sampled response each (temperature 1)
    seed: int = SEARCH_EVAL  # the bench and held-out scoring pass their own (``eval_seed``)


@dataclasses.dataclass(frozen=True)
class LmConfig(OptionsMixin):
    """Everything that defines a token-task evaluation; stored in run stores as "experiment"."""

    dataset: LmDataConfig = LmDataConfig()
    train: TrainConfig = TrainConfig()
    model: LmModelConfig = LmModelConfig()
    eval: LmEvalConfig = LmEvalConfig()
    data_seeds: tuple[int, ...] = ()

    # The options of `discover run` and `bench` (task, data_seed, eval_seed and
    # program_length are set by the commands themselves).
    OPTIONS = (
        Option("task", "dataset", "task"),
        Option("setting", "dataset", "setting", f"The data's defect: {', '.join(SETTINGS[:-1])} or {SETTINGS[-1]}.",
               choices=SETTINGS),
        Option("eps", "dataset", "eps", "Label-flip probability (--setting noisy only)."),
        Option("pairs", "dataset", "pairs", "Pairs in each dataset."),
        Option("language", "dataset", "language", "The token language: reverse (the prompt reversed) or sum "
               "(harder: two prompt tokens per answer token, credit for the right prefix only).",
               choices=tuple(LANGUAGES)),
        Option("reference_steps", "model", "sft_steps", "Training steps of each dataset's reference policy."),
        Option("data_seed", "dataset", "seed"),
        *TRAINER_OPTIONS,
        Option("prompts", "eval", "prompts", "Evaluation prompts per trained policy (one sampled response each).",
               TRAINER_OPTIONS[0].panel),
        Option("eval_seed", "eval", "seed"),
    )
    TASKS = ("lm",)

    def pair_description(self) -> str:
        """How the console describes one pair of this task's data."""
        return "(token sequences)"

    def validate(self) -> "LmConfig":
        """This configuration, every section checked."""
        self.dataset.validate()
        self.train.validate()
        if self.eval.prompts < 1:
            raise InputError(f"--prompts must be at least 1, got {self.eval.prompts}")
        if self.model.sft_steps < 1:
            raise InputError(f"--reference-steps must be at least 1, got {self.model.sft_steps}")
        if len(set(self.data_seeds)) != len(self.data_seeds):
            raise InputError(f"data seeds repeat: {list(self.data_seeds)}")
        return self

    def seconds_per_run(self) -> float:
        """A conservative cost model of one training run and its scoring: about 2.5 us per
        (pair x token x training step), plus sampling the evaluation prompts' responses, and
        decoding them greedily for the diagnostics."""
        t = self.train
        return t.steps * t.batch_pairs * SEQ * 2.5e-6 + 2 * self.eval.prompts * MAX_RESPONSE * 2e-5

    def to_dict(self) -> dict:
        """As stored in a run's or bench's configuration."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "LmConfig":
        """A stored configuration back."""
        return LmConfig(LmDataConfig(**d["dataset"]), TrainConfig.from_dict(d["train"]),
                        LmModelConfig(**d["model"]), LmEvalConfig(**d["eval"]), tuple(d.get("data_seeds", ())))
