"""Claim figures stay readable: the legend seaborn places beside the panels must not cover them, and
the title stays inside the image however long the claim's description."""

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


LONG_WHAT = "accuracy over the loss weights (lambda2 share alpha, lambda1 + lambda2 = scale, P3's Eq. 6) at every kept fraction"


@pytest.mark.parametrize("draw", [acc_vs_keep, lambda r, s: lines(r, {**s, "figure_options": {"x": "keep", "hue": "selection", "what": LONG_WHAT}})])
def test_the_title_stays_inside_the_image(draw):
    spec = {**SPEC, "id": "P3-C4b-with-a-long-identifier", "preset": "a-preset-with-a-long-name"}
    fig = draw(runs().query("selection in ['random', 'mdslr']"), spec)  # two hues: a narrow figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    image = fig.bbox
    assert image.x0 <= title.x0 and title.x1 <= image.x1 and title.y1 <= image.y1


@pytest.mark.parametrize("metric", ["final_acc", "ts_gap", "agreement_kept"])
def test_the_y_label_stays_inside_the_image(metric):
    table = runs().query("selection in ['random', 'mdslr']").assign(**{metric: lambda d: d["final_acc"]})
    fig = lines(table, {**SPEC, "test": {"metric": metric}, "figure_options": {"x": "keep", "hue": "selection"}})
    fig.canvas.draw()
    label = fig.axes[0].yaxis.label.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.y0 <= label.y0 and label.y1 <= fig.bbox.y1 and fig.bbox.x0 <= label.x0
