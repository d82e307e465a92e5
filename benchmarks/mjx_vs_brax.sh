#!/usr/bin/env bash
# Side by side, in one run: a task on brax's physics (its current default backend) and on
# goalax's own MJX base (--backend mjx). Per task and backend: physics-only env steps/s and
# compile time (random actions, --num-envs envs), then CRL training env steps/s and gradient
# steps/s at the defaults (paper update ratio). Runs alternate brax, mjx, brax, mjx, ... so that
# load from other jobs falls on both; REPEATS (default 2) rounds.
# Usage: bash benchmarks/mjx_vs_brax.sh [TASK ...]      (default: every task on the MJX base)
set -euo pipefail
cd "$(dirname "$0")/.."
GOALAX="${GOALAX:-goalax}"
OUT="${OUT:-runs/mjx_vs_brax}"
REPEATS="${REPEATS:-2}"
mkdir -p "$OUT"
TASKS=("$@")
[ ${#TASKS[@]} -eq 0 ] && TASKS=(reacher)
for task in "${TASKS[@]}"; do
  for round in $(seq "$REPEATS"); do
    for backend in default mjx; do
      flags=(--env "$task" --num-envs 256 --json)
      [ "$backend" = mjx ] && flags+=(--backend mjx)
      # Cold compile each time: a fresh, empty persistent compilation cache.
      GOALAX_JAX_CACHE="$(mktemp -d)" "$GOALAX" bench "${flags[@]}" --physics-only \
        2> /dev/null | tail -n 1 > "$OUT/$task-$backend-physics-$round.json"
      GOALAX_JAX_CACHE="$(mktemp -d)" "$GOALAX" bench "${flags[@]}" --iterations 2 \
        2> /dev/null | tail -n 1 > "$OUT/$task-$backend-train-$round.json"
    done
  done
done
python - "$OUT" <<'PY'
import glob, json, os, sys
rows = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    task, backend, kind, _ = os.path.basename(path)[:-5].rsplit("-", 3)
    with open(path) as f:
        r = json.load(f)
    rows.setdefault((task, backend), {}).setdefault(kind, []).append(r)
print("| task | physics | physics env steps/s | physics compile (s) | CRL env steps/s | CRL grad steps/s | CRL compile (s) |")
print("|---|---|---|---|---|---|---|")
for (task, backend), kinds in rows.items():
    p, t = kinds.get("physics", []), kinds.get("train", [])
    cell = lambda rs, key, fmt: " / ".join(fmt.format(r[key]) for r in rs) or "-"
    print(f"| `{task}` | {backend} | {cell(p, 'env_steps_per_s', '{:,.0f}')} | {cell(p, 'compile_s', '{:.0f}')} | "
          f"{cell(t, 'env_steps_per_s', '{:,.0f}')} | {cell(t, 'grad_steps_per_s', '{:.1f}')} | {cell(t, 'compile_s', '{:.0f}')} |")
PY
