"""Training objectives, declared here (torch-free) and implemented one module per family. Each
returns its loss terms by name (mdistiller's convention): the total is their sum, and the names
become the columns of the epoch log.

A loss's parameters (e.g. KD's alpha and temperature) are an experiment's `loss.<name>` mapping,
each a list of values that the grid expands; their ranges, defaults and path keys live in the
config schema (workflow/schemas/config.schema.yaml, `$defs.losses`), their meaning in the
implementation's dataclass fields. Declaration metadata: `needs_teacher` (a student of this loss
has a teacher upstream); `same_as` (parameter values under which the loss is another one, run
once: KD at alpha 0 is CE)."""

from __future__ import annotations

from kdprune.registry import Registry

LOSSES: Registry = Registry("loss")
LOSSES.declare("ce", "kdprune.losses.kd:CrossEntropy", needs_teacher=False)
LOSSES.declare("kd", "kdprune.losses.kd:HintonKD", needs_teacher=True, same_as={"loss": "ce", "when": {"alpha": 0.0}})
LOSSES.declare("dkd", "kdprune.losses.dkd:DKD", needs_teacher=True)


def make_loss(name: str, **params) -> object:
    """Build a loss from its name and the run's parameters, keeping only the ones it declares."""
    cls = LOSSES.get(name)
    fields = getattr(cls, "__dataclass_fields__", {})
    return cls(**{k: v for k, v in params.items() if k in fields})
