"""Two arms of the planted-loss benchmark compared target by target (paired).

Reads the ``--json`` outputs of ``benchmarks/planted.py`` (each file one set of targets;
within a file, a target's searches under both arms are a pair) and prints, for loss #1
as ``discover run`` numbers it and for each other pick rule the files hold: how often each
arm recovered the target, the discordant pairs and McNemar's exact test on them, and the
Wilcoxon signed-rank test on the picks' fresh cosines (the same targets, continuous).

    python benchmarks/planted_compare.py default@10 es-center@10 results/benchmarks/planted-*.json
    python benchmarks/planted_compare.py default@10@12 default@10@14 results/benchmarks/planted-2026-12-04.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy import stats


def _runs(rows: list[dict], spec: str, path: str) -> dict[int, dict]:
    """The searches of ``spec`` (ARM@NOISE[@GENERATIONS]) in one file, by target."""
    arm, noise, *gens = spec.split("@")
    hits = [r for r in rows if r["arm"] == arm and r["noise"] == float(noise)
            and (not gens or r["generations"] == int(gens[0]))]
    if len({r["generations"] for r in hits}) > 1:
        raise SystemExit(f"{path} has {spec} at several budgets ({sorted({r['generations'] for r in hits})} "
                         f"generations): say which, as {spec}@GENERATIONS")
    return {r["target"]: r for r in hits}


def pairs(files: list[str], a: str, b: str) -> list[tuple[dict, dict]]:
    """(a's search, b's search) of every target that both arms searched, file by file."""
    out = []
    for path in files:
        with open(path) as f:
            rows = json.load(f)
        ra, rb = _runs(rows, a, path), _runs(rows, b, path)
        out += [(ra[t], rb[t]) for t in sorted(set(ra) & set(rb))]
    return out


def compare(matched: list[tuple[dict, dict]], rule: str | None) -> str:
    """One line: recovery of both arms under ``rule`` (None: loss #1), McNemar and Wilcoxon."""
    get = (lambda r: r["recovered"]) if rule is None else (lambda r: r["picks"][rule])  # noqa: E731
    x = np.array([[get(ra), get(rb)] for ra, rb in matched], bool)
    only_a, only_b = int(np.sum(x[:, 0] & ~x[:, 1])), int(np.sum(~x[:, 0] & x[:, 1]))
    n = len(matched)
    p = stats.binomtest(only_b, only_a + only_b).pvalue if only_a + only_b else 1.0
    line = (f"{rule or 'loss #1':<8} {x[:, 0].mean():>13.0%} {x[:, 1].mean():>13.0%}   discordant {only_a} vs {only_b}, "
            f"McNemar exact p {p:.3f}")
    if rule is None:
        ca = np.array([ra["cosine"] for ra, _ in matched], float)
        cb = np.array([rb["cosine"] for _, rb in matched], float)
        ok = np.isfinite(ca) & np.isfinite(cb)
        w = stats.wilcoxon(cb[ok], ca[ok])
        line += (f"; fresh cosine of loss #1, median {np.median(ca[ok]):.3f} vs {np.median(cb[ok]):.3f}, "
                 f"Wilcoxon p {w.pvalue:.3f} ({int(ok.sum())} of {n} pairs finite)")
    return line


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="ARM@NOISE[@GENERATIONS], e.g. default@10")
    ap.add_argument("b", help="ARM@NOISE[@GENERATIONS], e.g. es-center@10")
    ap.add_argument("files", nargs="+", help="planted.py --json outputs")
    args = ap.parse_args(argv)
    matched = pairs(args.files, args.a, args.b)
    if not matched:
        raise SystemExit(f"no target searched under both {args.a} and {args.b} in {', '.join(args.files)}")
    rules = sorted(set.intersection(*(set(r.get("picks", {})) for pair in matched for r in pair)))
    print(f"{args.a} vs {args.b}: {len(matched)} targets, each searched under both")
    print(f"{'rule':<8} {args.a:>13} {args.b:>13}")
    for rule in [None, *rules]:
        print(compare(matched, rule))


if __name__ == "__main__":
    main()
