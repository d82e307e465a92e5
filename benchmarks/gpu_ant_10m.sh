#!/usr/bin/env bash
# The paper's headline run on one GPU: CRL on ant, 1024 envs, 10M env steps.
# Prints wall time, training SPS and final success. Target: <= 5 min on one H100, success >= 0.6.
# Usage: bash benchmarks/gpu_ant_10m.sh [RUN_DIR]
set -euo pipefail
RUN_DIR="${1:-runs/gpu-ant-10m-$(date +%Y%m%d-%H%M%S)}"
python -c "import jax; assert jax.default_backend() == 'gpu', 'no GPU: install with pip install -e \".[cuda]\"'"
start=$(date +%s)
goalax train crl --env ant --num-envs 1024 --total-env-steps 10000000 --eval-every 1000000 \
  --run-dir "$RUN_DIR" --quiet
end=$(date +%s)
python - "$RUN_DIR" "$((end - start))" <<'PY'
import json, sys
run_dir, wall = sys.argv[1], int(sys.argv[2])
rows = [json.loads(line) for line in open(f"{run_dir}/metrics.jsonl")]
train_s = sum((b["env_steps"] - a["env_steps"]) / b["sps"] for a, b in zip(rows, rows[1:]))
sps = rows[-1]["env_steps"] / train_s  # compile and evaluation excluded
print(json.dumps({"wall_s": wall, "train_sps": sps, "final_success": rows[-1]["eval/success"],
                  "final_time_at_goal": rows[-1]["eval/time_at_goal"], "run_dir": run_dir}))
PY
