"""Host-side cost of a search's first generation of proposals at a large population.

    python benchmarks/proposals.py [--population 256] [--grammar mirror.yaml]

Proposes generation 0 of the default search (the zoo seeds, then random trees, each
checked by the grammar and the probe gate) on the toy evaluator of the tests, twice in one
process: first recording rejected candidates with their simplified closed form (as the
engine did before 2026-12-04), then as written (today). sympy's caches (its own and the
engine's) are cleared before each, and the probe gate is compiled before either (a warm-up
build), so both measure the same work but the records. Prints both times and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))  # the toy evaluator


def build(evaluator, population: int, grammar: str, simplified_rejections: bool) -> tuple[float, int, int]:
    import sympy.core.cache

    from discover import proposals
    from discover.search import Search, SearchConfig
    from discover.store import RunStore
    from grammar import load as load_grammar
    from grammar import symbolic

    symbolic.closed_form.cache_clear()
    symbolic.canonical.cache_clear()
    sympy.core.cache.clear_cache()
    original = proposals.record

    def simplified(cand, generation, **fields):  # the record as it was: simplified for every candidate
        rec = original(cand, generation, **{k: v for k, v in fields.items() if k != "reason"})
        rec.update(fields, closed_form=symbolic.text(cand.expr), complexity=symbolic.complexity(cand.expr))
        return rec

    g = load_grammar(grammar)
    cfg = SearchConfig(population=population, generations=1, halving=False)
    store = RunStore.create(os.path.join(tempfile.mkdtemp(), "p"), "bench", {"search": cfg.to_dict(),
                            "experiment": {}, "grammar_name": g.name}, g.path)
    search = Search(g, evaluator, cfg, store, report=lambda i: None, phase=lambda m: None)
    if simplified_rejections:
        proposals.record = simplified
    try:
        t0 = time.perf_counter()
        batch = search.proposals.build(0, population, search.cache, search.pool)
        return time.perf_counter() - t0, len(batch.candidates), len(batch.rejected)
    finally:
        proposals.record = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=256)
    ap.add_argument("--grammar", default="mirror.yaml")
    args = ap.parse_args()
    if args.population < 1:
        ap.error("--population must be positive")
    from toy_evaluator import ToyEvaluator

    evaluator = ToyEvaluator()
    t0 = time.perf_counter()
    build(evaluator, args.population, args.grammar, False)  # warm-up: the probe gate's compilation for this population
    print(f"warm-up (the probe gate compiled for {args.population}): {time.perf_counter() - t0:.1f} s", flush=True)
    before, n, rejected = build(evaluator, args.population, args.grammar, True)
    print(f"generation 0, rejected candidates simplified (as before): {before:.1f} s "
          f"({n} candidates, {rejected} rejected)", flush=True)
    after, n, rejected = build(evaluator, args.population, args.grammar, False)
    print(f"generation 0, rejected candidates as written (today): {after:.1f} s "
          f"({n} candidates, {rejected} rejected)")
    print(f"ratio: {before / after:.2f}x")


if __name__ == "__main__":
    main()
