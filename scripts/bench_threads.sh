#!/usr/bin/env bash
# Decode + preprocess against the number of decoding threads: `imagenetx evaluate` of MODEL on
# the first LIMIT images of IMAGES at each thread count of THREADS, REPS times interleaved,
# with EVALUATE_FLAGS after `--` (e.g. --ep cuda --batch-size 64). Prints a Markdown table:
# median images/s of the whole process (start-up included), the speed-up over the first
# thread count, and the run's own pipeline line (how long the model waited for decoded
# images, how busy the decoding threads were, what limits the run) of its median run.
#
# Needs only bash, awk and the binary (with ONNX Runtime where it finds it: IMAGENETX_ORT_LIB
# or its cache), so it runs on a machine without cargo or Python.
#
#   scripts/bench_threads.sh BIN MODEL IMAGES "1 2 4 8 16" REPS LIMIT [-- EVALUATE_FLAGS...]
set -euo pipefail

if [[ $# -lt 6 ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
bin=$1 model=$2 images=$3 threads=$4 reps=$5 limit=$6
shift 6
[[ ${1:-} == -- ]] && shift
flags=("$@")
for path in "$bin" "$model"; do
  [[ -f $path ]] || { echo "bench_threads: $path: no such file" >&2; exit 2; }
done
[[ -e $images ]] || { echo "bench_threads: $images: no such folder or archive" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/log"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "model $model, $limit images of $images, flags: ${flags[*]:-(none)}" >&2
for rep in $(seq "$reps"); do
  for t in $threads; do
    out="$work/out"
    rm -rf "$out"
    mkdir -p "$out"
    start=$(date +%s.%N)
    if ! "$bin" evaluate "$model" --images "$images" --limit "$limit" --threads "$t" \
        --out "$out/p.csv" "${flags[@]}" > "$out/stdout" 2> "$out/stderr" < /dev/null; then
      echo "bench_threads: --threads $t failed:" >&2
      tail -n 5 "$out/stderr" >&2
      exit 2
    fi
    end=$(date +%s.%N)
    line=$(grep -m1 '^pipeline: ' "$out/stderr" | sed 's/^pipeline: //') || {
      echo "bench_threads: --threads $t printed no pipeline line (a binary older than it?)" >&2
      exit 2
    }
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    printf '%s\t%s\t%s\n' "$t" "$wall" "$line" >> "$log"
    printf 'rep %s, --threads %s: %s s; %s\n' "$rep" "$t" "$wall" "$line" >&2
  done
done

echo
echo "| decoding threads | images/s (median of $reps) | speed-up | the median run's pipeline line |"
echo "|---|---|---|---|"
first=""
for t in $threads; do
  # The median run of this thread count (the lower middle one for an even count).
  row=$(awk -F'\t' -v t="$t" '$1 == t' "$log" | LC_ALL=C sort -t$'\t' -k2,2g | awk -v n="$reps" 'NR == int((n + 1) / 2)')
  wall=$(cut -f2 <<< "$row")
  line=$(cut -f3 <<< "$row")
  count=$(sed -E 's/^([0-9]+) images in .*/\1/' <<< "$line")
  rate=$(awk -v n="$count" -v w="$wall" 'BEGIN { printf (n / w < 100 ? "%.1f" : "%.0f"), n / w }')
  [[ -z $first ]] && first=$wall
  speedup=$(awk -v w="$wall" -v f="$first" 'BEGIN { printf "%.2f", f / w }')
  echo "| $t | $rate | ${speedup}x | $line |"
done
