#!/usr/bin/env bash
# The parity evidence at the largest scale a 2-core CPU allows (docs/results.md, "Parity runs"):
#   1. ant with every default (256 envs, episode 1000, prefill, 10k replay per env, termination),
#      seed 0, 3M env steps, evaluation every 250k  (~40 min on 2 idle cores);
#   2. humanoid, 1M env steps, termination on (default) and off  (~2 x 15 min).
# Usage: bash benchmarks/cpu_parity.sh [OUT_DIR]     (default runs/parity)
# Each run prints one line per evaluation; metrics.jsonl of each run is what docs/results.md plots.
set -euo pipefail
OUT="${1:-runs/parity}"
mkdir -p "$OUT"
goalax train crl --env ant --total-env-steps 3000000 --eval-every 250000 --run-dir "$OUT/ant"
goalax train crl --env humanoid --total-env-steps 1000000 --eval-every 100000 \
  --run-dir "$OUT/humanoid_termination"
goalax train crl --env humanoid --no-termination --total-env-steps 1000000 --eval-every 100000 \
  --run-dir "$OUT/humanoid_no_termination"
