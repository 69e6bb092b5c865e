"""Untrusted run folders: every reader answers a corrupt file in one line naming it.

A run folder may come from anywhere (a colleague, an archive, a hand edit), so each file is
checked where it is read for the fields its readers use. Each probe copies a small
committed run into ``tmp_path``, breaks one thing, and runs a command in-process: exit
code 2, one line, no traceback. The store's readers are fuzzed with JSON values put in
place of fields of real files.
"""

from __future__ import annotations

import copy
import json
import pathlib
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discover import plots
from discover.errors import RunError, for_markup
from discover.store import MAX_RUN_NAME, RunStore
from test_cli import assert_user_error, in_process

RUN = pathlib.Path(__file__).resolve().parent.parent / "results" / "default-run-v3"


def copy_run(results: pathlib.Path, name: str = "run") -> pathlib.Path:
    """The committed run's JSON and grammar files (no plots) under ``results/name``."""
    dest = results / name
    shutil.copytree(RUN, dest, ignore=shutil.ignore_patterns("*.png", "console.txt"))
    return dest


@pytest.fixture
def run(tmp_path) -> pathlib.Path:
    return copy_run(tmp_path / "results")


@pytest.fixture
def cli(tmp_path):
    return lambda *args: in_process(*args, cwd=tmp_path)


def edit(path: pathlib.Path, change) -> None:
    """Rewrites a JSON file as ``change(document)``."""
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def put(doc, *path_and_value):
    """``doc`` with the value at a key path replaced: ``put(doc, "rows", 0, "name", "x")``."""
    *path, value = path_and_value
    return _replaced(doc, tuple(path), value)


def drop(doc, *path):
    """``doc`` without the key at the end of ``path``."""
    doc = copy.deepcopy(doc)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    del parent[path[-1]]
    return doc


COMMANDS = {
    "show": ("show", "run"),
    "export": ("export", "run", "-o", "loss.py"),
    # --seeds 0 would stop a bench that got past reading the run
    "bench": ("bench", "--losses", "dpo", "--include", "run:1", "--seeds", "0"),
}
BENCH_PROBES = ("a list", "a text fitness", "an unparsable expression")

FINAL_PROBES = {
    "a list": (lambda f: [1, 2, 3], "the file should be an object, not a list"),
    "no rows": (lambda f: drop(f, "rows"), "rows is missing"),
    "a row without a name": (lambda f: drop(f, "rows", 0, "name"), "rows[0].name is missing"),
    "a text fitness": (lambda f: put(f, "rows", 0, "heldout_mean", "high"), "rows[0].fitness should be a number"),
    "a bool fitness": (lambda f: put(f, "rows", 0, "heldout_mean", True), "rows[0].fitness should be a number"),
    "a list of constants": (lambda f: put(f, "rows", 0, "constants", [1]), "rows[0].constants should be an object"),
    "a markup constant": (lambda f: put(f, "rows", 0, "constants", {"[/]": 1}), "is not an identifier"),
    "a text reference": (lambda f: put(f, "reference", "mean", "x"), "reference.mean should be a number"),
    "a fitness without spread": (lambda f: put(f, "rows", 0, "heldout_std", None), "rows[0].spread is missing"),
    "an unknown kind": (lambda f: put(f, "rows", 0, "kind", "alien"), "rows[0].kind should be 'zoo' or"),
    "an escape sequence": (lambda f: put(f, "rows", 0, "name", "\x1b[2J"), "control character '\\x1b'"),
    "an unparsable expression": (lambda f: put(f, "rows", 0, "expression", "logp_w +"), "rows[0].expression:"),
    "a deep expression": (lambda f: put(f, "rows", 0, "expression", "(" * 300 + "logp_w" + ")" * 300),
                          "nested too deeply"),
    "ragged training curves": (lambda f: put(f, "training_curves", "curves", next(iter(f["training_curves"]["curves"])),
                                             [[1.0]]), "one per step"),
}


@pytest.mark.parametrize("command, probe", [(c, p) for c in sorted(COMMANDS) for p in sorted(FINAL_PROBES)
                                            if c != "bench" or p in BENCH_PROBES])
def test_corrupt_final_json_is_one_line(run, cli, command, probe):
    change, fragment = FINAL_PROBES[probe]
    edit(run / "final.json", change)
    out = cli(*COMMANDS[command])
    assert_user_error(out, "final.json")
    assert fragment in out.stderr
    assert "\x1b" not in out.stderr


@pytest.mark.parametrize("command", ["show", "export"])
@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"rows": ' + "1" * 5000 + "}", "{", "\xff"])
def test_unreadable_final_json_is_one_line(run, cli, command, text):
    (run / "final.json").write_bytes(text.encode("latin-1"))
    assert_user_error(cli(*COMMANDS[command]), "is corrupt: results/run/final.json")


CONFIG_PROBES = {
    "text": (lambda c: "x", "the file should be an object, not text"),
    "no search": (lambda c: drop(c, "search"), "search is missing"),
    "a text population": (lambda c: put(c, "search", "population", "32"), "search.population should be an integer"),
    "a list grammar name": (lambda c: put(c, "grammar_name", ["mirror"]), "grammar_name should be text"),
    "a number task": (lambda c: put(c, "experiment", "dataset", "task", 3), "experiment.dataset.task should be text"),
    "an escape sequence": (lambda c: put(c, "grammar_name", "mirror\x1b]0;owned\x07"), "control character"),
}


@pytest.mark.parametrize("command", ["show", "export"])
@pytest.mark.parametrize("probe", sorted(CONFIG_PROBES))
def test_corrupt_config_json_is_one_line(run, cli, command, probe):
    change, fragment = CONFIG_PROBES[probe]
    edit(run / "config.json", change)
    out = cli(*COMMANDS[command])
    assert_user_error(out, "config.json")
    assert fragment in out.stderr


HALL_PROBES = {
    "an object of ranks": (lambda h: put(h, "ranked", {"1": {}}), "ranked should be a list"),
    "a text fitness": (lambda h: put(h, "ranked", 0, "fitness", "high"), "ranked[0].fitness should be a number"),
    "no spread": (lambda h: drop(h, "ranked", 0, "spread"), "ranked[0].spread is missing"),
    "a pareto of numbers": (lambda h: put(h, "pareto", [1]), "pareto[0] should be an object"),
    "an unparsable expression": (lambda h: put(h, "ranked", 0, "expression", "exp("), "ranked[0].expression:"),
}


@pytest.mark.parametrize("probe", sorted(HALL_PROBES))
def test_corrupt_hall_of_fame_is_one_line(run, cli, probe):
    change, fragment = HALL_PROBES[probe]
    edit(run / "hall_of_fame.json", change)
    out = cli("show", "run")
    assert_user_error(out, "hall_of_fame.json")
    assert fragment in out.stderr


@pytest.mark.parametrize("line, fragment", [
    ("[1, 2, 3]", "the file should be an object"),
    (json.dumps({**json.loads((RUN / "candidates.jsonl").read_text().splitlines()[0]), "generation": "0"}),
     "generation should be an integer"),
    ("[" * 100_000, "corrupt at line 2"),
])
@pytest.mark.parametrize("command", [("plot", "run", "--no-shapes"), ("show", "run"), ("export", "run", "-o", "x.py")])
def test_corrupt_candidates_are_one_line(run, cli, line, fragment, command):
    # an unfinished run: its views read the candidate log
    (run / "final.json").unlink()
    (run / "hall_of_fame.json").unlink()
    lines = (run / "candidates.jsonl").read_text().splitlines()
    (run / "candidates.jsonl").write_text("\n".join([lines[0], line] + lines[1:]) + "\n")
    out = cli(*command)
    assert_user_error(out, "candidate log is corrupt at line 2")
    assert fragment in out.stderr


def test_corrupt_checkpoint_is_one_line(run, cli):
    checkpoints = sorted((run / "checkpoints").glob("gen-*.json"))
    edit(checkpoints[-1], lambda s: put(s, "history", 0, "median", "x"))
    assert_user_error(cli("plot", "run", "--no-shapes"), "checkpoint is corrupt")


@pytest.mark.parametrize("name", ["x[red]y", "[bold]run", "run$x$", "run\x1b[2J", "r" * (MAX_RUN_NAME + 1)])
@pytest.mark.parametrize("command", [("show",), ("plot", "--no-shapes"), ("export", "-o", "x.py")])
def test_unusual_run_folder_names_are_one_line(tmp_path, cli, name, command):
    copy_run(tmp_path / "results", name)
    out = cli(command[0], name, *command[1:])
    assert_user_error(out, "bad run folder")
    assert "\x1b" not in out.stderr


def test_a_300_character_run_name_is_one_line(cli):
    out = cli("run", "--grammar", "mirror.yaml", "--name", "r" * 300)
    assert_user_error(out, f"is longer than {MAX_RUN_NAME} characters")


def test_an_unknown_long_run_name_is_one_short_line(run, cli):
    out = cli("show", "x" * 300 + "\x1b[2J")
    assert_user_error(out, "no run named")
    assert len(out.stderr) < 400 and "\x1b" not in out.stderr


def test_the_committed_run_still_reads(run, cli):
    store = RunStore.open("run", str(run.parent))
    assert store.config()["grammar_name"] == "mirror"
    assert len(store.final()["rows"]) == 21
    assert len(store.hall_of_fame()["ranked"]) == 20
    assert store.candidates() and store.latest_checkpoint()["generation"] == 9
    out = cli("plot", "run", "--no-shapes")
    assert out.returncode == 0, out.stderr


def test_every_finished_committed_run_reads():
    for final in sorted(RUN.parent.glob("*/final.json")):
        store = RunStore.open(str(final.parent))
        store.config(), store.final(), store.hall_of_fame(), store.latest_checkpoint()
        assert store.candidates()


@pytest.mark.parametrize("change, fragment", [
    (lambda c: put(c, "experiment", "dataset", "bogus", 1), "unexpected keyword argument 'bogus'"),
    (lambda c: drop(c, "experiment", "train"), "experiment: 'train'"),
])
def test_an_evaluator_configuration_that_does_not_build_is_one_run_error(run, change, fragment):
    store = RunStore.open(str(run))
    assert store.evaluator_config()[0] == "mujoco"
    edit(run / "config.json", change)
    with pytest.raises(RunError, match="run configuration is corrupt") as err:
        store.evaluator_config()
    assert fragment in str(err.value)


def test_plot_titles_with_dollars_draw(tmp_path):
    path = plots.fitness_over_generations([1, 2], [3.0, 4.0], [2.0, 3.0], str(tmp_path / "f.png"), "run $x$ $ \\frac")
    assert pathlib.Path(path).stat().st_size > 0
    plots.bench_bars(["a$b", "$x$"], [1.0, 2.0], [0.1, 0.2], 0.5, "$", str(tmp_path / "b.png"), label="$BC")


def test_for_markup_escapes_control_characters_and_markup():
    assert for_markup("a\x1b]0;x\x07b\u202e\r") == "a\\x1b]0;x\\x07b\\u202e\\r"
    assert for_markup("[/] [bold]x") == "\\[/] \\[bold]x"
    assert for_markup("a\nb", lines=True) == "a\nb"
    assert for_markup("a\nb") == "a\\nb"


# --------------------------------------------------------------------------- fuzz of the readers
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True)
    | st.text("ab1 .(+x_\n\x1b", max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("abnmekyfs_", max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(obj, at=()):
    """Every place in a JSON document (a key path), the document itself first."""
    yield at
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, at + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, at + (i,))


def _replaced(doc, path, value):
    if not path:
        return value
    doc = copy.deepcopy(doc)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return doc


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    dest = copy_run(tmp_path_factory.mktemp("fuzz") / "results")
    docs = {name: json.loads((dest / name).read_text()) for name in ("final.json", "config.json", "hall_of_fame.json")}
    for d in docs.values():
        d.pop("training_curves", None)  # smaller: more of the draws land on rows
    return dest, docs, {name: list(_paths(d)) for name, d in docs.items()}


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_readers_fuzz_answer_or_one_run_error(fuzz_run, data):
    dest, docs, paths = fuzz_run
    name = data.draw(st.sampled_from(sorted(docs)))
    path = data.draw(st.sampled_from(paths[name]))
    value = data.draw(JSON)
    (dest / name).write_text(json.dumps(_replaced(docs[name], path, value)))
    store = RunStore.open(str(dest))
    read = {"final.json": store.final, "config.json": store.config, "hall_of_fame.json": store.hall_of_fame}[name]
    try:
        read()
    except RunError as e:
        assert "\n" not in str(e) and name in str(e)
    finally:
        (dest / name).write_text(json.dumps(docs[name]))
