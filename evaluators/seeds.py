"""Every seed namespace of the project, in one place, checked disjoint at import.

Two kinds of seeds never meet: *training* seeds (a run's initialisation noise and batch
order) and *start-state* seeds (the initial states a trained policy is scored from).
Within each kind the namespaces below are disjoint, so a loss is never selected, tuned
and compared on the same draws.
"""

from __future__ import annotations

# Training seeds.
SEARCH_TRAIN = (0, 1, 2)                    # every candidate of a search (one run per search dataset)
HOLDOUT_TRAIN = (100, 101, 102, 103, 104)   # the search's final re-scoring
BENCH_TRAIN_BASE = 1000                     # discover bench: 1000, 1001, ... (up to 999 seeds)
TUNE_TRAIN = (2000, 2001, 2002, 2003)       # tuning the baselines' constants (a study's tuning: 2000, 2001, ...)
TUNE_TRAIN_END = 2100                       # the tuning namespace ends here
REEVAL_TRAIN_BASE = 10_000                  # elites re-trained on fresh seeds: 10000 + generation x S + i

# Dataset seeds (each brings its own segments and its own reference).
SEARCH_DATA = (0, 1, 2)                     # the search's datasets (v1 runs used data seed 0 alone)
TUNE_DATA = 50                              # tuning the baselines' constants
TUNE_DATA_SEEDS = (50, 51, 52)              # a study's tuning datasets (discover.tuning)
BENCH_DATA_BASE = 100                       # held-out datasets of benches and comparisons: 100, 101, ...
CONFOUND_DATA = tuple(range(300, 305))      # study v3's confound checks (results/study_v3/CONFOUNDS.md)
STUDY_HELD_OUT = tuple(range(400, 420))     # study v3's held-out datasets (results/study_v3/PLAN.md)

# Start-state seeds.
SEARCH_EVAL = 10_000
BENCH_EVAL = 555_000
TUNE_EVAL = 666_000
HOLDOUT_EVAL = 777_000

_TRAIN_RANGES = {
    "search": (min(SEARCH_TRAIN), max(SEARCH_TRAIN) + 1),
    "holdout": (min(HOLDOUT_TRAIN), max(HOLDOUT_TRAIN) + 1),
    "bench": (BENCH_TRAIN_BASE, BENCH_TRAIN_BASE + 999),
    "tune": (min(TUNE_TRAIN), TUNE_TRAIN_END),
    "reeval": (REEVAL_TRAIN_BASE, 10**9),
}


def _check_disjoint() -> None:
    spans = sorted(_TRAIN_RANGES.values())
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a1 <= b0, f"training seed namespaces overlap: [{a0}, {a1}) and [{b0}, {b1})"
    assert max(SEARCH_DATA) < TUNE_DATA < BENCH_DATA_BASE, "dataset seed namespaces overlap"
    assert max(SEARCH_DATA) < min(TUNE_DATA_SEEDS) and max(TUNE_DATA_SEEDS) < BENCH_DATA_BASE, \
        "dataset seed namespaces overlap"
    evals = [SEARCH_EVAL, BENCH_EVAL, TUNE_EVAL, HOLDOUT_EVAL]
    assert len(set(evals)) == len(evals), "start-state seed namespaces overlap"


def bench_data(n: int, base: int = BENCH_DATA_BASE) -> list[int]:
    """The dataset seeds of a bench over ``n`` datasets (held out from search and tuning)."""
    if n < 1:
        raise ValueError(f"a bench takes at least one dataset, not {n}")
    out = [base + i for i in range(n)]
    if set(SEARCH_DATA) & set(out) or set(TUNE_DATA_SEEDS) & set(out):
        raise ValueError(f"dataset seeds {_span(out)} include the search's ({_span(SEARCH_DATA)}) or the "
                         f"tuning's ({_span(TUNE_DATA_SEEDS)})")
    return out


def _span(seeds) -> str:
    """``a-b`` for a run of consecutive seeds, else the list."""
    seeds = list(seeds)
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1 \
        else ", ".join(str(s) for s in seeds)


def bench_train(n: int) -> list[int]:
    """The training seeds of a bench with ``n`` seeds."""
    if not 1 <= n <= 999:
        raise ValueError(f"a bench takes 1 to 999 seeds, not {n}")
    return [BENCH_TRAIN_BASE + i for i in range(n)]


_check_disjoint()
