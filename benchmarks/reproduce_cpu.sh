#!/usr/bin/env bash
# CPU-scale versions of the paper's ablations (docs/results.md, issue "design space"):
#   (b) L2 vs dot energy on ant_ball, (c) critic LayerNorm on/off on humanoid,
#   (d) residual critic depth 4 / 16 / 64 on simple_big_maze.
# Usage: bash benchmarks/reproduce_cpu.sh [OUT_DIR]     (default runs/repro; ~40 min on 2 cores)
# Each sweep trains SEEDS vmapped seeds per variant, then draws mean ± 95% CI with goalax plot.
# GPU-scale commands (paper budgets) are in docs/results.md next to the results.
set -euo pipefail
OUT="${1:-runs/repro}"
SEEDS="${SEEDS:-2}"
COMMON=(--num-seeds "$SEEDS" --num-eval-envs 32 --quiet)
goalax sweep crl --env ant_ball --grid energy=l2,dot --num-envs 128 \
  --total-env-steps "${STEPS_B:-100000}" --eval-every 50000 "${COMMON[@]}" --out "$OUT/b_energy"
goalax plot "$OUT/b_energy" --group-by energy --metric eval/success --out "$OUT/b_energy.png"
goalax sweep crl --env humanoid --grid layer_norm=true,false --num-envs 128 \
  --total-env-steps "${STEPS_C:-100000}" --eval-every 50000 "${COMMON[@]}" --out "$OUT/c_layer_norm"
goalax plot "$OUT/c_layer_norm" --group-by layer_norm --metric eval/success --out "$OUT/c_layer_norm.png"
goalax sweep crl --env simple_big_maze --episode-length 250 --residual --width 128 \
  --actor-depth 4 --grid depth=4,16,64 --num-envs 64 --total-env-steps "${STEPS_D:-40000}" \
  --eval-every 15000 "${COMMON[@]}" --out "$OUT/d_depth"
goalax plot "$OUT/d_depth" --group-by depth --metric eval/success --out "$OUT/d_depth.png"
