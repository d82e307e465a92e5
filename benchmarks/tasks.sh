#!/usr/bin/env bash
# Every task, one CRL training benchmark each: compile time of the whole training program
# (chunk + evaluation), env steps/s and gradient steps/s of the training iteration, peak RSS, and
# whether the learner state is still finite (a CRL smoke run per task).
# Usage: bash benchmarks/tasks.sh [TASK ...]        (default: every task `goalax envs` lists)
# Config: 64 envs x 62-step unroll, batch 256, paper update ratio (248 updates per iteration),
# one warm-up + ITERATIONS timed iterations, default backend and episode length of each task.
# Compile times are cold: goalax's persistent compilation cache points at a fresh empty folder.
set -euo pipefail
cd "$(dirname "$0")/.."
GOALAX="${GOALAX:-goalax}"
PYTHON="${PYTHON:-python}"  # the interpreter goalax is installed in
OUT="${OUT:-runs/tasks}"
mkdir -p "$OUT"
GOALAX_JAX_CACHE="$(mktemp -d)"
export GOALAX_JAX_CACHE
trap 'rm -rf "$GOALAX_JAX_CACHE"' EXIT
TASKS=("$@")
if [ ${#TASKS[@]} -eq 0 ]; then
  # Last line only: importing MJX may print a notice on stdout first.
  read -r -a TASKS < <("$PYTHON" -c "from goalax import envs; print(' '.join(envs.names()))" | tail -n 1)
fi
for task in "${TASKS[@]}"; do
  echo "== $task" >&2
  "$GOALAX" bench --env "$task" --num-envs 64 --iterations "${ITERATIONS:-1}" --json \
    2> "$OUT/$task.log" | tail -n 1 > "$OUT/$task.json" || echo "FAILED: $task (see $OUT/$task.log)" >&2
done
"$PYTHON" - "$OUT" "${TASKS[@]}" <<'PY'
import json, os, sys
from goalax import envs
out, tasks = sys.argv[1], sys.argv[2:]
print("| task | backend | compile (s) | env steps/s | grad steps/s | peak RSS (MB) | finite |")
print("|---|---|---|---|---|---|---|")
for task in tasks:
    path = os.path.join(out, f"{task}.json")
    try:
        r = json.load(open(path))
    except (OSError, ValueError):
        print(f"| `{task}` | — | failed | — | — | — | — |")
        continue
    backend = r["config"]["run"]["backend"] or envs.spec(task).backend
    print(f"| `{task}` | {backend} | {r['compile_s']:.0f} | {r['env_steps_per_s']:,.0f} | "
          f"{r['grad_steps_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | {r['finite']} |")
PY
