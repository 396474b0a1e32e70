"""Per-sample pruning scores behind a registry. Convention: a HIGHER score means a HARDER (more
important to keep for keep-hardest) sample. A score is computed once per (dataset, method, seed)
and reused by every keep ratio.

Each entry is `score(data, settings, seed, device, log, accel=Accel()) -> np.ndarray[float64] of
len(train)`; `settings` is the method's block of `scores:` in config.yaml plus the resolved recipe;
`accel` (kdprune.accel) applies to the training runs only: the scores themselves (logits, gradient
norms, features) are evaluated in fp32."""
from __future__ import annotations

from kdprune.registry import Registry

SCORES: Registry = Registry("pruning method")

# Importing the modules fills the registry.
from kdprune.scores import el2n, forgetting, grand, moderate, random_score  # noqa: E402,F401
