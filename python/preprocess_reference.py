"""Reference implementation of imagenetx's image preprocessing: Pillow + torchvision.

The Rust crate `imagenetx-imaging` must reproduce, bit for
bit, what torchvision computes on Pillow images:

    Normalize(mean, std)(ToTensor()(CenterCrop(crop)(Resize(size, interp)(
        Image.open(path).convert("RGB")))))

torchvision itself is not a dependency: its arithmetic is spelled out below
(`resized_size` is `_compute_resized_output_size`, `center_crop` is
`F.center_crop` for PIL images, `to_tensor` is `ToTensor` + `Normalize` in
float32). The pixels come from Pillow (pinned in python/requirements.txt).

Subcommands
  synth       write the test images (fixed seed) and manifest.json into --out
  reference   for each image, write the uint8 crop and the float32 tensor that
              the config (imagenetx's PreprocessConfig as JSON) gives
  bench-images  write same-sized synthetic JPEGs for the benchmark
  bench-pil   time Pillow decode + preprocess, single thread, JSON to stdout
  bench-report  print the Markdown table comparing two bench JSON files
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20260101

# ---------------------------------------------------------------- reference


def resized_size(width: int, height: int, resize: dict) -> tuple[int, int]:
    """torchvision `_compute_resized_output_size` for an int size (w, h)."""
    mode = resize["mode"]
    if mode == "none":
        return width, height
    if mode == "exact":
        return resize["width"], resize["height"]
    size = resize["size"]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def center_crop(img: Image.Image, crop_h: int, crop_w: int, fill=0) -> Image.Image:
    """torchvision `F.center_crop` on a PIL image (zero padding when smaller); with `fill`
    (an RGB tuple) it is timm's `CenterCropOrPad`, which pads the same way with that colour."""
    image_width, image_height = img.size
    if crop_w > image_width or crop_h > image_height:
        left = (crop_w - image_width) // 2 if crop_w > image_width else 0
        top = (crop_h - image_height) // 2 if crop_h > image_height else 0
        right = (crop_w - image_width + 1) // 2 if crop_w > image_width else 0
        bottom = (crop_h - image_height + 1) // 2 if crop_h > image_height else 0
        padded = Image.new(img.mode, (image_width + left + right, image_height + top + bottom), fill)
        padded.paste(img, (left, top))
        img = padded
        image_width, image_height = img.size
        if crop_w == image_width and crop_h == image_height:
            return img
    crop_top = int(round((image_height - crop_h) / 2.0))
    crop_left = int(round((image_width - crop_w) / 2.0))
    return img.crop((crop_left, crop_top, crop_left + crop_w, crop_top + crop_h))


TORCHVISION = {
    "resize": {"mode": "shorter_side", "size": 256},
    "crop_height": 224,
    "crop_width": 224,
    "interpolation": "bilinear",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "scale": "unit_interval",
    "channel_order": "RGB",
    "layout": "NCHW",
}

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def crop_rgb(path: Path, config: dict) -> np.ndarray:
    """uint8 HxWx3 crop, as torchvision's Resize + CenterCrop give it."""
    with Image.open(path) as im:
        img = im.convert("RGB")
    w, h = resized_size(img.width, img.height, config["resize"])
    if (w, h) != img.size:  # torchvision returns the image untouched otherwise
        img = img.resize((w, h), FILTERS[config["interpolation"]])
    img = center_crop(img, config["crop_height"], config["crop_width"])
    return np.asarray(img, dtype=np.uint8)


def to_tensor(crop: np.ndarray, config: dict) -> np.ndarray:
    """ToTensor + Normalize in float32, then the config's order and layout."""
    x = crop.astype(np.float32)
    if config["scale"] == "unit_interval":
        x = x / np.float32(255.0)
    mean = np.asarray(config["mean"], dtype=np.float32)
    std = np.asarray(config["std"], dtype=np.float32)
    x = (x - mean) / std  # HWC, broadcast over the channel axis
    if config["channel_order"] == "BGR":
        x = x[:, :, ::-1]
    if config["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x, dtype="<f4")


def cmd_reference(args: argparse.Namespace) -> int:
    config = json.loads(Path(args.config).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i, name in enumerate(args.images):
        path = Path(name)
        rec = {"file": str(path), "index": i}
        try:
            crop = crop_rgb(path, config)
        except Exception as exc:  # noqa: BLE001 - every failure is a result here
            rec["error"] = f"{type(exc).__name__}: {exc}"
        else:
            (out / f"{i}.crop").write_bytes(crop.tobytes())
            (out / f"{i}.tensor").write_bytes(to_tensor(crop, config).tobytes())
            rec["height"], rec["width"] = int(crop.shape[0]), int(crop.shape[1])
        records.append(rec)
    (out / "reference.json").write_text(json.dumps(records, indent=1))
    return 0


# ---------------------------------------------------------------- synthetic images


def photo_like(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Smooth colour gradients, a few discs and fine noise: JPEG-realistic content."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        a, b, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6.3)]
        img[:, :, c] = 128 + 90 * np.sin(a * xx / max(w, 1) * 3 + b * yy / max(h, 1) * 3 + ph)
    for _ in range(4):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.05, 0.4) * max(w, h)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: Path, samples: np.ndarray, bit_depth: int, color_type: int) -> None:
    """Minimal PNG writer for what Pillow cannot save (16-bit RGB/RGBA/LA, 2-bit gray)."""
    h, w = samples.shape[:2]
    if bit_depth == 16:
        rows = samples.astype(">u2").reshape(h, -1).view(np.uint8).reshape(h, -1)
    elif bit_depth < 8:
        per = 8 // bit_depth
        flat = samples.reshape(h, w).astype(np.uint8)
        pad = (-w) % per
        flat = np.pad(flat, ((0, 0), (0, pad)))
        packed = np.zeros((h, flat.shape[1] // per), np.uint8)
        for j in range(per):
            packed |= flat[:, j::per] << (8 - bit_depth * (j + 1))
        rows = packed
    else:
        rows = samples.reshape(h, -1).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
    path.write_bytes(data + png_chunk(b"IEND", b""))


JPEG_SIZES = [
    (1, 1), (2, 3), (7, 5), (17, 13), (16, 16), (100, 100), (223, 224), (224, 224),
    (255, 257), (256, 256), (257, 256), (500, 375), (375, 500), (333, 500), (640, 427),
    (1000, 50), (40, 900), (600, 3), (450, 451), (129, 97),
]


def cmd_synth(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    manifest = []

    def add(name: str, expect: str = "ok") -> None:
        manifest.append({"file": name, "expect": expect})

    # JPEGs of many sizes, alternating subsampling, quality and progressive.
    for i, (w, h) in enumerate(JPEG_SIZES):
        img = Image.fromarray(photo_like(rng, w, h))
        sub = [2, 0, 1][i % 3]  # 4:2:0, 4:4:4, 4:2:2
        prog = i % 4 == 3
        name = f"synth_{w}x{h}_s{sub}{'_prog' if prog else ''}.JPEG"
        img.save(out / name, quality=int(rng.integers(60, 98)), subsampling=sub, progressive=prog)
        add(name)
    base = Image.fromarray(photo_like(rng, 320, 240))
    base.convert("L").save(out / "gray.JPEG", quality=90)
    add("gray.JPEG")
    base.convert("CMYK").save(out / "cmyk.JPEG", quality=90)
    add("cmyk.JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: Pillow ignores it without ImageOps.exif_transpose
    base.save(out / "exif_rotated.JPEG", quality=85, exif=exif)
    add("exif_rotated.JPEG")
    base.save(out / "optimized_prog_444.JPEG", quality=95, optimize=True, progressive=True, subsampling=0)
    add("optimized_prog_444.JPEG")

    # Non-JPEG formats and modes.
    small = photo_like(rng, 300, 200)
    Image.fromarray(small).save(out / "rgb.png")
    add("rgb.png")
    shutil.copy(out / "rgb.png", out / "png_named.JPEG")
    add("png_named.JPEG")
    alpha = rng.integers(0, 256, (200, 300), dtype=np.uint8)
    Image.fromarray(np.dstack([small, alpha])).save(out / "rgba.png")
    add("rgba.png")
    Image.fromarray(small).convert("L").save(out / "gray.png")
    add("gray.png")
    Image.fromarray(np.dstack([small[:, :, 0], alpha]), "LA").save(out / "gray_alpha.png")
    add("gray_alpha.png")
    pal = Image.fromarray(small).quantize(64)
    pal.save(out / "palette.png")
    add("palette.png")
    pal.save(out / "palette_trns.png", transparency=3)
    add("palette_trns.png")
    g16 = rng.integers(0, 600, (200, 300)).astype(np.uint16)  # both sides of 255
    write_png(out / "gray16.png", g16, 16, 0)
    add("gray16.png")
    rgb16 = rng.integers(0, 65536, (120, 90, 3)).astype(np.uint16)
    write_png(out / "rgb16.png", rgb16, 16, 2)
    add("rgb16.png")
    write_png(out / "rgba16.png", rng.integers(0, 65536, (90, 120, 4)).astype(np.uint16), 16, 6)
    add("rgba16.png")
    write_png(out / "la16.png", rng.integers(0, 65536, (60, 70, 2)).astype(np.uint16), 16, 4)
    add("la16.png")
    for depth in (1, 2, 4):
        levels = rng.integers(0, 1 << depth, (50, 37)).astype(np.uint8)
        write_png(out / f"gray{depth}bit.png", levels, depth, 0)
        add(f"gray{depth}bit.png")
    Image.fromarray(small).save(out / "rgb.bmp")
    add("rgb.bmp")
    Image.fromarray(small).save(out / "rgb.tiff")
    add("rgb.tiff")
    pal.save(out / "palette.gif")
    add("palette.gif")
    Image.fromarray(small).save(out / "lossless.webp", lossless=True)
    add("lossless.webp")
    Image.fromarray(small).save(out / "lossy.webp", quality=80)
    add("lossy.webp")

    # Broken files: every one must be an error naming the file.
    (out / "empty.JPEG").write_bytes(b"")
    add("empty.JPEG", "error:empty")
    good = (out / manifest[11]["file"]).read_bytes()  # the 500x375 one
    (out / "truncated.JPEG").write_bytes(good[: len(good) // 2])
    add("truncated.JPEG", "error:truncated")
    (out / "corrupt.JPEG").write_bytes(b"\xff\xd8\xff" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    add("corrupt.JPEG", "error:corrupt")
    (out / "text.JPEG").write_text("this is not an image\n")
    add("text.JPEG", "error:unsupported_format")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return 0


# ---------------------------------------------------------------- photos


def derive_photo_variants(photo_dir: Path, out: Path) -> list[str]:
    """Real photos as given, plus JPEG re-encodes and a CMYK JPEG of each colour one."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for src in sorted(photo_dir.iterdir()):
        if src.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        shutil.copy(src, out / src.name)
        names.append(src.name)
        with Image.open(src) as im:
            rgb = im.convert("RGB")
            gray = im.mode == "L"
        for sub, q in ((2, 75), (0, 92)):
            name = f"{src.stem}_q{q}_s{sub}.JPEG"
            (rgb.convert("L") if gray else rgb).save(out / name, quality=q, subsampling=sub)
            names.append(name)
        if not gray:
            name = f"{src.stem}_cmyk.JPEG"
            rgb.convert("CMYK").save(out / name, quality=90)
            names.append(name)
    return names


def cmd_photos(args: argparse.Namespace) -> int:
    names = derive_photo_variants(Path(args.photos), Path(args.out))
    (Path(args.out) / "manifest.json").write_text(
        json.dumps([{"file": n, "expect": "ok"} for n in names], indent=1)
    )
    return 0


# ---------------------------------------------------------------- benchmark


def cmd_bench_images(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED + 1)
    sizes = []
    for i in range(args.count):
        img = Image.fromarray(photo_like(rng, 500, 375))
        path = out / f"bench_{i:04}.JPEG"
        img.save(path, quality=args.quality)
        sizes.append(path.stat().st_size)
    print(f"{args.count} JPEGs 500x375, mean {statistics.mean(sizes) / 1024:.0f} KiB, in {out}", file=sys.stderr)
    return 0


def cmd_bench_pil(args: argparse.Namespace) -> int:
    config = json.loads(Path(args.config).read_text()) if args.config else TORCHVISION
    files = sorted(Path(args.dir).glob("*.JPEG"))
    out = np.empty(3 * config["crop_height"] * config["crop_width"], np.float32)
    rates = []
    for _ in range(args.reps):
        start = time.perf_counter()
        for path in files:
            out[:] = to_tensor(crop_rgb(path, config), config).reshape(-1)
        rates.append(len(files) / (time.perf_counter() - start))
    print(json.dumps({"impl": f"Pillow {Image.__version__} + numpy", "images": len(files), "rates": rates}))
    return 0


def read_runs(path: str) -> dict:
    """One JSON object per line (one per repetition); the rates are concatenated."""
    runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {"impl": runs[0]["impl"], "images": runs[0]["images"], "rates": [r for run in runs for r in run["rates"]]}


def cmd_bench_report(args: argparse.Namespace) -> int:
    ours, pil = read_runs(args.ours), read_runs(args.pil)
    mo, mp = statistics.median(ours["rates"]), statistics.median(pil["rates"])
    print("| implementation | images | repetitions | median images/s (1 core) | all repetitions |")
    print("|---|---|---|---|---|")
    for r, m in ((ours, mo), (pil, mp)):
        reps = ", ".join(f"{x:.0f}" for x in r["rates"])
        print(f"| {r['impl']} | {r['images']} | {len(r['rates'])} | {m:.0f} | {reps} |")
    print(f"\nratio (ours / Pillow, medians): {mo / mp:.2f}x")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("synth")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_synth)
    p = sub.add_parser("photos")
    p.add_argument("--photos", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_photos)
    p = sub.add_parser("reference")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("images", nargs="*")
    p.set_defaults(func=cmd_reference)
    p = sub.add_parser("bench-images")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--quality", type=int, default=95)
    p.set_defaults(func=cmd_bench_images)
    p = sub.add_parser("bench-pil")
    p.add_argument("--dir", required=True)
    p.add_argument("--config", help="PreprocessConfig JSON (default: the torchvision preset)")
    p.add_argument("--reps", type=int, default=5)
    p.set_defaults(func=cmd_bench_pil)
    p = sub.add_parser("bench-report")
    p.add_argument("ours")
    p.add_argument("pil")
    p.set_defaults(func=cmd_bench_report)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
