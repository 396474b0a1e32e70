"""Scores -> kept indices: a pure function of (scores, labels, keep fraction, rule, settings, seed).

Rules (higher score = harder): `hardest` keeps the top scores, `easiest` the bottom ones,
`medium` a window of the sorted scores centred on the quantile `center` (0.5 = around the median),
`mdslr` MDSLR's window around the median position with one k for every class.
Class-balanced by default: every class keeps round(keep * its size) samples (at least one), so
pruning does not change the class prior; a rule declared with `equal_budget` (mdslr) instead gives
every class k = int(N / C * keep) (N samples, C classes present, at least one), or all of a class
that has no more than k samples (keep 1.0: everything); one declared with `floor_drop` (BiLP's
drop.py) drops int(d * n_c) of a class, d = 1 - keep as a decimal, and keeps the rest (at least
one). Ties are broken by sample index (stable sort).

A rule is `rule(order, sorted_scores, k, settings, rng) -> kept indices`: `order` holds one group's
sample indices sorted from easiest to hardest, `settings` the `selection:` block of the config."""

from __future__ import annotations

import numpy as np

from kdprune.pruning import RULES


def keep_hardest(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    return order[len(order) - k :]


def keep_easiest(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    return order[:k]


def keep_medium(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    start = int(round(settings.get("center", 0.5) * len(order) - k / 2))
    start = min(max(start, 0), len(order) - k)
    return order[start : start + k]


def keep_mdslr(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    """MDSLR's medium-difficulty window (Chen et al., ICLR 2025; chenyd7/MDSLR,
    selected_samples/cifar100/medium/generate_index.py, lines 186-193): with the group's n samples
    sorted by ascending score, m = floor(n / 2) and h = floor(k / 2), keep the sorted positions
    [m - (k - h), m + h), i.e. h samples from the median position up and k - h below it; a group
    with n <= k keeps all of its samples. The original sorts with numpy's default (unstable)
    argsort; here ties are broken by sample index. Its k is the same for every class (declared
    `equal_budget`: select_indices computes it)."""
    n = len(order)
    if k >= n:
        return order
    middle, upper = n // 2, k // 2
    return order[middle - (k - upper) : middle + upper]


def bilp_drop_small(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    """BiLP's `<utility>_small` (silicx/GoldFromOres-BiLP, drop_utils/drop.py): drop the n - k
    smallest scores, keep the k largest. drop.py sorts the class's indices (ascending) with Python's
    stable `sorted` by the score and drops the left end, so among equal scores the lower index is
    dropped first: the same subset as `hardest` with `order` (ties by index). Its k (declared
    `floor_drop`) is computed by select_indices."""
    return order[len(order) - k :]


def bilp_drop_large(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    """BiLP's `<utility>_large` (drop_utils/drop.py): drop the n - k largest scores, keep the k
    smallest. drop.py negates the scores and drops the left end of the stable sort, so among equal
    scores the lower index is again dropped first, i.e. the higher indices are kept (`easiest` keeps
    the lower ones). `order` has ties by ascending index; a stable sort of it by the negated score
    reproduces drop.py's order (largest first, ties by ascending index)."""
    largest_first = order[np.argsort(-sorted_scores, kind="stable")]
    return largest_first[len(order) - k :]


def select_indices(
    scores: np.ndarray,
    labels: np.ndarray,
    keep: float,
    rule: str = "hardest",
    class_balanced: bool = True,
    seed: int = 0,
    cutoff_scores: np.ndarray | None = None,
    **settings,
) -> np.ndarray:
    """Sorted indices of the kept samples. `settings`: rule parameters (e.g. center=0.5); `seed`
    drives rules that sample. `cutoff_scores`: for a rule that first drops suspect samples (ccs),
    the score that decides which (higher = more suspect; None: `scores` itself). A rule sees
    `keep` and `cutoff_scores` (indexed like `scores`) among its settings."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    scores, labels = np.asarray(scores), np.asarray(labels)
    cutoff_scores = scores if cutoff_scores is None else np.asarray(cutoff_scores)
    if cutoff_scores.shape != scores.shape:
        raise ValueError(f"cutoff scores have shape {cutoff_scores.shape}, the scores {scores.shape}")
    pick = RULES.get(rule)
    settings = {**settings, "keep": keep, "cutoff_scores": cutoff_scores}
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if class_balanced else [np.arange(len(scores))]
    # MDSLR's per-class budget: int(total_num / n_cls * ratio), the same for every class (a float
    # product floored, as the original computes it); keep 1.0 is the whole set, as its ratio 100
    equal = RULES.meta(rule).get("equal_budget") and keep < 1.0
    share = max(1, int(len(scores) / len(groups) * keep))
    # BiLP's drop.py: a class drops int(drop_ratio * n_c) with the --drop_ratio its scripts take as a
    # decimal (keep 0.8 -> 0.2, not the float 1 - 0.8 = 0.19999999999999996), and keeps the rest
    floor_drop = RULES.meta(rule).get("floor_drop")
    drop_ratio = round(1.0 - keep, 10)
    rng = np.random.default_rng(seed)
    kept = []
    for members in groups:
        if equal:
            k = min(share, len(members))
        elif floor_drop:
            k = max(1, len(members) - int(drop_ratio * len(members)))
        else:
            k = max(1, int(round(keep * len(members))))
        order = members[np.argsort(scores[members], kind="stable")]  # easiest ... hardest
        kept.append(pick(order, scores[order], k, settings, rng))
    return np.sort(np.concatenate(kept))


def cutoff_ratio(table: list[dict], keep: float) -> float:
    """CCS's cutoff ratio at a keep fraction, from `selection.ccs_cutoff` ({keep, ratio} entries by
    increasing keep): linear in keep between the two neighbouring entries, and the nearest entry's
    ratio below the first or above the last."""
    keeps = [float(row["keep"]) for row in table]
    ratios = [float(row["ratio"]) for row in table]
    if keeps != sorted(set(keeps)):
        raise ValueError(f"ccs_cutoff keep fractions must be strictly increasing, got {keeps}")
    return float(np.interp(keep, keeps, ratios))


def keep_ccs(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    """Coverage-centric coreset selection (Zheng et al., ICLR 2023). 1) Drop the floor(beta * n)
    samples of the group with the highest cutoff score (`settings["cutoff_scores"]`: -AUM by
    default, the authors' mislabel cutoff), beta = cutoff_ratio(`ccs_cutoff`, keep). 2) Split
    [min, max] of the survivors' scores into `ccs_strata` equal-width strata; the maximum falls in
    the last. 3) Allocate k: visit the non-empty strata from fewest to most samples (ties: lower
    scores first) and give each min(its size, remaining budget // strata not yet visited); this
    spends exactly k whenever k <= the survivors. 4) Draw each stratum's share uniformly without
    replacement with `rng`. When k exceeds the survivors, all of them are kept and the rest comes
    from the cut samples, least suspect first."""
    beta = cutoff_ratio(settings["ccs_cutoff"], settings["keep"])
    n_strata = int(settings["ccs_strata"])
    if not 0.0 <= beta < 1.0 or n_strata < 1:
        raise ValueError(f"ccs needs a cutoff ratio in [0, 1) and ccs_strata >= 1, got {beta}, {n_strata}")
    suspect = np.argsort(settings["cutoff_scores"][order], kind="stable")  # positions in `order`, least suspect first
    n_pool = len(order) - int(beta * len(order))
    if k >= n_pool:
        return order[suspect[:k]]
    survives = np.zeros(len(order), dtype=bool)
    survives[suspect[:n_pool]] = True
    pool, scores = order[survives], np.asarray(sorted_scores[survives], dtype=np.float64)  # still sorted
    width = (scores[-1] - scores[0]) / n_strata
    if width > 0:
        strata = np.minimum(((scores - scores[0]) / width).astype(np.int64), n_strata - 1)
    else:
        strata = np.zeros(n_pool, dtype=np.int64)
    sizes = np.bincount(strata, minlength=n_strata)
    filled = np.flatnonzero(sizes)
    budget = np.zeros(n_strata, dtype=np.int64)
    rest = k
    for i, s in enumerate(filled[np.argsort(sizes[filled], kind="stable")]):
        budget[s] = min(sizes[s], rest // (len(filled) - i))
        rest -= budget[s]
    assert rest == 0, "ccs allocation left budget unspent"
    starts = np.concatenate([[0], np.cumsum(sizes)])  # pool is sorted, so each stratum is a slice
    kept = [rng.choice(pool[starts[s] : starts[s + 1]], budget[s], replace=False) for s in filled if budget[s]]
    return np.concatenate(kept)
