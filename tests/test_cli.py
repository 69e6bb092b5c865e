"""The `discover` command line: commands work; user errors are one line, exit code 2.

Commands run in-process (``cli``: ``discover.cli.main`` with its arguments, stdout and
stderr captured), so a user-error case costs milliseconds, not a new interpreter;
``discover`` (a subprocess) checks the installed entry point itself.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "COLUMNS": "200"}


def discover(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "discover", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def in_process(*args, cwd):
    """Runs ``discover ARGS`` in this process in ``cwd`` (for module-scoped fixtures, where
    ``cli`` is not available): compiled functions are shared with the other tests."""
    import contextlib
    import io

    from discover.cli import main

    out, err, before = io.StringIO(), io.StringIO(), (os.getcwd(), sys.argv, os.environ.get("COLUMNS"))
    os.environ["COLUMNS"] = "200"
    try:
        os.chdir(cwd)
        sys.argv = ["discover", *map(str, args)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(before[0])
        sys.argv = before[1]
        if before[2] is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before[2]
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(tmp_path):
    """Runs ``discover ARGS`` in this process, in ``tmp_path`` unless ``cwd`` is given."""
    return lambda *args, cwd=None: in_process(*args, cwd=cwd or tmp_path)


def assert_user_error(result, fragment):
    assert result.returncode == 2, result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_entry_point_and_every_help():
    out = discover("--help")
    assert out.returncode == 0, out.stderr
    for cmd in ("zoo", "expr", "export", "grammar", "run", "show", "plot", "bench", "data"):
        assert cmd in out.stdout


HELP_WITHOUT_JAX = """
import sys
from discover.cli import main
sys.argv = ["discover", *sys.argv[1:], "--help"]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print("jax imported" if "jax" in sys.modules else "jax not imported")
"""


@pytest.mark.parametrize("command", [(), ("run",), ("bench",)])
def test_help_answers_without_importing_jax(command):
    """--help, with every evaluator option of run and bench, reads the configurations of the
    evaluators, never the evaluators themselves: JAX (seconds to import) is not imported."""
    out = subprocess.run([sys.executable, "-c", HELP_WITHOUT_JAX, *command], capture_output=True, text=True,
                         env=ENV, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
    assert out.stdout.splitlines()[-1] == "jax not imported"


@pytest.mark.parametrize("command", [("zoo",), ("expr",), ("export",), ("grammar", "check"), ("run",),
                                     ("show",), ("plot",), ("bench",), ("report",), ("data", "build"),
                                     ("data", "policies")])
def test_help_of_each_command(cli, command):
    out = cli(*command, "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout


def test_zoo_table(cli):
    out = cli("zoo")
    assert out.returncode == 0
    assert "discopop" in out.stdout and "log_sigmoid" in out.stdout


def test_expr_with_leading_minus(cli):
    out = cli("expr", "-log_sigmoid(beta*(r_w - r_l))")
    assert out.returncode == 0, out.stderr
    assert "same canonical form as dpo" in out.stdout
    assert "g(z) = softplus(-z)" in out.stdout  # its parts, as mirror.yaml derives it
    assert "\\log\\sigma" in out.stdout


def test_grammar_check(cli):
    out = cli("grammar", "check", "mirror.yaml", "--depth", "1")
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout and "distinct canonical losses" in out.stdout


def test_export_zoo(cli, tmp_path):
    target = tmp_path / "dpo_loss.py"
    out = cli("export", "--zoo", "dpo", "--format", "torch", "--output", str(target))
    assert out.returncode == 0, out.stderr
    text = target.read_text()
    assert "def loss(" in text
    # the docstring names the loss's parts in the grammar's terms
    assert "Parts (in the grammar's terms)" in text and "g(z) = softplus(-z)" in text


@pytest.mark.parametrize("args,fragment", [
    (("expr", "softplus("), "unexpected end"),
    (("expr", ""), "empty expression"),
    (("grammar", "check", "no_such_grammar.yaml"), "grammar file not found"),
    (("export", "--zoo", "nope", "--output", "x.py"), "unknown zoo loss 'nope'"),
    (("export", "--zoo", "dpo", "--format", "onnx", "--output", "x.py"), "--format takes jax, torch, trl"),
    (("export", "--zoo", "dpo", "--rank", "3", "--output", "x.py"), "a zoo loss is named by --zoo alone"),
    (("run", "--grammar", "mirror.yaml", "--time-limit", "0.01"), "shorter than one generation"),
    (("run", "--grammar", "mirror.yaml", "--task", "humanoid_football"), "unknown task 'humanoid_football'"),
    (("run", "--grammar", "mirror.yaml", "--setting", "weird"), "unknown setting 'weird'"),
    (("run", "--grammar", "mirror.yaml", "--eps", "0.7"), "eps must be in [0, 0.5]"),
    (("run", "--grammar", "mirror.yaml", "--steps", "0"), "training steps must be at least 1"),
    (("run", "--grammar", "mirror.yaml", "--reference-steps", "0"), "--reference-steps must be at least 1"),
    (("bench", "--task", "lm", "--reference-steps", "-5"), "--reference-steps must be at least 1"),
    (("run", "--grammar", "nonexistent.yaml"), "grammar file not found"),
    (("run",), "give --grammar FILE"),
    (("run", "--resume", "no-such-run"), "no run named 'no-such-run'"),
    (("show", "no-such-run"), "no run named 'no-such-run'"),
    (("export", "no-such-run", "--output", "x.py"), "no run named 'no-such-run'"),
    (("bench", "--losses", "dpo,magic"), "unknown zoo loss 'magic'"),
    (("bench", "--seeds", "0"), "--seeds must be at least 1"),
    (("bench", "--losses", "dpo@gamma=1"), "dpo has no constant 'gamma'"),
    (("bench", "--losses", "dpo@beta=lots"), "beta needs a number"),
    (("bench", "--losses", "ipo@beta=1e9"), "beta must be in ["),
    (("bench", "--losses", "dpo@beta=1@beta=2"), "beta is given twice"),
    (("bench", "--losses", "dpo@beta=1,dpo@beta=1.0"), "names dpo (beta=1) twice"),
    (("bench", "--backend", "gpu-please"), "unknown backend 'gpu-please'"),
    (("run", "--grammar", "mirror.yaml", "--population", "1"), "population must be at least 2"),
    (("run", "--grammar", "mirror.yaml", "--episodes", "0"), "evaluation episodes must be at least 1"),
    (("run", "--grammar", "mirror.yaml", "--es", "pso"), "unknown constant search 'pso'"),
    (("run", "--grammar", "mirror.yaml", "--reevaluate", "40"), "--population 32 leaves no room for new structures"),
    (("data", "build", "--task", "pendulum", "--eps", "0.51", "--setting", "noisy"), "eps must be in [0, 0.5]"),
    (("data", "build", "--task", "pendulum", "--reference-steps", "0"), "--reference-steps must be at least 1"),
    (("run", "--grammar", "mirror.yaml", "--task", "lm", "--segment", "10"), "--segment does not apply to --task lm"),
    (("bench", "--task", "lm", "--episodes", "4", "--backend", "mjx"), "--backend, --episodes do not apply"),
    # typer's own usage errors, one line too, naming the command's help
    (("show",), "Missing argument 'run'. (see discover show --help)"),
    (("show", "x", "--top", "many"), "Invalid value for '--top'"),
    (("show", "x", "--nope"), "No such option: --nope"),
    (("frobnicate",), "No such command 'frobnicate'. (see discover --help)"),
])
def test_user_errors(cli, tmp_path, args, fragment):
    assert_user_error(cli(*args), fragment)
    # Rejected before any work: no run directory, no dataset built.
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_bad_grammar_file_names_file_and_line(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: Loss\nnonterminals:\n  Loss:\n    productions:\n      - \"frob(logp_w)\"\n")
    assert_user_error(cli("grammar", "check", str(bad)), "bad.yaml:5:")


def test_python_m_discover_reports_user_errors(tmp_path):
    assert_user_error(discover("run", "--grammar", "mirror.yaml", "--task", "nope", cwd=tmp_path), "unknown task")


def test_static_ablations_freeze_training_progress():
    from discover.bench import static_ablations
    from grammar.losses import Loss
    from grammar import lowering
    from grammar.expr import Scope, parse
    from grammar.primitives import TERMINALS

    expr = parse("(1 - t) * (-logp_w / len_w) + t * softplus(-beta * (logp_w - logp_l))",
                 Scope(terminals=TERMINALS, constants=("beta",)))
    static = parse("softplus(-beta * (logp_w - logp_l))", Scope(terminals=TERMINALS, constants=("beta",)))
    entries = [Loss("run#1", expr, {"beta": 0.5}, "discovered"), Loss("dpo", static, {"beta": 0.1}, "zoo")]
    out = static_ablations(entries)
    assert [e.name for e in out] == ["run#1 @ t=0", "run#1 @ t=1"]
    assert [(e.base, e.variant) for e in out] == [("run#1", "t=0"), ("run#1", "t=1")]
    assert all("t" not in e.expr.terminals for e in out)
    assert static_ablations(out) == []  # nothing left to freeze
    import numpy as np

    x = {"logp_w": np.array([-3.0, -1.0]), "logp_l": np.array([-2.0, -4.0]), "ref_w": np.zeros(2),
         "ref_l": np.zeros(2), "len_w": np.array([5.0, 5.0]), "len_l": np.array([5.0, 5.0])}
    late = lowering.lower(out[1].expr)
    want = lowering.lower(static)
    np.testing.assert_allclose(late(dict(x, t=0.3), {"beta": 0.5}), want(dict(x, t=0.3), {"beta": 0.5}), rtol=1e-6)


@pytest.mark.parametrize("args,fragment", [
    (("run", "--grammar", "mirror.yaml", "--ray", "head node:6379"), "bad Ray address"),
    (("bench", "--ray", "127.0.0.1:9"), "cannot reach a Ray cluster at '127.0.0.1:9'"),
    (("run", "--grammar", "mirror.yaml", "--ray-actors", "2"), "--ray-actors needs --ray"),
    # the options are checked before the cluster is looked for
    (("run", "--grammar", "mirror.yaml", "--reference-steps", "0", "--ray", "127.0.0.1:9"),
     "--reference-steps must be at least 1"),
    (("bench", "--steps", "0", "--ray", "127.0.0.1:9"), "training steps must be at least 1"),
])
def test_bad_ray_options_are_one_line_errors_before_any_work(cli, tmp_path, args, fragment):
    pytest.importorskip("ray")
    assert_user_error(cli(*args), fragment)
    assert not (tmp_path / "results").exists()


def test_zoo_losses_at_other_constants():
    from discover import bench

    dpo, calibrated = bench.zoo_entries(["dpo", "dpo@beta=1"])
    assert dpo.constants == {"beta": 0.1} and calibrated.constants == {"beta": 1.0}
    assert calibrated.name == "dpo (beta=1)" and str(calibrated.expr) == str(dpo.expr)


RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")


# One committed run of each on-disk generation (showing one costs ~3 s of sympy): before
# elite re-evaluation (no per-row seed counts), v1, v2 (3 datasets), successive halving,
# the token task.
@pytest.mark.slow
@pytest.mark.parametrize("run", ["hopper-noisy02-noreeval", "hopper-mixed", "v2-hopper-mixed", "default-run-v3",
                                 "v2-lm-mixed"])
def test_committed_runs_of_every_schema_still_show(cli, run):
    out = cli("show", run, "--results-dir", RESULTS)
    assert out.returncode == 0, out.stderr[-2000:]
    said = " ".join(out.stdout.split())
    assert "held-out scores" in said
    assert ("evaluator lm, setting mixed" if run == "v2-lm-mixed" else "task hopper, setting") in said


def test_show_refuses_what_is_not_a_run_and_a_top_below_one(cli, tmp_path):
    assert_user_error(cli("show", str(tmp_path), "--results-dir", RESULTS), "is a folder but not a run folder")
    out = cli("show", "hopper-mixed", "--top", "0", "--results-dir", RESULTS)
    assert out.returncode == 2 and "--top" in out.stderr


def test_written_paths_are_shown_as_given_outside_the_working_directory(tmp_path, monkeypatch):
    from discover.run_views import shown_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    assert shown_path(str(tmp_path / "here" / "a.png")) == os.path.join("here", "a.png")
    assert shown_path("/elsewhere/a.png") == "/elsewhere/a.png"


def test_cache_dir_is_the_users_unless_set(monkeypatch):
    import platformdirs

    from evaluators.cache import cache_dir

    monkeypatch.setenv("MPO_DISCOVER_CACHE", "/somewhere/else")
    assert cache_dir() == "/somewhere/else"
    monkeypatch.delenv("MPO_DISCOVER_CACHE")
    assert cache_dir() == platformdirs.user_cache_dir("mpo-discover", appauthor=False)


def test_hall_of_fame_csv_quotes_formulas_and_keeps_constants_as_json():
    import csv
    import io
    import json

    from discover.commands_search import hall_of_fame_csv

    hof = {"ranked": [{"fitness": 80.5, "spread": 2.0, "complexity": 9, "closed_form": "softplus(-beta*(a, b))",
                       "derivation": "mpo(Link=logistic, Psi=nll)", "constants": {"beta": 0.1}},
                      {"fitness": 70.0, "spread": None, "complexity": 5, "closed_form": "x", "derivation": "",
                       "constants": {}}]}
    rows = list(csv.DictReader(io.StringIO(hall_of_fame_csv(hof))))
    assert [r["search_rank"] for r in rows] == ["1", "2"]
    assert rows[0]["closed_form"] == "softplus(-beta*(a, b))" and rows[0]["derivation"].startswith("mpo(")
    assert json.loads(rows[0]["constants"]) == {"beta": 0.1} and rows[1]["spread"] == ""


@pytest.mark.parametrize("args,fragment", [
    # a batch larger than the dataset
    (("run", "--grammar", "mirror.yaml", "--batch", "3000", "--pairs", "2000"),
     "--batch 3000 is larger than the dataset (--pairs 2000)"),
    (("bench", "--batch", "300", "--pairs", "200"), "--batch 300 is larger than the dataset (--pairs 200)"),
    # options that the setting ignores
    (("run", "--grammar", "mirror.yaml", "--setting", "clean", "--eps", "0.2"), "--eps applies to --setting noisy"),
    (("run", "--grammar", "mirror.yaml", "--setting", "shuffled", "--eps", "0.2"), "--eps applies to --setting noisy"),
    (("bench", "--setting", "mixed", "--eps", "0.1"), "--eps applies to --setting noisy"),
    (("data", "build", "--task", "pendulum", "--setting", "clean", "--eps", "0.1"), "--eps applies to --setting noisy"),
    # fixed sets of values: one line naming the option and its values
    (("bench", "--task", "nosuch"), "unknown task 'nosuch'; --task takes"),
    (("run", "--grammar", "mirror.yaml", "--labels", "oracle"), "unknown labels 'oracle'; --labels takes expert, policy"),
    (("run", "--grammar", "mirror.yaml", "--es", "pso"), "--es takes snes, cma_es, open_es"),
    (("data", "build", "--task", "lm"), "unknown task 'lm'; --task takes"),
    # config errors name the command-line options
    (("run", "--grammar", "mirror.yaml", "--population", "10"),
     "--population 10 leaves no room for new structures: the constant search takes 8 candidates and --reevaluate 6"),
    (("run", "--grammar", "mirror.yaml", "--max-seeds", "1"), "--max-seeds must be at least"),
    (("run", "--grammar", "mirror.yaml", "--generations", "0"), "--generations must be at least 1"),
    (("run", "--grammar", "mirror.yaml", "--batch", "0"), "--batch must be at least 1"),
    (("run", "--grammar", "mirror.yaml", "--lr", "0"), "--lr must be positive"),
    (("run", "--grammar", "mirror.yaml", "--segment", "30", "--label-horizon", "20"),
     "--label-horizon (20) must be at least --segment (30)"),
    # a search's own datasets never include the tuning or default held-out ones
    (("run", "--grammar", "mirror.yaml", "--data-seed", "49"), "uses data seeds 50, 51, kept for tuning and held-out"),
    (("run", "--grammar", "mirror.yaml", "--data-seed", "118", "--datasets", "3"), "uses data seeds 118, 119, kept"),
    (("run", "--grammar", "mirror.yaml", "--data-seed", "-1"), "--data-seed must be at least 0"),
    (("run", "--grammar", "mirror.yaml", "--data-seed", "418"), "uses data seeds 418, 419, kept"),
    (("run", "--grammar", "mirror.yaml", "--data-seed", "303"), "uses data seeds 303, 304, kept"),
    (("bench", "--data-seed", "49"), "dataset seeds 49-53 include the search's (0-2) or the tuning's (50-52)"),
    (("run", "--grammar", "mirror.yaml", "--task", "lm", "--language", "klingon"), "--language takes reverse, sum"),
    (("run", "--grammar", "mirror.yaml", "--task", "hopper", "--language", "sum"),
     "--language does not apply to --task hopper (an option of the lm evaluator)"),
    (("bench", "--task", "lm", "--prompts", "0"), "--prompts must be at least 1, got 0"),
    (("bench", "--losses", ""), "nothing to bench: --losses \"\" names no zoo loss and no --include names a run"),
])
def test_requests_that_cannot_run_are_refused_before_any_work(cli, tmp_path, args, fragment):
    assert_user_error(cli(*args), fragment)
    assert not (tmp_path / "results").exists()


def test_unknown_task_lists_every_task_of_every_evaluator(cli):
    from evaluators import registry
    from evaluators.mujoco.tasks import TASK_MODULES

    for command in (("run", "--grammar", "mirror.yaml"), ("bench",)):
        out = cli(*command, "--task", "nosuch")
        assert_user_error(out, "unknown task 'nosuch'")
        listed = out.stderr.split("--task takes", 1)[1]
        for task in (*TASK_MODULES, "lm"):
            assert task in listed, task
    assert registry.tasks()["lm"] == "lm" and registry.tasks()["hopper"] == "mujoco"


def test_options_not_typed_take_the_defaults_of_the_tasks_own_evaluator(cli):
    from discover.app import EvaluatorRequest
    from evaluators.lm import LmConfig
    from evaluators.mujoco import MujocoConfig

    lm = EvaluatorRequest("lm", {"steps": 7}).config()
    assert lm == LmConfig().with_options(task="lm", steps=7) and lm.option("reference_steps") == 400
    hopper = EvaluatorRequest("hopper", {}).config()
    assert hopper == MujocoConfig() and hopper.option("reference_steps") == 3000
    said = " ".join(cli("run", "--help").stdout.split())
    assert "3000 for mujoco, 400 for lm" in said and "25 for mujoco" in said  # --reference-steps, --segment


def test_run_and_bench_help_group_options_in_panels_with_choices(cli):
    for command, panels in ((("run",), ("Search", "Data", "Training and scoring", "Output", "Cluster")),
                            (("bench",), ("Losses and seeds", "Data", "Training and scoring", "Output", "Cluster"))):
        out = cli(*command, "--help")
        assert out.returncode == 0, out.stderr
        for panel in panels:
            assert f"─ {panel} ─" in out.stdout, (command, panel)
        assert "<expert|policy>" in out.stdout and "<auto|native|mjx>" in out.stdout
        assert "clean, noisy, mixed or shuffled" in out.stdout


def test_shell_completion_is_offered_and_completes_choices(cli, monkeypatch, capsys):
    import typer

    from discover.cli import app

    out = cli("--help")
    assert out.returncode == 0 and "--install-completion" in out.stdout
    for name, value in (("_DISCOVER_COMPLETE", "complete_bash"), ("COMP_WORDS", "discover run --setting "),
                        ("COMP_CWORD", "3")):
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit):
        typer.main.get_command(app).main([], prog_name="discover")
    assert capsys.readouterr().out.split() == ["clean", "noisy", "mixed", "shuffled"]


def test_command_list_and_help_read_at_80_columns():
    """The command list shows one summary per command, not a docstring cut at its line
    breaks; option values are not broken inside a word."""
    listing = subprocess.run([sys.executable, "-m", "discover", "--help"], capture_output=True, text=True,
                             env={**ENV, "COLUMNS": "80"}, timeout=300).stdout
    rows = [line for line in listing.splitlines() if line.startswith("│ bench") or line.startswith("│ plot")]
    assert len(rows) == 2
    for row in rows:
        following = listing.splitlines()[listing.splitlines().index(row) + 1]
        assert following.rstrip(" │").strip().endswith("."), following  # the summary ends on its second line


def test_zoo_wraps_formulas_at_80_columns_and_never_cuts_them(cli, monkeypatch):
    from discover.app import console
    from grammar import symbolic, zoo

    monkeypatch.setattr(console, "_width", 80)
    out = cli("zoo")
    assert out.returncode == 0, out.stderr
    assert max(len(line.rstrip()) for line in out.stdout.splitlines()) <= 80
    flat = "".join(out.stdout.split())
    for name, z in zoo.ZOO.items():
        assert "".join(symbolic.text(z.expr).split()) in flat, name


def test_the_time_left_in_a_run_includes_its_final_re_scoring():
    import types

    from discover.commands_search import final_seconds, seconds_left
    from discover.search import SearchConfig
    from grammar import zoo

    cfg = SearchConfig(generations=4, final_top=5)
    timed = [{"seconds": 60.0, "runs": 64, "train_s": 30.0, "score_s": 2.0},
             {"seconds": 120.0, "runs": 64, "train_s": 30.0, "score_s": 2.0}]
    search = types.SimpleNamespace(config=cfg, history=timed)
    final = final_seconds(search)  # the held-out runs at the pace of the generations' runs, and the curves
    assert final == pytest.approx(0.5 * (5 + len(zoo.ZOO)) * len(cfg.holdout_seeds) + 30)
    assert seconds_left(search, 2) == pytest.approx(2 * 90.0 + final)
    assert seconds_left(search, 4) == pytest.approx(final)  # after the last generation: the re-scoring is left
    assert seconds_left(types.SimpleNamespace(config=cfg, history=[]), 0) is None
    untimed = types.SimpleNamespace(config=cfg, history=[{"seconds": 64.0}])  # a run from before runs were kept
    assert final_seconds(untimed) == pytest.approx(64.0 / cfg.runs_per_generation() * (5 + len(zoo.ZOO))
                                                   * len(cfg.holdout_seeds) + 30)


def test_bench_progress_is_plain_lines_off_a_terminal(capsys):
    import numpy as np

    from discover.bench import _best_so_far
    from discover.commands_bench import BenchProgress
    from grammar import zoo

    entries = [zoo.ZOO["dpo"].loss(), zoo.ZOO["ipo"].loss()]
    assert _best_so_far(entries, np.array([[50.0, np.nan], [60.0, 70.0]]), [None, None]) == "ipo 65.0"
    assert _best_so_far(entries, np.array([[50.0, 52.0], [60.0, 70.0]]), [None, "non-finite loss"]) == "dpo 51.0"
    assert _best_so_far(entries, np.full((2, 2), np.nan), [None, None]) is None
    with BenchProgress() as progress:
        progress.log("dataset 1/2 (data seed 100): training ...")
        progress(stage="datasets", done=0, total=2, runs=0, runs_left=40, best=None)
        progress(stage="datasets", done=1, total=2, runs=40, runs_left=40, best="dpo 51.0")
    out = capsys.readouterr().out
    assert "dataset 1/2 (data seed 100): training ..." in out
    lines = [line for line in out.splitlines() if line.startswith("bench:")]
    assert len(lines) == 1 and "datasets 1/2" in lines[0] and "ETA 0:00:0" in lines[0] and "best dpo 51.0" in lines[0]


def test_dataset_bar_counts_datasets_and_leaves_cached_ones_out_of_its_pace(monkeypatch):
    import io

    from rich.console import Console

    from discover import progress as progress_mod

    now = [1000.0]
    monkeypatch.setattr(progress_mod.time, "time", lambda: now[0])
    updates = []
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with progress_mod.DataBar(console, "preparing datasets", 3) as bar:
        monkeypatch.setattr(bar, "update", lambda *a, **k: updates.append((a, k)))
        bar(0.0, 3, "dataset 1/3: prompt states")
        now[0] += 0.2
        bar(1.0, 3, "dataset 2/3: prompt states")  # the first was cached: 0.2 s
        now[0] += 30.0
        bar(1.5, 3, "dataset 2/3: continuations 60%")  # 30 s for half a built dataset
        now[0] += 30.0
        bar(2.0, 3, "dataset 3/3: prompt states")
        bar(3.0, 3, "ready")
    assert updates[0][0] == (0.0,) and updates[0][1]["count"] == "0/3" and updates[0][1]["seconds_left"] is None
    assert updates[2][1]["phase"] == "dataset 2/3: continuations 60%" and updates[2][1]["count"] == "1/3"
    assert updates[2][1]["seconds_left"] == pytest.approx(90.0)  # 1.5 datasets left at 60 s each
    assert updates[3][1]["seconds_left"] == pytest.approx(60.0)
    assert updates[-1][1]["seconds_left"] is None and updates[-1][1]["count"] == "3/3"


def test_a_bench_refuses_the_datasets_an_included_run_searched_on(cli, tmp_path, monkeypatch):
    """A discovered loss is compared on data its search never saw, and its effective form is
    measured on the first dataset it searched on."""
    import json
    import shutil

    import evaluators.interface
    from discover.commands_bench import _search_data_inputs
    from evaluators import registry
    from grammar import zoo
    from grammar.losses import Loss

    run = tmp_path / "results" / "study-run"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "results", "default-run-v4"), run)
    config = json.loads((run / "config.json").read_text())
    config["experiment"]["data_seeds"] = [103, 104, 105]
    (run / "config.json").write_text(json.dumps(config))
    out = cli("bench", "--task", "hopper", "--setting", "noisy", "--include", "study-run:1", "--datasets", "4")
    assert_user_error(out, "the bench's datasets include study-run#1's search datasets (data seeds 103)")
    assert sorted(os.listdir(tmp_path / "results")) == ["study-run"]

    seen = []

    class Probe:  # records the datasets of each evaluator the effective forms are measured with
        def __init__(self, cfg, log=None):
            seen.append(cfg.seeds_of_data)

    monkeypatch.setattr(registry, "get", lambda name: Probe)
    monkeypatch.setattr(evaluators.interface, "effective_inputs", lambda ev, exprs, consts: [len(seen)] * len(exprs))
    dpo = zoo.ZOO["dpo"]
    entries = [Loss(name, dpo.expr, dpo.constants, "discovered") for name in ("a#1", "b#1", "c#1")]
    cfg = registry.config_class("mujoco")().with_data_seeds([7, 8])
    searched = {"a#1": (600, 601), "b#1": (603,), "c#1": (600, 601)}
    assert _search_data_inputs(cfg, entries, searched) == [1, 2, 1]
    assert seen == [(600,), (603,)]  # naming one data seed trains on that dataset alone


def test_a_search_trains_on_the_datasets_its_data_seed_names():
    """Independent searches of one setting on their own data: --data-seed picks the first."""
    from discover.app import SEARCH, EvaluatorRequest
    from discover.commands_search import _validated

    options = dict(population=SEARCH.population, generations=1, seed=3, es=SEARCH.es, reevaluate=SEARCH.reevaluate,
                   halving=SEARCH.halving, max_seeds=SEARCH.max_seeds, final_top=SEARCH.final_top,
                   time_limit_min=None)
    _, _, _, cfg = _validated("mirror.yaml", EvaluatorRequest("hopper", {}), options, 3, 600)
    assert cfg.seeds_of_data == (600, 601, 602)
    _, _, _, cfg = _validated("mirror.yaml", EvaluatorRequest("hopper", {}), options, 3)
    assert cfg.seeds_of_data == (0, 1, 2)  # the default: the search's own namespace
