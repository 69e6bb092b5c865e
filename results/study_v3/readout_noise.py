"""Study v3, step 4a (PLAN.md): how many evaluation episodes (the token task: evaluation
prompts, amendment 3) a held-out bench needs.

The same 6 trained policies (3 losses x 2 training seeds, on tuning datasets 50 and 51)
are scored twice, from two independent draws of start states, at 16, 32, 64 and 128
episodes; the bench uses the smallest count whose mean absolute difference between the
two draws is under 2 points, and every larger measured count's too (PLAN.md, amendment 7:
a count that passes between failing ones passes by chance). Where none is, 256 and then
512 are measured until one is (amendment 5). Training is deterministic, so both draws score the same
policies (checked: their training diagnostics agree).

    python results/study_v3/readout_noise.py walker2d mixed > results/study_v3/readout-walker2d-mixed.txt

Also writes results/study_v3/readout-TASK-SETTING.json (the measurements and the count),
which the held-out benches (heldout.py) read.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from evaluators import registry  # noqa: E402
from evaluators import seeds as seed_spaces  # noqa: E402
from grammar import zoo  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import study_settings  # noqa: E402

LOSSES = ("dpo", "sft", "dpo_tsallis")
EPISODES = (16, 32, 64, 128)
# the readout option and its counts per evaluator (the token task samples one response per prompt)
READOUT = {"lm": ("prompts", (512, 1024, 2048, 4096))}
THRESHOLD = 2.0  # points of normalised return
# PLAN.md, amendment 5: where no pre-registered count reaches the threshold, the count doubles,
# up to 4x the largest, each measured until one does
EXTEND = 2


def smallest_stable(measured: list[tuple[int, float]], threshold: float = THRESHOLD) -> int | None:
    """The smallest count under ``threshold`` whose larger measured counts all are too
    (``measured``: (count, mean |draw 1 - draw 2|) in increasing counts); None if none."""
    chosen = None
    for count, mad in reversed(measured):
        if mad >= threshold:
            break
        chosen = count
    return chosen


def main(task: str, setting: str, here: str = os.path.dirname(os.path.abspath(__file__))) -> None:
    exprs = [zoo.get(n).expr for n in LOSSES]
    constants = [zoo.get(n).constants for n in LOSSES]
    seeds = [seed_spaces.TUNE_TRAIN[0], seed_spaces.TUNE_TRAIN[1]]
    draws = (seed_spaces.TUNE_EVAL + 1, seed_spaces.TUNE_EVAL + 2)  # start states no tuning part used
    print(f"{task} {setting}: {len(LOSSES)} losses ({', '.join(LOSSES)}) x {len(seeds)} seeds on tuning datasets "
          f"{seed_spaces.TUNE_DATA_SEEDS[:2]}, two draws of start states each")
    chosen, rows = None, []
    option, counts = READOUT.get(registry.for_task(task), ("episodes", EPISODES))
    extension = tuple(counts[-1] * 2 ** (i + 1) for i in range(EXTEND))
    for episodes in counts + extension:
        if chosen is not None and episodes in extension:
            break
        t0 = time.perf_counter()
        base = registry.get(registry.for_task(task)).Config().with_options(task=task, setting=setting,
                                                                           **study_settings.options(task, setting),
                                                                           **{option: episodes})
        evaluator = registry.get(registry.for_task(task))(base.with_data_seeds(seed_spaces.TUNE_DATA_SEEDS[:2]))
        a, b = (evaluator.evaluate(exprs, constants, seeds, eval_seed=s) for s in draws)
        assert np.array_equal(a.diagnostics["final_loss"], b.diagnostics["final_loss"]), "training differed"
        diff = np.abs(a.per_seed - b.per_seed)
        mad = float(np.nanmean(diff))
        print(f"{episodes:4d} {option}: mean |draw 1 - draw 2| {mad:.2f} points (max {np.nanmax(diff):.2f}); "
              f"scores {np.nanmean(a.per_seed):.1f} / {np.nanmean(b.per_seed):.1f} ({time.perf_counter() - t0:.0f} s)")
        rows.append({option: episodes, "mean_abs_diff": mad, "max_abs_diff": float(np.nanmax(diff)),
                     "draw_1": a.per_seed.tolist(), "draw_2": b.per_seed.tolist()})
        chosen = smallest_stable([(r[option], r["mean_abs_diff"]) for r in rows])
    measured = tuple(r[option] for r in rows)
    print(f"held-out benches of {task} {setting} use --{option} "
          + (f"{chosen}" if chosen else f"above {measured[-1]} (none of {measured} reached {THRESHOLD:g} points)"))
    out = os.path.join(here, f"readout-{task}-{setting}.json")
    with open(out, "w") as f:
        json.dump({"task": task, "setting": setting, "losses": LOSSES, "seeds": seeds, "draws": draws,
                   "threshold": THRESHOLD, "option": option, "count": chosen or measured[-1],
                   "met_threshold": chosen is not None, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
