"""Figures behind a registry: `kind(runs, spec) -> matplotlib Figure`. Each is readable alone:
titled with its claim, axes with units, a legend, and the number of seeds behind every point."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from kdprune.files import atomic_path  # noqa: E402
from kdprune.report import FIGURES  # noqa: E402
from kdprune.report.runs import ce_as_alpha_zero, read_runs_table, with_full_data_in_every_selection  # noqa: E402


def acc_vs_keep(runs: pd.DataFrame, spec: dict) -> plt.Figure:
    """Test accuracy vs kept fraction: one colour per pruning method, CE dashed vs KD solid, a
    panel per dataset; mean +- std over seeds."""
    metric = spec["test"]["metric"]
    df = with_full_data_in_every_selection(runs).assign(accuracy=lambda d: 100 * d[metric])
    grid = sns.relplot(
        data=df,
        x="keep",
        y="accuracy",
        hue="selection",
        style="loss",
        style_order=sorted(df["loss"].unique(), reverse=True),
        col="dataset",
        kind="line",
        markers=True,
        dashes=True,
        errorbar="sd",
        err_style="bars",
        height=4.2,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    for ax in grid.axes.flat:
        ax.set_xlabel(AXIS_LABELS["keep"])
        ax.set_ylabel(_metric_label(metric, df))
        ax.grid(alpha=0.3)
    teachers = ", ".join(spec["setting"]["teacher"]) or "no"
    _suptitle(grid.figure, _title(spec, df, f"{', '.join(spec['setting']['student'])} student, {teachers} teacher"), fontsize=10)
    grid.tight_layout()  # FacetGrid's: keeps the margin of the legend it placed outside the axes
    return grid.figure


def _suptitle(fig: plt.Figure, text: str, fontsize: float) -> None:
    """The figure's title, each line wrapped to the figure's width (a one-panel figure is narrower
    than a long claim title: unwrapped, both ends fell outside the image)."""
    chars_per_line = int(fig.get_figwidth() * 72 / (0.62 * fontsize))  # DejaVu Sans averages ~0.55 em a character; 0.62 leaves a margin
    fig.suptitle("\n".join(textwrap.fill(line, chars_per_line) for line in text.split("\n")), fontsize=fontsize)


def _title(spec: dict, runs: pd.DataFrame, what: str) -> str:
    groups = [c for c in ("selection", "keep", "loss", "alpha", "teacher", "teacher_keep", "distill", "ipc", "ite", "ite_tails") if c in runs]
    n = runs.groupby(groups, dropna=False)["seed"].nunique()  # a column no run sets (a CE run's teacher) is one group
    n_txt = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
    data = ", ".join(map(str, runs["dataset"].unique()))
    return f"{spec['id']}: {what}, preset {spec['preset']}\nmean ± std over {n_txt} seeds; dataset {data}"


METRIC_LABELS = {  # the y axis of a claim's metric (x 100 on every figure)
    "final_acc": "test accuracy (%), final epoch",
    "best_acc": "test accuracy (%), best epoch",
    # two lines: one is longer than a panel is high
    "ts_gap": "teacher - student accuracy\non the kept images (points)",
    "agreement_kept": "teacher-student top-1 agreement\non the kept images (%)",
}
DISTILLED_ACC = "test accuracy (%), mean of evals"  # P4: a distilled set's final_acc, over its evaluation networks


def _metric_label(metric: str, runs: pd.DataFrame) -> str:
    if metric == "final_acc" and "distill" in runs and runs["distill"].notna().all():
        return DISTILLED_ACC
    return METRIC_LABELS.get(metric, metric)


AXIS_LABELS = {
    "keep": "kept fraction f of the training set",
    "alpha": "KD weight alpha",
    "teacher_params": "teacher parameters",
    "teacher_keep": "fraction of the training set the teacher saw",
    "temperature": "temperature T",
    "ipc": "synthetic images per class (IPC)",
    "ite": "share of each real batch dropped per tail by the causal effect (beta)",
}


def lines(runs: pd.DataFrame, spec: dict) -> plt.Figure:
    """Accuracy against one axis (`figure_options.x`), a line per `hue`, a panel per `col`;
    mean +- std over seeds. `where` filters the runs; `log_x` uses a log axis."""
    opts = spec.get("figure_options", {})
    from kdprune.report.verdicts import matches

    df = ce_as_alpha_zero(runs[matches(runs, opts.get("where", {}))]).dropna(subset=[opts["x"]])
    metric = spec["test"]["metric"]
    df = df.assign(accuracy=100 * df[metric])
    hue, col = opts.get("hue"), opts.get("col")
    grid = sns.relplot(
        data=df,
        x=opts["x"],
        y="accuracy",
        hue=hue,
        col=col,
        kind="line",
        marker="o",
        errorbar="sd",
        err_style="bars",
        palette="viridis" if hue and pd.api.types.is_numeric_dtype(df[hue]) else None,
        height=3.6,
        aspect=1.2,
        facet_kws={"sharey": False},
    )
    for ax in grid.axes.flat:
        ax.set_xlabel(AXIS_LABELS.get(opts["x"], opts["x"]))
        ax.set_ylabel(_metric_label(metric, df))
        ax.grid(alpha=0.3)
        if opts.get("log_x"):
            ax.set_xscale("log")
    _suptitle(grid.figure, _title(spec, df, opts.get("what", f"accuracy vs {opts['x']}")), fontsize=10)
    grid.tight_layout()  # FacetGrid's: keeps the margin of the legend it placed outside the axes
    return grid.figure


def alpha_heatmap(runs: pd.DataFrame, spec: dict) -> plt.Figure:
    """Mean accuracy over (alpha x keep fraction), one panel per selection; the best alpha of each
    keep fraction is boxed."""
    metric = spec["test"]["metric"]
    df = ce_as_alpha_zero(runs)
    df = with_full_data_in_every_selection(df)
    panels = sorted(df["selection"].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), constrained_layout=True, squeeze=False)
    for ax, sel in zip(axes[0], panels):
        grid = df[df["selection"] == sel].pivot_table(index="alpha", columns="keep", values=metric, aggfunc="mean") * 100
        sns.heatmap(grid, annot=True, fmt=".1f", cmap="viridis", ax=ax, cbar_kws={"label": "test accuracy (%)"})
        for j, keep in enumerate(grid.columns):
            i = list(grid.index).index(grid[keep].idxmax())
            ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="red", lw=2))
        ax.set_title(f"{sel} (red: best alpha per f)", fontsize=9)
        ax.set_xlabel(AXIS_LABELS["keep"])
        ax.set_ylabel(AXIS_LABELS["alpha"])
    _suptitle(fig, _title(spec, df, "accuracy over KD weight x kept fraction"), fontsize=10)
    return fig


def draw_figure(spec: dict, runs_path: Path, out: Path) -> None:
    fig = FIGURES.get(spec["figure"])(read_runs_table(runs_path), spec)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=150)
    plt.close(fig)


# -- a distilled set's images (P4) --------------------------------------------------------------------

SHOWN_PER_CLASS = 5  # images per class shown of a larger IPC


def distilled_images(sets: dict[str, dict], title: str) -> plt.Figure:
    """Distilled sets as images, one block of rows per set (`sets`: label -> a synthetic.pt's
    contents), a column per class, up to SHOWN_PER_CLASS images of each class stacked; pixels mapped
    back from the normalised space with the training set's channel mean and std, clipped to [0, 1]."""
    blocks = []
    for label, synthetic in sets.items():
        images, labels = synthetic["images"], synthetic["labels"]
        mean, std = synthetic["mean"].view(1, -1, 1, 1), synthetic["std"].view(1, -1, 1, 1)
        pixels = (images * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        classes = sorted(set(labels.tolist()))
        per_class = [[pixels[i] for i in range(len(labels)) if labels[i] == c][:SHOWN_PER_CLASS] for c in classes]
        blocks.append((label, classes, per_class))
    rows = sum(max(len(p) for p in per_class) for _, _, per_class in blocks)
    cols = max(len(classes) for _, classes, _ in blocks)
    fig, axes = plt.subplots(rows, cols, figsize=(0.9 * cols + 1.5, 0.9 * rows + 0.8), squeeze=False)
    row = 0
    for label, classes, per_class in blocks:
        depth = max(len(p) for p in per_class)
        for r in range(depth):
            for c in range(cols):
                ax = axes[row + r][c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c < len(classes) and r < len(per_class[c]):
                    image = per_class[c][r]
                    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
                else:
                    ax.axis("off")
                if row + r == 0 and c < len(classes):
                    ax.set_title(f"class {classes[c]}", fontsize=7)
            axes[row + r][0].set_ylabel(label if r == 0 else "", fontsize=6, rotation=0, ha="right", va="center")
        row += depth
    _suptitle(fig, title, fontsize=9)
    return fig


def draw_distilled_images(paths: list[Path], out: Path, title: str, base: Path | None = None) -> None:
    """The image grid of the sets in `paths` (synthetic.pt files), each labelled by its folder
    relative to `base` (the experiment's part of the path: method, IPC, selection, keep, seed)."""
    from kdprune.files import load_torch

    sets = {str(p.parent.relative_to(base) if base else p.parent): load_torch(p) for p in paths}
    fig = distilled_images(sets, title)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
