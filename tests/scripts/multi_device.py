"""Run by tests/test_multi_device.py in a fresh process with 4 fake CPU devices."""

import json
import os
import sys

# Appended: the suite's low-optimisation flags (tests/conftest.py) come with the environment.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402

if "GOALAX_JAX_CACHE" in os.environ:  # the test session's cache (tests/conftest.py)
    jax.config.update("jax_compilation_cache_dir", os.environ["GOALAX_JAX_CACHE"])

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from test_training import small_config  # noqa: E402

from goalax.training.loop import build, init_state  # noqa: E402
from goalax.training.run import train  # noqa: E402

out_dir = sys.argv[1]
assert jax.device_count() == 4
results = {}
for devices in (1, 4):
    config = small_config(os.path.join(out_dir, f"d{devices}"), num_devices=devices)
    result = train(config)
    results[devices] = {
        "rows": result.metrics,
        "params": [np.asarray(x).tolist() for x in jax.tree.leaves(result.params)],
    }
program = build(small_config(os.path.join(out_dir, "probe"), num_devices=4))
state = init_state(program)
leaf = state.seeds.buffer.data["state_obs"]
results["buffer_global_shape"] = list(leaf.shape)
results["buffer_shard_shapes"] = [list(s.data.shape) for s in leaf.addressable_shards]
with open(os.path.join(out_dir, "result.json"), "w") as f:
    json.dump(results, f)
