#!/usr/bin/env bash
# The pipeline and training-throughput benchmarks on a machine with a CUDA GPU, in about five minutes.
#
#   benchmarks/gpu.sh [OUT]          # default OUT: results/bench; then `spineaug report --results results`
#
# Writes the same files as `make benchmark` (pipelines/transforms/engine/mapping.csv + meta.json) and
# `spineaug bench --training` (training.csv + training_meta.json) into OUT, with GPU rows next to CPU rows.
# The sizes are cut to fit the five minutes: the pipeline table at B=2 x 128^3 only (CPU and GPU), 30 calls per
# case or 4 s, whichever comes first; the training table with 64^3 patches, B=2, 20 timed iterations, on CUDA,
# under CPU budgets of all cores, a quarter and one (bgv2 with 0, 1 and cores-1 loader workers).
# PYTHON overrides the interpreter (default: .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-results/bench}

"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "benchmarks/gpu.sh: no CUDA GPU visible to torch")'
"$PY" -m spineaug.cli bench --device auto --sizes 128 --batches 2 --repeats 30 --max-seconds 4 --out "$OUT"
"$PY" -m spineaug.cli bench --training --device cuda --sizes 64 --batches 2 --repeats 20 --out "$OUT"
