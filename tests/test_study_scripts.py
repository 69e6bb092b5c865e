"""The study's scripts (results/study_v3/): the held-out benches' plan from a tuning, and
the analysis of finished benches, on planted scores."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

STUDY = os.path.join(os.path.dirname(__file__), "..", "results", "study_v3")
RUN = os.path.join(os.path.dirname(__file__), "..", "results", "default-run-v4")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"study_{name}", os.path.join(STUDY, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _choice(steps, lr, constants, score):
    return {"steps": steps, "lr": lr, "constants": constants, "per_dataset": [score] * 3, "score": score}


@pytest.fixture
def tuned(tmp_path):
    """A finished tuning of walker2d mixed with B* = dpo_tsallis and 8 searches' winners."""
    here = tmp_path / "study"
    (here / "tune-walker2d-mixed").mkdir(parents=True)
    b_star = {"name": "dpo_tsallis", **_choice(400, 12e-4, {"alpha": 0.2, "beta": 1.0}, 35.0)}
    choice = {"dpo": _choice(200, 6e-4, {"beta": 0.1}, 30.0), "dpo_tsallis": _choice(400, 12e-4, b_star["constants"], 35.0),
              **{f"study-walker2d-mixed-{k}#1": _choice(200 * (1 + k % 2), 6e-4, {}, 33.0) for k in range(8)}}
    (here / "tune-walker2d-mixed" / "tuning.json").write_text(json.dumps({"choice": choice, "b_star": b_star}))
    (here / "tune-walker2d-mixed" / "B_STAR.json").write_text(json.dumps(b_star))
    (here / "readout-walker2d-mixed.json").write_text(json.dumps({"option": "episodes", "count": 32}))
    return here


def test_the_held_out_benches_group_losses_by_their_tuned_recipe(tuned):
    heldout = _script("heldout")
    plan = heldout.plan("walker2d", "mixed", str(tuned))
    assert plan["episodes"] == 32 and plan["readout"] == "episodes" and plan["data_seeds"] == list(range(400, 420)) and plan["seeds"] == 3
    by = {(b["steps"], b["lr"]): b for b in plan["benches"]}
    assert sorted(by) == [(200, 6e-4), (400, 6e-4), (400, 12e-4)]
    assert by[(200, 6e-4)]["zoo"] == ["dpo@beta=0.1"]
    assert by[(200, 6e-4)]["include"] == [f"study-walker2d-mixed-{k}:1" for k in (0, 2, 4, 6)]
    assert by[(400, 12e-4)]["roles"] == {"zoo dpo_tsallis": "dpo_tsallis (alpha=0.2, beta=1)",
                                         "b_star": "dpo_tsallis (alpha=0.2, beta=1)"}
    assert by[(400, 6e-4)]["zoo"] == [] and by[(400, 6e-4)]["roles"]["winner 7"] == "study-walker2d-mixed-7#1"
    # a winner that failed at every tuning recipe: at its search's recipe; such a zoo loss: left out
    tuning = json.loads((tuned / "tune-walker2d-mixed" / "tuning.json").read_text())
    (tuned / "tune-walker2d-mixed" / "tuning.json").write_text(json.dumps(
        {**tuning, "choice": {**tuning["choice"], "study-walker2d-mixed-1#1": None, "dpo": None}}))
    failed = heldout.plan("walker2d", "mixed", str(tuned))
    assert failed["untuned_winners"] == ["study-walker2d-mixed-1#1"] and failed["zoo_left_out"] == ["dpo"]
    at_search = next(b for b in failed["benches"] if (b["steps"], b["lr"]) == (200, 3e-4))
    assert at_search["roles"] == {"winner 1": "study-walker2d-mixed-1#1"}
    (tuned / "tune-walker2d-mixed" / "tuning.json").write_text(json.dumps(tuning))
    frozen = json.loads((tuned / "tune-walker2d-mixed" / "B_STAR.json").read_text())
    (tuned / "tune-walker2d-mixed" / "B_STAR.json").write_text(json.dumps({**frozen, "name": "dpo"}))
    with pytest.raises(SystemExit, match="not the frozen one"):
        heldout.plan("walker2d", "mixed", str(tuned))


def test_a_search_that_cannot_finish_is_left_out_and_a_finished_one_cannot_be(tuned, tmp_path):
    heldout = _script("heldout")
    results = tmp_path / "results"
    (results / "study-walker2d-mixed-5").mkdir(parents=True)
    (results / "study-walker2d-mixed-5" / "final.json").write_text("{}")
    tuning = json.loads((tuned / "tune-walker2d-mixed" / "tuning.json").read_text())
    del tuning["choice"]["study-walker2d-mixed-3#1"]  # search 3 never finished, so it was never tuned
    (tuned / "tune-walker2d-mixed" / "tuning.json").write_text(json.dumps(tuning))
    with pytest.raises(SystemExit, match="no recipe for study-walker2d-mixed-3"):
        heldout.plan("walker2d", "mixed", str(tuned), results=str(results))
    plan = heldout.plan("walker2d", "mixed", str(tuned), left_out=(3,), results=str(results))
    roles = {r for b in plan["benches"] for r in b["roles"]}
    assert plan["searches_left_out"] == [3] and "winner 3" not in roles
    assert {f"winner {k}" for k in (0, 1, 2, 4, 5, 6, 7)} <= roles
    with pytest.raises(SystemExit, match="search 5 finished"):
        heldout.plan("walker2d", "mixed", str(tuned), left_out=(3, 5), results=str(results))
    with pytest.raises(SystemExit, match="no search 8"):
        heldout.plan("walker2d", "mixed", str(tuned), left_out=(8,), results=str(results))
    assert heldout._left_out(["lm", "mixed", "--left-out", "3,5", "--dry-run"]) == ((3, 5), ["lm", "mixed", "--dry-run"])
    with pytest.raises(SystemExit, match="--left-out takes search numbers"):
        heldout._left_out(["lm", "mixed", "--left-out"])


def test_the_analysis_reads_the_benches_and_gives_a_verdict(tuned, tmp_path, capsys):
    heldout, analyse = _script("heldout"), _script("analyse")
    plan = heldout.plan("walker2d", "mixed", str(tuned))
    (tuned / "heldout-walker2d-mixed.json").write_text(json.dumps(plan))
    results = tmp_path / "results"
    rng = np.random.default_rng(0)
    b_star = 35 + rng.normal(0, 5, 20)
    planted = {"zoo dpo_tsallis": b_star, "zoo dpo": b_star - 8,
               **{f"winner {k}": b_star + 10 + rng.normal(0, 2) + rng.normal(0, 3, 20) for k in range(8)}}
    for b in plan["benches"]:
        rows = [{"name": name, "closed_form": role, "per_seed": np.repeat(planted[role], 3).tolist(), "reason": None}
                for role, name in b["roles"].items() if role in planted]
        config = {"train": {"steps": b["steps"], "learning_rate": b["lr"]}, "eval": {"episodes": 32}, "dataset": {}}
        (results / b["name"]).mkdir(parents=True)
        (results / b["name"] / "results.json").write_text(json.dumps(
            {"data_seeds": plan["data_seeds"], "seeds": [1000, 1001, 1002], "losses": rows, "config": config,
             "datasets": [{"digest": f"{seed:016x}"} for seed in plan["data_seeds"]]}))
    for k in range(8):  # the searches: loss 1 of each (its held-out score decides the secondary pick)
        run = results / f"study-walker2d-mixed-{k}"
        run.mkdir()
        for f in ("config.json", "hall_of_fame.json"):
            shutil.copy(os.path.join(RUN, f), run / f)
        final = json.loads(open(os.path.join(RUN, "final.json")).read())
        for r in final["rows"]:
            if r["fitness"] is not None:
                r["fitness"] += 100.0 if k == 5 else 0.0
        (run / "final.json").write_text(json.dumps(final))
    ranked = [{"name": "dpo_tsallis", "constants": {"alpha": 0.3, "beta": 0.01}, "cosine": 0.987},
              {"name": "dpo", "constants": {"beta": 0.1}, "cosine": 0.9}, {"name": "sft", "constants": {}, "cosine": 0.2}]
    near = [{"search": k, "run": f"study-walker2d-mixed-{k}", "trained_inputs": True, "b_star_cosine": 0.5 + k / 100,
             "relatives": ranked} for k in range(7)]
    near.append({"search": 7, "run": "study-walker2d-mixed-7", "error": "no field"})
    (tuned / "relatives-walker2d-mixed.json").write_text(json.dumps({"searches": near}))
    analyse.main(["walker2d:mixed", "hopper:mixed"], str(tuned), str(results))
    out = capsys.readouterr().out
    row = next(x for x in out.splitlines() if x.startswith("| 3 | `"))
    assert row.endswith("| dpo_tsallis (alpha=0.3, beta=0.01) 0.987; dpo (beta=0.1) 0.900 | 0.530 |")  # top 2
    assert next(x for x in out.splitlines() if x.startswith("| 7 | `")).endswith("| not measured: no field |  |")
    assert "**Pending** (held-out benches not finished, or not analysed in this call): hopper:mixed, lm:mixed" in out
    assert "So the verdicts of walker2d:mixed are final whatever the pending settings give." in out
    assert "Each winner against B* (p values unadjusted" in out and "| 5 | `" in out
    line = next(x for x in out.splitlines() if x.startswith("| walker2d:mixed |"))
    assert "**better**" in line
    d = np.stack([planted[f"winner {k}"] for k in range(8)]) - b_star
    assert f"{d.mean():+.1f} [" in line
    assert "(search 5)" in out  # the secondary pick: the best loss 1 by its own search's held-out score
    intervals = out.split("Interval estimates over datasets")[1].split("Per dataset")[0]
    star = next(b["roles"]["b_star"] for b in plan["benches"] if "b_star" in b["roles"])
    assert intervals.count(star) == 1 and f"| B* ({star}) |" in intervals  # B* once, not again as a zoo row
    analysis = json.loads((tuned / "analysis.json").read_text())
    assert analysis["verdicts"]["walker2d:mixed"]["alpha_first_step"] == pytest.approx(0.05 / 3)  # the plan's 3
    assert analysis["effects"]["walker2d:mixed"]["best_pick"]["search"] == 5
    # the report: title, the introduction, the same analysis a level down, pending settings named
    report = _script("report")
    (tuned / "report_intro.md").write_text("**Question.** planted.\n")
    results_md, text = report.build(str(tuned), str(results))
    assert results_md.startswith("# Study v3: results") and "| walker2d:mixed |" in results_md
    assert text.startswith(report.TITLE + "\n\n**Question.** planted.\n\n## Results\n\nPlan: ")
    assert "\n### walker2d:mixed\n" in text and "\n## walker2d:mixed" not in text
    assert line in text and "**Pending**" in text and "hopper:mixed, lm:mixed" in text
    assert "Discussion" not in text
    (tuned / "report_discussion.md").write_text("## Discussion\n\nplanted.\n")
    assert report.build(str(tuned), str(results))[1].endswith("## Discussion\n\nplanted.\n")
    # a bench that is not the plan's (another recipe), a failed loss, a setting not in the plan: refused
    bench = results / plan["benches"][0]["name"] / "results.json"
    good = json.loads(bench.read_text())
    bench.write_text(json.dumps({**good, "config": {**good["config"], "train": {"steps": 999, "learning_rate": 1}}}))
    with pytest.raises(SystemExit, match="not the plan's bench \\(steps 999, not 200\\)"):
        analyse.main(["walker2d:mixed"], str(tuned), str(results))
    # rows pair only on the same datasets: a bench whose datasets have other digests is refused
    bench.write_text(json.dumps(good))
    other = results / plan["benches"][-1]["name"] / "results.json"
    fine = json.loads(other.read_text())
    other.write_text(json.dumps({**fine, "datasets": [{"digest": "0"}] + fine["datasets"][1:]}))
    with pytest.raises(SystemExit, match="digests differ from"):
        analyse.main(["walker2d:mixed"], str(tuned), str(results))
    other.write_text(json.dumps({**fine, "datasets": [None] + fine["datasets"][1:]}))
    with pytest.raises(SystemExit, match="do not record every dataset's digest"):
        analyse.main(["walker2d:mixed"], str(tuned), str(results))
    other.write_text(json.dumps(fine))
    # a failed run scores 0 (amendment 2), from the row's run_scores; without them, refused
    rows = good["losses"]
    run_scores = [[None if u == 7 else v for u, v in enumerate(r["per_seed"])] for r in rows]
    failed = [{**r, "reason": "non-finite loss", "per_seed": [None] * 60, "run_scores": runs}
              for r, runs in zip(rows, run_scores)]
    bench.write_text(json.dumps({**good, "losses": failed}))
    analyse.main(["walker2d:mixed"], str(tuned), str(results))
    out = capsys.readouterr().out
    assert "Failed training runs (scored 0): " in out and " 1 of 60" in out
    assert ("Sensitivity, decided after the failures were seen" in out) == any(
        role == "b_star" or role.startswith("winner ") for role in plan["benches"][0]["roles"] if role in planted)
    counted = json.loads((tuned / "analysis.json").read_text())["failed_runs"]["walker2d:mixed"]
    assert {role: counted[role] for role in plan["benches"][0]["roles"] if role in planted} == \
        {role: 1 for role in plan["benches"][0]["roles"] if role in planted}
    # units are dataset-major (unit (d, s) at column d x 3 + s): per-dataset scores are seed means
    varied = [{**r, "per_seed": (np.asarray(r["per_seed"]) + np.tile([-1.0, 0.0, 4.0], 20)).tolist()}
              for r in rows]
    bench.write_text(json.dumps({**good, "losses": varied}))
    role, name = next((role, name) for role, name in plan["benches"][0]["roles"].items() if role in planted)
    got = analyse.scores("walker2d", "mixed", str(tuned), str(results))["scores"][role]
    np.testing.assert_allclose(got, planted[role] + 1.0)
    unit, n = analyse.unit_scores(failed[0], "x")
    assert n == 1 and np.isnan(unit[7]) and unit[8] == rows[0]["per_seed"][8]
    # the post-hoc sensitivity: failed runs dropped, not scored 0; none left on a dataset: not computable
    finished = {"b_star": np.array([[10.0, 12.0], [20.0, 20.0], [30.0, 30.0]]),
                "winner 0": np.array([[np.nan, 14.0], [25.0, 23.0], [31.0, np.nan]]),
                "winner 1": np.array([[np.nan, np.nan], [20.0, 20.0], [34.0, 36.0]])}
    drop = analyse.failures_dropped(finished, [0, 1])
    assert drop["n"] == 3 and drop["mean"] == pytest.approx(((14 - 11) + (22 - 20) + (33 - 30)) / 3)
    assert drop["thinned"] == [0]  # winner 1 finished no run on the first dataset
    finished["winner 0"][0] = np.nan
    assert analyse.failures_dropped(finished, [0, 1]) is None
    bench.write_text(json.dumps({**good, "losses": [{k: v for k, v in r.items() if k != "run_scores"} for r in failed]}))
    with pytest.raises(SystemExit, match="failed \\(non-finite loss\\) and its bench did not record"):
        analyse.main(["walker2d:mixed"], str(tuned), str(results))
    with pytest.raises(SystemExit, match="not a pre-registered setting: hopper:noisy"):
        analyse.main(["hopper:noisy"], str(tuned), str(results))


def test_the_token_settings_benches_carry_its_language_and_readout(tmp_path, capsys):
    """heldout.py --dry-run on the token setting: the language, the readout's prompts and
    each loss's own recipe (not the search's) on the command line."""
    heldout = _script("heldout")
    here = tmp_path / "study"
    (here / "tune-lm-mixed").mkdir(parents=True)
    b_star = {"name": "dpo_tsallis", **_choice(800, 48e-4, {"alpha": 0.2, "beta": 1.0}, 60.0)}
    choice = {"dpo_tsallis": _choice(800, 48e-4, b_star["constants"], 60.0),
              **{f"study-lm-mixed-{k}#1": _choice(400, 24e-4, {}, 61.0) for k in range(8)}}
    (here / "tune-lm-mixed" / "tuning.json").write_text(json.dumps({"choice": choice, "b_star": b_star}))
    (here / "tune-lm-mixed" / "B_STAR.json").write_text(json.dumps(b_star))
    (here / "readout-lm-mixed.json").write_text(json.dumps({"option": "prompts", "count": 1024}))
    heldout.main("lm", "mixed", dry_run=True, here=str(here), results=str(tmp_path / "results"))
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("discover bench")]
    assert len(lines) == 2
    b_line = next(x for x in lines if "dpo_tsallis" in x)
    assert "--language sum" in b_line and "--prompts 1024" in b_line and "--episodes" not in b_line
    assert b_line.count("--steps") == 1 and "--steps 800 --lr 0.0048" in b_line
    assert "--losses  --include study-lm-mixed-0:1" in next(x for x in lines if "study-lm-mixed-0:1" in x)


def test_the_readout_grid_doubles_until_a_count_meets_the_rule(tmp_path, monkeypatch, capsys):
    """PLAN.md, amendment 5: where no pre-registered count is under 2 points, 256 then 512
    episodes are measured until one is; if none is, the largest is used and said."""
    from types import SimpleNamespace

    readout = _script("readout_noise")

    def fake(spread_at_16):
        class Config:
            def __init__(self, episodes=16):
                self.episodes = episodes

            def with_options(self, episodes=16, **_):
                return Config(episodes)

            def with_data_seeds(self, _):
                return self

        class Evaluator:
            def __init__(self, config):
                self.episodes = config.episodes

            def evaluate(self, exprs, constants, seeds, eval_seed=None):
                # two draws differ by spread / sqrt(episodes / 16), in opposite directions
                half = spread_at_16 / 2 / np.sqrt(self.episodes / 16) * (1 if eval_seed % 2 else -1)
                return SimpleNamespace(per_seed=np.full((len(exprs), len(seeds)), 40.0 + half),
                                       diagnostics={"final_loss": np.zeros((len(exprs), len(seeds)))})

        Evaluator.Config = Config
        return Evaluator

    monkeypatch.setattr(readout.registry, "for_task", lambda task: task)
    for spread, count, met, measured in ((7.0, 256, True, 5), (30.0, 512, False, 6), (3.0, 64, True, 4)):
        monkeypatch.setattr(readout.registry, "get", lambda name, s=spread: fake(s))
        readout.main("walker2d", "mixed", str(tmp_path))
        out = json.loads((tmp_path / "readout-walker2d-mixed.json").read_text())
        assert (out["count"], out["met_threshold"], len(out["rows"])) == (count, met, measured)
    assert "above 512 (none of (16, 32, 64, 128, 256, 512) reached 2 points)" in capsys.readouterr().out


def test_the_readout_count_is_the_smallest_from_which_every_larger_count_meets_the_rule():
    """PLAN.md, amendment 7: a count under 2 points between failing counts passes by chance."""
    stable = _script("readout_noise").smallest_stable
    # Hopper mixed's measurement: 16 passes, 32 fails, 64 and 128 pass
    assert stable([(16, 1.67), (32, 2.78), (64, 1.82), (128, 1.05)]) == 64
    assert stable([(16, 3.70), (32, 3.61), (64, 2.48), (128, 2.02)]) is None  # Walker2d's grid: extend
    assert stable([(16, 3.70), (32, 3.61), (64, 2.48), (128, 2.02), (256, 1.09)]) == 256
    assert stable([(16, 1.9), (32, 1.5), (64, 1.0), (128, 0.7)]) == 16
    assert stable([(16, 1.9), (32, 1.5), (64, 1.0), (128, 2.1)]) is None
