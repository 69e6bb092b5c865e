"""`discover report`: a markdown report built only from committed results.

The spec (YAML) names the searches and the comparison benches::

    title: ...
    intro: results/report_intro.md          # optional, included verbatim
    discussion: results/report_discussion.md  # optional, included verbatim
    searches:
      - {label: "noisy, eps 0.2", run: hopper-noisy02, bench: cmp-hopper-noisy02}
    transfer: [cmp-hopper-noisy02, cmp-hopper-mixed, cmp-walker2d-noisy02]

Every number in the report is read from ``results/<dir>/results.json`` (benches) and
``results/<run>/final.json`` (searches); rerunning the commands in ``results/README.md``
and then ``discover report`` regenerates it.
"""

from __future__ import annotations

import os

import yaml

from discover.errors import RunError
from discover.rows import t_frozen, variant_of
from discover.store import RunStore


def _load_bench(results_dir: str, name: str) -> dict:
    path = os.path.join(results_dir, name, "results.json")
    if not os.path.exists(path):
        raise RunError(f"bench results missing: {path} (run the discover bench command for {name})")
    import json

    with open(path) as f:
        return json.load(f)


def _fmt_ci(vs: dict | None) -> str:
    if not vs or vs.get("low") is None:
        return ""
    return f"{vs['mean']:+.1f} [{vs['low']:+.1f}, {vs['high']:+.1f}]"


def verdict(row: dict, bench: dict) -> str:
    """A discovered row's verdict against the bench's best baseline, in words, with its
    paired interval and whether it is the same form as a zoo loss."""
    vs = row.get("vs_best_baseline")
    best = bench["best_baseline"]
    n = vs["n"] if vs else 0
    if row["fitness"] is None:
        return f"**No**: it failed to train ({row['reason']})."
    same = (f" The discovered loss has the same form as the zoo's {row['same_form_as']} (constants "
            f"{', '.join(f'{k} = {v:.3g}' for k, v in row['constants'].items())}).") if row.get("same_form_as") else ""
    if not vs or vs.get("low") is None:
        return "No paired comparison (fewer than two seeds)."
    if vs["low"] > 0:
        return (f"**Yes**: it beats the best baseline ({best}) by {vs['mean']:+.1f} points, 95% CI "
                f"[{vs['low']:+.1f}, {vs['high']:+.1f}] over {n} paired seeds.{same}")
    if vs["high"] < 0:
        return (f"**No**: it is worse than the best baseline ({best}) by {-vs['mean']:.1f} points, 95% CI "
                f"[{vs['low']:+.1f}, {vs['high']:+.1f}] over {n} paired seeds.{same}")
    return (f"**Not beyond the seed spread**: difference to the best baseline ({best}) {vs['mean']:+.1f} points, "
            f"95% CI [{vs['low']:+.1f}, {vs['high']:+.1f}] over {n} paired seeds (the interval contains 0).{same}")


def schedule_lines(row: dict, bench: dict) -> list[str]:
    """What the loss's use of training progress t buys: the scheduled loss against the same
    formula with t frozen (rows added by ``discover bench --ablate-t``), paired by seed."""
    from discover.stats import paired_difference

    frozen = [r for r in bench["losses"] if t_frozen(r) and variant_of(r)[0] == row["name"]]
    if not frozen or row["fitness"] is None:
        return []
    parts = []
    for r in frozen:
        if r["fitness"] is None:
            parts.append(f"with {variant_of(r)[1]} it fails to train ({r['reason']})")
            continue
        d = paired_difference(row["per_seed"], r["per_seed"])
        ci = f", 95% CI [{d['low']:+.1f}, {d['high']:+.1f}]" if d.get("low") is not None else ""
        parts.append(f"frozen at {variant_of(r)[1]} it scores {r['fitness']:.1f} ± {r['spread']:.1f} "
                     f"(schedule minus frozen {d['mean']:+.1f}{ci})")
    return ["Schedule: the discovered loss uses training progress t; " + "; ".join(parts) + "."]


def bench_table(bench: dict) -> list[str]:
    """A bench as Markdown table lines: each loss's score, its paired difference to the best
    baseline and its closed form."""
    ref = bench["reference"]
    lines = [f"| loss | normalised return (mean ± std, {len(bench['seeds'])} seeds) | vs {bench['best_baseline']} "
             f"(paired, 95% CI) | closed form |", "|---|---|---|---|",
             f"| reference (BC) | {ref['mean']:.1f} ± {ref['std']:.1f} | | |"]
    rows = sorted(bench["losses"], key=lambda r: -(r["fitness"] if r["fitness"] is not None else -1e9))
    for r in rows:
        name = f"**{r['name']}**" if r["kind"] == "discovered" else r["name"]
        if r.get("same_form_as"):
            name += f" (= {r['same_form_as']} form)"
        score = f"{r['fitness']:.1f} ± {r['spread']:.1f}" if r["fitness"] is not None else f"failed: {r['reason']}"
        form = r["closed_form"].replace("|", "\\|")
        lines.append(f"| {name} | {score} | {_fmt_ci(r.get('vs_best_baseline'))} | `{form}` |")
    return lines


def _setting_label(bench: dict) -> str:
    s = bench["setting"]
    eps = bench["config"]["dataset"]["eps"]
    return f"{bench['task']} {s}" + (f" (eps {eps:g})" if s == "noisy" else "")


def load_spec(spec_path: str) -> dict:
    """A report spec (YAML); a missing or malformed file, or one with YAML aliases (which
    expand without bound when the spec is printed), is a user error."""
    try:
        with open(spec_path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise RunError(f"report spec not found: {spec_path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunError(f"cannot read report spec {spec_path}: {e}") from None
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise RunError(f"report spec {spec_path}: YAML aliases (*name) are not allowed")
        spec = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as e:
        raise RunError(f"report spec {spec_path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise RunError(f"report spec {spec_path} must be a mapping")
    return spec


def build(spec_path: str, results_dir: str = "results") -> str:
    """The v1 report of a spec: intro, a summary table, one section per search, the
    transfer table and the discussion."""
    spec = load_spec(spec_path)
    out = [f"# {spec.get('title', 'Report')}", ""]
    out.append("_Generated by `discover report` from the committed results under `results/`; "
               "the commands that produce them are in `results/README.md`._")
    out.append("")
    if spec.get("intro"):
        with open(spec["intro"]) as f:
            out += [f.read().strip(), ""]
    summary = ["## Summary", "", "| setting | discovered loss | vs best baseline (95% CI) | verdict |",
               "|---|---|---|---|"]
    sections = []
    for s in spec.get("searches", []):
        line, section = _search_section(s, results_dir)
        summary.append(line)
        sections += section
    out += summary + [""] + sections
    if spec.get("transfer"):
        out += _transfer_section([(b, _load_bench(results_dir, b)) for b in spec["transfer"]])
    if spec.get("discussion"):
        with open(spec["discussion"]) as f:
            out += [f.read().strip(), ""]
    return "\n".join(out) + "\n"


def _search_section(s: dict, results_dir: str) -> tuple[str, list[str]]:
    """One search of a v1 spec: its summary-table line and its section."""
    store = RunStore.open(s["run"], results_dir)
    final = store.final()
    bench = _load_bench(results_dir, s["bench"])
    discovered = [r for r in bench["losses"] if r["kind"] == "discovered" and variant_of(r)[1] is None
                  and r["name"].startswith(store.name + "#")]
    if not discovered:
        raise RunError(f"bench {s['bench']} does not include run {store.name} (add --include {store.name})")
    row = discovered[0]
    best_final = sorted([r for r in final["rows"] if r["kind"] == "discovered" and r["fitness"] is not None],
                        key=lambda r: -r["fitness"])[0]
    cfg = store.config()
    sc = cfg["search"]
    uses_t = "t" in row["expression"].replace("(", " ").replace(")", " ").replace("*", " ").split()
    section = [f"## {s['label']}", "",
               f"Search `{store.name}`: grammar `{cfg['grammar_name']}`, {sc['population']} candidates x "
               f"{final.get('generations_run', sc['generations'])} generations, inner seeds "
               f"{sc['inner_seeds']}, wall time {final.get('wall_s', 0) / 60:.1f} min. "
               f"Best by held-out score (its own held-out seeds {final['holdout_seeds']}):", "",
               f"$$\\mathcal{{L}} = {best_final['latex']}$$", "",
               f"constants: {', '.join(f'{k} = {v:.4g}' for k, v in row['constants'].items()) or 'none'}; "
               f"complexity {best_final['complexity']}; uses training progress t: {'yes' if uses_t else 'no'}.",
               "", f"Comparison on fresh seeds ({_setting_label(bench)}, bench `{s['bench']}`):", ""]
    section += bench_table(bench) + ["", f"Verdict: {verdict(row, bench)}", ""] + schedule_lines(row, bench) + [
        "", f"![{s['bench']}]({s['bench']}/bench.png)", ""]
    if os.path.exists(store.file("fitness.png")):
        section += [f"![fitness over generations]({store.name}/fitness.png)", ""]
    if os.path.exists(store.file("loss_shapes.png")):
        section += [f"![loss shapes]({store.name}/loss_shapes.png)", ""]
    line = (f"| {s['label']} | `{row['closed_form']}` | {_fmt_ci(row.get('vs_best_baseline'))} "
            f"vs {bench['best_baseline']} | {verdict(row, bench).split(':')[0]} |")
    return line, section


def _transfer_section(benches: list[tuple[str, dict]]) -> list[str]:
    """Each discovered loss of the transfer benches on every bench: score and paired
    difference to that bench's best baseline."""
    names = []
    for _, b in benches:
        for r in b["losses"]:
            if r["kind"] == "discovered" and r["name"] not in names and not t_frozen(r):
                names.append(r["name"])
    out = ["## Transfer", "",
           "Each discovered loss evaluated on the other settings and tasks (fresh seeds): score, and the "
           "paired difference to that column's best hand-designed loss with its 95% CI.", "",
           "| loss | " + " | ".join(_setting_label(b) for _, b in benches) + " |",
           "|---|" + "---|" * len(benches)]
    for n in names:
        cells = []
        for _, b in benches:
            r = next((r for r in b["losses"] if r["name"] == n), None)
            if r is None or r["fitness"] is None:
                cells.append("-" if r is None else "failed")
            else:
                cells.append(f"{r['fitness']:.1f} ({_fmt_ci(r.get('vs_best_baseline'))})")
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    out.append("| best baseline | " + " | ".join(
        f"{b['best_baseline']} {max(r['fitness'] for r in b['losses'] if r['kind'] == 'zoo' and r['fitness'] is not None):.1f}"
        for _, b in benches) + " |")
    out.append("")
    return out


def bench_summary(bench: dict) -> str:
    """A compact markdown table of a bench: each zoo loss at its constants and tuned."""
    rows = {}
    for r in bench["losses"]:
        if r["kind"] != "zoo":
            continue
        base, variant = variant_of(r)
        rows.setdefault(base, {})["tuned" if variant == "tuned" else "default"] = r
    ref = bench["reference"]
    lines = [f"{_setting_label(bench)}: reference (BC) {ref['mean']:.1f}; expert 100, random actions 0; "
             f"mean ± std over {len(bench['seeds'])} seeds.", "",
             "| loss | at the zoo's constants | tuned constants | tuned score |", "|---|---|---|---|"]

    def key(item):
        best = max((v["fitness"] for v in item[1].values() if v["fitness"] is not None), default=-1e9)
        return -best

    for name, d in sorted(rows.items(), key=key):
        default = d.get("default")
        tuned = d.get("tuned")
        fmt = lambda r: f"{r['fitness']:.1f} ± {r['spread']:.1f}" if r and r["fitness"] is not None else "-"  # noqa: E731
        consts = ", ".join(f"{k}={v:.3g}" for k, v in tuned["constants"].items()) if tuned else "(as default)"
        lines.append(f"| {name} | {fmt(default)} | {consts} | {fmt(tuned)} |")
    return "\n".join(lines) + "\n"
