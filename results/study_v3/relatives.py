"""Study v3, step 5 (PLAN.md, secondary): each winner of a setting described by its nearest
published relatives.

    python results/study_v3/relatives.py walker2d mixed > results/study_v3/relatives-walker2d-mixed.txt

For every search's winner (loss 1), the similarity of its gradient field
d loss / d(logp_w, logp_l) with that of every zoo loss, each at the best point of its
constant grid (the tuning's grid, which reaches the search's bounds; grammar/relatives.py):
the mean of two cosines, on the inputs where effective forms are measured: 256 pairs of
the first tuning dataset (data seed 50) at the reference with t across [0, 1] ("start"),
and 256 pairs at the policy the winner trained to at the setting's search recipe, t = 1
("end"; a winner's held-out recipe may differ). Also its cosine with B* at B*'s tuned
constants, and, for scale, the spread of the cosines between distinct zoo losses at their
default constants on the same inputs. No held-out data is touched. Writes
relatives-TASK-SETTING.json beside this file, which analyse.py reads.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)

from discover import run_views  # noqa: E402
from discover.store import RunStore  # noqa: E402
from evaluators import registry  # noqa: E402
from evaluators import seeds as seed_spaces  # noqa: E402
from evaluators.interface import effective_inputs  # noqa: E402
from grammar import relatives, symbolic, zoo  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import study_settings  # noqa: E402

K = 8
TOP = 3


def _shown(constants: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(constants.items()))


def main(task: str, setting: str, here: str = os.path.dirname(os.path.abspath(__file__))) -> None:
    with open(os.path.join(here, f"tune-{task}-{setting}", "B_STAR.json")) as f:
        b_star = json.load(f)
    runs = [f"study-{task}-{setting}-{k}" for k in range(K)]
    missing = [r for r in runs if not os.path.exists(os.path.join(ROOT, "results", r))]
    if missing:
        raise SystemExit(f"searches not found under results/: {', '.join(missing)}")
    winners = [run_views.ranked_loss(RunStore.open(os.path.join(ROOT, "results", r)), 1)[0] for r in runs]
    config = registry.get(registry.for_task(task)).Config().with_options(
        task=task, setting=setting, **study_settings.options(task, setting))
    evaluator = registry.get(registry.for_task(task))(config.with_data_seeds(seed_spaces.TUNE_DATA_SEEDS[:1]))
    inputs = effective_inputs(evaluator, [w.expr for w in winners], [w.constants for w in winners])
    b_expr = zoo.get(b_star["name"]).expr
    steps, lr = study_settings.search_recipe(task, setting)
    print(f"{task} {setting}: each search's winner against the zoo (gradient-field cosine, the mean of start and "
          f"end; each zoo loss at the best point of its constant grid, chosen on the same pairs; start: 256 pairs "
          f"of tuning dataset {seed_spaces.TUNE_DATA_SEEDS[0]} at the reference, t across [0, 1]; end: 256 pairs at "
          f"the policy the winner trained to there ({steps} steps, lr {lr:g}), t = 1)\n")
    out = []
    for k, (run, w, x) in enumerate(zip(runs, winners, inputs)):
        print(f"search {k}: {symbolic.text(w.expr)}  {{{_shown(w.constants)}}}")
        try:
            ranked = run_views.zoo_relatives(w.expr, w.constants, x)
            to_b = relatives.nearest(w.expr, w.constants, x, [(b_star["name"], b_expr, [b_star["constants"]])])[0]
        except ValueError as e:
            print(f"  not measured: {e}\n")
            out.append({"search": k, "run": run, "error": str(e)})
            continue
        scale = zoo_spread(x)
        for r in ranked[:TOP]:
            print(f"  {r.cosine:6.3f}  {r.name} ({_shown(r.constants)})  [start / end "
                  f"{' / '.join(f'{c:.3f}' for c in r.per_set)}]")
        print(f"  {to_b.cosine:6.3f}  B* {b_star['name']} at its tuned constants  [start / end "
              f"{' / '.join(f'{c:.3f}' for c in to_b.per_set)}]")
        print(f"  for scale, distinct zoo losses at their default constants on these inputs: median "
              f"{scale['median']:.3f}, 10-90% {scale['p10']:.3f} to {scale['p90']:.3f}; trained-policy inputs: "
              f"{'yes' if len(x) > 1 else 'no (training failed)'}\n")
        out.append({"search": k, "run": run, "trained_inputs": len(x) > 1, "b_star_cosine": to_b.cosine,
                    "b_star_per_set": to_b.per_set, "zoo_spread": scale,
                    "relatives": [dataclass_dict(r) for r in ranked]})
    with open(os.path.join(here, f"relatives-{task}-{setting}.json"), "w") as f:
        json.dump({"task": task, "setting": setting, "b_star": b_star["name"], "searches": out}, f, indent=1)


def dataclass_dict(r: relatives.Relative) -> dict:
    return {"name": r.name, "constants": r.constants, "cosine": r.cosine, "per_set": list(r.per_set)}


def zoo_spread(inputs) -> dict:
    """Quantiles of the similarity between distinct zoo losses, each at its default constants."""
    names = list(zoo.ZOO)
    values = []
    for i, a in enumerate(names):
        others = [(b, zoo.get(b).expr, [zoo.get(b).constants]) for b in names[i + 1:]]
        try:
            values += [r.cosine for r in relatives.nearest(zoo.get(a).expr, zoo.get(a).constants, inputs, others)]
        except ValueError:  # a zoo loss without a finite field here
            continue
    q = np.quantile(values, [0.1, 0.5, 0.9])
    return {"p10": float(q[0]), "median": float(q[1]), "p90": float(q[2]), "pairs": len(values)}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
