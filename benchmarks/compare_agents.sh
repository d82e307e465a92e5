#!/usr/bin/env bash
# Every registered agent on point and simple_u_maze (and each TASK given), SEEDS seeds vmapped in
# one run per agent and task, then `goalax plot --aggregate iqm`: a figure and a table of
# interquartile means with stratified-bootstrap 95% CIs, per task and over all tasks
# (docs/results.md, "Comparing agents").
#
# Usage: bash benchmarks/compare_agents.sh OUT_DIR [TASK ...]
#   OUT_DIR: new or empty; gets OUT_DIR/<task>/<agent>/ per run, compare.png and table.txt.
#   Budgets are the variables below, each overridable from the environment, e.g. a smoke run:
#   POINT_STEPS=2000 MAZE_STEPS=2000 SEEDS=2 bash benchmarks/compare_agents.sh /tmp/compare
set -euo pipefail

USAGE="usage: bash benchmarks/compare_agents.sh OUT_DIR [TASK ...]  (budgets from the environment: \
POINT_STEPS, MAZE_STEPS, TASK_STEPS, SEEDS, EVALS; see the top of the script)"

# --- budgets (env steps per seed) ----------------------------------------------------------------
POINT_STEPS="${POINT_STEPS:-50000}"  # point: 50-step episodes, 32 envs (the point learning tests)
MAZE_STEPS="${MAZE_STEPS:-300000}"   # simple_u_maze: 200-step episodes, 64 envs (its learning test)
TASK_STEPS="${TASK_STEPS:-}"         # each extra TASK, 64 envs; empty: the task's own budget
SEEDS="${SEEDS:-4}"                  # seeds per agent and task, vmapped in one run
EVALS="${EVALS:-5}"                  # evaluations after step 0 (every budget / EVALS env steps)

if [[ $# -lt 1 || $1 == -* ]]; then
  echo "$USAGE" >&2
  exit 2
fi
OUT="$1"
shift
if [[ -e $OUT && -n $(ls -A "$OUT") ]]; then
  echo "compare_agents: $OUT is not empty; name a new or empty folder" >&2
  exit 2
fi
AGENTS=$(python -c "from goalax import agents; print(' '.join(agents.names()))")

# Flags an agent needs on these sparse-reward goal tasks; the settings are the point learning
# tests' (tests/test_learning.py, docs/results.md "Learning tests"). Agents not listed: defaults.
agent_flags() {
  case "$1" in
    sac) echo --her --utd-ratio 0.25 ;;
    td3) echo --her --utd-ratio 0.5 --exploration-noise 0.2 ;;
    gciql) echo --utd-ratio 0.25 ;;  # as its point learning test (SAC's ratio)
    # on-policy: dense reward (no relabelling), short unrolls, no replay flags (PPO refuses them)
    ppo) echo --dense-reward --unroll-length 10 --learning-rate 1e-3 --num-minibatches 4 ;;
    *) ;;
  esac
}

# Run flags of a task: episode length, envs, budget and evaluation spacing.
task_flags() {
  local steps
  case "$1" in
    point) steps=$POINT_STEPS; echo --episode-length 50 --num-envs 32 ;;
    simple_u_maze) steps=$MAZE_STEPS; echo --episode-length 200 --num-envs 64 ;;
    *) steps=$TASK_STEPS; echo --num-envs 64 ;;
  esac
  if [[ -n $steps ]]; then
    echo --total-env-steps "$steps" --eval-every $((steps / EVALS > 0 ? steps / EVALS : 1))
  fi
}

TASKS=$(printf '%s\n' point simple_u_maze "$@" | awk '!seen[$0]++')  # each task once, in order
failed=()
for task in $TASKS; do
  for agent in $AGENTS; do
    # shellcheck disable=SC2046  # word splitting of the flag lists is intended
    if ! goalax train "$agent" --env "$task" --num-seeds "$SEEDS" --quiet $(task_flags "$task") \
      $(agent_flags "$agent") --run-dir "$OUT/$task/$agent"; then
      failed+=("$agent on $task")
    fi
  done
done

if [[ ${#failed[@]} -gt 0 ]]; then
  printf 'compare_agents: failed (left out of the table): %s\n' "${failed[@]}" >&2
fi
goalax plot "$OUT" --metric eval/success --group-by agent_name --aggregate iqm \
  --out "$OUT/compare.png" | tee "$OUT/table.txt"
[[ ${#failed[@]} -eq 0 ]]
