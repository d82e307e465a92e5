"""Run by tests/test_learning.py in a fresh process at XLA's default optimisation: trains the
point runs named on the command line (``POINT_RUNS`` keys) and writes their metric rows."""

import json
import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
# test_learning imports conftest, which adds the suite's low-optimisation flags unless this is set:
# without it these update-bound runs took 2-6x longer (crl_point 5.8 s instead of 2.6 s).
os.environ["GOALAX_TEST_FULL_XLA"] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402

if "GOALAX_JAX_CACHE" in os.environ:  # the test session's cache (tests/conftest.py)
    jax.config.update("jax_compilation_cache_dir", os.environ["GOALAX_JAX_CACHE"])

from test_learning import POINT_RUNS  # noqa: E402

import goalax  # noqa: E402

out_dir, names = sys.argv[1], sys.argv[2:]
rows = {name: goalax.train(POINT_RUNS[name](os.path.join(out_dir, name))).metrics for name in names}
with open(os.path.join(out_dir, "rows.json"), "w") as f:
    json.dump(rows, f)
