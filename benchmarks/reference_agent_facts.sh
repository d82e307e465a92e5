#!/usr/bin/env bash
# Regenerates tests/data/reference_agent_facts.json by running jaxgcrl 0.2.8's own agents,
# HER relabelling and evaluator (CPU, under a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/jaxgcrl_venv.sh
JAX_PLATFORMS=cpu "$JG/bin/python" benchmarks/reference_agent_facts.py "$@"
