"""Figures behind a registry: `kind(runs, spec) -> matplotlib Figure`. Each is readable alone:
titled with its claim, axes with units, a legend, and the number of seeds behind every point."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from kdprune.io import atomic_path  # noqa: E402
from kdprune.registry import Registry  # noqa: E402
from kdprune.report.runs import read_runs_table  # noqa: E402

FIGURES: Registry = Registry("figure kind")


def _with_full_data_on_every_line(runs: pd.DataFrame) -> pd.DataFrame:
    """A keep-1.0 run belongs to every method's curve (it is one run, whatever the method)."""
    full = runs[runs["selection"] == "full"]
    methods = [s for s in runs["selection"].unique() if s != "full"]
    copies = [full.assign(selection=m) for m in methods]
    return pd.concat([runs[runs["selection"] != "full"], *copies], ignore_index=True)


@FIGURES.register("acc_vs_keep")
def acc_vs_keep(runs: pd.DataFrame, spec: dict) -> plt.Figure:
    """Test accuracy vs kept fraction: one colour per pruning method, CE dashed vs KD solid;
    mean +- std over seeds."""
    metric = spec["test"]["metric"]
    df = _with_full_data_on_every_line(runs).assign(accuracy=lambda d: 100 * d[metric])
    n_seeds = df.groupby(["selection", "keep", "loss"])["seed"].nunique()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    sns.lineplot(data=df, x="keep", y="accuracy", hue="selection", style="loss", style_order=sorted(df["loss"].unique(), reverse=True),
                 markers=True, dashes=True, errorbar="sd", err_style="bars", ax=ax)
    ax.set_xlabel("kept fraction f of the training set")
    ax.set_ylabel(f"test accuracy (%), {metric.replace('_', ' ')}")
    n_txt = f"{n_seeds.min()}" if n_seeds.min() == n_seeds.max() else f"{n_seeds.min()}-{n_seeds.max()}"
    teachers = ", ".join(spec["setting"]["teacher"]) or "no"
    ax.set_title(f"{spec['id']}: {', '.join(spec['setting']['student'])} student, {teachers} teacher, {spec['scale']} scale\n"
                 f"mean ± std over {n_txt} seeds; dataset {', '.join(map(str, runs['dataset'].unique()))}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(title="pruning method / loss", fontsize=8)
    return fig


def draw_figure(spec: dict, runs_path: Path, out: Path) -> None:
    fig = FIGURES.get(spec["figure"])(read_runs_table(runs_path), spec)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=150)
    plt.close(fig)
