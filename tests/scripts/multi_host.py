"""One of two processes of tests/test_multi_host.py: trains one model over 2 CPU processes."""

import json
import os
import sys

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from test_training import small_config  # noqa: E402

if "GOALAX_JAX_CACHE" in os.environ:  # the test session's cache (tests/conftest.py)
    jax.config.update("jax_compilation_cache_dir", os.environ["GOALAX_JAX_CACHE"])

from goalax.training.run import train  # noqa: E402

process_id, port, run_dir, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
config = small_config(
    run_dir,
    coordinator_address=f"localhost:{port}",
    num_processes=2,
    process_id=process_id,
)
result = train(config)
params = [np.asarray(x).ravel()[:50].tolist() for x in jax.tree.leaves(result.params)]
with open(out, "w") as f:
    json.dump({"devices": jax.device_count(), "rows": result.metrics, "params": params}, f)
