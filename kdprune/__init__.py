"""kdprune: knowledge distillation with data pruning, reproduced claim by claim."""

__version__ = "0.1.0"
