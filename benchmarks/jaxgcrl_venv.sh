#!/usr/bin/env bash
# Builds jaxgcrl 0.2.8's own venv at $JAXGCRL_VENV (default .venv-jaxgcrl) when it is missing.
# Sourced by compare_jaxgcrl.sh and reference_facts.sh; sets JG to the venv's path.
#
# jaxgcrl 0.2.8 pins jaxlib==0.4.25+cuda12 (not on PyPI), so it is installed with --no-deps next
# to CPU pins that work together.
JG="${JAXGCRL_VENV:-.venv-jaxgcrl}"
if [ ! -x "$JG/bin/python" ]; then
  python3 -m venv "$JG"
  "$JG/bin/pip" install -q "jax==0.4.25" "jaxlib==0.4.25" "numpy<2" "scipy<1.13" "flax<0.8.5" \
    "brax==0.10.5" "mujoco==3.2.7" "mujoco-mjx==3.2.7" "matplotlib==3.8.4" "tyro>=0.9.16" \
    wandb wandb-osh
  "$JG/bin/pip" install -q --no-deps "jaxgcrl==0.2.8"
fi
