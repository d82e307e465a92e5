#!/usr/bin/env bash
# Regenerates tests/data/reference_facts.json by running jaxgcrl 0.2.8's own envs (CPU).
# Usage: bash benchmarks/reference_facts.sh [TASK ...]   (default: every reference task; named
# tasks replace only their own entries). About 1-2 minutes per task on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/jaxgcrl_venv.sh
JAX_PLATFORMS=cpu "$JG/bin/python" benchmarks/reference_facts.py "$@"
