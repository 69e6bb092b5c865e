"""Tables of the study v3 confound checks (confounds_lm.sh, confounds_walker.sh), in Markdown.

Every interval treats the dataset as the unit: a loss's (or a paired difference's) mean
over the seeds of each dataset, then a t interval over the datasets (scipy.stats). Run
from the repository root: python results/study_v3/confounds_tables.py
"""

from __future__ import annotations

import glob
import json
import os
import re

import numpy as np
from scipy import stats

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def benches(task: str) -> list[tuple[int, float, dict]]:
    """(steps, learning rate, results) of each finished confound bench of ``task``, by steps then lr."""
    out = []
    for path in glob.glob(os.path.join(RESULTS, f"v3-confound-{task}-s*-lr*", "results.json")):
        m = re.search(r"-s(\d+)-lr([0-9.e-]+)/results\.json$", path)
        with open(path) as f:
            out.append((int(m.group(1)), float(m.group(2)), json.load(f)))
    return sorted(out, key=lambda b: (b[0], b[1]))


def label(row: dict) -> str:
    """A row's name without its tuned constants (they differ between recipes)."""
    return f"{row['base']} (tuned)" if row["variant"] == "tuned" else row["name"]


def per_dataset(row: dict, n_data: int) -> np.ndarray:
    return np.asarray(row["per_seed"], float).reshape(n_data, -1).mean(axis=1)


def interval(x: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, 95% t interval over the datasets, and the two-sided p of mean 0."""
    m, se = float(np.mean(x)), float(stats.sem(x))
    h = se * float(stats.t.ppf(0.975, len(x) - 1))
    p = float(stats.ttest_1samp(x, 0.0).pvalue) if se > 0 else float("nan")
    return m, m - h, m + h, p


def score_table(task: str) -> str:
    bs = benches(task)
    names = list(dict.fromkeys(label(r) for _, _, d in bs for r in d["losses"]))
    head = "| loss | " + " | ".join(f"{s} steps, lr {lr:g}" for s, lr, _ in bs) + " |"
    lines = [head, "|---" * (len(bs) + 1) + "|"]
    for n in names:
        cells = []
        for _, _, d in bs:
            row = next((r for r in d["losses"] if label(r) == n), None)
            if row is None or row["fitness"] is None:
                cells.append("-")
                continue
            m, lo, hi, _ = interval(per_dataset(row, len(d["data_seeds"])))
            cells.append(f"{m:.1f} [{lo:.1f}, {hi:.1f}]")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diagnostic_table(task: str) -> str:
    """KL(policy || reference) and the greedy-decoding score, where the benches report them."""
    bs = [b for b in benches(task) if any("kl" in r for r in b[2]["losses"])]
    if not bs:
        return ""
    names = list(dict.fromkeys(label(r) for _, _, d in bs for r in d["losses"]))
    lines = ["| loss | " + " | ".join(f"{s} steps, lr {lr:g}" for s, lr, _ in bs) + " |",
             "|---" * (len(bs) + 1) + "|"]
    for n in names:
        cells = []
        for _, _, d in bs:
            row = next((r for r in d["losses"] if label(r) == n), None)
            ok = row is not None and row.get("kl", {}).get("mean") is not None
            cells.append(f"{row['kl']['mean']:.2f} / {row['greedy']['mean']:.1f}" if ok else "-")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def difference_table(task: str, pairs: list[tuple[str, str]]) -> str:
    lines = ["| recipe | " + " | ".join(f"{a} - {b}" for a, b in pairs) + " |", "|---" * (len(pairs) + 1) + "|"]
    for steps, lr, d in benches(task):
        rows = {label(r): r for r in d["losses"]}
        cells = []
        for a, b in pairs:
            if a not in rows or b not in rows or rows[a]["fitness"] is None or rows[b]["fitness"] is None:
                cells.append("-")
                continue
            n = len(d["data_seeds"])
            m, lo, hi, p = interval(per_dataset(rows[a], n) - per_dataset(rows[b], n))
            cells.append(f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}], p {p:.2g}")
        lines.append(f"| {steps} steps, lr {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recipe_effect(task: str) -> str:
    """Each loss's change from one recipe to the next of the same steps (the same datasets
    and seeds), dataset-level."""
    bs = benches(task)
    steps_pairs = [(a, b) for a, b in zip(bs, bs[1:]) if a[0] == b[0]]
    if not steps_pairs:
        return ""
    names = list(dict.fromkeys(label(r) for _, _, d in bs for r in d["losses"]))
    lines = ["| loss | " + " | ".join(f"lr {a[1]:g} -> {b[1]:g} ({a[0]} steps)" for a, b in steps_pairs) + " |",
             "|---" * (len(steps_pairs) + 1) + "|"]
    for n in names:
        cells = []
        for (_, _, da), (_, _, db) in steps_pairs:
            ra = next((r for r in da["losses"] if label(r) == n), None)
            rb = next((r for r in db["losses"] if label(r) == n), None)
            if ra is None or rb is None or ra["fitness"] is None or rb["fitness"] is None:
                cells.append("-")
                continue
            k = len(da["data_seeds"])
            m, lo, hi, p = interval(per_dataset(rb, k) - per_dataset(ra, k))
            cells.append(f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def peaks(task: str) -> str:
    """Each loss's best recipe (by mean score) among those run, and its tuned constants."""
    bs = benches(task)
    names = list(dict.fromkeys(label(r) for _, _, d in bs for r in d["losses"]))
    lines = []
    for n in names:
        scored = [(r["fitness"], s, lr, r["constants"]) for s, lr, d in bs for r in d["losses"]
                  if label(r) == n and r["fitness"] is not None]
        if scored:
            f, s, lr, c = max(scored, key=lambda x: x[0])
            consts = ", ".join(f"{k}={v:.3g}" for k, v in c.items())
            lines.append(f"- {n}: {f:.1f} at {s} steps, lr {lr:g}" + (f" ({consts})" if consts else ""))
    return "\n".join(lines)


def tuned(task: str) -> str:
    """The constants that tuning picked at each recipe (it tunes at the bench's own recipe)."""
    lines = []
    for steps, lr, d in benches(task):
        if d.get("tuned"):
            picked = "; ".join(f"{n} " + ", ".join(f"{k}={v:.3g}" for k, v in c.items()) for n, c in d["tuned"].items())
            lines.append(f"- {steps} steps, lr {lr:g}: {picked}")
    return "\n".join(lines)


if __name__ == "__main__":
    for task, pairs in (("lm", [("v2-lm-mixed#1", "discopop (tuned)"), ("v2-lm-mixed#1 @ t=1", "discopop (tuned)"),
                                ("dpo (tuned)", "discopop (tuned)"), ("v2-lm-mixed#1", "v2-lm-mixed#1 @ t=1")]),
                        ("walker2d", [("v2-walker2d-mixed#1", "sft_to_dpo"), ("v2-walker2d-mixed#1", "apo_zero"),
                                      ("v2-walker2d-mixed#1", "dpo_tsallis"),
                                      ("dpo_tsallis", "dpo"), ("dpo_tsallis (alpha=2)", "dpo"),
                                      ("apo_zero", "sft_to_dpo")])):
        if not benches(task):
            continue
        print(f"## {task}\n\nScore, mean [95% t interval over datasets]:\n\n{score_table(task)}\n")
        diag = diagnostic_table(task)
        if diag:
            print(f"KL(policy || reference) / greedy-decoding score:\n\n{diag}\n")
        print(f"Paired differences, dataset-level:\n\n{difference_table(task, pairs)}\n")
        if recipe_effect(task):
            print(f"Change with the learning rate, dataset-level:\n\n{recipe_effect(task)}\n")
        print(f"Best recipe of each loss:\n\n{peaks(task)}\n")
        if tuned(task):
            print(f"Tuned constants:\n\n{tuned(task)}\n")
