"""InfoBatch (Qin et al., ICLR 2024, "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data
Pruning"): dynamic data pruning inside the one training loop (recipe field `infobatch`).

What it does, as the authors' package does it (NUS-HPC-AI-Lab/InfoBatch, `infobatch/infobatch.py`,
class `InfoBatch` and its `IBSampler`):

- Every sample of the run's subset has a score, its last recorded training loss: the per-sample
  loss of the step that last trained on it (its augmented view, training mode, the weights before
  that step), before any rescaling. Scores start at 3.0 for every sample, so the first epoch, where
  no score is below the mean, trains on everything.
- At the start of each epoch while pruning lasts, the "well-learned" samples are those whose score
  is below the mean of all the subset's scores (scores of samples pruned earlier stay as last
  recorded and count in the mean). Of these, int((1 - ratio) * count) are drawn uniformly without
  replacement and kept, the rest skip this epoch; every other sample is kept. The kept well-learned
  samples' losses are weighted by 1 / (1 - ratio) and every other sample's by 1; the batch loss is
  mean_i(w_i * loss_i) over the batch (divided by the batch size, not by the sum of the weights).
  The weight multiplies the loss only: the score recorded is the unweighted loss.
- The epoch is the kept samples, shuffled, so it has fewer steps; the learning rate follows the
  epoch's progress (kdprune.train.loop.Recipe.lr_at(epoch + step / steps of this epoch)), which is
  what the authors' README asks of a step-based schedule.
- Pruning lasts while epoch + 1 <= delta * epochs (epoch counted from 0): the authors' sampler
  counts epochs from 1 when it decides. With 200 epochs and delta 0.875, epochs 1-175 prune and
  the last 25 (12.5%) train on the whole subset with all weights 1 (annealing).

Deviations from the reference:

- Randomness: the reference reseeds numpy's global generator with the epoch number before each
  epoch, so its draws are the same for every run seed. Here the draw of the kept well-learned
  samples and the shuffle come from the training loop's generator of (seed, epoch), so a seed fixes
  them and a resumed run draws the same (the scores are checkpointed).
- Annealing weights: the reference resets the weights to 1 only when delta * epochs is a whole
  number; otherwise the last pruned epoch's 1 / (1 - ratio) weights carry on through the annealing
  epochs. Here every annealing epoch has all weights 1.
- `ratio` must lie in [0, 0.9]; the reference clamps the keep ratio 1 - ratio to [0.1, 1] silently.
- "The data" is the run's subset (a keep fraction of a static selection, or the full set): scores,
  the mean and `epochs` are the run's (`epochs`: the loop's passes over the subset, so a `steps`
  budget prunes over its longer schedule).
- `cost_share` (a named option, off by default; P2-C3's matched cost): the run's sample-steps as a share
  of training every epoch on the whole subset. Each pruned epoch then keeps as many well-learned
  samples as spend what is left of that share evenly over the pruned epochs left (annealing epochs
  cost the whole subset each), at least the reference's 10% of them, and weights the kept ones by
  count / kept (this epoch's own 1 / (1 - r)), instead of a fixed `ratio`. With too few
  well-learned samples the run spends more than its share, and its recorded sample-steps say so.
- Single process: the reference's distributed sampler and its gathering of scores across ranks
  have no counterpart.

Where it runs: kdprune.train.loop.fit_stack for one model (`fit`); the score and weight tables
live on the training device and the step reads and writes them with index operations, so the fast
path's CUDA graph replays them (kdprune.train.step). A stack of several students would need
unequal epoch lengths, so fit_stack refuses it and kdprune.jobs.runners trains such seeds one
after the other (`stack_seeds` falls back to sequential, with a log line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

INITIAL_SCORE = 3.0  # the reference's starting score of every sample (above any loss the first epoch can leave)
MAX_RATIO = 0.9  # the reference keeps at least 10% of the well-learned samples


@dataclass(frozen=True)
class InfoBatch:
    """The recipe's `infobatch` settings: `ratio` r, the share of the well-learned samples dropped
    each pruned epoch (the survivors' losses weigh 1 / (1 - r)); `delta`, the share of the epochs
    that prune (the rest anneal on the whole subset)."""

    ratio: float = 0.5
    delta: float = 0.875
    # None: the fixed `ratio` (the reference); a share of full-data sample-steps in (0, 1]: each
    # pruned epoch's ratio is chosen to spend it
    cost_share: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.ratio <= MAX_RATIO:
            raise ValueError(f"infobatch.ratio must be in [0, {MAX_RATIO}], got {self.ratio}")
        if not 0.0 <= self.delta <= 1.0:
            raise ValueError(f"infobatch.delta must be in [0, 1], got {self.delta}")
        if self.cost_share is not None and not 0.0 < self.cost_share <= 1.0:
            raise ValueError(f"infobatch.cost_share must be in (0, 1], got {self.cost_share}")

    @property
    def keep_ratio(self) -> float:
        return 1.0 - self.ratio

    def prunes(self, epoch: int, epochs: int) -> bool:
        """Whether epoch `epoch` (from 0) of `epochs` prunes; the rest anneal."""
        return epoch + 1 <= self.delta * epochs

    def pruned_epochs(self, epochs: int) -> int:
        return sum(self.prunes(e, epochs) for e in range(epochs))


class InfoBatchState:
    """One run's InfoBatch tables on the training device, indexed by training-sample index (entries
    outside the subset stay unused): `scores`, each sample's last recorded loss, and `weights`, the
    loss weight of each sample in the current epoch. The step writes `scores` and reads `weights`
    in place (a captured CUDA graph holds these very tensors)."""

    def __init__(self, settings: InfoBatch, subset: torch.Tensor, n_data: int, epochs: int, device: torch.device):
        self.settings, self.epochs = settings, epochs
        self.subset = torch.as_tensor(subset, dtype=torch.int64).cpu()
        self.scores = torch.full((n_data,), INITIAL_SCORE, device=device)
        self.weights = torch.ones(n_data, device=device)
        self.spent = 0  # sample-steps of the epochs drawn so far (what a `cost_share` has left)

    def epoch_samples(self, epoch: int, gen: torch.Generator) -> torch.Tensor:
        """The samples epoch `epoch` trains on (unshuffled: kept high-loss samples, then the kept
        well-learned ones), drawn with `gen`; sets `weights` for the epoch."""
        samples = self._draw(epoch, gen)
        self.spent += len(samples)
        return samples

    def _draw(self, epoch: int, gen: torch.Generator) -> torch.Tensor:
        self.weights.fill_(1.0)
        if not self.settings.prunes(epoch, self.epochs):
            return self.subset
        scores = self.scores[self.subset.to(self.scores.device)].cpu()
        well_learned = scores < scores.mean()
        low, rest = self.subset[well_learned], self.subset[~well_learned]
        if self.settings.cost_share is None:
            n_keep, weight = int(self.settings.keep_ratio * len(low)), 1.0 / self.settings.keep_ratio
        else:
            n_keep = self._kept_within_share(epoch, len(rest), len(low))
            weight = len(low) / max(n_keep, 1)
        kept_low = low[torch.randperm(len(low), generator=gen)[:n_keep]]
        if n_keep:
            self.weights[kept_low.to(self.weights.device)] = weight
        return torch.cat([rest, kept_low])

    def _kept_within_share(self, epoch: int, n_rest: int, n_low: int) -> int:
        """How many of `n_low` well-learned samples epoch `epoch` keeps so the pruned epochs left
        share what is left of `cost_share` evenly; at least the reference's 10% of them, at most all."""
        n, pruned = len(self.subset), self.settings.pruned_epochs(self.epochs)
        annealing = (self.epochs - pruned) * n
        left = self.settings.cost_share * self.epochs * n - self.spent - annealing
        this_epoch = round(left / (pruned - epoch))  # pruned epochs are the first ones
        least = math.ceil((1.0 - MAX_RATIO) * n_low)
        return min(n_low, max(least, this_epoch - n_rest))

    def state_dict(self) -> dict:
        return {"scores": self.scores.cpu(), "spent": self.spent}

    def load_state_dict(self, state: dict) -> None:
        self.scores.copy_(state["scores"])
        self.spent = int(state.get("spent", 0))  # checkpoints before `cost_share` existed: unused there
