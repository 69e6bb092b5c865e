"""Study v3, step 2 (PLAN.md): tuning and B* of one setting, before any held-out run.

    python results/study_v3/tune.py walker2d mixed [RUN ...]

Tunes every zoo loss (constants on a grid that includes mirror.yaml's bounds, then the
recipe grid for the 5 best and DPO) on tuning datasets 50-52 x 2 seeds (discover.tuning)
and writes results/study_v3/tune-TASK-SETTING/tuning.json with B*. Given finished study
runs (names under results/), their winners (loss 1) get the same recipe grid; the zoo's
scored parts are read back, not redone. Resumable: run again after an interruption.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)

from discover import run_views  # noqa: E402
from discover.store import RunStore  # noqa: E402
from discover import tuning  # noqa: E402
from evaluators import registry  # noqa: E402
from grammar import load as load_grammar  # noqa: E402
from grammar import zoo  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import study_settings  # noqa: E402


def main(task: str, setting: str, runs: list[str]) -> None:
    config = registry.get(registry.for_task(task)).Config().with_options(task=task, setting=setting,
                                                                         **study_settings.options(task, setting))
    winners = []
    for run in runs:
        loss, _ = run_views.ranked_loss(RunStore.open(os.path.join(ROOT, "results", run)), 1)
        winners.append(loss.derive("study", f"{run}#1", loss.expr, loss.constants, f"{run}, loss 1"))
    out = os.path.join(ROOT, "results", "study_v3", f"tune-{task}-{setting}")
    result = tuning.tune(config, list(zoo.ZOO), winners, load_grammar("mirror.yaml").constants, out,
                         study_settings.tuning_plan(task, setting))
    b = result["b_star"]
    print(f"B* of {task} {setting}: {b['name']} {b['constants']} at {b['steps']} steps, lr {b['lr']:g}: "
          f"{b['score']:.1f} on the tuning datasets")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
