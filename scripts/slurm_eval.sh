#!/usr/bin/env bash
# Evaluates MODEL over IMAGES in N shards as a Slurm job array, then merges them in a job that
# starts when every shard has succeeded.
#
#   scripts/slurm_eval.sh MODEL IMAGES N [SBATCH_FLAGS...] [-- EVALUATE_FLAGS...]
#
# - `sbatch --array=0-(N-1)`: task K runs `imagenetx evaluate MODEL --images IMAGES
#   --shard auto --shards N --resume --out OUT/STEM.predictions.csv` (its outputs:
#   OUT/STEM.shard-K-of-N.predictions.csv and .run.json). `--resume` makes a requeued or
#   pre-empted task continue from its journal; a task that skipped images (exit 1) counts as
#   done (the skipped files are in its run record and the merged one).
# - `sbatch --dependency=afterok:<array job>`: `imagenetx merge` of the N shards into
#   OUT/STEM.predictions.csv (with its run record).
# SBATCH_FLAGS (partition, account, time, resources, …) go to both jobs; EVALUATE_FLAGS (after
# `--`) to every `imagenetx evaluate`. OUT defaults to out/slurm/STEM; the binary is
# $IMAGENETX_BIN, else target/release/imagenetx. The jobs inherit this environment (sbatch's
# default), so ORT_DYLIB_PATH and IMAGENETX_CACHE reach them; paths are made absolute.
# Prints the job ids and the merged CSV's path; the last three lines are machine-readable:
# `array_job=ID`, `merge_job=ID`, `merged=PATH`.
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: $0 MODEL IMAGES N [SBATCH_FLAGS...] [-- EVALUATE_FLAGS...]" >&2
    exit 2
fi
model=$(realpath -e -- "$1") || { echo "slurm_eval: no model $1" >&2; exit 2; }
images=$(realpath -e -- "$2") || { echo "slurm_eval: no images $2" >&2; exit 2; }
n=$3
shift 3
if ! [[ "$n" =~ ^[0-9]+$ ]] || [[ "$n" -lt 1 ]]; then
    echo "slurm_eval: N=$n: expected a number of shards, at least 1" >&2
    exit 2
fi
sbatch_flags=()
evaluate_flags=()
while [[ $# -gt 0 ]]; do
    if [[ "$1" == "--" ]]; then
        shift
        evaluate_flags=("$@")
        break
    fi
    sbatch_flags+=("$1")
    shift
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(realpath -e -- "${IMAGENETX_BIN:-$root/target/release/imagenetx}") || {
    echo "slurm_eval: no imagenetx binary (build it: cargo build --release -p imagenetx-cli, or set IMAGENETX_BIN)" >&2
    exit 2
}
stem=$(basename -- "$model")
stem=${stem%.onnx}
out=${OUT:-$root/out/slurm/$stem}
mkdir -p "$out/logs"
out=$(realpath -e -- "$out")
merged="$out/$stem.predictions.csv"

command -v sbatch >/dev/null || { echo "slurm_eval: sbatch not found" >&2; exit 2; }

# `evaluate` exits 1 when it finished but skipped some inputs: done, for the dependency.
evaluate=$(printf '%q ' "$bin" evaluate "$model" --images "$images" --shard auto --shards "$n" \
    --resume --quiet --out "$merged" "${evaluate_flags[@]}")
shards=()
for ((k = 0; k < n; k++)); do
    shards+=("$out/$stem.shard-$k-of-$n.predictions.csv")
done
merge=$(printf '%q ' "$bin" merge "${shards[@]}" --out "$merged")

array_job=$(sbatch --parsable --job-name="imagenetx-$stem" --array="0-$((n - 1))" \
    --output="$out/logs/%A_%a.log" "${sbatch_flags[@]}" \
    --wrap="$evaluate; rc=\$?; [ \$rc -le 1 ] || exit \$rc")
array_job=${array_job%%;*}
merge_job=$(sbatch --parsable --job-name="imagenetx-$stem-merge" \
    --dependency="afterok:$array_job" --kill-on-invalid-dep=yes \
    --output="$out/logs/%j-merge.log" "${sbatch_flags[@]}" --wrap="$merge")
merge_job=${merge_job%%;*}

echo "submitted shards 0..$((n - 1)) as job array $array_job (logs $out/logs/)"
echo "submitted the merge as job $merge_job (after every shard succeeds)"
echo "merged predictions will be $merged (run record ${merged%.csv}.run.json)"
echo "array_job=$array_job"
echo "merge_job=$merge_job"
echo "merged=$merged"
