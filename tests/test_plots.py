"""Plots a reader wants: loss shapes over possible log-likelihoods, each curve on its own
scale; the fitness plot with held-out scores; plots of a committed run go elsewhere."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from discover import loss_shapes, plots, records, run_views
from discover.store import RunStore
from grammar import zoo

RUN = os.path.join(os.path.dirname(__file__), "..", "results", "default-run-v3")


def test_margins_keep_both_log_likelihoods_possible():
    pair = {"ref_w": -3.0, "ref_l": -4.0, "len_w": 5.0, "len_l": 5.0}
    z = loss_shapes.margins(pair)
    assert np.all(pair["ref_w"] + z / 2 <= 0) and np.all(pair["ref_l"] - z / 2 <= 0)
    assert z[0] == -8.0 and z[-1] == 6.0
    wide = loss_shapes.margins({"ref_w": -300.0, "ref_l": -300.0, "len_w": 25.0, "len_l": 25.0})
    assert wide[0] == -loss_shapes.Z_MAX and wide[-1] == loss_shapes.Z_MAX


@pytest.mark.slow
def test_loss_shapes_and_fitness_plots_draw(tmp_path):
    pair = {"ref_w": -30.0, "ref_l": -32.0, "len_w": 25.0, "len_l": 25.0}
    curves = loss_shapes.curves([zoo.ZOO[n].loss() for n in ("dpo", "ipo", "sft_to_dpo")], pair)
    assert set(curves["losses"]["sft_to_dpo"]) == {"0", "0.5", "1"}
    assert os.path.getsize(plots.loss_shapes(curves, str(tmp_path / "s.png"), "run $x$")) > 10_000
    path = plots.fitness_over_generations([1, 2], [50.0, 60.0], [40.0, 41.0], str(tmp_path / "f.png"), "run",
                                          {"loss 1": 70.0}, (53.3, "BC"))
    assert os.path.getsize(path) > 10_000


def test_plots_of_a_run_can_go_to_another_folder(tmp_path):
    shutil.copytree(RUN, tmp_path / "run", ignore=shutil.ignore_patterns("*.png"))
    store = RunStore(str(tmp_path / "run"))
    state = store.latest_checkpoint()
    written = run_views.write_plots(store, state["history"], records.hall_of_fame(store.candidates()),
                                    str(tmp_path / "plots"))
    assert sorted(os.path.basename(p) for p in written) == ["fitness.png", "pareto.png", "training_curves.png"]
    assert sorted(os.listdir(tmp_path / "plots")) == ["fitness.png", "pareto.png", "training_curves.png"]
    assert not any(name.endswith(".png") for name in os.listdir(tmp_path / "run"))
