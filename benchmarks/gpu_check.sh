#!/usr/bin/env bash
# The GPU checks as one prepared run, for a machine with a CUDA GPU and PyTorch (the
# package is used from src/, not installed): the CUDA tests, then the throughput
# benchmark on the GPU at the paper's batch (50) and at batch 500. Results go to
# ${OUT:-gpu-check}/: tests.log, throughput-b50.json, throughput-b500.json.
#
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1
python3 -m pytest -q -p no:cacheprovider -k "cuda or gpu" tests 2>&1 | tee "$out/tests.log"
modes=train,train_itbp_detached,train_stbp,train_fp32,infer,infer_fp32,train_no_neurons,infer_no_neurons,baseline_train,baseline_infer
for batch in 50 500; do
    python3 benchmarks/throughput.py --device cuda --json --modes "$modes" --batch "$batch" \
        | tee "$out/throughput-b$batch.json"
done
