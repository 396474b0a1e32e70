"""Training: the loop (`loop`), one optimisation step eager or as a CUDA graph (`step`, `optim`,
`accel`), teacher view tables (`views`), seeds stacked into one network (`stacking`) and the
throughput benchmark (`bench`). Learning-rate schedules are declared here (torch-free) so the
config check can name them."""

from __future__ import annotations

from kdprune.registry import Registry

SCHEDULES: Registry = Registry("schedule")
SCHEDULES.declare("step", "kdprune.train.loop:step_schedule")
SCHEDULES.declare("cosine", "kdprune.train.loop:cosine_schedule")
