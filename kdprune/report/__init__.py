"""From finished runs to what a reader sees: the runs table (`runs`), claim verdicts (`verdicts`),
figures (`figures`), the claims ledger (`ledger`) and the compute summary (`compute`). The verdict
rules and figure kinds are declared here (torch-, pandas- and scipy-free) so the config check can
name them."""

from __future__ import annotations

from kdprune.registry import Registry

VERDICT_RULES: Registry = Registry("verdict rule")
VERDICT_RULES.declare("improves_everywhere", "kdprune.report.verdicts:improves_everywhere")
VERDICT_RULES.declare("matches_or_beats", "kdprune.report.verdicts:matches_or_beats")
VERDICT_RULES.declare("larger_gain", "kdprune.report.verdicts:larger_gain")
VERDICT_RULES.declare("best_value_shifts", "kdprune.report.verdicts:best_value_shifts")
VERDICT_RULES.declare("trend", "kdprune.report.verdicts:trend")
VERDICT_RULES.declare("varies_within", "kdprune.report.verdicts:varies_within")
# The test keys each rule reads (the config check names a missing one before any job runs)
RULE_KEYS = {
    "improves_everywhere": ("treatment", "control"),
    "matches_or_beats": ("treatment", "control"),
    "larger_gain": ("treatment", "control", "factor", "low", "high"),
    "best_value_shifts": ("axis", "along"),
    "trend": ("axis",),
    "varies_within": ("over", "tolerance"),
}

FIGURES: Registry = Registry("figure kind")
FIGURES.declare("acc_vs_keep", "kdprune.report.figures:acc_vs_keep")
FIGURES.declare("lines", "kdprune.report.figures:lines")
FIGURES.declare("alpha_heatmap", "kdprune.report.figures:alpha_heatmap")
