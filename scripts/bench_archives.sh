#!/usr/bin/env bash
# Peak RSS and wall time of `imagenetx evaluate` over the same images as a folder, a tar of N,
# a tar of 10N and 10 WebDataset shards of N each: memory must not grow with the archive.
# Usage: scripts/bench_archives.sh [N] [WORK_DIR]   (needs the release binary and the venv)
set -euo pipefail
N=${1:-200}
WORK=${2:-/tmp/imagenetx-bench-archives}
BIN=${IMAGENETX_BIN:-target/release/imagenetx}
MODEL=${BENCH_MODEL:-fixtures/models/nchw_dynamic.onnx}
PY=${IMAGENETX_VENV:-.cache/venv}/bin/python
mkdir -p "$WORK"
[ -d "$WORK/src" ] || "$PY" python/preprocess_reference.py bench-images --out "$WORK/src" --count 100
python3 - "$WORK" "$N" <<'PY'
import os, sys, tarfile
work, n = sys.argv[1], int(sys.argv[2])
src = sorted(os.path.join(work, "src", f) for f in os.listdir(os.path.join(work, "src")))
def name(i): return f"ILSVRC2012_val_{i + 1:08}.JPEG"
for count in (n, 10 * n):
    path = os.path.join(work, f"val-{count}.tar")
    if not os.path.exists(path):
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
            for i in range(count):
                tar.add(src[i % len(src)], arcname=name(i))
folder = os.path.join(work, f"folder-{10 * n}")
if not os.path.isdir(folder):
    os.makedirs(folder)
    for i in range(10 * n):
        os.link(src[i % len(src)], os.path.join(folder, name(i)))
shards = os.path.join(work, "shards")
if not os.path.isdir(shards):
    os.makedirs(shards)
    for s in range(10):
        with tarfile.open(os.path.join(shards, f"val-{s:06}.tar"), "w", format=tarfile.GNU_FORMAT) as tar:
            for i in range(s * n, (s + 1) * n):
                key = f"ILSVRC2012_val_{i + 1:08}"
                tar.add(src[i % len(src)], arcname=key + ".jpg")
PY
# Parquet shards as Hugging Face `datasets` writes them (image{bytes,path}, label, row groups
# of 100, snappy), when a Python with pyarrow is given: PYARROW_PYTHON=/path/to/python.
if [ -n "${PYARROW_PYTHON:-}" ]; then
    "$PYARROW_PYTHON" - "$WORK" "$N" <<'PY'
import os, sys, pyarrow as pa, pyarrow.parquet as pq
work, n = sys.argv[1], int(sys.argv[2])
src = sorted(os.path.join(work, "src", f) for f in os.listdir(os.path.join(work, "src")))
for count in (n, 10 * n):
    path = os.path.join(work, f"val-{count}.parquet")
    if os.path.exists(path):
        continue
    names = [f"ILSVRC2012_val_{i + 1:08}.JPEG" for i in range(count)]
    data = [open(src[i % len(src)], "rb").read() for i in range(count)]
    image = pa.StructArray.from_arrays(
        [pa.array(data, pa.binary()), pa.array(names, pa.string())], names=["bytes", "path"])
    labels = pa.array([i % 1000 for i in range(count)], pa.int64())
    pq.write_table(pa.table({"image": image, "label": labels}), path, row_group_size=100)
PY
fi
run() {
    local what=$1; shift
    /usr/bin/time -v "$BIN" evaluate "$MODEL" --ep cpu --quiet --out "$WORK/$what.csv" "$@" \
        >/dev/null 2>"$WORK/$what.time" || true
    local rss wall
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/$what.time")
    wall=$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$WORK/$what.time")
    printf '| %s | %s MiB | %s |\n' "$what" "$((rss / 1024))" "$wall"
}
echo "| input | peak RSS | wall |"
echo "|---|---|---|"
run "tar-$N" --images "$WORK/val-$N.tar"
run "tar-$((10 * N))" --images "$WORK/val-$((10 * N)).tar"
run "folder-$((10 * N))" --images "$WORK/folder-$((10 * N))"
run "wds-10x$N" --images "$WORK/shards/val-{000000..000009}.tar"
if [ -n "${PYARROW_PYTHON:-}" ]; then
    run "parquet-$N" --images "$WORK/val-$N.parquet"
    run "parquet-$((10 * N))" --images "$WORK/val-$((10 * N)).parquet"
    cmp "$WORK/folder-$((10 * N)).csv" "$WORK/parquet-$((10 * N)).csv" && echo "parquet CSV = folder CSV"
fi
cmp "$WORK/folder-$((10 * N)).csv" "$WORK/tar-$((10 * N)).csv" && echo "tar CSV = folder CSV"
