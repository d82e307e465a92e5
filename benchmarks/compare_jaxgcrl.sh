#!/usr/bin/env bash
# Side by side: goalax vs jaxgcrl 0.2.8 on the same config and machine, printing the ratios.
# Usage: bash benchmarks/compare_jaxgcrl.sh [ENV ...]     (default: reacher ant)
# jaxgcrl 0.2.8 pins jaxlib==0.4.25+cuda12 (not on PyPI), so it is installed with --no-deps
# into its own venv next to CPU pins that work together (jax/jaxlib 0.4.25, numpy<2,
# mujoco 3.2.7). STEPS env steps, 256 envs, batch 256, episode 1000, unroll 62 (paper ratio).
set -euo pipefail
cd "$(dirname "$0")/.."
ENVS=("${@:-reacher ant}")
STEPS="${STEPS:-200000}"
JG="${JAXGCRL_VENV:-.venv-jaxgcrl}"
if [ ! -x "$JG/bin/python" ]; then
  python3 -m venv "$JG"
  "$JG/bin/pip" install -q "jax==0.4.25" "jaxlib==0.4.25" "numpy<2" "scipy<1.13" "flax<0.8.5" \
    "brax==0.10.5" "mujoco==3.2.7" "mujoco-mjx==3.2.7" "matplotlib==3.8.4" "tyro>=0.9.16" \
    wandb wandb-osh
  "$JG/bin/pip" install -q --no-deps "jaxgcrl==0.2.8"
fi
for env in ${ENVS[@]}; do
  echo "== $env: goalax"
  /usr/bin/time -v goalax train crl --env "$env" --episode-length 1000 --num-envs 256 \
    --batch-size 256 --unroll-length 62 --total-env-steps "$STEPS" --eval-every "$STEPS" \
    --run-dir "runs/compare-goalax-$env-$$" --quiet 2> "/tmp/goalax-$env.time"
  echo "== $env: jaxgcrl 0.2.8"
  # jaxgcrl takes num_envs * (episode_length - 1) / batch_size = 999 gradient steps per
  # 62 * 256 env steps (ratio 0.0629); goalax's default --utd-ratio 0.0625 gives 992.
  /usr/bin/time -v "$JG/bin/jaxgcrl" --env "$env" --episode-length 1000 --num-envs 256 \
    --total-env-steps "$STEPS" --num-evals 1 --no-log-wandb \
    crl --batch-size 256 --unroll-length 62 --min-replay-size 62 \
    2> "/tmp/jaxgcrl-$env.time" || echo "jaxgcrl run failed (see /tmp/jaxgcrl-$env.time)"
  for tool in goalax jaxgcrl; do
    rss=$(grep "Maximum resident" "/tmp/$tool-$env.time" | awk '{print $NF}')
    wall=$(grep "Elapsed (wall" "/tmp/$tool-$env.time" | awk '{print $NF}')
    echo "$env $tool peak_rss_kb=$rss wall=$wall"
  done
done
