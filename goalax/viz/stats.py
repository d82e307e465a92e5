"""Point estimates and percentile-bootstrap intervals over seeds and tasks.

The interquartile mean (IQM) with stratified-bootstrap intervals follows Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021). It is written
out here (a sort and a resampling loop) rather than imported from their ``rliable`` package,
whose install pulls in arch, pandas and seaborn, too heavy for goalax's own dependencies;
tests/test_stats.py holds it to rliable's own numbers (tests/data/rliable_iqm.json, recorded by
scripts/record_rliable.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: A statistic reducing the last axis: ``[..., n] -> [...]``.
Statistic = Callable[[np.ndarray], np.ndarray]


def iqm(values: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis of ``values [..., n]``: the mean of the sorted values
    with ``int(n / 4)`` dropped at each end, as ``scipy.stats.trim_mean(values, 0.25)`` and
    rliable's ``aggregate_iqm`` count them (for n < 4 nothing is dropped: the plain mean)."""
    x = np.sort(np.asarray(values, dtype=np.float64), axis=-1)
    cut = int(0.25 * x.shape[-1])
    return x[..., cut : x.shape[-1] - cut].mean(axis=-1)


def mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of ``values [..., n]``."""
    return np.asarray(values, dtype=np.float64).mean(axis=-1)


STATISTICS: dict[str, Statistic] = {"mean": mean, "iqm": iqm}


def pooled(scores_by_task: Sequence[Sequence[float]], statistic: Statistic) -> float:
    """``statistic`` of every run's score on every task (``[runs_t]`` per task) pooled together."""
    return float(statistic(np.concatenate([np.asarray(s, np.float64) for s in scores_by_task])))


def stratified_bootstrap_ci(
    scores_by_task: Sequence[Sequence[float]],
    statistic: Statistic = iqm,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``pooled(scores_by_task, statistic)``.

    Stratified: each resample draws every task's runs ``[runs_t]`` with replacement from that
    task's own runs (so each task keeps its weight), then pools them. With one task it is the
    ordinary bootstrap over runs; one run per task gives a point."""
    rng = np.random.default_rng(seed)
    resampled = []
    for scores in scores_by_task:
        x = np.asarray(scores, dtype=np.float64)
        resampled.append(x[rng.integers(0, x.size, size=(num_resamples, x.size))])
    estimates = statistic(np.concatenate(resampled, axis=-1))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values [n]`` (a point when n = 1)."""
    if len(values) == 0:
        return float("nan"), float("nan")
    return stratified_bootstrap_ci([values], mean, confidence, num_resamples, seed)
