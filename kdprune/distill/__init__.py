"""Dataset distillation (P4, BiLP): a method turns the real training set (or a pruned part of it)
into a small synthetic set, a few learned images per class. The distilled set is an artefact of
its own, like a trained teacher: made once per (dataset, subset, method, IPC, seed) and then read
by the evaluation, which trains fresh networks on it. Declared here (torch-free), implemented one
module per method (kdprune.distill.dc, kdprune.distill.dm) on shared parts (kdprune.distill.synthetic:
the real pool and the synthetic initialisation; kdprune.distill.dsa: the differentiable augmentation).

Every distiller is `distill(real, subset, ipc, settings, seed, device, log=print, checkpoint=None) -> dict`:
`real` an in-memory ImageData (kdprune.data.images), `subset` the indices of the training images
the method may read (the pruned set; all of them for no pruning), `ipc` the images per class,
`settings` the method's options (iterations, lr_img, batch_real, dsa, dsa_strategy, ...; each
module's DEFAULTS lists them with the original's values). It returns at least `images` (float,
[classes * ipc, channels, H, W], in the normalised space the networks read), `labels` (int64, class
c at rows c * ipc ... (c + 1) * ipc - 1) and `history` (the matching loss of every iteration). With a
`checkpoint` (kdprune.distill.resume.Checkpoint) it saves its state as it goes, stops on SIGTERM or
SIGUSR2 with `Preempted`, and a rerun resumes to the same result."""

from __future__ import annotations

from kdprune.registry import Registry

DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"  # DSA's and DM's default transforms (the originals' `dsa_strategy`)
CONVNET_WIDTH, CONVNET_DEPTH = 128, 3  # the originals' ConvNet (`net_width`, `net_depth`): distilled with and evaluated on

DISTILLERS: Registry = Registry("distillation method")
# `dsa`: whether the method augments with DSA by default (and so its evaluation does, with
# `distill.evaluation.epochs_dsa` epochs); the planning layer reads it without importing torch.
# Dataset Condensation, gradient matching (Zhao et al., ICLR 2021); `dsa: true` is DSA (ICML 2021)
DISTILLERS.declare("dc", "kdprune.distill.dc:distill_dc", dsa=False)
# Distribution Matching (Zhao & Bilen, WACV 2023)
DISTILLERS.declare("dm", "kdprune.distill.dm:distill_dm", dsa=True)
