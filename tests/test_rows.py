"""One scored-row builder for the search's final.json and the bench's results.json, one
definition of spread going forward (recorded in the file), older files read with the
meaning they were written with; the search's checkpoint state round-trips."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
from rich.console import Console

from discover import bench, rows, run_views
from discover.rows import SPREAD_DDOF, loss_row, score_fields, spread_ddof
from discover.search import Search, SearchConfig, SearchState
from discover.store import RunStore
from evaluators.interface import Evaluation
from grammar import load as load_grammar
from grammar import zoo

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")


def test_score_fields_mean_spread_and_failures():
    units = np.array([1.0, 2.0, 4.0])
    got = score_fields(units, None)
    assert got == {"fitness": pytest.approx(7 / 3), "spread": pytest.approx(np.std(units, ddof=SPREAD_DDOF)),
                   "per_seed": [1.0, 2.0, 4.0], "reason": None}
    assert score_fields(units, None, ddof=0)["spread"] == float(units.std())
    assert score_fields([5.0], None)["spread"] == 0.0  # one unit: no spread, with either ddof
    assert score_fields([np.nan, 1.0], "diverged") == {"fitness": None, "spread": None, "per_seed": [None, None],
                                                       "reason": "diverged"}


def test_older_files_read_with_the_spread_they_were_written_with():
    assert SPREAD_DDOF == 1
    assert spread_ddof({"rows": []}, "final.json") == 0  # searches scored with ddof 0 until it was recorded
    assert spread_ddof({"losses": []}, "results.json") == 1  # benches always used ddof 1
    assert spread_ddof({"rows": [], "spread_ddof": 1}, "final.json") == 1
    for path in glob.glob(os.path.join(RESULTS, "*", "final.json")):
        with open(path) as f:
            final = json.load(f)
        assert "spread_ddof" not in final or final["spread_ddof"] == SPREAD_DDOF, path


class FixedEvaluator:
    """Scores every loss from a fixed table: candidate p on seed s scores 10 p + s^2."""

    name = "fixed"

    def evaluate(self, exprs, constants, seeds, eval_seed=None):
        seeds = np.asarray(seeds)
        per_seed = np.array([[10.0 * p + float(s) ** 2 for s in seeds] for p in range(len(exprs))])
        return Evaluation(per_seed, [None] * len(exprs), timing={"train_s": 0.0})

    def baseline(self):
        return 50.0, 5.0


def test_the_search_and_the_bench_build_their_rows_with_one_builder(tmp_path, monkeypatch):
    built = []
    real = rows.loss_row

    def spy(loss, units, reason, **fields):
        built.append(loss.name)
        return real(loss, units, reason, **fields)

    monkeypatch.setattr("discover.search.loss_row", spy)
    monkeypatch.setattr("discover.bench.loss_row", spy)
    g = load_grammar("mirror.yaml")
    config = SearchConfig(population=16, generations=1, es_trees=1, es_popsize=4, holdout_seeds=(100, 101, 102))
    store = RunStore.create(str(tmp_path), "run", {"search": config.to_dict()}, g.path)
    final = Search(g, FixedEvaluator(), config, store).final_evaluation(log=lambda m: None)
    assert built == list(zoo.ZOO) and final["spread_ddof"] == SPREAD_DDOF
    dpo = next(r for r in final["rows"] if r["name"] == "dpo")
    units = [10.0 * list(zoo.ZOO).index("dpo") + s ** 2 for s in (100, 101, 102)]
    assert dpo["fitness"] == pytest.approx(np.mean(units)) and dpo["spread"] == pytest.approx(np.std(units, ddof=1))

    entry = zoo.ZOO["dpo"].loss()
    pooled = np.array([[1.0, 2.0, 3.0, 6.0]])
    diag = {"reward_w": np.ones((1, 4)), "reward_l": np.zeros((1, 4)), "train_accuracy": np.ones((1, 4)),
            "final_loss": np.zeros((1, 4))}
    row = bench._row(entry, 0, pooled, None, diag, 2)
    assert built[-1] == "dpo" and row["spread"] == pytest.approx(np.std(pooled[0], ddof=1))
    assert row["per_dataset"] == [1.5, 4.5] and row["base"] == "dpo"
    assert set(loss_row(entry, pooled[0], None)) <= set(row) and set(loss_row(entry, pooled[0], None)) <= set(dpo)
    assert "run_scores" not in row  # a loss that trained everywhere has its units in per_seed
    # a loss with one failed run (unit 2): no unit score, but the scores of the runs that trained
    failed = bench._row(entry, 0, np.full((1, 4), np.nan), "dataset 101: non-finite loss",
                        {**diag, "run_score": np.array([[1.0, 2.0, np.nan, 6.0]])}, 2)
    assert failed["fitness"] is None and failed["per_seed"] == [None] * 4
    assert failed["run_scores"] == [1.0, 2.0, None, 6.0]
    assert "run_scores" not in bench._row(entry, 0, pooled, "x", diag, 2)  # an evaluator that does not measure them


def test_run_scores_keep_the_runs_that_trained():
    from evaluators.interface import run_scores

    per_seed = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = run_scores(per_seed, np.array([[0, 1], [0, 0]]))
    np.testing.assert_array_equal(got, [[1.0, np.nan], [3.0, 4.0]])
    assert np.isnan(Evaluation(per_seed, [None, "x"]).per_seed[1]).all()  # where an Evaluation keeps none


def _title(final: dict) -> str:
    console = Console(record=True, width=400)
    console.print(run_views.final_table(final))
    return console.export_text().splitlines()[0]


def test_show_says_which_spread_it_shows():
    old = {"rows": [], "reference": {"mean": 50.0, "std": 5.0}, "holdout_seeds": [100, 101]}
    assert "ddof 0" in _title(old)
    assert "ddof 1" in _title({**old, "spread_ddof": 1})


def test_search_state_round_trips_and_reads_every_committed_checkpoint():
    state = SearchState(3, ["a|", "b|beta=0.1"], {"h": {"mean": [0.5]}}, [{"generation": 3, "best_fitness": 1.0}],
                        {"cache_hits": 2, "trained": 9}, 12.5)
    assert SearchState.from_json(json.loads(json.dumps(state.to_json()))) == state
    paths = sorted(glob.glob(os.path.join(RESULTS, "*", "checkpoints", "gen-*.json")))
    assert paths
    for path in paths:
        with open(path) as f:
            text = f.read()
        saved = json.loads(text)
        assert SearchState.from_json(saved).to_json() == saved, path
        assert json.dumps(SearchState.from_json(saved).to_json()) == json.dumps(saved), path  # same keys, same order
