"""The options of each study setting beyond --task and --setting, and its tuning's recipe
grid (PLAN.md, amendment 3: the token setting uses the harder language and a recipe near
its plateau). One place for every script of the study.

    python results/study_v3/study_settings.py lm mixed    -> --language sum
"""

from __future__ import annotations

import sys

EXTRA = {("lm", "mixed"): {"language": "sum", "steps": 400, "lr": 24e-4}}
# the tuning's recipes (steps, learning rate); the default is discover.tuning.RECIPES
RECIPES = {("lm", "mixed"): tuple((steps, lr) for steps in (200, 400, 800) for lr in (3e-4, 6e-4, 12e-4, 24e-4))}


def options(task: str, setting: str) -> dict:
    """Configuration options (as ``with_options`` takes them) of a setting, beyond its task and setting."""
    return dict(EXTRA.get((task, setting), {}))


def tuning_plan(task: str, setting: str):
    """The :class:`discover.tuning.TuningPlan` of a setting."""
    from discover.tuning import TuningPlan

    recipes = RECIPES.get((task, setting))
    return TuningPlan(recipes=recipes) if recipes else TuningPlan()


def search_recipe(task: str, setting: str) -> tuple[int, float]:
    """(steps, learning rate) the setting's searches train with: its own, else the trainer's defaults."""
    from evaluators.trainer_config import TrainConfig

    extra = options(task, setting)
    return int(extra.get("steps", TrainConfig.steps)), float(extra.get("lr", TrainConfig.learning_rate))


def flags(task: str, setting: str, recipe: bool = True) -> list[str]:
    """The same as command-line flags of ``discover run`` and ``bench``; without the recipe
    (steps, lr) where the caller gives its own (a bench at a loss's tuned recipe)."""
    chosen = {k: v for k, v in options(task, setting).items() if recipe or k not in ("steps", "lr")}
    return [x for k, v in chosen.items() for x in (f"--{k.replace('_', '-')}", f"{v:g}" if isinstance(v, float)
                                                   else str(v))]


if __name__ == "__main__":
    print(" ".join(flags(sys.argv[1], sys.argv[2])))
