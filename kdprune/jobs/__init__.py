"""The work of each job kind (kdprune.plan.kinds), in `runners`: train teachers and students, compute
view tables and pruning scores. Imports torch; the planning layer never imports this package."""
