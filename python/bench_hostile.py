"""Peak memory of `imagenetx evaluate` on a folder of every hostile input together.

The folder: 40 ordinary 500x375 JPEGs; four images just under Pillow's refusal limit
(13300 x 13300 = 176,890,000 pixels; a 1-bit, an 8-bit grey and an RGB PNG and an RGB JPEG),
which are decoded (with a warning); PNG, GIF, TIFF and WebP decompression bombs; a symbolic
link to /dev/zero, a FIFO and a sparse 4 GiB file, all named like images. Each run is timed
under /usr/bin/time; the run must exit 1 (inputs skipped) and list every hostile entry.

    python bench_hostile.py --binary target/release/imagenetx --model fixtures/models/nchw_dynamic.onnx \
        --dir .cache/bench-hostile --threads 2 8
"""

import argparse
import os
import random
import re
import struct
import subprocess
import sys
import time
import zlib

from PIL import Image


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make(d: str) -> None:
    os.makedirs(d, exist_ok=True)
    Image.MAX_IMAGE_PIXELS = None
    w = 13300
    Image.new("1", (w, w), 1).save(f"{d}/big_1bit.png")
    Image.new("L", (w, w), 77).save(f"{d}/big_gray.png")
    Image.new("RGB", (w, w), (10, 200, 30)).save(f"{d}/big_rgb.png")
    Image.new("RGB", (w, w), (10, 200, 30)).save(f"{d}/big_rgb.JPEG", quality=90)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 23000, 23000, 1, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    open(f"{d}/bomb_png.png", "wb").write(png)
    gif = (b"GIF89a" + struct.pack("<HH", 65535, 65535) + bytes([0x80, 0, 0, 0, 0, 0, 255, 255, 255])
           + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + bytes([2, 2, 0x4C, 0x01, 0]) + b"\x3b")
    open(f"{d}/bomb_gif.gif", "wb").write(gif)
    entries = [(256, 4, 100000), (257, 4, 100000), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8), (277, 3, 1), (278, 4, 100000), (279, 4, 1)]
    tif = (b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
           + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in entries) + struct.pack("<I", 0))
    open(f"{d}/bomb_tiff.tif", "wb").write(tif)
    vp8l = bytes([0x2F]) + struct.pack("<I", 16382 | 16382 << 14) + bytes(7)
    webp = (b"RIFF" + struct.pack("<I", 4 + 8 + len(vp8l)) + b"WEBPVP8L" + struct.pack("<I", len(vp8l))
            + vp8l)
    open(f"{d}/bomb_webp.webp", "wb").write(webp)
    rng = random.Random(1)
    for i in range(40):
        img = Image.frombytes("RGB", (500, 375), bytes(rng.getrandbits(8) for _ in range(500 * 375 * 3)))
        img.save(f"{d}/ILSVRC2012_val_{i + 1:08}.JPEG", quality=85)
    os.symlink("/dev/zero", f"{d}/zero.JPEG")
    os.mkfifo(f"{d}/fifo.JPEG")
    with open(f"{d}/sparse.JPEG", "wb") as f:
        f.truncate(4 << 30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 8])
    args = ap.parse_args()
    images = os.path.join(args.dir, "images")
    if not os.path.exists(os.path.join(args.dir, "images.done")):
        make(images)
        open(os.path.join(args.dir, "images.done"), "w").close()
    hostile = ["zero.JPEG", "fifo.JPEG", "sparse.JPEG", "bomb_png.png", "bomb_gif.gif",
               "bomb_tiff.tif", "bomb_webp.webp"]
    for threads in args.threads:
        out = os.path.join(args.dir, f"t{threads}.csv")
        cmd = ["/usr/bin/time", "-v", args.binary, "evaluate", args.model, "--images", images,
               "--out", out, "--ep", "cpu", "--quiet", "--threads", str(threads)]
        start = time.monotonic()
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wall = time.monotonic() - start
        skipped = [line for line in run.stderr.splitlines() if line.startswith("skipped ")]
        missing = [h for h in hostile if not any(h in line for line in skipped)]
        if run.returncode != 1 or missing:
            sys.exit(f"--threads {threads}: exit {run.returncode}, not skipped: {missing}\n"
                     f"{run.stderr[-3000:]}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
        with open(out) as f:
            predicted = sum(1 for _ in f) - 1
        print(f"--threads {threads}: peak RSS {rss / 1024:.0f} MiB, wall {wall:.1f} s, "
              f"{predicted} predicted, {len(skipped)} skipped")
        print("  command: " + " ".join(cmd[2:]))


if __name__ == "__main__":
    main()
