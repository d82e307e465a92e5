#!/usr/bin/env bash
# Side by side: goalax vs jaxgcrl 0.2.8 on the same config and machine, printing the ratios.
# Usage: bash benchmarks/compare_jaxgcrl.sh [ENV ...]        (default: reacher ant)
#
# Config (both): CRL, l2 energy, forward InfoNCE, 256 envs, batch 256, episode 1000, unroll 62,
# paper update ratio (goalax 992, jaxgcrl 999 gradient steps per 15 872 env steps), replay
# capacity 1 024 000 transitions (jaxgcrl: 4000 rows x 256 envs), spring physics, 2x256 networks.
# goalax: `goalax bench` (one warm-up iteration, then ITERATIONS timed ones).
# jaxgcrl: benchmarks/jaxgcrl_harness.py (EPOCHS one-iteration epochs; the first, which
# compiles, is dropped). env steps/s exclude compilation on both sides; peak RSS is the whole
# process (compilation included) on both sides. Run it on an otherwise idle machine.
#
# jaxgcrl 0.2.8 runs in its own venv ($JAXGCRL_VENV, default .venv-jaxgcrl), built by
# benchmarks/jaxgcrl_venv.sh when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVS=("${@:-reacher ant}")
ITERATIONS="${ITERATIONS:-3}"
EPOCHS="${EPOCHS:-4}"
OUT="${OUT:-runs/compare-jaxgcrl}"
GOALAX="${GOALAX:-goalax}"
. benchmarks/jaxgcrl_venv.sh
mkdir -p "$OUT"
for env in ${ENVS[@]}; do
  echo "== $env: goalax"
  JAX_PLATFORMS=cpu "$GOALAX" bench --env "$env" --backend spring --episode-length 1000 \
    --num-envs 256 --batch-size 256 --unroll-length 62 --buffer-size 1024000 \
    --energy l2 --loss infonce_forward --iterations "$ITERATIONS" --json | tail -n 1 \
    > "$OUT/goalax-$env.json"
  cat "$OUT/goalax-$env.json" | cut -c 1-200
  echo "== $env: jaxgcrl 0.2.8"
  JAX_PLATFORMS=cpu "$JG/bin/python" benchmarks/jaxgcrl_harness.py "$env" spring "$EPOCHS" 4000 \
    2> "$OUT/jaxgcrl-$env.log" | tail -n 1 > "$OUT/jaxgcrl-$env.json"
  if [ ! -s "$OUT/jaxgcrl-$env.json" ]; then
    echo "jaxgcrl failed on $env: see $OUT/jaxgcrl-$env.log"
    continue
  fi
  cat "$OUT/jaxgcrl-$env.json"
  python3 - "$OUT/goalax-$env.json" "$OUT/jaxgcrl-$env.json" "$env" <<'PY'
import json, sys
ours, theirs = (json.load(open(p)) for p in sys.argv[1:3])
sps = ours["env_steps_per_s"] / theirs["env_steps_per_s"]
rss = ours["peak_rss_mb"] / theirs["peak_rss_mb"]
print(f"{sys.argv[3]}: goalax {ours['env_steps_per_s']:,.0f} env steps/s, "
      f"{ours['peak_rss_mb']:,.0f} MB | jaxgcrl {theirs['env_steps_per_s']:,.0f} env steps/s, "
      f"{theirs['peak_rss_mb']:,.0f} MB | speed {sps:.2f}x, memory {rss:.2f}x")
PY
done
