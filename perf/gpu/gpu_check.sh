#!/usr/bin/env bash
# The device check for the model library, as one run on the GPU machine (see shared/gpu/README.md):
# build gpu/ against PyTorch's CUDA libtorch, run the model tests (CUDA cases included), then the
# peer baseline and model_bench on the same workload. Needs .gpu/hf_baseline.py in the checkout.
# Output: $OUT/tests.txt, $OUT/hf.json, $OUT/bench_*.json, and a short table last.
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
TP=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBED_GPU_ONLY=ON \
  -DCMAKE_PREFIX_PATH="$TP" > "$OUT/configure.txt" 2>&1 || { tail -30 "$OUT/configure.txt"; exit 1; }
cmake --build build-gpu-cuda -j16 > "$OUT/build.txt" 2>&1 || { grep -E "error" "$OUT/build.txt" | head -30; exit 1; }
ctest --test-dir build-gpu-cuda --output-on-failure > "$OUT/tests.txt" 2>&1
build-gpu-cuda/bin/gpu_tests 2>&1 | grep -E "parity|FAILED|PASSED|SKIPPED \]" | head -40
if [ -f .gpu/hf_baseline.py ]; then
  WORKLOAD_LENGTHS="$OUT/workload_lengths.json" timeout 240 python3 .gpu/hf_baseline.py > "$OUT/hf.json" 2> "$OUT/hf.err"
fi
LEN=""
[ -f "$OUT/workload_lengths.json" ] && LEN="--lengths-file $OUT/workload_lengths.json"
for b in 32 128; do
  timeout 150 build-gpu-cuda/bin/model_bench --device cuda --dtype bfloat16 $LEN \
    --max-batch-sequences $b --max-batch-tokens 65536 --repeats 3 > "$OUT/bench_b$b.json"
done
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name):
    try: return json.load(open(os.path.join(out, name)))
    except Exception as e: return {"error": str(e)}
hf = load("hf.json")
for k, v in hf.get("hf_sdpa_mixed_16_512", {}).items():
    print(f"hf   {k:14s} {v['tokens_per_s']:12,.0f} tok/s")
for b in (32, 128):
    r = load(f"bench_b{b}.json")
    for order in ("arrival_order", "sorted_by_length"):
        m = r.get("mixed_16_512", {}).get(order)
        if m: print(f"ours b{b} {order:16s} {m['tokens_per_s']:12,.0f} tok/s  {m['fraction_of_matmul']:.2f} of matmul")
print("bf16 matmul TFLOP/s (hf):", hf.get("bf16_matmul_tflops"))
PY
