#!/usr/bin/env bash
# The GPU benchmark as run on a lent machine: extraction throughput and MFU of the embedded
# model's shape and of a LLaMA-7B shape, in bf16, with random weights (same FLOPs, no download).
# Then the whole GENIES table of the embedded model at full data (config/full.yaml) and its wall
# time. Usage: bench/gpu.sh TOKENIZER_DIR [OUT_DIR], from a checkout after `make install`.
set -euo pipefail
tokenizer=$1
out=${2:-.}
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 bench/activations.py --shape smollm2-135m --tokenizer "$tokenizer" --dtype bfloat16 \
    --batch-size 64 --texts 3000 --repeats 3 --max-length 512 2>&1 | tee "$out/smollm2.txt"
python3 bench/activations.py --shape llama-7b --tokenizer "$tokenizer" --dtype bfloat16 \
    --batch-size 32 --texts 1500 --repeats 3 --max-length 512 2>&1 | tee "$out/llama7b.txt"
# The GENIES table of the embedded model at full data: model jobs take the GPU in turn, jobs
# reading the cache run beside them on the cores.
started=$(date +%s)
.venv/bin/snakemake --configfile config/full.yaml --cores 8 --resources gpu=1 genies \
    > "$out/full.log" 2>&1
echo "config/full.yaml GENIES table: $(($(date +%s) - started)) s wall" | tee "$out/full.txt"
