"""Data pruning: per-sample scores and the selection rules that turn scores into kept subsets.
Declared here (torch-free), implemented in one module per score and in `selection`.

Scores: a HIGHER score means a HARDER (more important to keep for keep-hardest) sample. A score is
computed once per (dataset, method, seed) and reused by every keep fraction. Each entry is
`score(data, settings, seed, device, log, accel=Accel()) -> np.ndarray[float64] of len(train)`;
`settings` is the method's block of `scores:` in config.yaml with its recipe resolved; `accel`
(kdprune.train.accel) applies to the training runs only: the scores themselves (logits, gradient
norms, features) are evaluated in fp32. A score that records more in the same pass returns
`(scores, {name: np.ndarray})` instead (`score_and_extras` splits either form); the runner writes
the extra arrays into the score file beside `scores` and `labels` (teacher_ce: `class_logit_std`).
Definitions and sources: docs/scores.md.

Score metadata: `min_epoch` (the least `epoch` the score accepts); `needs_teacher` (the score reads
a trained teacher, `settings["teacher_model"]`: its config block must name one as `teacher`);
`reads_file` (the scores come from the block's `file`, checked against its `sha256`).

Selection rules: `rule(order, sorted_scores, k, settings, rng) -> kept indices` (kdprune.pruning.selection).
Declaration metadata: `needs_cutoff` (the rule first drops the samples a second score marks as
suspect); `equal_budget` (every class gets the same k = int(N / C * keep), N samples, C classes,
capped at the class's size, instead of round(keep * n_c)); `floor_drop` (BiLP's drop.py: every
class drops int(d * n_c), d = 1 - keep as the decimal of its --drop_ratio, and keeps the rest)."""

from __future__ import annotations

from typing import Any

from kdprune.registry import Registry

SCORES: Registry = Registry("pruning score")
SCORES.declare("random", "kdprune.pruning.random_score:random_scores")
SCORES.declare("el2n", "kdprune.pruning.el2n:el2n_scores")
SCORES.declare("grand", "kdprune.pruning.grand:grand_scores")
SCORES.declare("grand_lastlayer", "kdprune.pruning.grand:grand_lastlayer_scores")
# min_epoch: scores recorded during training have nothing to record without a trained epoch
SCORES.declare("forgetting", "kdprune.pruning.forgetting:forgetting_scores", min_epoch=1)
SCORES.declare("aum", "kdprune.pruning.aum:aum_scores", min_epoch=1)
SCORES.declare("moderate", "kdprune.pruning.moderate:moderate_scores")
SCORES.declare("teacher_ce", "kdprune.pruning.teacher_ce:teacher_ce_scores", needs_teacher=True)
# P3's data selection: higher = a sample whose teacher supervision helps a held-out batch more
SCORES.declare("ds_influence", "kdprune.pruning.ds_influence:ds_influence_scores", needs_teacher=True)
# herding: per-class greedy mean matching on a teacher's features; the score is the pick order (first = highest)
SCORES.declare("herding", "kdprune.pruning.herding:herding_scores")
# P4 (BiLP)'s static criterion: per-sample training loss after `epoch` epochs (LossInit: 5; LossConverge: the whole recipe)
SCORES.declare("train_loss", "kdprune.pruning.train_loss:train_loss_scores")
# scores read from a file with its checksum (e.g. BiLP's released LossInit / LossConverge files); the seed has no effect
SCORES.declare("imported", "kdprune.pruning.imported:imported_scores", reads_file=True)

RULES: Registry = Registry("selection rule")
RULES.declare("hardest", "kdprune.pruning.selection:keep_hardest")
RULES.declare("easiest", "kdprune.pruning.selection:keep_easiest")
RULES.declare("medium", "kdprune.pruning.selection:keep_medium")
# needs_cutoff: the rule first drops the samples a second score marks as suspect (scores.<m>.cutoff_score)
RULES.declare("ccs", "kdprune.pruning.selection:keep_ccs", needs_cutoff=True)
# equal_budget: MDSLR's medium window gives every class the same k = int(N / C * keep)
RULES.declare("mdslr", "kdprune.pruning.selection:keep_mdslr", equal_budget=True)
# floor_drop: BiLP's drop.py count per class, n_c - int(d * n_c), d = 1 - keep as a decimal; ties drop the lower index first
RULES.declare("bilp_drop_small", "kdprune.pruning.selection:bilp_drop_small", floor_drop=True)
RULES.declare("bilp_drop_large", "kdprune.pruning.selection:bilp_drop_large", floor_drop=True)


def score_and_extras(result: Any) -> tuple[Any, dict]:
    """A score function's return value as (scores, extra arrays by name): a plain array has none."""
    if isinstance(result, tuple):
        scores, extras = result
        return scores, dict(extras)
    return result, {}
