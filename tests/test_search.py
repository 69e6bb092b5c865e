"""The search on the tiny task with small budgets."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import pair_inputs
from discover import run_views
from discover.errors import RunError
from discover.search import Search, SearchConfig
from discover.store import RunStore
from grammar import export, lowering, zoo
from grammar import load as load_grammar

pytestmark = pytest.mark.slow

CONFIG = SearchConfig(population=16, generations=3, seed=7, es_trees=1, es_popsize=4, final_top=2,
                      holdout_seeds=(100, 101), reevaluate=3)


def new_search(tmp_path, experiment, grammar, name="run", config=CONFIG):
    store = RunStore.create(str(tmp_path), name, {"search": config.to_dict(),
                                                  "experiment": experiment.config.to_dict(),
                                                  "grammar_name": grammar.name}, grammar.path)
    return Search(grammar, experiment, config, store), store


class CountingEvaluator:
    """An evaluator that records the seed matrix of every call."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def evaluate(self, exprs, constants, seeds, **kw):
        self.calls.append(np.asarray(seeds).shape if np.ndim(seeds) == 2 else (len(exprs), len(seeds)))
        return self.inner.evaluate(exprs, constants, seeds, **kw)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, pendulum_evaluator, mirror):
    tmp = tmp_path_factory.mktemp("runs")
    search, store = new_search(tmp, CountingEvaluator(pendulum_evaluator), mirror, "full")
    search.run()
    return search, store


def test_zoo_is_in_generation_zero(finished, mirror):
    # The grammar's zoo seeds come first, in its order, as far as the population holds them.
    _, store = finished
    gen0 = [r for r in store.candidates() if r.get("born", r["generation"]) == 0]
    origins = {r["origin"] for r in gen0}
    seeded = [n for n in mirror.seeds if n in zoo.ZOO]
    assert {f"zoo:{n}" for n in seeded[:CONFIG.population]} <= origins


def test_no_canonical_repeat_is_trained(finished):
    _, store = finished
    trained = [r["key"] for r in store.candidates() if r["trained"]]
    assert len(trained) == len(set(trained))
    assert len(trained) == CONFIG.population * CONFIG.generations  # with halving, every slot is new in rung 0
    # re-evaluation trains an elite again only on seeds it has not seen: no (loss, seed) run twice
    runs, seen = [], {}
    for rec in store.candidates(latest=False):  # each line: a training (or a re-training) of one loss
        if rec["trained"]:
            runs += [(rec["key"], s) for s in rec["seeds"][len(seen.get(rec["key"], [])):]]
            seen[rec["key"]] = rec["seeds"]
    assert len(runs) == len(set(runs))


def test_elites_are_retrained_on_fresh_seeds(finished):
    search, store = finished
    again = [r for r in store.candidates() if r.get("reevaluations")]
    assert len(again) >= CONFIG.reevaluate  # every generation after the first re-trains R elites
    inner = set(CONFIG.inner_seeds)
    for r in again:
        assert len(r["per_seed"]) == len(r["seeds"]) == len(CONFIG.inner_seeds) + r["reevaluations"]
        assert not (set(r["seeds"][len(inner):]) & (inner | set(CONFIG.holdout_seeds)))
        assert r["fitness"] == pytest.approx(np.mean(r["per_seed"]))
        assert r["born"] < r["generation"]
    # the search state agrees with the log
    for r in again:
        assert search.cache[r["key"]]["fitness"] == r["fitness"]


def test_halving_screens_on_one_seed_and_promotes_the_best(finished):
    _, store = finished
    inner, P = CONFIG.inner_seeds, CONFIG.population
    S = len(inner)
    lines = store.candidates(latest=False)
    runs = 0
    for gen in range(CONFIG.generations):
        new = [r for r in store.candidates() if r["trained"] and r.get("born", r["generation"]) == gen]
        assert len(new) == P
        screen_seed = inner[gen % S]  # rotates over the inner seeds, so over the datasets
        halted = [r for r in new if r.get("halted")]
        promoted = [r for r in new if r["rung"] == 1]
        screened = [r for r in new if r["screen"] is not None]  # trained to a finite loss in rung 0
        elites = sum(1 for r in lines if r["generation"] == gen and r.get("reevaluations"))
        assert len(promoted) == min((P - elites) // (S - 1), len(screened))
        assert len(halted) == len(screened) - len(promoted)
        for r in halted:  # one seed: a screen score, no fitness (not ranked against S-seed fitness)
            assert r["fitness"] is None and r["reason"] is None and r["seeds"] == [screen_seed]
            assert r["per_seed"] == [r["screen"]]
        for r in promoted:
            assert r["seeds"][0] == screen_seed and sorted(r["seeds"][:S]) == sorted(inner)
            assert r["per_seed"][0] == r["screen"]
        if halted and promoted:  # promotion follows the rung-0 score
            assert min(r["screen"] for r in promoted) >= max(r["screen"] for r in halted)
        runs += P + len(promoted) * (S - 1) + elites  # padding not counted
    assert finished[0].stats["runs"] == runs


def test_elites_are_retrained_on_a_rotating_dataset(finished):
    """Each re-training of an elite uses the next of the S fresh seeds of its generation,
    so with D = S datasets an elite's extra seeds cycle through the datasets."""
    _, store = finished
    base, S = CONFIG.reeval_seed_base, len(CONFIG.inner_seeds)
    again = [r for r in store.candidates() if r.get("reevaluations")]
    assert again
    for r in again:
        extra = r["seeds"][S:]
        assert [(s - base) % S for s in extra] == [j % S for j in range(len(extra))]


def test_halving_trains_two_population_sized_calls_per_generation(finished):
    search, _ = finished
    assert search.evaluator.calls[: 2 * CONFIG.generations] == [(CONFIG.population, 1)] * (2 * CONFIG.generations)
    assert CONFIG.runs_per_generation() == 2 * CONFIG.population


def test_without_halving_every_candidate_gets_every_seed(tmp_path, pendulum_evaluator, mirror):
    counting = CountingEvaluator(pendulum_evaluator)
    # 8 candidates x 2 seeds: the 16 runs of the halving search's calls, so nothing compiles again
    cfg = dataclasses.replace(CONFIG, population=8, inner_seeds=(0, 1), generations=1, final_top=1, halving=False)
    search, store = new_search(tmp_path, counting, mirror, "all-seeds", cfg)
    search.run()
    assert counting.calls == [(cfg.population, len(cfg.inner_seeds))]
    first = [r for r in store.candidates(latest=False) if r["trained"] and not r.get("reevaluations")]
    assert all(len(r["seeds"]) == len(cfg.inner_seeds) and not r.get("halted") for r in first)
    assert SearchConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "halving"}).halving is False
    with pytest.raises(RunError, match="so that new candidates are promoted"):
        dataclasses.replace(CONFIG, population=8, reevaluate=6, es_trees=0, es_popsize=0).validate()


def test_constant_search_and_variation_produce_candidates(finished):
    _, store = finished
    origins = {r["origin"] for r in store.candidates() if r["generation"] > 0}
    assert "es" in origins
    assert origins & {"crossover", "subtree", "point", "shrink"}


def test_rejected_candidates_carry_reasons(tmp_path, pendulum_evaluator):
    # a grammar whose second production is log of a negative number: rejected by the probe
    path = tmp_path / "bad_half.yaml"
    path.write_text(textwrap.dedent("""\
        start: Loss
        primitives: [softplus, log]
        constants:
          beta: {default: 0.1, low: 0.01, high: 10.0, scale: log}
        definitions:
          r_w: logp_w - ref_w
          r_l: logp_l - ref_l
        nonterminals:
          Loss:
            productions:
              - {name: good, expr: "softplus(-Scale * (r_w - r_l))"}
              - {name: bad, expr: "log(logp_w) + Scale"}
          Scale:
            productions: [beta, "2 * beta", "beta / 2", "3 * beta", "beta * beta"]
        """))
    g = load_grammar(str(path))
    cfg = dataclasses.replace(CONFIG, generations=1, es_trees=0, es_popsize=0)  # padded to the 16 runs above
    search, store = new_search(tmp_path, pendulum_evaluator, g, "bad", cfg)
    search.run()
    rejected = [r for r in store.candidates() if not r["trained"]]
    assert rejected and all(r["reason"] for r in rejected)
    assert any("non-finite loss on probe inputs" in r["reason"] for r in rejected)


def test_resume_equals_uninterrupted(tmp_path, finished, pendulum_evaluator, mirror):
    _, full_store = finished
    search, store = new_search(tmp_path, pendulum_evaluator, mirror, "resumed")
    search.run(should_stop=lambda gen, elapsed: gen >= 2)  # "killed" after generation 2 of 3
    # a kill in the middle of generation 3 leaves a torn log line and no checkpoint
    with open(store.file("candidates.jsonl"), "a") as f:
        f.write(json.dumps({"generation": 2, "key": "junk|"}) + "\n" + '{"generation": 2, "ke')
    again = Search(mirror, pendulum_evaluator, CONFIG, RunStore(store.path))
    again.restore(RunStore(store.path).latest_checkpoint())
    again.run()
    a = [(r["key"], r["fitness"]) for r in full_store.candidates()]
    b = [(r["key"], r["fitness"]) for r in RunStore(store.path).candidates()]
    assert a == b
    assert again.hall_of_fame()["ranked"][0]["key"] == finished[0].hall_of_fame()["ranked"][0]["key"]


def test_exported_discovered_loss_equals_engine(tmp_path, finished):
    search, store = finished
    hof = search.hall_of_fame()
    store.write("hall_of_fame.json", hof)
    for rank in (1, 2, 3):
        loss, _ = run_views.ranked_loss(store, rank)
        expr, constants, provenance = loss.expr, loss.constants, loss.source
        assert loss.name == f"{store.name}#{rank}"
        src = export.export_module(expr, constants, "jax", "test", provenance)
        path = tmp_path / f"rank{rank}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(f"rank{rank}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        x = pair_inputs(np.random.default_rng(rank), 32)
        engine = np.asarray(lowering.lower(expr)({k: jnp.asarray(v, jnp.float32) for k, v in x.items()},
                                                 {k: jnp.float32(v) for k, v in constants.items()}))
        extra = {k: v for k, v in dict(chosen_lengths=x["len_w"], rejected_lengths=x["len_l"], progress=x["t"]).items()
                 if k in mod.INPUTS}
        out = np.asarray(mod.loss(x["logp_w"], x["logp_l"], x["ref_w"], x["ref_l"], **extra))
        np.testing.assert_allclose(out, engine, rtol=1e-5, atol=1e-5)
        assert store.name in provenance


def test_final_evaluation_uses_heldout_seeds(finished):
    search, _ = finished
    final = search.final_evaluation(log=lambda m: None)
    kinds = [r["kind"] for r in final["rows"]]
    assert kinds.count("discovered") == CONFIG.final_top and kinds.count("zoo") == len(zoo.ZOO)
    assert final["holdout_seeds"] == [100, 101]
    assert not set(final["holdout_seeds"]) & set(CONFIG.inner_seeds)
    assert all(len(r["per_seed"]) == 2 for r in final["rows"])
    # the scored-row schema that bench rows use
    assert all({"fitness", "spread", "per_seed", "reason"} <= set(r) for r in final["rows"])


def test_bad_run_requests(tmp_path, finished):
    with pytest.raises(RunError, match="no run named 'nope'"):
        RunStore.open("nope", str(tmp_path))
    _, store = finished
    with pytest.raises(RunError, match="already exists"):
        RunStore.create(os.path.dirname(store.path), store.name, {}, store.file("grammar.yaml"))
    # corrupt checkpoint
    bad = tmp_path / "corrupt"
    (bad / "checkpoints").mkdir(parents=True)
    (bad / "config.json").write_text("{}")
    (bad / "checkpoints" / "gen-0000.json").write_text('{"generation": 0, "pool": [')
    with pytest.raises(RunError, match="checkpoint is corrupt"):
        RunStore.open(str(bad)).latest_checkpoint()
    with pytest.raises(RunError, match="population must be at least 2"):
        SearchConfig(population=1).validate()


def test_the_gate_probes_a_response_with_probability_one():
    """Training can drive a response's log-likelihood to 0 exactly in float32: the gate's
    probe inputs reach it, so a loss with a pole there (log of -logp) is rejected before
    training, while the log-odds losses, guarded at that point, pass."""
    from discover.gates import ProbeGate, probe_inputs
    from grammar import interpreter
    from grammar.expr import Scope, parse
    from toy_evaluator import ToyEvaluator

    ev = ToyEvaluator()
    terms = np.asarray(probe_inputs(ev, 1000.0))
    rows = {k: i for i, k in enumerate(interpreter.TERMINALS)}
    assert (terms[rows["logp_w"]] == 0.0).any() and (terms[rows["logp_l"]] == 0.0).any()
    assert (terms[rows["logp_w"]] <= 0.0).all() and (terms[rows["logp_l"]] <= 0.0).all()
    gate = ProbeGate(ev, 4, 1000.0)
    pole = parse("-log_sigmoid(beta * (logp_w - logp_l)) + log(-logp_w)", Scope(constants=("beta",)))
    reasons = gate.reasons([zoo.ZOO["dpo_log_odds"].expr, zoo.ZOO["orpo"].expr, zoo.ZOO["dpo"].expr, pole],
                           [zoo.ZOO["dpo_log_odds"].constants, zoo.ZOO["orpo"].constants, {"beta": 0.1},
                            {"beta": 0.1}])
    assert reasons[:3] == [None, None, None]
    assert reasons[3] and "on probe inputs" in reasons[3]


def test_a_rejected_candidate_is_recorded_as_written_not_simplified(mirror):
    """Simplifying a rejected candidate's closed form cost up to seconds each (most of a
    large first generation's proposals): its record keeps the expression as written; a
    candidate that is trained keeps the simplified closed form."""
    import sympy

    from discover.proposals import record
    from discover.records import Candidate
    from grammar import derivation, symbolic

    for seed in range(100):  # a tree whose simplified form differs from the form as written
        node = derivation.ramped_half_and_half(mirror, np.random.default_rng(seed), 1, max_depth=4)[0]
        expr = derivation.expand(mirror, node)
        if sympy.sstr(symbolic.to_sympy(expr)) != symbolic.text(expr):
            break
    c = Candidate(node, expr, {}, symbolic.canonical_hash(expr), "random")
    rejected, kept = record(c, 0, reason="non-finite loss on probe inputs"), record(c, 0)
    written = symbolic.to_sympy(expr)
    assert rejected["closed_form"] == sympy.sstr(written)
    assert rejected["complexity"] == sum(1 for _ in sympy.preorder_traversal(written))
    assert kept["closed_form"] == symbolic.text(expr) and kept["complexity"] == symbolic.complexity(expr)
    assert rejected["reason"] and not kept["reason"]


def test_constant_search_keeps_a_strategy_per_set_of_constants_of_a_structure(mirror):
    # mix(a, a) is a whatever its weight w: one canonical structure, written with or without w
    from discover.constant_search import ConstantSearch
    from grammar import derivation, symbolic

    plain = derivation.parse_derivation(mirror, "mpo(Link=robust, Mirror=neg_entropy, Psi=nll)")
    mixed = derivation.parse_derivation(
        mirror, "mpo(Link=robust, Mirror=mix(Mirror.a=neg_entropy, Mirror.b=neg_entropy), Psi=nll)")
    h = symbolic.canonical_hash(derivation.expand(mirror, plain))
    assert symbolic.canonical_hash(derivation.expand(mirror, mixed)) == h
    best = {"beta": 0.5, "eps": 0.2, "lam": 0.3, "w": 0.4}
    three = {k: best[k] for k in ("beta", "eps", "lam")}
    es = ConstantSearch("snes", 3, 0.15)
    es.ask(mirror, h, plain, sorted(three), three, jax.random.PRNGKey(0))
    es.tell(h, [1.0, 2.0, 3.0], jax.random.PRNGKey(1))
    moved = es.center(mirror, h)
    assert moved != pytest.approx(three, rel=1e-3)
    settings = es.ask(mirror, h, mixed, sorted(best), best, jax.random.PRNGKey(2))  # raised before
    assert len(settings) == 3 and all(set(s) == set(best) for s in settings)
    assert es.center(mirror, h) == pytest.approx(best, rel=1e-5)  # its own strategy, started at the best
    es.tell(h, [3.0, 2.0, 1.0], jax.random.PRNGKey(3))
    es.ask(mirror, h, plain, sorted(three), three, jax.random.PRNGKey(4))
    assert es.center(mirror, h) == pytest.approx(moved)  # the first strategy, where it had got to
    assert len(es.states) == 2
