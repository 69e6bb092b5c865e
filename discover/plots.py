"""PNG plots (matplotlib, no display needed)."""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evaluators import atomic  # noqa: E402


def _plain(text) -> str:
    """``text`` drawn as written: matplotlib reads ``$...$`` as mathtext, and a run or loss
    name holding ``$`` (from a run folder) would fail to draw or draw as formulas."""
    return str(text).replace("$", r"\$")


def _save(fig, path: str) -> str:
    try:
        return atomic.write_with(path, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)


def bench_bars(names, means, stds, reference, title: str, path: str, label: str = "BC") -> str:
    """A bar chart of a bench's losses (mean and std, best first) with the reference as a line;
    written to ``path``, which it returns."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4))
    order = sorted(range(len(names)), key=lambda i: -(means[i] if means[i] is not None else -1e9))
    xs = range(len(order))
    vals = [means[i] if means[i] is not None else 0.0 for i in order]
    errs = [stds[i] if stds[i] is not None else 0.0 for i in order]
    colors = ["tab:blue" if means[i] is not None else "tab:gray" for i in order]
    ax.bar(xs, vals, yerr=errs, color=colors, capsize=3)
    ax.axhline(reference, color="tab:orange", ls="--", label=_plain(f"reference ({label}) {reference:.1f}"))
    ax.axhline(100, color="tab:green", ls=":", label="expert = 100")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([_plain(names[i]) for i in order], rotation=45, ha="right")
    ax.set_ylabel("normalised return (mean ± std over seeds)")
    ax.set_title(_plain(title))
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def fitness_over_generations(gens, best, median, path: str, title: str, held_out: dict | None = None,
                             reference: tuple[float, str] | None = None) -> str:
    """Search fitness per generation (best and median), with the held-out scores of a finished
    run (``held_out``: label -> score, e.g. loss 1 and the best baseline) and the reference
    policy's score (``reference``: (score, label)) as horizontal lines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(gens, best, marker="o", label="best (search fitness)")
    ax.plot(gens, median, marker=".", label="median (search fitness)")
    for (label, score), color in zip((held_out or {}).items(), ("tab:green", "tab:purple", "tab:brown")):
        ax.axhline(score, color=color, ls="-.", lw=1, label=_plain(f"{label}: held-out {score:.1f}"))
    if reference is not None:
        ax.axhline(reference[0], color="tab:orange", ls="--", lw=1,
                   label=_plain(f"reference ({reference[1]}) {reference[0]:.1f}"))
    ax.set_xlabel("generation")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("fitness (normalised return)")
    ax.set_title(_plain(title))
    ax.legend(fontsize=8)
    return _save(fig, path)


def pareto(complexities, fitnesses, front, path: str, title: str) -> str:
    """Search fitness against complexity of every scored candidate with the Pareto front;
    written to ``path``, which it returns."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(complexities, fitnesses, s=10, alpha=0.4, label="evaluated")
    if front:
        fx, fy = zip(*sorted(front))
        ax.step(fx, fy, where="post", color="tab:red", marker="o", label="Pareto front")
    ax.set_xlabel("complexity (nodes of the closed form)")
    ax.set_ylabel("fitness (normalised return)")
    ax.set_title(_plain(title))
    ax.legend()
    return _save(fig, path)


def training_curves(steps, curves: dict, reference: float, path: str, title: str, label: str = "BC") -> str:
    """curves: name -> (S, K) normalised scores after each block of steps."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, scores in curves.items():
        scores = np.asarray(scores, float)
        xs = np.concatenate([[0], steps])
        mean = np.concatenate([[reference], np.nanmean(scores, axis=0)])
        std = np.concatenate([[0.0], np.nanstd(scores, axis=0)])
        ax.plot(xs, mean, marker=".", label=_plain(name))
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    ax.axhline(reference, color="tab:orange", ls="--", lw=1, label=_plain(f"reference ({label})"))
    ax.set_xlabel("training step")
    ax.set_ylabel("normalised return (mean ± std over seeds)")
    ax.set_title(_plain(title))
    ax.legend(fontsize=8)
    return _save(fig, path)


def loss_shapes(curves: dict, path: str, title: str) -> str:
    """The shape of each loss against the DPO margin z = r_w - r_l (see
    ``discover.loss_shapes``): its value, its derivative in z, and the weights it puts on the
    chosen and rejected log-likelihood gradients; losses that use training progress t are
    drawn at t = 0, 0.5 and 1. Losses differ in scale by orders of magnitude (IPO's square
    against a log-sigmoid), so each curve is divided by its largest |value| over the drawn
    margins, and the legend gives that scale."""
    import numpy as np

    mirrors = curves.get("mirrors", {}).get("maps")
    fig, axes = plt.subplots(1, 5 if mirrors else 4, figsize=(22 if mirrors else 18, 4.5))
    z = curves["z"]
    panels = (("loss", "loss"), ("dloss_dz", "d loss / d z"), ("weight_w", "weight on ∇ log π(y_w) (-dL/dlogp_w)"),
              ("weight_l", "weight on ∇ log π(y_l) (dL/dlogp_l)"))
    for ax, (key, label) in zip(axes[:4], panels):
        for (name, by_t), color in zip(curves["losses"].items(), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
            for t, values in by_t.items():
                ys = np.array([np.nan if v is None else v for v in values[key]], float)
                scale = np.nanmax(np.abs(ys)) if np.isfinite(ys).any() else 0.0
                style = {"0": ":", "0.5": "--", "1": "-"}.get(t, "-")
                shown = f"{name}" + (f" (t = {t})" if len(by_t) > 1 else "") + (f", / {scale:.3g}" if scale else "")
                ax.plot(z, ys / scale if scale else ys, ls=style, color=color, label=_plain(shown))
        ax.set_xlabel("z = r_w - r_l (nats)")
        ax.set_title(label)
        ax.axhline(0.0, color="black", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper right")
    if mirrors:
        ax = axes[4]
        x = curves["mirrors"]["x"]
        for name, values in mirrors.items():
            ax.plot(x, [float("nan") if v is None else v for v in values], label=_plain(name))
        ax.plot(x, x, color="black", ls=":", lw=1, label="log map m(x) = x")
        ax.set_xlabel("x: mean log-likelihood per step (observed range)")
        ax.set_title("mirror map m(x)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(_plain(title) + "\n(each curve divided by its largest |value| over the margins drawn; the legend "
                 "gives that scale)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
