"""Peak memory and time of resuming a run the size of ImageNet's training set.

Makes N empty image files in ImageNet's class-folder layout (1,000 folders), a journal that
holds a prediction for every one of them (as a run killed just before its end leaves it), and
times `imagenetx evaluate --resume` on it under /usr/bin/time: the run reads the journal,
checks every file's size and mtime against it, predicts nothing, and writes the sorted
predictions CSV and the compacted journal.

    python bench_resume.py --binary target/release/imagenetx --model fixtures/models/nchw_dynamic.onnx \
        --probe-images fixtures/photos --dir .cache/bench-resume --count 1281167
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import time


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--probe-images", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--count", type=int, default=1_281_167)
    args = ap.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    images = os.path.join(args.dir, "images")
    stamp = os.path.join(args.dir, f"images-{args.count}.done")
    if not os.path.exists(stamp):
        shutil.rmtree(images, ignore_errors=True)
        per = -(-args.count // 1000)
        made = 0
        for c in range(1000):
            wnid = f"n{10000000 + c:08d}"
            folder = os.path.join(images, wnid)
            os.makedirs(folder)
            for i in range(min(per, args.count - made)):
                open(os.path.join(folder, f"{wnid}_{i}.JPEG"), "wb").close()
                made += 1
        open(stamp, "w").close()

    # The journal header (model and preprocessing digests) of this model, from a small run.
    probe = os.path.join(args.dir, "probe.csv")
    subprocess.run(
        [args.binary, "evaluate", args.model, "--images", args.probe_images, "--out", probe,
         "--ep", "cpu", "--quiet"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    with open(os.path.join(args.dir, "probe.journal"), "rb") as f:
        header = f.readline()

    out = os.path.join(args.dir, "run.csv")
    for stale in ("run.csv", "run.run.json"):
        try:
            os.remove(os.path.join(args.dir, stale))
        except FileNotFoundError:
            pass
    rng = random.Random(0)
    rows = 0
    with open(os.path.join(args.dir, "run.journal"), "wb") as journal:
        journal.write(header)
        for wnid in sorted(os.listdir(images)):
            folder = os.path.join(images, wnid)
            for name in sorted(os.listdir(folder)):
                st = os.stat(os.path.join(folder, name))
                classes = rng.sample(range(1000), 5)
                probs = sorted((rng.random() for _ in range(5)), reverse=True)
                body = "{},{},{},{},{},{},{}".format(
                    name, st.st_size, st.st_mtime_ns, classes[0], repr(probs[0]),
                    " ".join(map(str, classes)), " ".join(repr(p) for p in probs),
                ).encode()
                journal.write(body + b",%08x\n" % fnv1a(body))
                rows += 1

    cmd = ["/usr/bin/time", "-v", args.binary, "evaluate", args.model, "--images", images,
           "--out", out, "--ep", "cpu", "--quiet", "--resume"]
    start = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"resume failed ({run.returncode}):\n{run.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    kept = re.search(r"(\d+) predictions kept", run.stderr).group(1)
    with open(out, "rb") as f:
        lines = sum(1 for _ in f) - 1
    print(f"rows {rows}, kept {kept}, CSV rows {lines}, wall {wall:.1f} s, "
          f"peak RSS {rss / 1024:.0f} MiB")
    print("command: " + " ".join(cmd))


if __name__ == "__main__":
    main()
