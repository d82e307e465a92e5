#!/usr/bin/env bash
# CRL vs SAC+HER vs TD3+HER vs PPO at CPU scale, SEEDS seeds each (vmapped), same run flags.
# Usage: bash benchmarks/compare_agents.sh [OUT_DIR]   (default runs/compare)
# Then:  goalax plot OUT_DIR/reacher --group-by agent_name --metric eval/success --out reacher.png
set -euo pipefail
OUT="${1:-runs/compare}"
STEPS="${STEPS:-60000}"
COMMON=(--num-envs 64 --num-seeds "${SEEDS:-2}" --total-env-steps "$STEPS" --eval-every 15000 --quiet)

declare -A EPISODE=([reacher]=50 [simple_u_maze]=200)
for env in ${COMPARE_ENVS:-reacher simple_u_maze}; do
  flags=(--env "$env" --episode-length "${EPISODE[$env]}" "${COMMON[@]}")
  goalax train crl "${flags[@]}" --run-dir "$OUT/$env/crl"
  goalax train sac --her "${flags[@]}" --run-dir "$OUT/$env/sac_her"
  goalax train td3 --her "${flags[@]}" --run-dir "$OUT/$env/td3_her"
  goalax train ppo "${flags[@]}" --run-dir "$OUT/$env/ppo"
done
