"""Two CPU processes on localhost join with jax.distributed and train one model.

Under -m slow (20-40 s of two processes compiling on 2 cores): the default suite keeps the cheaper
check of the same sharded program, four devices in one process equal to one device
(tests/test_multi_device.py)."""

import json
import os
import socket
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "multi_host.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_one_model(tmp_path):
    port, run_dir = str(free_port()), str(tmp_path / "run")
    env = dict(os.environ)  # with the suite's XLA_FLAGS (tests/conftest.py)
    procs = [
        subprocess.Popen(
            [sys.executable, SCRIPT, str(i), port, run_dir, str(tmp_path / f"p{i}.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    results = [json.load(open(tmp_path / f"p{i}.json")) for i in range(2)]  # noqa: SIM115
    assert results[0]["devices"] == 2
    assert results[0]["params"] == results[1]["params"]  # one model, not two
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        steps = [json.loads(line)["env_steps"] for line in f]
    assert steps == [0, 400, 800, 1003]  # written once, by process 0
