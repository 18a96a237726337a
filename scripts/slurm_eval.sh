#!/usr/bin/env bash
# Evaluates MODEL over IMAGES in N shards as a Slurm job array, then merges them in a job that
# starts when every shard has succeeded.
#
#   scripts/slurm_eval.sh MODEL IMAGES N [SBATCH_FLAGS...] [-- EVALUATE_FLAGS... [-- MERGE_FLAGS...]]
#
# MODEL is one model (an .onnx file or an export folder), or many in one pass: a folder of
# .onnx files, or a text file listing them (one path per line, `evaluate --models-from`; not
# named .onnx).
#
# - `sbatch --array=0-(N-1) --requeue`: task K runs `imagenetx evaluate MODEL --images IMAGES
#   --shard auto --shards N --resume` with `--out OUT/STEM.predictions.csv` (one model; its
#   outputs OUT/STEM.shard-K-of-N.predictions.csv and .run.json) or `--out-dir OUT` (a pass:
#   OUT/NAME.shard-K-of-N.predictions.csv per model and OUT/zoo.shard-K-of-N.json). A task that
#   is pre-empted or requeued (`scontrol requeue`, a node failure) runs again and `--resume`
#   continues from its journals; a task that skipped images (exit 1) counts as done (the
#   skipped files are in its run record and the merged one).
# - `sbatch --dependency=afterok:<array job>`: `imagenetx merge` of the N shards into
#   OUT/STEM.predictions.csv (with its run record), or `imagenetx merge --out-dir OUT` (each
#   model into OUT/NAME.predictions.csv, the pass record OUT/zoo.json; exit 1, a model of the
#   pass that could not be merged, is done too: it is named in the log and in zoo.json).
# SBATCH_FLAGS (partition, account, time, resources, …) go to both jobs; EVALUATE_FLAGS (after
# `--`) to every `imagenetx evaluate`; MERGE_FLAGS (after a second `--`) to the merge (e.g.
# `--report OUT/report.html --images DIR` for a pass). OUT defaults to out/slurm/STEM (STEM:
# the model's, the folder's or the list's name); the binary is $IMAGENETX_BIN, else
# target/release/imagenetx. The jobs inherit this environment (sbatch's default), so
# ORT_DYLIB_PATH and IMAGENETX_CACHE reach them; paths are made absolute.
# Prints the job ids and the merged output; the last three lines are machine-readable:
# `array_job=ID`, `merge_job=ID`, `merged=PATH` (the merged CSV, or the pass's OUT folder).
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: $0 MODEL IMAGES N [SBATCH_FLAGS...] [-- EVALUATE_FLAGS... [-- MERGE_FLAGS...]]" >&2
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
merge_flags=()
section=sbatch
while [[ $# -gt 0 ]]; do
    if [[ "$1" == "--" && "$section" != merge ]]; then
        [[ "$section" == sbatch ]] && section=evaluate || section=merge
        shift
        continue
    fi
    case "$section" in
        sbatch) sbatch_flags+=("$1") ;;
        evaluate) evaluate_flags+=("$1") ;;
        merge) merge_flags+=("$1") ;;
    esac
    shift
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(realpath -e -- "${IMAGENETX_BIN:-$root/target/release/imagenetx}") || {
    echo "slurm_eval: no imagenetx binary (build it: cargo build --release -p imagenetx-cli, or set IMAGENETX_BIN)" >&2
    exit 2
}
# One model: a file, or an export folder (it holds model.onnx). A pass: any other folder (its
# .onnx files) or a list (a text file not named .onnx; an ONNX file is binary).
pass=
if [[ -d "$model" && ! -f "$model/model.onnx" ]]; then
    pass=1
    models=("$model")
elif [[ -f "$model" && "$model" != *.onnx ]] && grep -Iq . "$model"; then
    pass=1
    models=(--models-from "$model")
else
    models=("$model")
fi
stem=$(basename -- "$model")
stem=${stem%.onnx}
[[ -n "$pass" ]] && stem=${stem%.*}
out=${OUT:-$root/out/slurm/$stem}
mkdir -p "$out/logs"
out=$(realpath -e -- "$out")

command -v sbatch >/dev/null || { echo "slurm_eval: sbatch not found" >&2; exit 2; }

if [[ -n "$pass" ]]; then
    merged=$out
    where=(--out-dir "$out")
    merge=$(printf '%q ' "$bin" merge --out-dir "$out" "${merge_flags[@]}")
else
    merged="$out/$stem.predictions.csv"
    where=(--out "$merged")
    shards=()
    for ((k = 0; k < n; k++)); do
        shards+=("$out/$stem.shard-$k-of-$n.predictions.csv")
    done
    merge=$(printf '%q ' "$bin" merge "${shards[@]}" --out "$merged" "${merge_flags[@]}")
fi
# `evaluate` and `merge` exit 1 when they finished but skipped some inputs (or, for a pass,
# some model): done, for the dependency and for the job's state.
evaluate=$(printf '%q ' "$bin" evaluate "${models[@]}" --images "$images" --shard auto \
    --shards "$n" --resume --quiet "${where[@]}" "${evaluate_flags[@]}")

array_job=$(sbatch --parsable --job-name="imagenetx-$stem" --array="0-$((n - 1))" --requeue \
    --open-mode=append --output="$out/logs/%A_%a.log" "${sbatch_flags[@]}" \
    --wrap="$evaluate; rc=\$?; [ \$rc -le 1 ] || exit \$rc")
array_job=${array_job%%;*}
merge_job=$(sbatch --parsable --job-name="imagenetx-$stem-merge" \
    --dependency="afterok:$array_job" --kill-on-invalid-dep=yes \
    --output="$out/logs/%j-merge.log" "${sbatch_flags[@]}" \
    --wrap="$merge; rc=\$?; [ \$rc -le 1 ] || exit \$rc")
merge_job=${merge_job%%;*}

echo "submitted shards 0..$((n - 1)) as job array $array_job (logs $out/logs/)"
echo "submitted the merge as job $merge_job (after every shard succeeds)"
if [[ -n "$pass" ]]; then
    echo "merged predictions will be $merged/NAME.predictions.csv per model (pass record $merged/zoo.json)"
else
    echo "merged predictions will be $merged (run record ${merged%.csv}.run.json)"
fi
echo "array_job=$array_job"
echo "merge_job=$merge_job"
echo "merged=$merged"
