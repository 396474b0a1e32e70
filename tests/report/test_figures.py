"""Claim figures stay readable: the legend seaborn places beside the panels must not cover them."""

import itertools

import numpy as np
import pandas as pd
import pytest

from kdprune.report.figures import acc_vs_keep, lines

SELECTIONS = ["random", "el2n-hardest", "herding-hardest", "mdslr", "mdslr_hard-hardest", "mdslr_easy-easiest"]


def runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {
            "dataset": "d",
            "selection": sel,
            "keep": keep,
            "loss": "kd",
            "alpha": 0.9,
            "seed": seed,
            "final_acc": 0.4 + 0.2 * keep + rng.normal(0, 0.01),
        }
        for sel, keep, seed in itertools.product(SELECTIONS, [0.3, 0.5], range(3))
    ]
    return pd.DataFrame(rows)


SPEC = {"id": "X-C1", "preset": "p", "setting": {"teacher": ["resnet20"], "student": ["resnet8"]}, "test": {"metric": "final_acc"}}


@pytest.mark.parametrize("draw", [acc_vs_keep, lambda r, s: lines(r, {**s, "figure_options": {"x": "keep", "hue": "selection"}})])
def test_the_legend_does_not_cover_any_panel(draw):
    fig = draw(runs(), SPEC)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    assert not any(legend.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
