"""Time jaxgcrl 0.2.8's CRL training epochs; run with the jaxgcrl venv's python.

Usage: python benchmarks/jaxgcrl_harness.py ENV BACKEND EPOCHS MAX_REPLAY_SIZE

Prints one JSON line: env steps/s of every epoch (the first includes compilation), peak RSS.
jaxgcrl's evaluation is replaced by a no-op because its evaluator raises KeyError 'success_easy'
on reacher; the training epochs themselves run unmodified (one collect + update step per epoch).
A checkpoint folder is set because jaxgcrl 0.2.8's ``train_fn`` ends in UnboundLocalError
('params') without one; checkpoints are written after each epoch's timing, so they do not count.
"""

import json
import resource
import sys
import tempfile
import time

from jaxgcrl.agents.crl import crl as crl_module
from jaxgcrl.utils.config import RunConfig
from jaxgcrl.utils.env import create_env


def main() -> None:
    env_name, backend, epochs, max_replay = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    num_envs, unroll = 256, 62
    crl_module.ActorEvaluator.run_evaluation = lambda self, state, metrics, *a, **k: metrics
    agent = crl_module.CRL(
        batch_size=256, unroll_length=unroll, min_replay_size=unroll, max_replay_size=max_replay
    )
    per_step = num_envs * unroll
    config = RunConfig(
        env=env_name,
        total_env_steps=per_step * (1 + epochs),  # prefill (one unroll) + one training step/epoch
        episode_length=1000,
        num_envs=num_envs,
        num_evals=epochs,
        backend=backend,
        log_wandb=False,
        cuda=False,
        checkpoint_logdir=tempfile.mkdtemp(prefix="jaxgcrl-ckpt-"),
    )
    env = create_env(env_name=env_name, backend=backend)
    sps = []

    def progress(step, metrics, *args, **kwargs):
        sps.append(float(metrics["training/sps"]))

    start = time.perf_counter()
    agent.train_fn(config=config, train_env=env, eval_env=env, progress_fn=progress)
    print(
        json.dumps(
            {
                "tool": "jaxgcrl-0.2.8",
                "env": env_name,
                "backend": backend,
                "epoch_env_steps_per_s": sps,
                "env_steps_per_s": sum(sps[1:]) / max(len(sps) - 1, 1),
                "wall_s": time.perf_counter() - start,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            }
        )
    )


if __name__ == "__main__":
    main()
