"""Planted-loss benchmark: does the search find a loss hidden in its own grammar?

A target is drawn from the grammar (a random derivation, each constant uniform on its
own scale within its bounds; never a grammar seed's structure) and hidden inside an
evaluator, :class:`PlantedEvaluator`, whose score of a candidate on seed s is

    score_s = 100 x cos(G_cand(X_s), G_target(X_s))  +  N(0, noise^2)

where X_s is seed s's draw of N realistic pairs (:func:`draw_pairs`) and G(X) the loss's
gradient field on them: the (N, 2) matrix of d loss_i / d(logp_w_i, logp_l_i), flattened.
The cosine compares every pair's gradient direction and how the loss weights pairs against
each other, and is blind only to one overall positive scale (a learning rate). The noise
is drawn per (candidate, seed) from a hash of both, so a run repeated on the same seed
scores the same, as a simulator does; 10 points is the MuJoCo suite's per-seed spread.

A search ends as ``discover run`` ends it: its ``final_top`` best structures are re-scored
on the held-out seeds (on another namespace of inputs) and loss #1, the pick, is the best
held-out score. A target counts as *recovered* when the pick matches the target's field
with cosine >= 0.99 on fresh inputs (a larger draw from a namespace no seed uses, without
noise), and as recovered *exactly* when their canonical hashes are equal. Three more
shares locate a failure: *best* (the search's best by search fitness would have been
recovered), *top* (one of the re-scored losses would) and *found* (one of all trained
candidates would): found but not picked is a selection failure (noise), not found an
exploration failure.

Each arm (search settings x noise, :data:`ARMS`) runs the real
:class:`discover.search.Search` on the same targets, side by side in one run; the budget
is stated in training runs ((candidate, seed) evaluations) per search. Prints a table and
the wall time; writes ``results/benchmarks/planted.txt``.

    python benchmarks/planted.py [--targets 10] [--runs default@0,default@10,robust@10]
                                 [--generations 6,10] [--population 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import os
import platform
import tempfile
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from evaluators.interface import Evaluation, encode
from grammar import derivation, interpreter, symbolic
from grammar.expr import Expr, to_text
from grammar.language import Grammar
from grammar.primitives import TERMINALS
from grammar.relatives import field_cosine

RECOVERED = 0.99                  # field cosine on fresh inputs that counts as recovered
FRESH = 0x5EED_F2E5               # the fresh inputs' namespace: no seed's draw comes from it
FRESH_PAIRS = 4096
CHUNK = 64                        # rows per compiled call: one compilation for any population


# --------------------------------------------------------------------------- inputs
def draw_pairs(rng: np.random.Generator, n: int, at_reference: bool = False) -> dict[str, np.ndarray]:
    """``n`` pairs of token-task-like terminals (float64, (n,) each).

    Lengths (tokens + EOS) are uniform on 2..33; the reference's mean log-likelihood per
    token is uniform on [-3, -0.3]; the policy moves each response's mean log-likelihood
    by a shift shared by the pair, N(0, 0.2), plus its own, N(0, 0.3), kept below -0.01
    (a probability). Margins r_w - r_l then have SD about 9 (5-95% range about +-14), where
    links differ; t is uniform on [0, 1]. ``at_reference``: logp_y = ref_y (the gates' inputs).
    """
    lengths = rng.integers(2, 34, size=(2, n)).astype(float)
    ref_mean = rng.uniform(-3.0, -0.3, size=(2, n))
    move = rng.normal(0.0, 0.2, size=n) + rng.normal(0.0, 0.3, size=(2, n))
    mean = ref_mean if at_reference else np.minimum(ref_mean + move, -0.01)
    return {"logp_w": lengths[0] * mean[0], "logp_l": lengths[1] * mean[1],
            "ref_w": lengths[0] * ref_mean[0], "ref_l": lengths[1] * ref_mean[1],
            "len_w": lengths[0], "len_l": lengths[1], "t": rng.uniform(0.0, 1.0, n)}


@functools.partial(jax.jit, static_argnames="mode")
def _fields(programs, consts, terms, mode):
    """(M, 2, N) per-pair gradients d loss_i / d(logp_w_i, logp_l_i) of M (program, constants,
    (T, N) terminals) rows."""
    def one(row):
        p, c, tm = row
        return jax.grad(lambda x: interpreter.evaluate(p, x, c, mode).sum())(tm)[:2]

    if mode == "switch":  # never vmap a switch (interpreter's docstring)
        return jax.lax.map(one, (programs, consts, terms))
    return jax.vmap(one)((programs, consts, terms))


def gradient_fields(programs: Sequence[interpreter.Program], consts: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """(M, 2, N) float64 gradient fields of M programs, row m on ``terms[m]`` ((M, T, N)),
    in chunks of :data:`CHUNK` rows (padded with the first: one compiled shape)."""
    out = []
    mode = interpreter.default_mode()
    for start in range(0, len(programs), CHUNK):
        part = list(range(start, min(start + CHUNK, len(programs))))
        rows = part + [part[0]] * (CHUNK - len(part))
        stacked = interpreter.stack([programs[i] for i in rows])
        g = _fields(stacked, jnp.asarray(consts[rows], jnp.float32), jnp.asarray(terms[rows], jnp.float32), mode)
        out.append(np.asarray(g, np.float64)[: len(part)])
    return np.concatenate(out)


def _terms(pairs: dict[str, np.ndarray]) -> np.ndarray:
    """(T, N) terminals in the interpreter's order."""
    return np.stack([pairs[name] for name in TERMINALS])


# --------------------------------------------------------------------------- the evaluator
@dataclasses.dataclass(frozen=True)
class PlantedConfig:
    pairs: int = 256          # pairs per seed's input draw
    noise: float = 0.0        # SD of the Gaussian noise on each per-seed score (fitness points)
    noise_seed: int = 0       # picks the noise draws (and nothing else)
    input_seed: int = 0       # picks the seeds' input draws
    program_length: int = 96
    n_constants: int = 8


class PlantedEvaluator:
    """Fitness = 100 x field cosine with a hidden target loss (module docstring), per seed.

    Implements :class:`evaluators.interface.Evaluator`. ``runs`` counts the (candidate,
    seed) evaluations asked of it: the budget a search spent.
    """

    name = "planted"
    reference_label = "zero loss"
    abilities = frozenset()  # none of the optional ones

    def __init__(self, target: Expr, target_constants: dict[str, float], config: PlantedConfig = PlantedConfig()):
        self.config = config
        self.target, self.target_constants = target, dict(target_constants)
        self.program_shape = interpreter.ProgramShape(config.program_length, config.n_constants)
        self._target_program, self._target_consts = encode([target], [target_constants], self.program_shape)
        self._inputs: dict[tuple, np.ndarray] = {}
        self._target_fields: dict[tuple, np.ndarray] = {}
        self.runs = 0

    def inputs(self, seed: int, eval_seed: int | None = None) -> np.ndarray:
        """(T, N) terminals of seed ``seed``'s draw (``eval_seed``: another namespace)."""
        key = (int(seed), eval_seed)
        if key not in self._inputs:
            parts = [self.config.input_seed, int(seed)] + ([] if eval_seed is None else [int(eval_seed)])
            self._inputs[key] = _terms(draw_pairs(np.random.default_rng(parts), self.config.pairs))
        return self._inputs[key]

    def target_field(self, key: tuple, terms: np.ndarray) -> np.ndarray:
        if key not in self._target_fields:
            self._target_fields[key] = gradient_fields(self._target_program, self._target_consts, terms[None])[0]
        return self._target_fields[key]

    def noise(self, expr: Expr, constants: dict, seed: int, eval_seed: int | None = None) -> float:
        """This (candidate, seed)'s noise: the same whenever that run is repeated."""
        if not self.config.noise:
            return 0.0
        text = to_text(expr) + "|" + ",".join(f"{k}={float(v)!r}" for k, v in sorted(constants.items()))
        h = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        parts = [self.config.noise_seed, int(seed), h] + ([] if eval_seed is None else [int(eval_seed)])
        return float(np.random.default_rng(parts).normal(0.0, self.config.noise))

    def evaluate(self, exprs: Sequence[Expr], constants: Sequence[dict], seeds, *,
                 eval_seed: int | None = None) -> Evaluation:
        t0 = time.perf_counter()
        P = len(exprs)
        seeds = np.asarray(seeds)
        seeds = np.broadcast_to(seeds, (P, seeds.shape[0])) if seeds.ndim == 1 else seeds
        S = seeds.shape[1]
        programs, consts = encode(exprs, constants, self.program_shape)
        rows = [(p, s) for p in range(P) for s in range(S)]
        terms = np.stack([self.inputs(seeds[p, s], eval_seed) for p, s in rows])
        fields = gradient_fields([programs[p] for p, _ in rows], consts[[p for p, _ in rows]], terms)
        per_seed = np.zeros((P, S))
        bad = np.zeros(P, bool)
        for m, (p, s) in enumerate(rows):
            if not np.all(np.isfinite(fields[m])):
                bad[p] = True
                continue
            key = (int(seeds[p, s]), eval_seed)
            per_seed[p, s] = 100 * field_cosine(fields[m], self.target_field(key, terms[m]))
            per_seed[p, s] += self.noise(exprs[p], constants[p], seeds[p, s], eval_seed)
        self.runs += P * S
        reasons = ["non-finite gradient on the planted inputs" if b else None for b in bad]
        return Evaluation(per_seed, reasons, timing={"train_s": time.perf_counter() - t0, "score_s": 0.0})

    def terminal_sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        pairs = draw_pairs(rng, n, at_reference=True)
        return {k: pairs[k] for k in ("logp_w", "logp_l", "ref_w", "ref_l", "len_w", "len_l")}

    def baseline(self) -> tuple[float, float]:
        return 0.0, 0.0  # a zero loss has no gradient field: cosine 0

    def describe(self) -> dict:
        return {"evaluator": self.name, "target": to_text(self.target), "target_constants": self.target_constants,
                "config": dataclasses.asdict(self.config)}

    def fresh_cosines(self, exprs: Sequence[Expr], constants: Sequence[dict]) -> list[float]:
        """Noise-free field cosines with the target on :data:`FRESH_PAIRS` fresh pairs (nan:
        a non-finite gradient), computed in blocks of ``pairs`` (the compiled shape)."""
        rng = np.random.default_rng([FRESH, self.config.input_seed])
        blocks = [_terms(draw_pairs(rng, self.config.pairs)) for _ in range(FRESH_PAIRS // self.config.pairs)]
        K = len(blocks)
        programs, consts = encode([self.target, *exprs], [self.target_constants, *constants], self.program_shape)
        rows = [(p, k) for p in range(len(programs)) for k in range(K)]
        f = gradient_fields([programs[p] for p, _ in rows], consts[[p for p, _ in rows]],
                            np.stack([blocks[k] for _, k in rows])).reshape(len(programs), K, 2, -1)
        return [field_cosine(f[p], f[0]) if np.all(np.isfinite(f[p])) else float("nan")
                for p in range(1, len(programs))]


# --------------------------------------------------------------------------- targets
@dataclasses.dataclass(frozen=True)
class Target:
    derivation: str
    expr: Expr
    constants: dict[str, float]
    hash: str


def draw_targets(grammar: Grammar, n: int, rng: np.random.Generator, config: PlantedConfig = PlantedConfig(),
                 tries: int = 1000) -> list[Target]:
    """``n`` distinct random targets: valid derivations of random depth (grow or full), each
    constant uniform on its own scale within its bounds. A draw is discarded if its
    structure is a grammar seed's (the search starts from those), it does not fit the
    program shape, its loss or gradient is not finite on the search's probe inputs (the
    search could never train it), or its gradient field is zero or not finite."""
    from discover.gates import ProbeGate
    from discover.search import SearchConfig

    seeds = {symbolic.canonical_hash(derivation.expand(grammar, derivation.parse_derivation(grammar, text)))
             for text in grammar.seeds.values()}
    lo, hi = grammar.min_depth[grammar.start], grammar.limits.max_depth
    probe = None
    out: list[Target] = []
    for _ in range(n * tries):
        if len(out) == n:
            return out
        node = derivation.random_node(grammar, rng, max_depth=int(rng.integers(lo, hi + 1)),
                                      method=str(rng.choice(["grow", "full"])))
        expr = derivation.expand(grammar, node)
        if derivation.check(grammar, node, expr) is not None:
            continue
        constants = {c: grammar.constants[c].from_unit(rng.uniform()) for c in expr.constants}
        h = symbolic.canonical_hash(expr)
        if h in seeds or any(t.hash == h for t in out):
            continue
        try:
            ev = PlantedEvaluator(expr, constants, config)
        except interpreter.ProgramTooLong:
            continue
        probe = probe or ProbeGate(ev, 1, SearchConfig.probe_margin)
        if probe.reasons([expr], [constants])[0] is not None:
            continue
        field = ev.target_field((0, None), ev.inputs(0))
        if np.all(np.isfinite(field)) and np.abs(field).max() > 0:
            out.append(Target(derivation.to_text(node), expr, constants, h))
    if len(out) == n:
        return out
    raise RuntimeError(f"{len(out)} usable targets in {n * tries} draws")


# --------------------------------------------------------------------------- one search
@functools.lru_cache(maxsize=100_000)
def _memo_canonical_hash(expr: Expr) -> str:
    return _CANONICAL_HASH(expr)


_CANONICAL_HASH = symbolic.canonical_hash


def run_search(grammar: Grammar, target: Target, search_config, planted_config: PlantedConfig) -> dict:
    """One search for ``target`` (in a temporary run folder), then the held-out re-scoring of
    its hall of fame as ``discover run`` ends (``final_top`` losses on the held-out seeds);
    its pick, loss #1 (the best held-out score), judged on fresh inputs without noise.

    Canonical hashes are memoised across searches (a pure function of the expression: the
    search's choices are unchanged, sympy's time is not spent twice on one expression)."""
    from unittest import mock

    from discover.search import Search
    from discover.store import RunStore

    evaluator = PlantedEvaluator(target.expr, target.constants, planted_config)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(symbolic, "canonical_hash", _memo_canonical_hash):
        store = RunStore.create(tmp, "planted", {"search": search_config.to_dict()}, grammar.path)
        search = Search(grammar, evaluator, search_config, store)
        search.run()
        search_runs = evaluator.runs
        final = search.final_evaluation(log=lambda m: None)
    seconds = time.perf_counter() - t0
    trained = [r for r in search.cache.values() if r.get("trained") and not r.get("reason")]
    rows = [r for r in final["rows"] if r["kind"] == "discovered" and r["fitness"] is not None]
    pick = search.cache[max(rows, key=lambda r: r["fitness"])["key"]]
    top = [search.cache[r["key"]] for r in rows]
    others = {rule: search.cache[max(rows, key=lambda r: fn(r, search.cache[r["key"]]))["key"]]
              for rule, fn in PICKS.items()}
    chosen = [pick, search.best()] + top + trained + list(others.values())
    cosines = evaluator.fresh_cosines([search.from_record(r).expr for r in chosen], [r["constants"] for r in chosen])
    recovered = [bool(c >= RECOVERED) for c in cosines]  # nan (non-finite on fresh inputs): not recovered
    n_top = 2 + len(top)
    picks = dict(zip(PICKS, recovered[n_top + len(trained):]))
    return {"cosine": cosines[0], "recovered": recovered[0], "exact": pick["hash"] == target.hash,
            "best": recovered[1], "top": any(recovered[2:n_top]), "found": any(recovered[n_top:n_top + len(trained)]),
            "found_exact": any(r["hash"] == target.hash for r in trained),
            "picks": picks, "top_cosines": cosines[2:n_top],
            "fitness": pick["fitness"], "seeds": len(pick["per_seed"]),
            "runs": search_runs + len(top) * len(search_config.holdout_seeds), "search_runs": search_runs,
            "seconds": seconds, "pick": symbolic.text(search.from_record(pick).expr)}


def _pooled(row: dict, rec: dict) -> float:
    """A re-scored loss's mean over every score it has: its held-out seeds (``row``) and its
    search seeds (``rec``, its candidate record)."""
    scores = [v for v in list(rec.get("per_seed") or []) + list(row["per_seed"]) if v is not None]
    return float(np.mean(scores))


# Other rules for choosing loss #1 among the re-scored losses, judged on the same searches
# (the table's "recovered" is the held-out rule, as `discover run` numbers its losses).
PICKS = {
    "pooled": _pooled,  # the search seeds chose these losses: their scores carry the winner's curse
}


# --------------------------------------------------------------------------- arms and table
# Search settings compared (overrides of SearchConfig's defaults, the defaults of `discover run`).
ARMS: dict[str, dict] = {
    "default": {},
    "reeval": {"reevaluate": 7, "max_seeds": 24},
    "holdout20": {"holdout_seeds": tuple(range(100, 120))},
    "robust": {"reevaluate": 7, "max_seeds": 24, "holdout_seeds": tuple(range(100, 120))},
    "final10": {"final_top": 10},
    "no-halving": {"halving": False},
    "cma_es": {"es": "cma_es"},
    "es-center": {"es_center": True, "es_popsize": 3},  # as many constant-search candidates as the default
}


def parse_runs(text: str, generations: int) -> list[tuple[str, float, int]]:
    """``ARM@NOISE[@GENERATIONS],...`` -> [(arm, noise, generations), ...]."""
    out = []
    for item in text.split(","):
        arm, *rest = item.strip().split("@")
        noise, gens = (rest + ["0", str(generations)][len(rest):])[:2]
        if arm not in ARMS:
            raise SystemExit(f"unknown arm {arm!r}; choose {', '.join(ARMS)}")
        out.append((arm, float(noise), int(gens)))
    return out


def _shown(value) -> str:
    """A setting as the table's legend shows it (a run of consecutive seeds as ``a..b``)."""
    if isinstance(value, tuple) and len(value) > 2 and list(value) == list(range(value[0], value[-1] + 1)):
        return f"{value[0]}..{value[-1]}"
    return str(value)


def summary(results: list[dict]) -> dict:
    n = len(results)
    mean = lambda k: float(np.mean([r[k] for r in results]))  # noqa: E731
    return {"n": n, "recovered": mean("recovered"), "exact": mean("exact"), "found": mean("found"),
            "best": mean("best"), "top": mean("top"), "cosine": float(np.nanmedian([r["cosine"] for r in results])),
            "runs": mean("runs"), "seconds": mean("seconds"),
            **{rule: float(np.mean([r["picks"][rule] for r in results])) for rule in PICKS}}


def main():
    from discover.search import SearchConfig
    from grammar import load as load_grammar

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammar", default="mirror.yaml")
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--target-seed", type=int, default=0)
    ap.add_argument("--runs", default="default@0@12,default@10@12,robust@10@12,no-halving@10@8,default@0@6",
                    help=f"ARM@NOISE[@GENERATIONS],... (arms: {', '.join(ARMS)})")
    ap.add_argument("--generations", type=int, default=SearchConfig.generations,
                    help="generations where a run does not say")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=PlantedConfig.pairs)
    ap.add_argument("--output", default="results/benchmarks/planted.txt")
    ap.add_argument("--json", default=None, help="also write every search's result here")
    args = ap.parse_args()

    jax.config.update("jax_compilation_cache_dir", os.path.abspath(".cache/jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

    started = time.perf_counter()
    g = load_grammar(args.grammar)
    targets = draw_targets(g, args.targets, np.random.default_rng(args.target_seed), PlantedConfig(pairs=args.pairs))
    lines = [f"$ python benchmarks/planted.py --targets {args.targets} --target-seed {args.target_seed} --runs "
             f"{args.runs} --population {args.population} --output {args.output}"
             + (f" --json {args.json}" if args.json else ""),
             time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()),
             f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} "
             f"({jax.default_backend()})",
             f"{len(targets)} targets drawn from {g.name} (target seed {args.target_seed}); fitness per seed = 100 x "
             f"field cosine on {args.pairs} pairs (+ noise); recovered: the pick's cosine >= {RECOVERED} on "
             f"{FRESH_PAIRS} fresh pairs", ""]
    for i, t in enumerate(targets):
        constants = ", ".join(f"{k}={v:.3g}" for k, v in t.constants.items())
        lines.append(f"  target {i}: {symbolic.text(t.expr)}  {{{constants}}}")
    lines.append("")
    for line in lines:
        print(line, flush=True)
    def write(text_lines: list[str]) -> None:
        if args.output:
            os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
            with open(args.output, "w") as f:
                f.write("\n".join(text_lines) + "\n")

    def write_json(results: list[dict]) -> None:
        if args.json:
            import json
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1, default=float)

    header = (f"{'arm':<11} {'noise':>5} {'pop':>4} {'gens':>4} {'runs':>6} {'recovered':>9} {'exact':>6} "
              f"{'best':>5} {'top':>5} {'found':>6} {'med cos':>8} {'s/search':>9}"
              + "".join(f" {rule:>7}" for rule in PICKS))
    table, every = [header], []
    print(header, flush=True)
    for arm, noise, gens in parse_runs(args.runs, args.generations):
        cfg = dataclasses.replace(SearchConfig(), population=args.population, generations=gens, **ARMS[arm])
        pc = PlantedConfig(pairs=args.pairs, noise=noise)
        results = []
        for i, t in enumerate(targets):
            r = run_search(g, t, cfg, pc)
            # Each search compiles its own gates and strategies; without this a long run's compiled
            # code accumulates until LLVM cannot allocate memory (seen after about 40 searches).
            jax.clear_caches()
            results.append(r)
            every.append({"arm": arm, "noise": noise, "generations": gens, "target": i, **r})
        s = summary(results)
        row = (f"{arm:<11} {noise:>5g} {args.population:>4} {gens:>4} {s['runs']:>6.0f} "
               f"{s['recovered']:>9.0%} {s['exact']:>6.0%} {s['best']:>5.0%} {s['top']:>5.0%} {s['found']:>6.0%} "
               f"{s['cosine']:>8.3f} {s['seconds']:>9.1f}" + "".join(f" {s[rule]:>7.0%}" for rule in PICKS))
        table.append(row)
        print(row, flush=True)
        write(lines + table + ["(running)"])  # a crash or a stop keeps the rows so far
        write_json(every)
    wall = time.perf_counter() - started
    notes = ["",
             "recovered: loss #1 (best held-out score after the final re-scoring, as `discover run` numbers it) has",
             f"  field cosine >= {RECOVERED} with the target on fresh inputs; exact: same canonical hash as the",
             "  target;",
             "  best: the search's best by search fitness would have been recovered; top: one of the final_top",
             "  losses re-scored on held-out seeds would; found: one of all trained candidates would;",
             "  runs: (candidate, seed) evaluations per search, the held-out re-scoring of its losses included",
             "  (not that of the zoo baselines, which is for reports); med cos: median fresh cosine of loss #1.",
             "other rules for loss #1, on the same searches (share recovered):",
             "  pooled: the re-scored loss with the best mean over all its scores, search and held-out seeds.",
             "arms (SearchConfig's defaults but for population, generations and):",
             *[f"  {arm}: {', '.join(f'{k}={_shown(v)}' for k, v in over.items()) or 'none'}"
               for arm, over in ARMS.items() if arm in {a for a, _, _ in parse_runs(args.runs, args.generations)}],
             f"wall time {wall / 60:.1f} min"]
    for line in notes:
        print(line)
    write(lines + table + notes)
    write_json(every)


if __name__ == "__main__":
    main()
