"""The image grid of distilled sets (P4): a block of rows per set, a column per class, pixels mapped
back from the normalised space."""

import torch

from kdprune.files import save_torch
from kdprune.report.figures import SHOWN_PER_CLASS, distilled_images, draw_distilled_images


def synthetic(ipc: int, classes: int = 3, channels: int = 3) -> dict:
    images = torch.randn(classes * ipc, channels, 8, 8)
    labels = torch.arange(classes).repeat_interleave(ipc)
    return {"images": images, "labels": labels, "mean": torch.full((channels,), 0.5), "std": torch.full((channels,), 0.25)}


def test_one_block_of_rows_per_set_and_a_column_per_class():
    fig = distilled_images({"a": synthetic(2), "b": synthetic(1), "c": synthetic(SHOWN_PER_CLASS + 3)}, "t")
    rows, cols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    assert (rows, cols) == (2 + 1 + SHOWN_PER_CLASS, 3)  # a large IPC shows its first images of each class
    shown = fig.axes[0].images[0].get_array()  # standard-normal values, mapped back and clipped
    assert shown.min() >= 0 and shown.max() <= 1 and shown.max() > shown.min()


def test_the_figure_file_of_grey_sets(tmp_path):
    path = tmp_path / "set.pt"
    save_torch(path, synthetic(1, classes=10, channels=1))
    out = tmp_path / "grid.png"
    draw_distilled_images([path], out, "digits", base=tmp_path)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5_000
