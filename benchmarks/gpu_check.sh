#!/usr/bin/env bash
# One-command GPU check (run from the repository root on a machine with an NVIDIA GPU and PyTorch).
# Needs no installation of the package and no data files: it runs from the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout 290 python3 benchmarks/gpu_check.py --device "${1:-cuda}"
