"""Record rliable's IQM and stratified-bootstrap intervals on fixed score matrices, for
tests/test_stats.py to hold goalax.viz.stats to (``tests/data/rliable_iqm.json``).

rliable is not a goalax dependency (it pulls in arch, pandas and seaborn), so this runs in a side
environment and imports nothing from goalax::

    python -m venv /tmp/rlvenv && /tmp/rlvenv/bin/pip install rliable
    /tmp/rlvenv/bin/pip install "pandas<3"   # arch 7.2 fails to import under pandas 3
    /tmp/rlvenv/bin/python scripts/record_rliable.py          # ~12 minutes of one core

Every case is a ``[num_runs, num_tasks]`` matrix. Its reference interval is rliable's at its
default 50,000 resamples. Its Monte-Carlo spread (the test's tolerance is built from it) is the
standard deviation of ``SPREAD_REPEATS`` more rliable intervals at ``SPREAD_REPS`` resamples each,
scaled by sqrt(SPREAD_REPS / REPS) to 50,000 resamples (a percentile estimated from R draws
scatters as 1 / sqrt(R)): arch resamples in a Python loop, ~1 ms a draw, so measuring the spread
at 50,000 directly would take an hour. Each interval seeds numpy's global generator, which
rliable's resampling draws from whatever ``random_state`` says.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata

import numpy as np

#: Bootstrap resamples of the reference interval (rliable's own default).
REPS = 50_000
#: Intervals per case, each from another seed, and their resamples, to measure the spread.
SPREAD_REPEATS = 8
SPREAD_REPS = 5_000
CONFIDENCE = 0.95
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "rliable_iqm.json")


def cases() -> dict[str, np.ndarray]:
    """Fixed score matrices ``[num_runs, num_tasks]``: odd sizes, ties, one and several tasks."""
    rng = np.random.default_rng(2021)
    return {
        "one_task_3_runs": rng.uniform(size=(3, 1)),
        "one_task_5_runs_ties": np.array([[0.5], [0.5], [0.5], [0.25], [0.875]]),
        "one_task_10_runs_binary": rng.integers(0, 2, size=(10, 1)).astype(float),
        "two_tasks_3_runs": rng.uniform(size=(3, 2)),
        "three_tasks_5_runs": rng.uniform(size=(5, 3)),
        "three_tasks_5_runs_heavy_tail": rng.lognormal(0.0, 1.5, size=(5, 3)),
        "four_tasks_10_runs_success": rng.binomial(128, [0.1, 0.4, 0.7, 0.95], (10, 4)) / 128,
        "seven_tasks_3_runs": rng.normal(size=(3, 7)),
        "two_tasks_5_runs_constant": np.full((5, 2), 0.7),
    }


def record() -> dict:
    from rliable import library, metrics

    def iqm(scores: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(scores)])

    def interval(scores: np.ndarray, seed: int, reps: int) -> tuple[float, np.ndarray]:
        np.random.seed(seed)
        point, ci = library.get_interval_estimates(
            {"x": scores}, iqm, method="percentile", reps=reps, confidence_interval_size=CONFIDENCE
        )
        return float(point["x"][0]), ci["x"][:, 0]  # (low, high)

    out = []
    for name, scores in cases().items():
        point, ci = interval(scores, 0, REPS)
        spread = np.array([interval(scores, 1 + k, SPREAD_REPS)[1] for k in range(SPREAD_REPEATS)])
        std = spread.std(axis=0, ddof=1) * np.sqrt(SPREAD_REPS / REPS)
        out.append(
            {
                "name": name,
                "scores": scores.tolist(),
                "iqm": point,
                "ci": ci.tolist(),
                "ci_mc_std": std.tolist(),
            }
        )
        print(name, out[-1]["iqm"], out[-1]["ci"], out[-1]["ci_mc_std"], flush=True)
    versions = {p: metadata.version(p) for p in ("rliable", "arch", "numpy", "scipy")}
    return {
        "recorded_by": "scripts/record_rliable.py",
        "versions": {**versions, "python": platform.python_version()},
        "statistic": "rliable.metrics.aggregate_iqm",
        "interval": "rliable.library.get_interval_estimates(method='percentile')",
        "reps": REPS,
        "spread_repeats": SPREAD_REPEATS,
        "spread_reps": SPREAD_REPS,
        "confidence": CONFIDENCE,
        "cases": out,
    }


if __name__ == "__main__":
    data = record()
    with open(sys.argv[1] if len(sys.argv) > 1 else OUT, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else OUT))
