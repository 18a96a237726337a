#!/usr/bin/env python3
"""Reference predictions for an ONNX image classifier: PIL + numpy + onnxruntime (CPU).

This is what the Rust test suite compares `imagenetx` against. Preprocessing
mirrors torchvision's `Resize(S)` + `CenterCrop(C)` + `ToTensor()` +
`Normalize(mean, std)` on PIL images, written in numpy (no torch):

* `Image.open(f).convert("RGB")` (grayscale and palette images become RGB,
  alpha is dropped);
* resize so the shorter side is S and the longer int(S * long / short)
  (truncated, as torchvision does), with PIL's filter (`bilinear`, `bicubic`,
  `nearest`, `lanczos`, `box`, `hamming`) — PIL antialiases when shrinking;
* centre crop C x C at top = int(round((h - C) / 2.0)), left likewise;
* float32 pixels, divided by 255 when `scale` is `unit`, kept 0..255 when it
  is `raw255`, then (x - mean) / std per channel in float32; channel order
  RGB or BGR;
* NCHW or NHWC as the model's input asks (or `--layout`, which a model with
  symbolic channel/height/width dims needs); float16 models get the float32
  tensor cast to float16 at the very end;
* integer inputs, the raw-pixel models of TFLite converters and edge
  exporters (normalisation inside the graph): uint8 gets the cropped PIL pixels
  0..255 as they are, int8 the pixels minus 128 (-128..127), in the channel
  order asked; scale, mean and std do not apply (giving them is an error).

Presets (explicit flags override them; `--metadata` applies the model's
`imagenetx.preprocess` JSON between the preset and the flags):

  torchvision  resize 256, crop 224, bilinear, mean (0.485, 0.456, 0.406),
               std (0.229, 0.224, 0.225), unit
  inception    resize 342, crop 299, bilinear, mean 0.5, std 0.5, unit
  tflite       resize 256, crop 224, bilinear, mean 127, std 128, raw255

Scoring: the class output is the one float output shaped [N,1000] or
[N,1001] (or [N,C,1,1]); integer outputs (class indices) are not scores. It is taken as probabilities when every row is non-negative and sums to
1 within 1e-3, otherwise as logits. With 1001 classes, index 0 (background) is
dropped first (logits: before the softmax; probabilities: the other 1000 are
renormalised), so class indices are always ImageNet-1k indices 0..999. The
softmax runs in float64 on the model's output cast to float64. Top-5 is sorted
by descending probability, ties broken by the lower class index.

Output CSV (to `--out`, or stdout), one row per image in the order given
(directories expand to their image files sorted by path):

  file_name,predicted_class,predicted_probability,top5_classes,top5_probabilities

`top5_*` are space-separated, most probable first; probabilities are printed
with Python's repr() of the float64 value. An image whose scores are not all
finite (NaN or infinity) gets no row; it is named on stderr and the exit
status is 1. Exit 2 on a fatal error (unreadable model or image, no class
output, a preprocessing that does not fit the model's input).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
METADATA_KEY = "imagenetx.preprocess"


@dataclass(frozen=True)
class Preprocess:
    """Every field is echoed to stderr, so a reference run states its protocol."""

    preset: str
    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: str  # "unit": mean/std apply to 0..1; "raw255": to 0..255
    channel_order: str  # "RGB" or "BGR"
    layout: str | None  # "NCHW", "NHWC", or None: take it from the model's input


PRESETS = {
    "torchvision": Preprocess("torchvision", 256, 224, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                              "unit", "RGB", None),
    "inception": Preprocess("inception", 342, 299, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "unit", "RGB", None),
    "tflite": Preprocess("tflite", 256, 224, "bilinear", (127.0, 127.0, 127.0), (128.0, 128.0, 128.0),
                         "raw255", "RGB", None),
}
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
SCALES = ("unit", "raw255")


class ReferenceError(Exception):
    """A fatal problem, with a message meant for the user."""


def pil_filter(name: str):
    from PIL import Image

    return {
        "nearest": Image.NEAREST,
        "bilinear": Image.BILINEAR,
        "bicubic": Image.BICUBIC,
        "lanczos": Image.LANCZOS,
        "box": Image.BOX,
        "hamming": Image.HAMMING,
    }[name]


def apply_overrides(pre: Preprocess, fields: dict, source: str) -> Preprocess:
    known = {f for f in Preprocess.__dataclass_fields__}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ReferenceError(f"{source}: unknown preprocessing field(s) {unknown}")
    out = dict(fields)
    for key in ("mean", "std"):
        if key in out:
            values = tuple(float(v) for v in out[key])
            if len(values) == 1:
                values = values * 3
            if len(values) != 3:
                raise ReferenceError(f"{source}: {key} needs 1 or 3 values, got {len(values)}")
            out[key] = values
    for key in ("resize", "crop"):
        if key in out:
            out[key] = int(out[key])
            if out[key] <= 0:
                raise ReferenceError(f"{source}: {key} must be positive")
    if "interpolation" in out and out["interpolation"] not in INTERPOLATIONS:
        raise ReferenceError(f"{source}: interpolation {out['interpolation']!r} not one of {INTERPOLATIONS}")
    if "scale" in out and out["scale"] not in SCALES:
        raise ReferenceError(f"{source}: scale {out['scale']!r} not one of {SCALES}")
    if "channel_order" in out:
        out["channel_order"] = str(out["channel_order"]).upper()
        if out["channel_order"] not in ("RGB", "BGR"):
            raise ReferenceError(f"{source}: channel_order must be RGB or BGR")
    if "layout" in out and out["layout"] is not None:
        out["layout"] = str(out["layout"]).upper()
        if out["layout"] not in ("NCHW", "NHWC"):
            raise ReferenceError(f"{source}: layout must be NCHW or NHWC")
    if out.get("std") and any(s == 0 for s in out["std"]):
        raise ReferenceError(f"{source}: std must be non-zero")
    return replace(pre, **out)


def resize_shorter(size: tuple[int, int], shorter: int) -> tuple[int, int]:
    """torchvision's `Resize(int)` output size for a PIL (width, height)."""
    w, h = size
    if w <= h:
        return shorter, int(shorter * h / w)
    return int(shorter * w / h), shorter


def preprocess_image(path: Path, pre: Preprocess, integer: str | None = None) -> np.ndarray:
    """One image as a float32 HWC array, normalised, in the configured channel order; for an
    `integer` input ("uint8", "int8") the raw pixels as that type (int8: pixels minus 128)."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
    img = img.resize(resize_shorter(img.size, pre.resize), pil_filter(pre.interpolation))
    w, h = img.size
    if pre.crop > w or pre.crop > h:
        raise ReferenceError(f"{path}: crop {pre.crop} is larger than the resized image {w}x{h}")
    top = int(round((h - pre.crop) / 2.0))
    left = int(round((w - pre.crop) / 2.0))
    img = img.crop((left, top, left + pre.crop, top + pre.crop))
    pixels = np.asarray(img, dtype=np.uint8)
    if pre.channel_order == "BGR":
        pixels = pixels[:, :, ::-1]
    if integer == "uint8":
        return np.ascontiguousarray(pixels)
    if integer == "int8":
        return np.ascontiguousarray((pixels.astype(np.int16) - 128).astype(np.int8))
    x = np.asarray(img, dtype=np.uint8).astype(np.float32)
    if pre.scale == "unit":
        x = x / np.float32(255.0)
    mean = np.asarray(pre.mean, dtype=np.float32)
    std = np.asarray(pre.std, dtype=np.float32)
    x = (x - mean) / std
    if pre.channel_order == "BGR":
        x = x[:, :, ::-1]
    return np.ascontiguousarray(x, dtype=np.float32)


def list_images(items: list[Path]) -> list[Path]:
    out: list[Path] = []
    for item in items:
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ReferenceError(f"{item}: no image files")
            out.extend(found)
        elif item.is_file():
            out.append(item)
        else:
            raise ReferenceError(f"{item}: no such file or directory")
    return out


@dataclass(frozen=True)
class ModelIO:
    input_name: str
    input_type: str
    layout: str
    height: int | None
    width: int | None
    batch: int | None  # None: dynamic
    output_name: str
    output_index: int
    num_classes: int


def inspect_model(session, layout_hint: str | None = None) -> ModelIO:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ReferenceError(f"expected one model input, found {[i.name for i in inputs]}")
    inp = inputs[0]
    shape = list(inp.shape)
    if len(shape) != 4:
        raise ReferenceError(f"input {inp.name!r} has shape {shape}: not an image batch [N,C,H,W] or [N,H,W,C]")
    def channels(dim) -> bool:  # 3, or symbolic
        return dim == 3 or not isinstance(dim, int)

    if layout_hint == "NCHW" and channels(shape[1]):
        layout, height, width = "NCHW", shape[2], shape[3]
    elif layout_hint == "NHWC" and channels(shape[3]):
        layout, height, width = "NHWC", shape[1], shape[2]
    elif shape[1] == 3:
        layout, height, width = "NCHW", shape[2], shape[3]
    elif shape[3] == 3:
        layout, height, width = "NHWC", shape[1], shape[2]
    else:
        raise ReferenceError(f"input {inp.name!r} has shape {shape}: no 3-channel axis")
    batch = shape[0] if isinstance(shape[0], int) else None
    candidates = [
        (i, o) for i, o in enumerate(session.get_outputs())
        if o.type in ("tensor(float)", "tensor(float16)") and len(o.shape) in (2, 4)
        and o.shape[1] in (1000, 1001) and list(o.shape[2:]) in ([], [1, 1])
    ]
    if len(candidates) != 1:
        got = [(o.name, o.type, o.shape) for o in session.get_outputs()]
        raise ReferenceError(f"expected exactly one float output of shape [N,1000] or [N,1001] "
                             f"(or [N,C,1,1]), found {got}")
    index, out = candidates[0]
    return ModelIO(
        input_name=inp.name,
        input_type=inp.type,
        layout=layout,
        height=height if isinstance(height, int) else None,
        width=width if isinstance(width, int) else None,
        batch=batch,
        output_name=out.name,
        output_index=index,
        num_classes=out.shape[1],
    )


def to_probabilities(scores: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rows of class probabilities (float64, 1000 classes) and whether the model gave probabilities."""
    s = scores.astype(np.float64)
    is_prob = bool(np.all(s >= 0.0) and np.all(np.abs(s.sum(axis=1) - 1.0) <= 1e-3))
    if s.shape[1] == 1001:
        s = s[:, 1:]
        if is_prob:
            return s / s.sum(axis=1, keepdims=True), True
    if is_prob:
        return s, True
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True), False


def top5(p: np.ndarray) -> np.ndarray:
    order = np.lexsort((np.arange(p.size), -p))  # descending probability, then ascending index
    return order[:5]


def run(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    pre = PRESETS[args.preset]
    try:
        session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    except Exception as err:
        raise ReferenceError(f"{args.model}: cannot load the model: {err}") from err
    io = inspect_model(session, args.layout)
    if args.metadata:
        meta = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY in meta:
            try:
                fields = json.loads(meta[METADATA_KEY])
            except json.JSONDecodeError as err:
                raise ReferenceError(f"{args.model}: {METADATA_KEY} is not JSON: {err}") from err
            if "preset" in fields and fields["preset"] not in PRESETS:
                raise ReferenceError(f"{args.model}: unknown preset {fields['preset']!r} in {METADATA_KEY}")
            if "preset" in fields:
                pre = PRESETS[fields["preset"]]
            pre = apply_overrides(pre, fields, f"{args.model} {METADATA_KEY}")
        else:
            print(f"note: {args.model} has no {METADATA_KEY} metadata; using preset {pre.preset}", file=sys.stderr)
    flags = {
        k: v for k, v in {
            "resize": args.resize, "crop": args.crop, "interpolation": args.interpolation, "mean": args.mean,
            "std": args.std, "scale": args.scale, "channel_order": args.channel_order, "layout": args.layout,
        }.items() if v is not None
    }
    pre = apply_overrides(pre, flags, "command line")
    layout = pre.layout or io.layout
    if layout != io.layout:
        raise ReferenceError(f"layout {layout} asked for, but the model input is {io.layout}")
    for dim, name in ((io.height, "height"), (io.width, "width")):
        if dim is not None and dim != pre.crop:
            raise ReferenceError(f"crop {pre.crop} does not fit the model's input {name} {dim}")
    dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
             "tensor(int8)": np.int8}.get(io.input_type)
    if dtype is None:
        raise ReferenceError(f"input {io.input_name!r} is {io.input_type}; only float, float16, uint8 and int8 "
                             "are supported")
    integer = {np.uint8: "uint8", np.int8: "int8"}.get(dtype)
    if integer and any(getattr(args, k) is not None for k in ("mean", "std", "scale")):
        raise ReferenceError(f"input {io.input_name!r} is {integer}: it takes raw pixels, not --mean/--std/--scale")
    echo = asdict(pre) | {"layout": layout, "input_type": io.input_type, "output": io.output_name,
                          "num_classes": io.num_classes}
    print(f"preprocess: {json.dumps(echo)}", file=sys.stderr)

    images = list_images(args.images)
    batch_size = io.batch or args.batch_size
    rows, skipped, tensors = [], [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        try:
            arrays = [preprocess_image(p, pre, integer) for p in chunk]
        except (OSError, ValueError) as err:
            raise ReferenceError(f"cannot decode an image: {err}") from err
        x = np.stack(arrays)
        if layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x.astype(dtype))
        if args.save_tensor:
            tensors.append(x)
        scores = np.asarray(session.run(None, {io.input_name: x})[io.output_index])
        scores = scores.reshape(scores.shape[0], io.num_classes)
        for path, row in zip(chunk, np.asarray(scores)):
            if not np.all(np.isfinite(row)):
                skipped.append(path)
                continue
            prob, _ = to_probabilities(row[None, :])
            prob = prob[0]
            best = top5(prob)
            rows.append([
                path.name,
                int(best[0]),
                repr(float(prob[best[0]])),
                " ".join(str(int(c)) for c in best),
                " ".join(repr(float(prob[c])) for c in best),
            ])
    if args.save_tensor:
        np.save(args.save_tensor, np.concatenate(tensors))

    handle = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file_name", "predicted_class", "predicted_probability", "top5_classes", "top5_probabilities"])
        writer.writerows(rows)
    finally:
        if args.out:
            handle.close()
    if skipped:
        print(f"skipped {len(skipped)} image(s) with non-finite scores: " + ", ".join(str(p) for p in skipped),
              file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the .onnx classifier")
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="image files and/or directories")
    parser.add_argument("--out", type=Path, help="CSV to write (default: stdout)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="torchvision")
    parser.add_argument("--metadata", action="store_true", help=f"apply the model's {METADATA_KEY} metadata")
    parser.add_argument("--resize", type=int, help="shorter side after resizing")
    parser.add_argument("--crop", type=int, help="side of the centre crop")
    parser.add_argument("--interpolation", choices=INTERPOLATIONS)
    parser.add_argument("--mean", type=float, nargs="+", help="1 or 3 values, in the scale of --scale")
    parser.add_argument("--std", type=float, nargs="+", help="1 or 3 values, in the scale of --scale")
    parser.add_argument("--scale", choices=SCALES, help="unit: mean/std apply to 0..1 pixels; raw255: to 0..255")
    parser.add_argument("--channel-order", choices=("RGB", "BGR"))
    parser.add_argument("--layout", choices=("NCHW", "NHWC"), help="default: from the model's input shape")
    parser.add_argument("--batch-size", type=int, default=16, help="for models with a dynamic batch axis")
    parser.add_argument("--save-tensor", type=Path, help="also save the preprocessed input batch as .npy")
    args = parser.parse_args(argv)
    if args.batch_size <= 0:
        parser.error("--batch-size must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ReferenceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
