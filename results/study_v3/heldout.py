"""Study v3, step 4b (PLAN.md): the held-out benches of one setting.

    python results/study_v3/heldout.py walker2d mixed [--dry-run] [--left-out K,...]

Scores, on the held-out datasets (data seeds 400-419) x 3 bench seeds, every study loss at
its own tuned recipe: the K winners (loss 1 of each search study-TASK-SETTING-K, at their
searched constants), B*, the other tuned top zoo losses and DPO (at their tuned
constants). Recipes and constants come from tune-TASK-SETTING/tuning.json, which must hold
the winners (rerun tune.py with the searches' names first), and B* must match the frozen
B_STAR.json; the episode count comes from the readout-noise measurement
(readout-TASK-SETTING.json; the token task's is its evaluation prompts). Losses sharing a recipe are one `discover bench`
(results/study-heldout-TASK-SETTING-sSTEPS-lrLR); every bench uses the same datasets, seeds
and start states, so every difference stays paired. Writes heldout-TASK-SETTING.json (which
loss is in which bench under which name), then runs the benches one after another;
finished ones are skipped and an interrupted one resumes (the bench's own partial/).

A search that cannot finish (PLAN.md, amendment 2: resumed from its checkpoint first) is
left out with ``--left-out K``: it returns "no loss", the plan records it, and the
analysis reports it; K then shrinks. A search that has finished cannot be left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, ROOT)

from discover import tuning  # noqa: E402
from evaluators import seeds as seed_spaces  # noqa: E402

sys.path.insert(0, HERE)
import study_settings  # noqa: E402

K = 8
DATASETS, SEEDS = len(seed_spaces.STUDY_HELD_OUT), 3


def _read(path: str, what: str) -> dict:
    if not os.path.exists(path):
        raise SystemExit(f"{what} missing: {path}")
    with open(path) as f:
        return json.load(f)


def _zoo_spec(name: str, constants: dict) -> str:
    return name + "".join(f"@{k}={v:.12g}" for k, v in sorted(constants.items()))


def plan(task: str, setting: str, here: str = HERE, left_out: tuple[int, ...] = (), results: str | None = None
         ) -> dict:
    """The held-out benches of a setting: {"episodes", "benches": [{name, steps, lr, zoo,
    include, roles}]}, each role ("b_star", "winner K", "zoo NAME") naming its bench entry;
    the searches in ``left_out`` (which must not have finished: no final.json under
    ``results``) are not benched."""
    results = results or os.path.join(ROOT, "results")
    if bad := sorted(k for k in left_out if not 0 <= k < K):
        raise SystemExit(f"--left-out: no search {', '.join(map(str, bad))} (searches are 0-{K - 1})")
    if done := [k for k in left_out if os.path.exists(os.path.join(results, f"study-{task}-{setting}-{k}",
                                                                   "final.json"))]:
        raise SystemExit(f"--left-out: search {', '.join(map(str, done))} finished; a finished search counts")
    tune_dir = os.path.join(here, f"tune-{task}-{setting}")
    tuned = _read(os.path.join(tune_dir, "tuning.json"), "the setting's tuning")
    frozen = _read(os.path.join(tune_dir, "B_STAR.json"), "the frozen B*")
    if not tuning._same_choice(frozen, tuned["b_star"]):
        raise SystemExit(f"tuning.json's B* ({tuned['b_star']['name']}) is not the frozen one ({frozen['name']})")
    readout = _read(os.path.join(here, f"readout-{task}-{setting}.json"), "the readout-noise measurement")
    episodes = readout["count"]
    if not episodes:
        raise SystemExit("the readout-noise measurement has no count (written before PLAN.md amendment 5): run "
                         "readout_noise.py again")
    runs = [f"study-{task}-{setting}-{k}" for k in range(K)]
    missing = [r for k, r in enumerate(runs) if k not in left_out and f"{r}#1" not in tuned["choice"]]
    if missing:
        raise SystemExit(f"tuning.json has no recipe for {', '.join(missing)}: finish the searches, then run "
                         f"python results/study_v3/tune.py {task} {setting} {' '.join(runs)}")
    benches: dict[tuple, dict] = {}
    untuned, zoo_left_out = [], []
    for loss, choice in tuned["choice"].items():
        if choice is None:  # failed at every recipe of the tuning (PLAN.md, amendment 4)
            if not loss.endswith("#1"):
                zoo_left_out.append(loss)  # a zoo loss other than B*: not benched
                continue
            untuned.append(loss)  # a winner: benched at its search's recipe
            recipe = study_settings.search_recipe(task, setting)
        else:
            recipe = (int(choice["steps"]), float(choice["lr"]))
        b = benches.setdefault(recipe, {"name": f"study-heldout-{task}-{setting}-s{recipe[0]}-lr{recipe[1]:g}",
                                        "steps": recipe[0], "lr": recipe[1], "zoo": [], "include": [], "roles": {}})
        if loss.endswith("#1"):
            run = loss[:-2]
            if runs.index(run) in left_out:
                continue
            b["include"].append(f"{run}:1")
            b["roles"][f"winner {runs.index(run)}"] = loss
        else:
            from discover.bench import zoo_entries

            spec = _zoo_spec(loss, choice["constants"])
            b["zoo"].append(spec)
            label = zoo_entries([spec])[0].name
            b["roles"][f"zoo {loss}"] = label
            if loss == tuned["b_star"]["name"]:
                b["roles"]["b_star"] = label
    return {"task": task, "setting": setting, "data_seeds": list(seed_spaces.STUDY_HELD_OUT), "seeds": SEEDS,
            "readout": readout["option"], "episodes": int(episodes),
            "readout_met_threshold": bool(readout.get("met_threshold", True)), "untuned_winners": untuned,
            "zoo_left_out": zoo_left_out, "searches_left_out": sorted(left_out),
            "benches": sorted((b for b in benches.values() if b["roles"]), key=lambda b: (b["steps"], b["lr"]))}


def mismatch(bench: dict, plan: dict, b: dict) -> str | None:
    """Why a finished bench is not the plan's bench ``b`` (None if it is): its datasets,
    training seeds, recipe, readout count, the setting's options or its losses differ."""
    cfg = bench["config"]
    want = {"data seeds": (bench["data_seeds"], plan["data_seeds"]),
            "training seeds": (bench["seeds"], seed_spaces.bench_train(plan["seeds"])),
            "steps": (cfg["train"]["steps"], b["steps"]),
            "learning rate": (round(cfg["train"]["learning_rate"], 12), round(b["lr"], 12)),
            plan["readout"]: (cfg["eval"][plan["readout"]], plan["episodes"]),
            **{k: (cfg["dataset"].get(k), v) for k, v in study_settings.options(plan["task"], plan["setting"]).items()
               if k not in ("steps", "lr")}}
    for what, (have, should) in want.items():
        if have != should:
            return f"{what} {have}, not {should}"
    missing = sorted(set(b["roles"].values()) - {r["name"] for r in bench["losses"]})
    return f"no row {', '.join(missing)}" if missing else None


def main(task: str, setting: str, dry_run: bool, here: str = HERE, left_out: tuple[int, ...] = (),
         results: str | None = None) -> None:
    """Writes the plan and runs (or, ``dry_run``, prints) its benches; ``results``: where the
    benches' folders are (the repository's results/; another only for a dry run)."""
    results = results or os.path.join(ROOT, "results")
    if not dry_run and os.path.realpath(results) != os.path.realpath(os.path.join(ROOT, "results")):
        raise ValueError("the benches run under the repository's results/ (discover bench writes there)")
    p = plan(task, setting, here, left_out, results=results)
    with open(os.path.join(here, f"heldout-{task}-{setting}.json"), "w") as f:
        json.dump(p, f, indent=1)
    for b in p["benches"]:
        command = ["discover", "bench", "--task", task, "--setting", setting,
                   *study_settings.flags(task, setting, recipe=False),
                   "--losses", ",".join(b["zoo"]),
                   *[x for run in b["include"] for x in ("--include", run)],
                   "--datasets", str(DATASETS), "--data-seed", str(p["data_seeds"][0]), "--seeds", str(SEEDS),
                   "--steps", str(b["steps"]), "--lr", f"{b['lr']:g}", f"--{p['readout']}", str(p["episodes"]),
                   "--name", b["name"]]
        res = os.path.join(results, b["name"], "results.json")
        done = os.path.exists(res)
        if done and (problem := mismatch(_read(res, "a bench"), p, b)):
            raise SystemExit(f"{b['name']}/results.json is not this plan's bench: {problem}; move it away")
        print(("done: " if done else "") + " ".join(command), flush=True)
        if done or dry_run:
            continue
        os.makedirs(os.path.join(here, "logs"), exist_ok=True)
        log = os.path.join(here, "logs", f"{b['name']}.log")
        with open(log, "a") as f:
            proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env={**os.environ, "COLUMNS": "100"})
            for line in proc.stdout:
                sys.stdout.write(line)
                f.write(line)
        if proc.wait():
            raise SystemExit(f"{b['name']} stopped (exit {proc.returncode}); run this again to resume it")
        with open(log) as src, open(os.path.join(ROOT, "results", b["name"], "console.txt"), "w") as dst:
            dst.write(src.read())


def _left_out(argv: list[str]) -> tuple[tuple[int, ...], list[str]]:
    """(the --left-out searches, the other arguments)."""
    if "--left-out" not in argv:
        return (), argv
    i = argv.index("--left-out")
    try:
        return tuple(int(k) for k in argv[i + 1].split(",")), argv[:i] + argv[i + 2:]
    except (IndexError, ValueError):
        raise SystemExit("--left-out takes search numbers, for example --left-out 3 or --left-out 3,5") from None


if __name__ == "__main__":
    left, rest = _left_out(sys.argv[1:])
    args = [a for a in rest if a != "--dry-run"]
    if len(args) != 2:
        raise SystemExit(__doc__)
    main(args[0], args[1], "--dry-run" in rest, left_out=left)
