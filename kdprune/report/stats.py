"""The statistics behind every verdict (docs/verdicts.md): one contrast per cell, its interval, and the
error control over a claim's cells.

A cell's evidence is a per-seed contrast (a paired difference, a difference in differences, a slope)
with one value per replicate. Its interval is a t interval over replicates, with the standard
deviation floored at the contrast's binomial test-set error (`binomial_sd`): three replicates with
identical quantised differences would otherwise give a zero-width interval and a decisive status.

Error control (Berger's intersection-union principle for "supported", Holm for "not supported"):
- a cell is `better` when its own one-sided test at (1 - confidence) / 2 says the effect is above
  the threshold. "Supported" needs every cell better: an intersection-union test, whose level is the
  level of each test, so no correction is needed (or allowed, it would only cost power);
- a cell is `worse` when the effect is below the threshold with Holm's step-down correction over
  all the claim's cells at the same level: "not supported" then means that at least one cell is
  really worse with probability of error <= (1 - confidence) / 2, however many cells there are;
- otherwise `unresolved`, with the smallest effect the cell could have detected (`mde`) and the
  replicates that would resolve it at the observed spread (`seeds_needed`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

BETTER, WORSE, UNRESOLVED = "better", "worse", "unresolved"
POWER = 0.8  # the power behind `mde` and `seeds_needed`


def binomial_sd(weighted_accuracies: Iterable[tuple[float, float]], n_test: float) -> float:
    """The standard deviation of sum(w * acc) if each accuracy were a binomial proportion over
    `n_test` independent test images: sqrt(sum(w^2 p (1 - p)) / n_test). 0 when n_test is unknown."""
    if not n_test or not math.isfinite(n_test):
        return 0.0
    var = sum(w * w * p * (1 - p) for w, p in weighted_accuracies if math.isfinite(p))
    return math.sqrt(max(var, 0.0) / n_test)


def contrast(values: Sequence[float], threshold: float, confidence: float, floor_sd: float = 0.0) -> dict:
    """Mean, interval and one-sided p-values of per-replicate contrasts against `threshold`.

    p_above: the p-value of "mean <= threshold" (small = evidence the effect is above it); p_below
    the reverse. With fewer than two replicates, or no spread and no floor, nothing is decided."""
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(values)
    out = {"diff": values.mean() if n else math.nan, "threshold": threshold, "n_pairs": n, "sd": values.std(ddof=1) if n > 1 else math.nan}
    out |= {"sd_floor": floor_sd, "ci_low": math.nan, "ci_high": math.nan, "p_above": math.nan, "p_below": math.nan, "mde": math.nan}
    sd = max(out["sd"], floor_sd) if n > 1 else math.nan
    if n < 2 or not sd > 0:
        return out
    se, df = sd / math.sqrt(n), n - 1
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    z = (out["diff"] - threshold) / se
    out |= {"ci_low": out["diff"] - half, "ci_high": out["diff"] + half, "p_above": stats.t.sf(z, df), "p_below": stats.t.cdf(z, df)}
    out["mde"] = (stats.t.ppf(0.5 + confidence / 2, df) + stats.t.ppf(POWER, df)) * se
    return out


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def decide(p_above: Sequence[float], p_below: Sequence[float], confidence: float) -> tuple[list[str], np.ndarray]:
    """Every cell's status (see the module docstring) and its Holm-adjusted p_below."""
    alpha = (1 - confidence) / 2
    below = holm(p_below)
    status = [BETTER if a < alpha else WORSE if b < alpha else UNRESOLVED for a, b in zip(np.asarray(p_above, dtype=float), below)]
    return status, below


def seeds_needed(diff: float, sd: float, threshold: float, confidence: float, at_most: int = 1000) -> float:
    """Replicates at which a cell whose contrast has this mean and spread would be resolved with
    power POWER (t approximation, the spread taken as known); inf when the mean sits on the threshold."""
    distance = abs(diff - threshold)
    if not (distance > 0 and sd > 0):
        return math.inf
    for n in range(2, at_most + 1):
        if (stats.t.ppf(0.5 + confidence / 2, n - 1) + stats.t.ppf(POWER, n - 1)) * sd / math.sqrt(n) <= distance:
            return n
    return math.inf
