"""goalax.viz.stats: the interquartile mean and its stratified-bootstrap interval against rliable's
own numbers (recorded in a side environment by scripts/record_rliable.py), and the IQM's
invariants."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from goalax.viz import stats

with open(os.path.join(os.path.dirname(__file__), "data", "rliable_iqm.json")) as f:
    RLIABLE = json.load(f)

#: A bound may differ from rliable's by Z standard deviations of the difference of two
#: independent Monte-Carlo estimates, each from RLIABLE["reps"] resamples: sqrt(2) times the
#: spread measured for rliable's own bound (``ci_mc_std``). Z = 4 leaves a correct
#: implementation a chance of ~1e-3 to miss any of the 18 bounds (the draws are seeded, so the
#: outcome is fixed; measured: at most 1.7 sd), while an unstratified bootstrap misses (test
#: below). The 1e-9 covers bounds that do not move between seeds (constant scores, atoms of a
#: few runs' bootstrap distribution): those must match exactly, and do.
Z = 4.0


def by_task(case: dict) -> list[np.ndarray]:
    """A case's ``scores [num_runs, num_tasks]`` as one ``[num_runs]`` array per task."""
    return list(np.array(case["scores"]).T)


def tolerance(case: dict) -> np.ndarray:
    return Z * np.sqrt(2) * np.array(case["ci_mc_std"]) + 1e-9


def goalax_interval(scores_by_task, **kwargs) -> np.ndarray:
    return np.array(
        stats.stratified_bootstrap_ci(
            scores_by_task,
            stats.iqm,
            confidence=RLIABLE["confidence"],
            num_resamples=RLIABLE["reps"],
            **kwargs,
        )
    )


@pytest.mark.parametrize("case", RLIABLE["cases"], ids=lambda c: c["name"])
def test_iqm_and_its_interval_match_rliable(case):
    assert stats.pooled(by_task(case), stats.iqm) == pytest.approx(case["iqm"], rel=0, abs=1e-12)
    difference = np.abs(goalax_interval(by_task(case)) - case["ci"])
    assert np.all(difference <= tolerance(case)), (difference, tolerance(case))


def test_an_unstratified_bootstrap_misses_rliable():
    """The comparison can fail: resampling all runs x tasks as one pool (tasks lose their
    weight) misses rliable's interval on every multi-task case that is not constant."""
    missed = []
    for case in RLIABLE["cases"]:
        if len(case["scores"][0]) > 1 and len({x for row in case["scores"] for x in row}) > 1:
            pool = [np.array(case["scores"]).ravel()]
            missed.append(np.any(np.abs(goalax_interval(pool) - case["ci"]) > tolerance(case)))
    assert len(missed) >= 4 and all(missed)


def test_one_run_per_task_or_constant_scores_give_a_point():
    low, high = stats.stratified_bootstrap_ci([[0.3], [0.9], [0.5], [0.1]])
    assert low == high == pytest.approx(0.4)  # the middle two of four
    low, high = stats.stratified_bootstrap_ci([[0.7] * 4, [0.7] * 2])
    assert low == high == pytest.approx(0.7)


scores = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=40
)


@settings(deadline=None)
@given(scores, st.randoms(use_true_random=False))
def test_iqm_is_rliables_trimmed_mean_permutation_invariant_and_bounded(values, random):
    x = np.array(values)
    value = stats.iqm(x)
    assert value == pytest.approx(scipy_stats.trim_mean(x, 0.25, axis=None), rel=1e-12, abs=1e-9)
    shuffled = list(values)
    random.shuffle(shuffled)
    assert stats.iqm(np.array(shuffled)) == value
    slack = 1e-12 * max(1.0, np.abs(x).max())  # a mean of equal values may round past them
    assert x.min() - slack <= value <= x.max() + slack
    assert stats.iqm(np.stack([x, x[::-1]])).tolist() == [value, value]  # rows of [..., n]


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(1, 40))
def test_iqm_of_constant_scores_is_that_score(value, n):
    assert stats.iqm(np.full(n, value)) == pytest.approx(value, rel=1e-12, abs=1e-12)
