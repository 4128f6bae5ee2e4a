#!/usr/bin/env bash
# Issue 23's device checks in one call on a lent GPU machine (../shared/DEVICE.md): the throughput table, a
# profile of where a step's time goes, then the whole suite with CUDA visible. Prepare the wheels here first (`bash scripts/gpu_check.sh --wheels`), then, with
# the device tool: run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=600).
#   GPU_CHECK_PHASES ("throughput profile pytest"): which phases run
#   GPU_CHECK_LEVERS=1  also measure the other compile modes and HF's torch_compile (about 4 more minutes: give
#                       it GPU_CHECK_THROUGHPUT_S=480 and GPU_CHECK_PHASES=throughput)
#   GPU_CHECK_THROUGHPUT_S (240), GPU_CHECK_PYTEST_S (200), GPU_CHECK_WORKERS (8): time limits, pytest-xdist workers
#   GPU_CHECK_PHASES=simclr  (a separate call, ~2 minutes: GPU_CHECK_SIMCLR_S, 150) SimCLR images/s, warmstart (views
#                       made on the GPU) against the plain loop (views made per image in DataLoader workers), a
#                       ResNet-18 shape on 10,000 synthetic 96 px colour images; the table in $OUT/simclr.log
# Logs land in $OUT (8 files, the most that come back: versions, throughput, profile_eager / profile_compile,
# pytest); each phase has its own time limit (240 + 2 x 60 + 200 s, under the tool's 600), so one that runs
# long still leaves the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--wheels" ]; then  # here, with the network: what the device machine lacks (DEVICE.md)
  mkdir -p .whl
  for p in datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 fsspec==2026.9.0 nltk==3.10.4; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$p"
  done
  python3 -m pip wheel -q --no-deps -w .whl seqeval==1.2.2 rouge_score==0.1.2
  ls .whl
  exit 0
fi

OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD/src
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__,
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')" \
  | tee "$OUT/versions.txt"

phases=" ${GPU_CHECK_PHASES:-throughput profile pytest} "
levers=()
[ "${GPU_CHECK_LEVERS:-0}" = 1 ] && levers=(--levers)
if [[ $phases == *" throughput "* ]]; then
  timeout "${GPU_CHECK_THROUGHPUT_S:-240}" python3 benchmarks/gpu_throughput.py "${levers[@]}" \
    --out "$OUT/throughput.json" > "$OUT/throughput.log" 2>&1
  echo "throughput exit $?"
  grep -E "^repeat|^\||peak|failed" "$OUT/throughput.log" | tail -30
fi

# where the time goes at BERT-base shape, eager and compiled: GPU busy share and the top kernels
if [[ $phases == *" profile "* ]]; then
  for how in eager compile; do
    timeout 60 python3 benchmarks/gpu_profile.py $([ $how = compile ] && echo --compile) \
      --out "$OUT/profile_$how.json" > "$OUT/profile_$how.log" 2>&1
    echo "profile $how exit $?"; grep -E "^wall|^\|" "$OUT/profile_$how.log" | head -8
  done
fi

# SimCLR on the GPU: where the views are made decides whether the GPU waits (benchmarks/simclr_throughput.py)
if [[ $phases == *" simclr "* ]]; then
  python3 -c "import numpy as np; np.save('/tmp/rgb96.npy', np.random.default_rng(0).integers(0, 256,
(10000, 96, 96, 3), dtype=np.uint8))"
  timeout "${GPU_CHECK_SIMCLR_S:-150}" python3 benchmarks/simclr_throughput.py --repeats 2 --steps 30 \
    --images /tmp/rgb96.npy --out /tmp/simclr.md model.image_size=96 "model.widths=[64,128,256,512]" \
    "model.depths=[2,2,2,2]" objective.augment.blur_p=0.5 > "$OUT/simclr.log" 2>&1
  echo "simclr exit $?"; grep -E "^repeat|^\||^Ratio" "$OUT/simclr.log" | tail -8
fi

# the launched multi-process tests keep their processes on the CPU (gloo; tests/engine/test_distributed.on_cpu),
# since two CUDA processes cannot share one GPU; DeepSpeed is not installed there
if [[ $phases == *" pytest "* ]]; then
  timeout "${GPU_CHECK_PYTEST_S:-200}" python3 -m pytest -p no:cacheprovider -o addopts="" -q -rfEs \
    -n "${GPU_CHECK_WORKERS:-8}" -k "not deepspeed and not zero" > "$OUT/pytest.log" 2>&1
  echo "pytest exit $?"
  grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest.log" | tail -40
fi
