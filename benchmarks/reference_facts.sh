#!/usr/bin/env bash
# Regenerates tests/data/reference_facts.json by running jaxgcrl 0.2.8's own envs (CPU), then
# replays the MJX tasks' trajectories on goalax's versions (benchmarks/reference_drift.py).
# Usage: bash benchmarks/reference_facts.sh [TASK ...]   (default: every reference task; named
# tasks replace only their own entries). 1-15 minutes per task on 2 CPU cores (the trajectory's
# compile: longest for MJX and the humanoid), about 3 hours for all.
# GOALAX_PYTHON: the Python of goalax's venv for the replay (default: python).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/jaxgcrl_venv.sh
XML_DIR="$(mktemp -d)"
trap 'rm -rf "$XML_DIR"' EXIT
JAX_PLATFORMS=cpu "$JG/bin/python" benchmarks/reference_facts.py --dump-xml "$XML_DIR" "$@"
JAX_PLATFORMS=cpu "${GOALAX_PYTHON:-python}" benchmarks/reference_drift.py "$XML_DIR"
