#!/usr/bin/env bash
# The aarch64 build gives the x86_64 build's answers: the cross-built binary runs under
# qemu-aarch64 (user-mode emulation) with the aarch64 ONNX Runtime on the fixture photos, with
# EfficientNet-Lite0 and every good fixture model, and must give the same top-5 as the host's
# binary, probabilities within 1e-5, and byte-identical preprocessed tensors
# (`imagenetx preprocess`); python/compare_targets.py compares them.
#
# Run by `just test-aarch64` (which builds both binaries and fetches both runtimes first):
#
#   scripts/test_aarch64.sh HOST_BINARY HOST_ORT_LIBRARY AARCH64_BINARY AARCH64_ORT_LIBRARY PYTHON
#
# The emulator and Debian's arm64 runtime libraries come from scripts/ensure_build_tools.sh
# aarch64-emulation. Where they cannot be installed this prints SKIPPED and the reason and
# exits 0, except under CI (CI set), where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if (($# != 5)); then
    echo "usage: scripts/test_aarch64.sh HOST_BINARY HOST_ORT_LIBRARY AARCH64_BINARY AARCH64_ORT_LIBRARY PYTHON" >&2
    exit 2
fi
host_bin=$1 host_ort=$2 arm_bin=$3 arm_ort=$4 python=$5
host=$(uname -m)
if [[ "$host" == aarch64 ]]; then
    echo "SKIPPED: the emulated aarch64 test (this machine is aarch64: the rest of just test runs the native build)" >&2
    exit 0
fi
for file in "$host_bin" "$host_ort" "$arm_bin" "$arm_ort"; do
    [[ -f "$file" ]] || { echo "error: $file: no such file" >&2; exit 2; }
done
host_ort=$(realpath "$host_ort") arm_ort=$(realpath "$arm_ort")

if ! scripts/ensure_build_tools.sh aarch64-emulation; then
    if [[ -n "${CI:-}" ]]; then
        echo "error: the aarch64 test must run under CI, and its emulator could not be installed (above)" >&2
        exit 1
    fi
    echo "SKIPPED: the aarch64 test (qemu-aarch64 and the arm64 libraries are not installed; see above)" >&2
    exit 0
fi

target_dir="${CARGO_TARGET_DIR:-target}"
# qemu's -L folder: the arm64 loader and libraries, and an ARM /proc/cpuinfo (qemu looks up
# every absolute path there first; ONNX Runtime's CPU detection cannot read the host's x86
# one). A Cortex-A72 with NEON, as in a Raspberry Pi 4.
sysroot="$target_dir/aarch64-sysroot"
rm -rf "$sysroot"
mkdir -p "$sysroot/proc"
ln -s "${IMAGENETX_CROSS_LIBS:-/usr/aarch64-linux-gnu}/lib" "$sysroot/lib"
for cpu in 0 1 2 3; do
    cat <<EOF
processor	: $cpu
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

EOF
done >"$sysroot/proc/cpuinfo"
sysroot=$(cd "$sysroot" && pwd)

out="$target_dir/test-aarch64"
rm -rf "$out"
photos=(fixtures/photos/*.png fixtures/photos/*.jpg)
models=(onnx_models/efficientnet_lite0.onnx)
for name in nchw_dynamic nchw_batch1 nhwc classes1001 softmax two_outputs input160 float16; do
    models+=("fixtures/models/$name.onnx")
done

# Both binaries do the same work: evaluate (top-5 and probabilities) and preprocess (tensors).
run_side() {
    local side=$1
    shift
    local model name dir
    for model in "${models[@]}"; do
        name=$(basename "$model" .onnx)
        dir="$out/$side/$name"
        mkdir -p "$dir"
        "$@" evaluate "$model" --images fixtures/photos --out "$dir/predictions.csv" \
            --ep cpu --threads 1 --quiet >"$dir/evaluate.log" 2>&1 \
            || { cat "$dir/evaluate.log" >&2; echo "error: $side evaluate of $model failed" >&2; return 1; }
        "$@" preprocess "${photos[@]}" --model "$model" --out "$dir/tensors" >"$dir/preprocess.log" 2>&1 \
            || { cat "$dir/preprocess.log" >&2; echo "error: $side preprocess for $model failed" >&2; return 1; }
    done
}

start=$(date +%s)
run_side "$host" env ORT_DYLIB_PATH="$host_ort" "$host_bin"
echo "$host: ${#models[@]} models on ${#photos[@]} photos in $(($(date +%s) - start)) s"
start=$(date +%s)
run_side aarch64 env ORT_DYLIB_PATH="$arm_ort" qemu-aarch64 -L "$sysroot" "$arm_bin"
echo "aarch64 under qemu-aarch64: ${#models[@]} models on ${#photos[@]} photos in $(($(date +%s) - start)) s"

"$python" python/compare_targets.py --reference "$out/$host" --other "$out/aarch64" --tolerance 1e-5
