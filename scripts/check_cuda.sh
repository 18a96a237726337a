#!/usr/bin/env bash
# The CUDA path on a machine with an NVIDIA GPU, checked against the CPU provider of the same
# ONNX Runtime build, with prebuilt binaries (no cargo needed on the GPU machine):
#
#   scripts/check_cuda.sh BIN_DIR ORT_GPU_DIR OUT_DIR [MODEL...]
#
# BIN_DIR holds `imagenetx` (and optionally `throughput`, the inference crate's example, and
# `infer-integration`, its integration-test binary); ORT_GPU_DIR holds the libraries of the
# onnxruntime-gpu wheel (`just setup-gpu`); CUDA 13 and cuDNN 9 must be on the loader path
# (LD_LIBRARY_PATH, e.g. the nvidia/*/lib folders of a PyTorch install). MODELs default to
# Lite0 and the good fixture models. `just test-cuda` builds the binaries and runs this.
#
# Checks, each printed as PASS/FAIL (exit 1 if any failed):
#   1. `inspect --providers` lists CUDAExecutionProvider as in the library;
#   2. per model, `evaluate --ep cuda` on the fixture photos gives the same top-1 and top-5
#      classes as `--ep cpu`, probabilities within TOL (default 2e-3: cuDNN picks other
#      convolution algorithms, and TF32 is on by default on Ampere and later), and the run
#      record says CUDAExecutionProvider;
#   3. `--ep auto` uses CUDA;
#   4. `--ep tensorrt` either runs or exits 2 naming what is missing (never a crash);
#   5. the ignored GPU test of the inference crate with IMAGENETX_EXPECT_CUDA=1;
#   6. with BENCH_IMAGES=DIR: images/s of Lite0 on CPU vs CUDA and of decoding with 1..N
#      threads (a tiny model), and ONNX Runtime alone (`throughput`), into OUT_DIR/bench.md.
set -uo pipefail

bin_dir=${1:?usage: check_cuda.sh BIN_DIR ORT_GPU_DIR OUT_DIR [MODEL...]}
ort_dir=${2:?ORT_GPU_DIR}
out=${3:?OUT_DIR}
shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
    models=("$here/onnx_models/efficientnet_lite0.onnx")
    for m in nchw_dynamic nchw_batch1 nhwc classes1001 softmax two_outputs input160 float16; do
        models+=("$here/fixtures/models/$m.onnx")
    done
fi
photos="$here/fixtures/photos"
lib="$ort_dir/libonnxruntime.so.1.31.1"
bin="$bin_dir/imagenetx"
tol=${TOL:-2e-3}
python=${PYTHON:-python3}
mkdir -p "$out"
failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "cores: $(nproc)"

echo "== 1. providers"
if "$bin" inspect --providers --ort-lib "$lib" | tee "$out/providers.txt" |
    grep -Eq '^cuda +CUDAExecutionProvider +yes'; then
    pass "CUDAExecutionProvider is in $lib"
else
    fail "CUDAExecutionProvider not listed as in $lib"
fi

echo "== 2. CUDA vs CPU per model"
compare() { # cpu.csv cuda.csv label
    "$python" - "$1" "$2" "$3" "$tol" <<'PY'
import csv, sys
a, b, label, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def rows(p):
    with open(p, newline="") as f:
        return {r["file_name"]: r for r in csv.DictReader(f)}
x, y = rows(a), rows(b)
if x.keys() != y.keys() or not x:
    print(f"FAIL {label}: images differ: {sorted(x)} vs {sorted(y)}"); sys.exit(1)
worst, bad = 0.0, []
for name in sorted(x):
    c1, c2 = x[name]["top5_classes"].split(), y[name]["top5_classes"].split()
    p1 = [float(v) for v in x[name]["top5_probabilities"].split()]
    p2 = [float(v) for v in y[name]["top5_probabilities"].split()]
    if c1[0] != c2[0] or set(c1) != set(c2):
        bad.append(f"{name}: cpu {c1} cuda {c2}")
    by = dict(zip(c2, p2))
    worst = max([worst] + [abs(p - by[c]) for c, p in zip(c1, p1) if c in by])
if bad or worst > tol:
    print(f"FAIL {label}: max |dp| {worst:.2e} (tol {tol:.0e}); " + "; ".join(bad)); sys.exit(1)
print(f"PASS {label}: {len(x)} images, same top-1 and top-5, max |dp| {worst:.2e}")
PY
}
for model in "${models[@]}"; do
    name=$(basename "$model" .onnx)
    for ep in cpu cuda; do
        "$bin" evaluate "$model" --images "$photos" --ort-lib "$lib" --ep "$ep" --quiet \
            --out "$out/$name.$ep.csv" >"$out/$name.$ep.log" 2>&1 ||
            { fail "$name --ep $ep exited $? ($(tail -n 2 "$out/$name.$ep.log" | tr '\n' ' '))"; continue 2; }
    done
    if compare "$out/$name.cpu.csv" "$out/$name.cuda.csv" "$name cuda vs cpu"; then :; else failures=$((failures + 1)); fi
    used=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["provider"]["used"])' "$out/$name.cuda.run.json")
    [[ "$used" == CUDAExecutionProvider ]] && pass "$name run record: $used" || fail "$name run record: $used"
done

echo "== 3. auto"
model=${models[0]}
"$bin" evaluate "$model" --images "$photos" --ort-lib "$lib" --quiet --out "$out/auto.csv" >"$out/auto.log" 2>&1
used=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["provider"]["used"])' "$out/auto.run.json" 2>/dev/null)
[[ "$used" == CUDAExecutionProvider ]] && pass "auto used $used" || fail "auto used '$used' ($(tail -n 2 "$out/auto.log"))"

echo "== 4. tensorrt"
"$bin" evaluate "$model" --images "$photos" --ort-lib "$lib" --ep tensorrt --quiet --out "$out/trt.csv" >"$out/trt.log" 2>&1
rc=$?
case $rc in
    0) pass "tensorrt ran: $("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["provider"])' "$out/trt.run.json")" ;;
    2) pass "tensorrt refused with exit 2: $(grep -m1 error "$out/trt.log")" ;;
    *) fail "tensorrt exited $rc: $(tail -n 3 "$out/trt.log")" ;;
esac

echo "== 5. inference crate's GPU test"
if [[ -x "$bin_dir/infer-integration" ]]; then
    mkdir -p "$out/cache" && ln -sfn "$ort_dir" "$out/cache/onnxruntime-gpu"
    if (cd "$here/crates/infer" && IMAGENETX_WORKSPACE="$here" IMAGENETX_CACHE="$out/cache" IMAGENETX_EXPECT_CUDA=1 \
        "$bin_dir/infer-integration" --ignored --exact gpu_library::cuda_build_registers_cuda_or_says_why_not \
        >"$out/infer-gpu.log" 2>&1); then
        pass "gpu_library test with IMAGENETX_EXPECT_CUDA=1"
    else
        fail "gpu_library test: $(tail -n 5 "$out/infer-gpu.log")"
    fi
else
    echo "skip: no $bin_dir/infer-integration"
fi

if [[ -n "${BENCH_IMAGES:-}" ]]; then
    echo "== 6. throughput on $BENCH_IMAGES ($(find "$BENCH_IMAGES" -type f | wc -l) images)"
    rate() { # label command...
        local label=$1; shift
        local t0 t1 n
        rm -f "$out"/bench.csv "$out"/bench.run.json "$out"/bench.csv.*
        t0=$(date +%s.%N)
        "$@" >"$out/bench.log" 2>&1 || { echo "| $label | failed: $(tail -n 1 "$out/bench.log") |"; return; }
        t1=$(date +%s.%N)
        n=$(find "$BENCH_IMAGES" -type f | wc -l)
        echo "| $label | $("$python" -c "print(round($n / ($t1 - $t0)))") |"
    }
    tiny="$here/fixtures/models/nchw_dynamic.onnx"
    {
        echo "| run | images/s |"
        echo "|---|---|"
        for rep in 1 2 3; do
            for ep in cpu cuda; do
                rate "Lite0 --ep $ep batch 64 (rep $rep)" "$bin" evaluate "$model" --images "$BENCH_IMAGES" \
                    --ort-lib "$lib" --ep "$ep" --batch-size 64 --quiet --out "$out/bench.csv"
            done
        done
        for threads in 1 2 4 8 16; do
            [[ $threads -le $(nproc) ]] || continue
            rate "decode+preprocess, tiny model, --threads $threads" "$bin" evaluate "$tiny" \
                --images "$BENCH_IMAGES" --ort-lib "$lib" --ep cpu --threads "$threads" --quiet \
                --out "$out/bench.csv"
        done
        for threads in 4 8 16; do
            [[ $threads -le $(nproc) ]] || continue
            rate "Lite0 --ep cuda --threads $threads" "$bin" evaluate "$model" --images "$BENCH_IMAGES" \
                --ort-lib "$lib" --ep cuda --threads "$threads" --batch-size 64 --quiet \
                --out "$out/bench.csv"
        done
    } | tee "$out/bench.md"
    if [[ -x "$bin_dir/throughput" ]]; then
        for ep in cpu cuda; do
            echo "ONNX Runtime alone, Lite0, batch 64, --ep $ep: $(ORT_DYLIB_PATH="$lib" "$bin_dir/throughput" "$model" 64 40 "$ep" 2>&1 | tail -n 1)" | tee -a "$out/bench.md"
        done
    fi
fi

echo "== $failures failure(s)"
[[ $failures -eq 0 ]]
