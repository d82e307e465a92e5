"""Data parallelism on 4 fake CPU devices: same learning curve, a quarter of the buffer each."""

import json
import os
import subprocess
import sys

import numpy as np

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "multi_device.py")


def test_four_devices_match_one_device(tmp_path):
    env = dict(os.environ)  # with the suite's XLA_FLAGS (tests/conftest.py)
    proc = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "result.json") as f:
        result = json.load(f)
    one, four = result["1"], result["4"]
    assert [r["env_steps"] for r in one["rows"]] == [r["env_steps"] for r in four["rows"]]
    for a, b in zip(one["rows"], four["rows"], strict=True):
        for key in ("eval/dist", "train/critic_loss", "train/actor_loss"):
            if a[key] is not None:
                np.testing.assert_allclose(a[key], b[key], rtol=2e-3, atol=2e-3)
    for x, y in zip(one["params"], four["params"], strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-2, atol=1e-3)
    global_shape = result["buffer_global_shape"]  # [seeds, capacity, envs, state_dim]
    shards = result["buffer_shard_shapes"]
    assert len(shards) == 4
    for shard in shards:
        assert shard[2] == global_shape[2] // 4 and shard[1] == global_shape[1]
