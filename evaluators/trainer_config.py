"""The shared trainer's configuration (:class:`TrainConfig`): the inner loop's budget and
settings. Free of JAX, so that configurations can be built, validated and read back from
run stores without importing the trainer (:mod:`evaluators.trainer`)."""

from __future__ import annotations

import dataclasses

SCHEDULES = ("warmup_linear", "constant")
# "map": a CPU trains the runs one after another; "batched": a CPU trains a chunk of runs
# side by side through the policy and one after another through the loss; "vmap": an
# accelerator trains every run side by side (the loss in the interpreter's select mode).
MODES = ("map", "batched", "vmap")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The inner loop's budget and settings (the defaults fit a 2-core CPU; see README)."""

    steps: int = 200
    batch_pairs: int = 32
    learning_rate: float = 3e-4
    grad_clip: float = 1.0
    bins: int = 41
    program_length: int = 96
    n_constants: int = 8
    # How the runs of a population share the machine (MODES); "auto": "map" on a CPU,
    # "vmap" on an accelerator.
    mode: str = "auto"
    snapshots: int = 0  # > 0: also return the parameters after every steps/snapshots steps
    # The recipe every loss gets: linear warmup over the first ``warmup`` of the steps,
    # then linear decay to 0 (the usual DPO/SFT recipe); "constant" keeps the rate fixed.
    schedule: str = "warmup_linear"
    warmup: float = 0.1
    # The scored policy is an exponential moving average of the parameters (Polyak
    # averaging; a stabler readout than the last iterate); 0 scores the last iterate.
    ema: float = 0.95

    # Stored configurations without these fields were trained so.
    LEGACY = {"schedule": "constant", "warmup": 0.1, "ema": 0.0}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A stored configuration; fields it lacks take the values it was trained with."""
        return cls(**{**cls.LEGACY, **d})

    def validate(self) -> "TrainConfig":
        """This configuration, checked (an :class:`InputError` naming the option)."""
        from evaluators.errors import InputError

        if self.steps < 1:
            raise InputError(f"--steps: training steps must be at least 1, got {self.steps}")
        if self.batch_pairs < 1:
            raise InputError(f"--batch must be at least 1 pair, got {self.batch_pairs}")
        if not self.learning_rate > 0:
            raise InputError(f"--lr must be positive, got {self.learning_rate}")
        if self.mode not in ("auto",) + MODES:
            raise InputError(f"mode must be auto, {', '.join(MODES)}, not {self.mode!r}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r}; schedules: {', '.join(SCHEDULES)}")
        if not 0.0 <= self.warmup < 1.0:
            raise InputError(f"warmup must be a fraction of the steps in [0, 1), got {self.warmup}")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"ema must be in [0, 1), got {self.ema}")
        if self.snapshots and self.steps % self.snapshots:
            raise InputError(f"steps ({self.steps}) must be a multiple of snapshots ({self.snapshots})")
        return self

    @property
    def shape(self):
        """The :class:`grammar.interpreter.ProgramShape` losses are encoded to."""
        from grammar import interpreter  # lazy: the interpreter imports JAX

        return interpreter.ProgramShape(self.program_length, self.n_constants)

    def resolved_mode(self) -> str:
        """The population layout used: the one asked for, or the device's default for "auto"."""
        if self.mode != "auto":
            return self.mode
        from evaluators.device import population_mode  # lazy: it imports JAX

        return population_mode()

    def learning_rate_at(self):
        """The learning rate as an optax schedule of the step (or a constant)."""
        import optax  # lazy: optax imports JAX

        if self.schedule == "constant":
            return self.learning_rate
        warm = int(round(self.warmup * self.steps))
        decay = optax.linear_schedule(self.learning_rate, 0.0, max(self.steps - warm, 1))
        if warm == 0:
            return decay
        return optax.join_schedules([optax.linear_schedule(0.0, self.learning_rate, warm), decay], [warm])
