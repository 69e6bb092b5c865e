"""Commands on data: `data policies` (behaviour policies), `data build` (preference datasets)."""

from __future__ import annotations

from typing import Literal, Optional

import typer
from rich.table import Table

from discover.app import UsageProblem, console, data_app, given_on_command_line, one_of, refuse_ignored_options
from evaluators.mujoco.config import LABELS, SETTINGS, DatasetConfig, MujocoConfig, ReferenceConfig
from evaluators.mujoco.tasks import TASK_MODULES

DATA = DatasetConfig()
MUJOCO_TASKS = tuple(sorted(TASK_MODULES))
MUJOCO_TASK_HELP = f"A MuJoCo task: {', '.join(MUJOCO_TASKS[:-1])} or {MUJOCO_TASKS[-1]}."
HELP = {o.name: o.help for o in MujocoConfig.command_line_options()}  # as `discover run` and `bench` say them

# Options with fixed values: (annotation, parser) of each.
MujocoTask, parse_mujoco_task = Literal[MUJOCO_TASKS], one_of("--task", "task", MUJOCO_TASKS)
Setting, parse_setting = Literal[SETTINGS], one_of("--setting", "setting", SETTINGS)
Labels, parse_labels = Literal[LABELS], one_of("--labels", "labels", LABELS)


# short_help: the command list keeps a docstring's line breaks; one line reads at any width
@data_app.command("policies", short_help="Train behaviour policies of graded quality with an existing RL trainer.")
def data_policies(
    task: MujocoTask = typer.Option("hopper", parser=parse_mujoco_task, metavar="TASK",
                                    help=MUJOCO_TASK_HELP),
    trainer: str = typer.Option("sac", help="sac (SAC) or sb3 (PPO), both stable-baselines3 on native MuJoCo, "
                                            "or brax (PPO on MJX)."),
    steps: Optional[int] = typer.Option(None, help="Environment steps (default: per task)."),
    episodes: int = typer.Option(10, help="Episodes to measure each checkpoint's return."),
    out: Optional[str] = typer.Option(None, help="Directory (default: evaluators/mujoco/behaviour_policies/TASK)."),
    seed: int = typer.Option(0),
):
    """Train behaviour policies of graded quality with an existing RL trainer and keep
    checkpoints at about 10, 30, 50, 70, 90 and 100% of the best return."""
    from evaluators.mujoco.behaviour import default_config, train_behaviour_policies
    from evaluators.mujoco.tasks import get_task

    t = get_task(task)
    if trainer not in ("sac", "sb3", "brax"):
        raise UsageProblem(f"--trainer must be sac, sb3 or brax, not {trainer!r}")
    if steps is not None and steps < 1:
        raise UsageProblem("--steps must be positive")
    overrides = {"trainer": trainer, "seed": seed}
    if steps:
        overrides["num_timesteps"] = steps
    cfg = default_config(task, **overrides)
    kept = train_behaviour_policies(t, cfg, episodes=episodes, out_dir=out, log=console.print)
    table = Table(title=f"behaviour policies for {task}")
    for col in ("name", "training step", "return (mean ± std)"):
        table.add_column(col)
    for k in kept:
        table.add_row(k["name"], f"{k['train_step']:,d}", f"{k['return']:.1f} ± {k['return_std']:.1f}")
    console.print(table)


@data_app.command("build")
def data_build(
    ctx: typer.Context,
    task: MujocoTask = typer.Option(DATA.task, parser=parse_mujoco_task, metavar="TASK",
                                    help=MUJOCO_TASK_HELP),
    setting: Setting = typer.Option(DATA.setting, parser=parse_setting, metavar="SETTING", help=HELP["setting"]),
    eps: float = typer.Option(DATA.eps, help="Label-flip probability (--setting noisy only), in [0, 0.5]."),
    pairs: int = typer.Option(DATA.pairs),
    segment: int = typer.Option(DATA.segment, help="Control steps per segment (H)."),
    label_horizon: int = typer.Option(DATA.label_horizon, help="Steps whose return labels a pair (at least --segment)."),
    seed: int = typer.Option(DATA.seed),
    labels: Labels = typer.Option(DATA.labels, parser=parse_labels, help=HELP["labels"]),
    reference_steps: int = typer.Option(ReferenceConfig.steps, help="Behaviour-cloning steps of the reference "
                                                                      "(as --reference-steps of run and bench)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if cached."),
):
    """Build (or load from the cache) a preference dataset and its reference policy; summarise it."""
    from discover.progress import Bar
    from evaluators.mujoco import datasets, reference

    refuse_ignored_options(given_on_command_line(ctx), setting)
    cfg = datasets.DatasetConfig(task=task, setting=setting, eps=eps, pairs=pairs, segment=segment, seed=seed,
                                 label_horizon=label_horizon, labels=labels).validate()
    ref_cfg = ReferenceConfig(steps=reference_steps).validate()
    with Bar(console, f"{task} {setting} dataset", 2, count="1/2") as bar:
        bar.update(phase=f"{pairs} pairs x {segment} steps (built on a cache miss)")
        ds, path, built = datasets.load_or_build(cfg, rebuild=rebuild, log=console.print)
        bar.update(1, count="2/2", phase=f"its reference ({reference_steps} behaviour-cloning steps on a miss)")
        _, ref_path = reference.load_or_fit(ds, path, ref_cfg, rebuild=rebuild)
    s = ds.summary()
    console.print(f"{'built' if built else 'cached'}: {path}")
    console.print(f"reference (behaviour cloning): {ref_path}")
    table = Table(title=f"{task} {setting} dataset ({s['pairs']} pairs x {segment} steps, digest {s['digest']})")
    table.add_column("measure")
    table.add_column("value")
    table.add_row("label agreement with true returns", f"{s['label_agreement']:.3f}")
    table.add_row("measured flip rate", f"{s['flip_rate']:.3f}" + (f" (eps {eps})" if setting == "noisy" else ""))
    table.add_row("chosen side from the better / worse / same policy",
                  f"{s['chosen_from_better_policy']:.0%} / {s['chosen_from_worse_policy']:.0%} / {s['same_policy']:.0%}")
    table.add_row("segment return, chosen / rejected", f"{s['chosen_return_mean']:.1f} / {s['rejected_return_mean']:.1f}")
    table.add_row("live steps, chosen / rejected", f"{s['mean_len_w']:.1f} / {s['mean_len_l']:.1f}")
    console.print(table)
    hist = Table(title="pairs by behaviour policy (rows: chosen, columns: rejected; poorest first)")
    k = len(s["policy_pairs"])
    hist.add_column("")
    for j in range(k):
        hist.add_column(f"q{j}")
    for i, row in enumerate(s["policy_pairs"]):
        hist.add_row(f"q{i}", *[str(v) for v in row])
    console.print(hist)
