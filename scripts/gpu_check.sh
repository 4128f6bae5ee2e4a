#!/usr/bin/env bash
# Issue 23's device checks on a lent GPU machine (../shared/DEVICE.md): the throughput table, a profile of where a
# step's time goes, then the whole suite with CUDA visible. Prepare the wheels here first (`bash scripts/gpu_check.sh
# --wheels`), then, with the device tool, two calls back to back (the machine stays warm between them):
#   run(command="GPU_CHECK_PHASES=throughput bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=330)
#   run(command="GPU_CHECK_PHASES='profile pytest' bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=450)
# (at most 13 of a session's 15 device minutes with the start; the three phases together no longer fit one call's
# 600 s).
#   GPU_CHECK_PHASES ("throughput profile pytest"): which phases run
#   GPU_CHECK_LEVERS=1  also measure max-autotune and HF's torch_compile (about 4 more minutes: give
#                       it GPU_CHECK_THROUGHPUT_S=540 and a call of its own)
#   GPU_CHECK_THROUGHPUT_S (300), GPU_CHECK_PROFILE_S (90 each, compiled, then as CUDA graphs), GPU_CHECK_PYTEST_S
#   (240), GPU_CHECK_WORKERS (14): time limits, pytest-xdist workers
#   GPU_CHECK_PHASES=simclr  (a separate call, ~2 minutes: GPU_CHECK_SIMCLR_S, 150) SimCLR images/s, warmstart (views
#                       made on the GPU) against the plain loop (views made per image in DataLoader workers), a
#                       ResNet-18 shape on 10,000 synthetic 96 px colour images; the table in $OUT/simclr.log
# Logs land in $OUT (versions, throughput (log, json), profile_compile / profile_graphs (log, json), fp32_mm,
# pytest); each phase has its own time limit, so one that runs long still leaves the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--wheels" ]; then  # here, with the network: what the device machine lacks (DEVICE.md)
  mkdir -p .whl
  for p in datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 fsspec==2026.9.0 nltk==3.10.4 setfit==1.2.0; do
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
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 3  # --upgrade: a second call on a warm machine finds /tmp/site there
export PYTHONPATH=/tmp/site:$PWD/src
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__,
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')" \
  | tee "$OUT/versions.txt"

phases=" ${GPU_CHECK_PHASES:-throughput profile pytest} "
levers=()
[ "${GPU_CHECK_LEVERS:-0}" = 1 ] && levers=(--levers)
if [[ $phases == *" throughput "* ]]; then
  timeout "${GPU_CHECK_THROUGHPUT_S:-300}" python3 benchmarks/gpu_throughput.py "${levers[@]}" \
    --out "$OUT/throughput.json" > "$OUT/throughput.log" 2>&1
  echo "throughput exit $?"
  grep -E "^repeat|^\||peak|failed|skipping cudagraphs" "$OUT/throughput.log" | tail -30
fi

# where the time goes at BERT-base shape, compiled (eager with GPU_CHECK_PROFILE_EAGER=1): GPU busy share and the
# top kernels; the run also dumps inductor's code, and benchmarks/inductor_mm.py lists its fp32 matrix products (2026-12-04: an
# fp32 cuBLAS kernel took 2.5 of 29.8 ms a compiled step; the CPU's compiled graph has none)
if [[ $phases == *" profile "* ]]; then
  if [ "${GPU_CHECK_PROFILE_EAGER:-0}" = 1 ]; then  # measured 2026-12-04 (busy 44%); off by default for time
    timeout 50 python3 benchmarks/gpu_profile.py > "$OUT/profile_eager.log" 2>&1
    echo "profile eager exit $?"; grep -E "^wall|^\|" "$OUT/profile_eager.log" | head -8
  fi
  # the caches off: a graph loaded from them prints no code (the throughput phase compiled this shape already)
  TORCHINDUCTOR_FX_GRAPH_CACHE=0 TORCHINDUCTOR_AUTOGRAD_CACHE=0 TORCH_LOGS=output_code \
    timeout "${GPU_CHECK_PROFILE_S:-90}" python3 benchmarks/gpu_profile.py --compile --out "$OUT/profile_compile.json" \
    > "$OUT/profile_compile.log" 2> /tmp/inductor_code.log
  echo "profile compile exit $?"; grep -E "^wall|^\|" "$OUT/profile_compile.log" | head -8
  python3 benchmarks/inductor_mm.py /tmp/inductor_code.log > "$OUT/fp32_mm.txt" 2>&1; head -12 "$OUT/fp32_mm.txt"
  # the same step replayed as CUDA graphs: busy near 100% here says launches and gaps were the idle half
  timeout "${GPU_CHECK_PROFILE_S:-90}" python3 benchmarks/gpu_profile.py --compile --compile-mode reduce-overhead \
    --out "$OUT/profile_graphs.json" > "$OUT/profile_graphs.log" 2>&1
  echo "profile graphs exit $?"; grep -E "^wall|^\||skipping cudagraphs" "$OUT/profile_graphs.log" | head -8
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
  # -v: one line per test as it finishes, so a phase cut by its time limit still names what failed;
  # --timeout (pytest-timeout, installed there): one hung test must not eat the phase
  per_test=(); python3 -c "import pytest_timeout" 2>/dev/null && per_test=(--timeout 150)
  timeout "${GPU_CHECK_PYTEST_S:-240}" python3 -m pytest -p no:cacheprovider -o addopts="" -v -rfEs \
    "${per_test[@]}" -n "${GPU_CHECK_WORKERS:-14}" -k "not deepspeed and not zero" > "$OUT/pytest.log" 2>&1
  echo "pytest exit $?"
  grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest.log" | grep -v PASSED | tail -40
fi
