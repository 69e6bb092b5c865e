"""Exports built from untrusted run folders and grammars: strings are data, never code, and
the exported module computes the scored loss whatever the constants are called."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import stat

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import pair_inputs
from test_cli import assert_user_error, in_process
from evaluators import atomic
from grammar import export, export_trl, lowering
from grammar.errors import GrammarError
from grammar.expr import Scope, parse
from grammar.primitives import TERMINALS

RUN = os.path.join(os.path.dirname(__file__), "..", "results", "default-run-v3")
INJECTIONS = [
    'mirror"""\nopen("canary.txt","w").write("x")\nr"""',
    'x\\"""; open("canary.txt","w").write("x"); """',
    'x"',
    "x\\",
    "ends in a backslash and quote\\\"",
    "\x1b[2J\x1b]0;title\x07 and a \r carriage return",
]


def load(path):
    spec = importlib.util.spec_from_file_location(f"untrusted_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_copy(tmp_path):
    shutil.copytree(RUN, tmp_path / "run", ignore=shutil.ignore_patterns("*.png", "checkpoints"))
    return tmp_path


@pytest.mark.parametrize("text", INJECTIONS)
@pytest.mark.parametrize("fmt", ["jax", "torch", "trl"])
def test_text_from_a_run_folder_never_runs(run_copy, monkeypatch, text, fmt):
    monkeypatch.chdir(run_copy)  # where injected code would write its canary
    cfg_path = run_copy / "run" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["grammar_name"] = text
    cfg_path.write_text(json.dumps(cfg))
    result = in_process("export", "run", "-f", fmt, "-o", "out.py", "--results-dir", ".", cwd=run_copy)
    if any(not c.isprintable() for c in text):  # the run folder's reader refuses control characters
        assert_user_error(result, "control character")
        assert not (run_copy / "out.py").exists()
        return
    assert result.returncode == 0, result.stderr
    source = (run_copy / "out.py").read_text()
    doc = ast.get_docstring(ast.parse(source), clean=False)
    assert "grammar " in doc and "\x1b" not in doc and "\r" not in doc
    if fmt != "trl":  # importing the TRL module imports trl; its docstring check above suffices
        load(run_copy / "out.py")
    assert not (run_copy / "canary.txt").exists()


@pytest.mark.parametrize("text", INJECTIONS)
def test_title_provenance_and_parts_are_escaped(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    expr = parse("-log_sigmoid(beta * (logp_w - ref_w - logp_l + ref_l))", Scope(TERMINALS, ("beta",)))
    for fmt in ("jax", "torch"):
        src = export.export_module(expr, {"beta": 0.1}, fmt, text, text, [text], text)
        path = tmp_path / f"m_{fmt}.py"
        path.write_text(src)
        module = load(path)
        assert module.__doc__.splitlines()[0] == export.printable(text, one_line=True)
    src = export_trl.export_trl(expr, {"beta": 0.1}, text, text, [text], text)
    compile(src, "trl.py", "exec")
    assert not (tmp_path / "canary.txt").exists()


def test_check_source_refuses_anything_but_the_definitions():
    doc = "A loss.\n"
    good = '"""A loss.\n"""\nimport torch\nCONSTANTS = {"beta": 0.1}\ndef loss(x):\n    return x\n'
    export.check_source(good, doc, ["torch"], ["CONSTANTS", "loss"])
    for bad in [good + "open('canary.txt', 'w')\n", good + "import os\n", good + "X = open('f')\n",
                good + "CONSTANTS = __import__('os')\n", good.replace("A loss.", "Another"),
                good + "class Evil:\n    pass\n"]:
        with pytest.raises(GrammarError, match="refusing"):
            export.check_source(bad, doc, ["torch"], ["CONSTANTS", "loss"])


def test_a_constant_named_like_a_local_keeps_its_meaning(tmp_path):
    """Shared subexpressions are locals _s0, _s1, ...; a constant v0 or s0 is its own name."""
    scope = Scope(TERMINALS, ("v0", "s0"))
    expr = parse("softplus(-(v0 * (logp_w - ref_w - logp_l + ref_l))) + s0 * (logp_w - ref_w - logp_l + ref_l)^2"
                 " + s0 * (logp_w - ref_w - logp_l + ref_l)^2 * t", scope)
    constants = {"v0": 0.7, "s0": 0.05}
    x = pair_inputs(np.random.default_rng(1), 8)
    engine = np.asarray(lowering.lower(expr)({k: jnp.asarray(v, jnp.float32) for k, v in x.items()},
                                             {k: jnp.float32(v) for k, v in constants.items()}))
    path = tmp_path / "m.py"
    path.write_text(export.export_module(expr, constants, "jax", "t", "t"))
    module = load(path)
    out = module.loss(*[x[k] for k in ("logp_w", "logp_l", "ref_w", "ref_l")], progress=x["t"])
    np.testing.assert_allclose(np.asarray(out), engine, rtol=1e-5)


@pytest.mark.parametrize("name", ["lambda", "progress", "jnp", "torch", "_scalar", "loss", "float"])
def test_constants_that_would_shadow_a_name_are_refused(name):
    expr = parse(f"{name} * (logp_w - logp_l)", Scope(TERMINALS, (name,)))
    with pytest.raises(GrammarError, match=f"constant named '{name}'"):
        export.export_module(expr, {name: 1.0}, "jax")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "1e999", "x"])
def test_non_finite_constants_are_refused(value):
    expr = parse("beta * (logp_w - logp_l)", Scope(TERMINALS, ("beta",)))
    with pytest.raises(GrammarError, match="beta"):
        export.export_module(expr, {"beta": value}, "torch")


def test_a_non_finite_constant_in_a_run_is_one_line(run_copy):
    path = run_copy / "run" / "final.json"
    final = json.loads(path.read_text())
    for row in final["rows"]:
        if row["kind"] == "discovered":
            row["constants"] = {k: float("nan") for k in row["constants"]}
    path.write_text(json.dumps(final))
    result = in_process("export", "run", "-o", "out.py", "--results-dir", ".", cwd=run_copy)
    assert_user_error(result, "should be a finite number, not nan")  # the run reader refuses it first
    assert not (run_copy / "out.py").exists()


def test_export_to_stdout_and_bad_outputs(run_copy):
    result = in_process("export", "run", "-o", "-", "--results-dir", ".", cwd=run_copy)
    assert result.returncode == 0 and result.stdout.startswith('"""Discovered loss 1 of run run')
    assert not (run_copy / "-").exists()
    for output, message in [(".", "is a directory"), ("nowhere/x.py", "does not exist")]:
        assert_user_error(in_process("export", "run", "-o", output, "--results-dir", ".", cwd=run_copy), message)


@pytest.mark.slow
def test_show_and_export_share_one_numbering(run_copy):
    shown = in_process("show", "run", "--results-dir", ".", "--top", "20", cwd=run_copy)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    numbers = [int(line.split()[1]) for line in lines if line.startswith("loss ")]
    assert numbers == list(range(1, 21))  # every loss shown once, in order
    for n in (1, 4, 6, 20):
        exported = in_process("export", "run", "--rank", str(n), "-o", "-", "--results-dir", ".", cwd=run_copy)
        assert exported.returncode == 0 and f"Discovered loss {n} of run run" in exported.stdout
        line = next(i for i, text in enumerate(lines) if text.startswith(f"loss {n} "))
        # the formula is the first indented line under the header (which may wrap)
        closed = next(text for text in lines[line + 1:] if text.startswith("      ")).strip()
        assert closed.split(" = ", 1)[-1][:40] in exported.stdout
    assert_user_error(in_process("export", "run", "--rank", "21", "-o", "-", "--results-dir", ".", cwd=run_copy),
                      "20 numbered losses")


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(str(tmp_path / "a.txt"), "x")
        assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644
        os.umask(0o077)
        atomic.write_text(str(tmp_path / "b.txt"), "x")
        assert stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode) == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("fmt", ["jax", "torch"])
def test_literal_arithmetic_folds_to_the_scored_value(tmp_path, fmt):
    """Literals are folded in float32, as the engine computes them; a loss that folds to a
    literal still returns one value per pair."""
    scope = Scope(TERMINALS, ("beta",))
    for text in ("beta * (logp_w - logp_l) * (0 + 1) + exp(0.1) / 3", "(logp_w - logp_l) * 0 + log(3) * 2"):
        expr = parse(text, scope)
        src = export.export_module(expr, {"beta": 0.3}, fmt, "t", "t")
        path = tmp_path / f"m_{fmt}_{abs(hash(text))}.py"
        path.write_text(src)
        module = load(path)
        x = pair_inputs(np.random.default_rng(2), 4)
        engine = np.asarray(lowering.lower(expr)({k: jnp.asarray(v, jnp.float32) for k, v in x.items()},
                                                 {"beta": jnp.float32(0.3)})) * np.ones(4)
        args = [x[k].astype(np.float32) for k in ("logp_w", "logp_l", "ref_w", "ref_l")]
        if fmt == "torch":
            import torch

            out = module.loss(*[torch.tensor(a) for a in args]).numpy()
        else:
            out = np.asarray(module.loss(*args))
        assert out.shape == (4,)
        np.testing.assert_allclose(out, engine, rtol=1e-6)


def broken_copy(run_copy, edit):
    """The run folder with ``edit(final, hall_of_fame)`` applied to its JSON files."""
    final_path, hof_path = run_copy / "run" / "final.json", run_copy / "run" / "hall_of_fame.json"
    final, hof = json.loads(final_path.read_text()), json.loads(hof_path.read_text())
    edit(final, hof)
    final_path.write_text(json.dumps(final))
    hof_path.write_text(json.dumps(hof))


@pytest.mark.parametrize("case", ["huge int constant", "pareto without expression", "huge int score"])
def test_numbers_and_rows_that_would_crash_show_are_one_line(run_copy, case):
    def edit(final, hof):
        if case == "huge int constant":
            final["rows"][0]["constants"] = {"beta": 10 ** 400}
        elif case == "pareto without expression":
            del hof["pareto"][0]["expression"]
        else:
            final["rows"][0]["complexity"] = 10 ** 400

    broken_copy(run_copy, edit)
    for command in (("show", "run", "--top", "2"), ("export", "run", "-o", "-")):
        assert_user_error(in_process(*command, "--results-dir", ".", cwd=run_copy), "run/")


def numbers_shown(run_copy, *extra):
    result = in_process("show", "run", "--results-dir", ".", "--top", "20", *extra, cwd=run_copy)
    assert result.returncode == 0, result.stderr
    return [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("loss ")]


@pytest.mark.slow
def test_runs_without_keys_or_hall_of_fame_are_numbered_once(run_copy):
    from discover import run_views
    from discover.store import RunStore

    store = RunStore(str(run_copy / "run"))
    before = [e.row["expression"] for e in run_views.numbered_losses(store)]
    # the first runs wrote final rows without a key
    broken_copy(run_copy, lambda final, hof: [row.pop("key", None) for row in final["rows"]])
    assert [e.row["expression"] for e in run_views.numbered_losses(store)] == before
    assert numbers_shown(run_copy) == list(range(1, 21))
    # a finished run that lost its hall of fame: the same numbers, from the candidates
    (run_copy / "run" / "hall_of_fame.json").unlink()
    assert [e.row["expression"] for e in run_views.numbered_losses(store)][:5] == before[:5]
    assert numbers_shown(run_copy)[:5] == [1, 2, 3, 4, 5]
    # a run in progress (no final.json): numbered by search fitness, as export takes them
    (run_copy / "run" / "final.json").unlink()
    losses = run_views.numbered_losses(store)
    assert [e.basis for e in losses][:1] == ["search fitness (run in progress)"]
    fitness = [e.row["fitness"] for e in losses]
    assert fitness == sorted(fitness, reverse=True)
    exported = in_process("export", "run", "--rank", "2", "-o", "-", "--results-dir", ".", cwd=run_copy)
    assert exported.returncode == 0 and "loss 2 by search fitness (run in progress)" in exported.stdout


def test_plot_into_an_unwritable_place_is_one_line(run_copy):
    (run_copy / "afile").write_text("x")
    assert_user_error(in_process("plot", "run", "--no-shapes", "--output-dir", "afile/plots", "--results-dir", ".",
                                 cwd=run_copy), "cannot write plots")
