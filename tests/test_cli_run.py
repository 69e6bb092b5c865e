"""`discover run` end to end on the tiny task, then show, export, plot and resume."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from test_cli import in_process as discover

pytestmark = pytest.mark.slow

RUN = ("run", "--grammar", "mirror.yaml", "--task", "pendulum", "--population", "16", "--generations", "2",
       "--steps", "40", "--pairs", "200", "--segment", "20", "--episodes", "2", "--datasets", "2",
       "--reference-steps", "800", "--name", "tiny")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    out = discover(*RUN, cwd=cwd)
    assert out.returncode == 0, out.stderr[-2000:]
    return cwd, out


def test_run_prints_hall_of_fame_and_writes_store(finished_run):
    cwd, out = finished_run
    said = " ".join(out.stdout.split())  # wrapping depends on the console's width
    assert "gen 1/2" in said and "gen 2/2" in said
    assert "held-out scores" in said and "Pareto front" in said and "reference (BC)" in said
    assert "promoted" in said  # successive halving, the default
    run = cwd / "results" / "tiny"
    for name in ("config.json", "grammar.yaml", "candidates.jsonl", "hall_of_fame.json", "final.json",
                 "fitness.png", "pareto.png", "training_curves.png", "checkpoints/gen-0001.json"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["experiment"]["reference"]["steps"] == 800


def test_show_and_latex(finished_run):
    cwd, _ = finished_run
    out = discover("show", "tiny", "--latex", cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert "hall of fame" in out.stdout and "\\" in out.stdout


@pytest.mark.parametrize("fmt", ["jax", "torch", "trl"])
def test_export_from_run(finished_run, fmt):
    cwd, _ = finished_run
    target = cwd / f"best_{fmt}.py"
    out = discover("export", "tiny", "--rank", "1", "--format", fmt, "--output", str(target), cwd=cwd)
    assert out.returncode == 0, out.stderr
    src = target.read_text()
    assert "def loss(" in src and "mpo-discover run tiny" in src
    if fmt == "jax":
        spec = importlib.util.spec_from_file_location("best", target)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        x = -np.arange(1.0, 5.0)
        extra = {k: v for k, v in dict(chosen_lengths=x * 0 + 10, rejected_lengths=x * 0 + 10, progress=0.5).items()
                 if k in mod.INPUTS}  # the inputs this loss uses, and only those, are arguments
        assert np.all(np.isfinite(np.asarray(mod.loss(x, x * 2, x, x * 1.5, **extra))))
    if fmt == "trl":
        compile(src, str(target), "exec")


def test_the_report_names_a_winner_by_its_derivation_and_fills_the_readme(finished_run, tmp_path):
    from discover import headline_report
    from discover.commands_bench import BEGIN, END, replace_block
    from discover.store import RunStore

    cwd, out = finished_run
    parts = headline_report.winner_parts(RunStore.open(str(cwd / "results" / "tiny")))
    assert parts.startswith("`mpo(") or parts.startswith("`free(")  # a mirror.yaml template
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    text = replace_block(str(readme), ["| a | b |", "|---|---|"])
    assert text == f"# x\n\n{BEGIN}\n| a | b |\n|---|---|\n{END}\n\nafter\n"
    readme.write_text("no markers\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("settings:\n  - {label: x, run: tiny, bench: none}\n")
    res = discover("report", "--spec", str(spec), "--readme", str(readme), "--output", str(tmp_path / "R.md"), cwd=cwd)
    assert res.returncode == 2 and "needs one line" in res.stderr


def test_rank_out_of_range(finished_run):
    cwd, _ = finished_run
    out = discover("export", "tiny", "--rank", "99", "--output", "x.py", cwd=cwd)
    assert out.returncode == 2 and "loss 99 is not one of them" in out.stderr


def test_plot_and_resume_of_a_finished_run(finished_run):
    cwd, _ = finished_run
    written_by_the_run = {p.name: p.stat().st_mtime_ns for p in (cwd / "results" / "tiny").glob("*.png")}
    assert discover("plot", "tiny", cwd=cwd).returncode == 0
    for name in ("fitness.png", "pareto.png", "loss_shapes.png", "loss_shapes.json"):
        assert (cwd / "results" / "tiny" / "plots" / name).stat().st_size > 1000, name
    # the run's own plots stay as the run wrote them; --output-dir puts them anywhere
    assert {p.name: p.stat().st_mtime_ns for p in (cwd / "results" / "tiny").glob("*.png")} == written_by_the_run
    assert discover("plot", "tiny", "--no-shapes", "--output-dir", str(cwd / "elsewhere"), cwd=cwd).returncode == 0
    assert (cwd / "elsewhere" / "fitness.png").exists()
    again = discover("run", "--resume", "tiny", "--steps", "7", cwd=cwd)  # finished: nothing is trained again
    assert again.returncode == 0, again.stderr[-2000:]
    said = " ".join(again.stdout.split())  # as printed, wrapped at the console's width
    assert "is finished (2 generations" in said and "nothing to resume" in said
    assert "ignored with --resume: --steps" in said


@pytest.mark.slow
def test_bench_over_datasets_pools_units_and_compares(tmp_path):
    """`discover bench` on 2 datasets x 2 seeds: pooled (dataset, seed) units, scores per
    dataset, each dataset's reference, tuned baselines, and paired comparisons with an
    equivalence test and the minimum detectable effect."""

    # the configuration of tests/test_bench_resume.py: its datasets and references are built once
    out = discover("bench", "--task", "pendulum", "--setting", "clean", "--losses", "dpo,sft", "--seeds", "2",
                   "--datasets", "2", "--steps", "20", "--batch", "16", "--pairs", "100", "--segment", "20",
                   "--label-horizon", "20", "--reference-steps", "400", "--episodes", "2", "--tune", "--name", "b",
                   cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 datasets x 2 seeds" in " ".join(out.stdout.split())
    res = json.loads((tmp_path / "results" / "b" / "results.json").read_text())
    assert res["data_seeds"] == [100, 101] and len(res["units"]) == 4
    assert res["config"]["reference"]["steps"] == 400
    assert len(res["reference"]["per_dataset"]) == 2 and res["machine"]["cpu"]
    rows = {r["name"]: r for r in res["losses"]}
    assert {"dpo", "sft"} <= set(rows) and "dpo" in res["tuned"]  # dpo has a constant to tune; sft none
    from grammar import zoo

    tuned = [r for r in rows.values() if r["variant"] == "tuned"]
    moved = res["tuned"]["dpo"] != zoo.ZOO["dpo"].constants  # a tuned row only where tuning moved them
    assert [(r["base"], r["name"].startswith("dpo (tuned: ")) for r in tuned] == ([("dpo", True)] if moved else [])
    assert rows["dpo"]["base"] == "dpo" and rows["dpo"]["variant"] is None
    for r in rows.values():
        assert len(r["per_seed"]) == 4 and len(r["per_dataset"]) == 2
        assert r["reward_w"] is not None and r["train_accuracy"] >= 0
    compared = [r["vs_best_baseline"] for r in rows.values() if r.get("vs_best_baseline")]
    assert compared and all({"p", "tost_p", "mde", "margin"} <= set(c) for c in compared)


def test_python_api_runs_the_same_search(finished_run):
    """discover.run takes the command's options (underscored) and returns the run it wrote."""
    import os

    import discover

    cwd, _ = finished_run
    before = os.getcwd()
    os.chdir(cwd)
    try:
        run = discover.run(grammar="mirror.yaml", task="pendulum", population=16, generations=1, steps=40,
                           pairs=200, segment=20, episodes=2, datasets=2, reference_steps=800, name="tiny-api",
                           final_top=2)
    finally:
        os.chdir(before)
    assert run.name == "tiny-api" and (cwd / "results" / "tiny-api" / "final.json").exists()
    eqs = run.equations
    assert [e["held_out"] is not None for e in eqs[:2]] == [True, True]
    shown = discover_cli_numbers(cwd, "tiny-api")
    assert shown == [e["number"] for e in eqs][:len(shown)]


def discover_cli_numbers(cwd, name):
    out = discover("show", name, "--top", "50", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("loss ")]


def test_hall_of_fame_csv_beside_the_json(finished_run):
    import csv

    cwd, _ = finished_run
    run = cwd / "results" / "tiny"
    ranked = json.loads((run / "hall_of_fame.json").read_text())["ranked"]
    with open(run / "hall_of_fame.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["search_rank"]) for r in rows] == list(range(1, len(ranked) + 1))
    assert [float(r["fitness"]) for r in rows] == [r["fitness"] for r in ranked]
    assert [json.loads(r["constants"]) for r in rows] == [r["constants"] for r in ranked]
    assert rows[0]["derivation"] == ranked[0]["derivation"] and rows[0]["closed_form"] == ranked[0]["closed_form"]
