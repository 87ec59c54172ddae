"""PNG figures of a results dict: latency by engine and threads, the model-agreement
matrix, the |Δp| distributions. matplotlib is imported lazily with the Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hemiface.benchmarks.sections import BenchResults


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(results: BenchResults, out_dir: Path) -> list[Path]:
    """Every plot the results support; returns the files written."""
    written = []
    for name, draw in (
        ("latency.png", plot_latency),
        ("agreement_matrix.png", plot_agreement_matrix),
        ("abs_dp.png", plot_abs_dp),
    ):
        path = Path(out_dir) / name
        if draw(results, path):
            written.append(path)
    return written


def plot_latency(results: BenchResults, path: Path) -> bool:
    rows = [r for r in results.latency.rows if r.status == "ok" and r.median_ms is not None]
    if not rows:
        return False
    plt = _pyplot()
    models = list(dict.fromkeys(r.model for r in rows))
    threads = sorted({r.threads for r in rows})
    fig, axes = plt.subplots(
        1, len(models), figsize=(4.5 * len(models), 4), squeeze=False, sharey=True
    )
    width = 0.8 / len(threads)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in rows if r.model == model]
        engines = list(dict.fromkeys(r.engine_label for r in mine))
        for k, t in enumerate(threads):
            medians = []
            errors = []
            for engine in engines:
                match = [r for r in mine if r.engine_label == engine and r.threads == t]
                medians.append(match[0].median_ms or 0.0 if match else 0.0)
                errors.append(
                    (match[0].p90_ms or 0.0) - (match[0].median_ms or 0.0) if match else 0.0
                )
            xs = [i + (k - (len(threads) - 1) / 2) * width for i in range(len(engines))]
            ax.bar(xs, medians, width, yerr=[[0] * len(errors), errors], label=f"{t} thr")
        ax.set_xticks(range(len(engines)))
        ax.set_xticklabels(engines, rotation=35, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(mine[0].title)
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0][0].set_ylabel("median latency, ms (log; bar to p90)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_agreement_matrix(results: BenchResults, path: Path) -> bool:
    blocks = [b for b in results.agreement.between_models or [] if len(b.ensemble.models) > 1]
    if not blocks:
        return False
    plt = _pyplot()
    titles = results.titles()
    fig, axes = plt.subplots(1, len(blocks), figsize=(3.6 * len(blocks), 3.4), squeeze=False)
    for ax, block in zip(axes[0], blocks, strict=True):
        names = block.ensemble.models
        index = {n: i for i, n in enumerate(names)}
        kappa = [[1.0] * len(names) for _ in names]
        agree = [[1.0] * len(names) for _ in names]
        for pair in block.pairs:
            i, j = index[pair.a], index[pair.b]
            kappa[i][j] = kappa[j][i] = pair.kappa
            agree[i][j] = agree[j][i] = pair.label_agreement
        ax.imshow(kappa, vmin=-1, vmax=1, cmap="RdBu")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(
                    j,
                    i,
                    f"κ {kappa[i][j]:.2f}\n{agree[i][j]:.0%}",
                    ha="center",
                    va="center",
                    fontsize=8,
                )
        labels = [titles.get(n, n) for n in names]
        ax.set_xticks(range(len(names)), labels, fontsize=8)
        ax.set_yticks(range(len(names)), labels, fontsize=8)
        ax.set_title(block.variant, fontsize=9)
    fig.suptitle("Model against model: Cohen's kappa and label agreement", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_abs_dp(results: BenchResults, path: Path) -> bool:
    items = [v for v in results.agreement.vs_source or [] if v.abs_dp]
    if not items:
        return False
    plt = _pyplot()
    titles = results.titles()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(items) + 2), 4))
    # A floor keeps exact zeros visible on the log axis.
    data = [[max(v, 1e-7) for v in item.abs_dp] for item in items]
    ax.boxplot(data, whis=(1, 99), showfliers=True)
    ax.set_xticks(
        range(1, len(items) + 1),
        [f"{titles.get(i.model, i.model)}\n{i.format}" for i in items],
        fontsize=8,
    )
    ax.set_yscale("log")
    top = max(max(values) for values in data)
    ax.set_ylim(5e-8, max(top * 2, 1 / 128))
    ax.set_ylabel("|Δp| against the Keras source (log; zeros at 1e-7)")
    ax.set_title("TFLite against Keras, per image (whiskers p1-p99)", fontsize=10)
    ax.axhline(1 / 256, color="grey", linestyle=":", linewidth=1)
    ax.text(0.55, 1 / 256, "1/256 (one int8 output step)", fontsize=7, color="grey", va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
