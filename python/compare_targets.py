#!/usr/bin/env python3
"""Compare the outputs of two builds of imagenetx (e.g. x86_64 and aarch64) on the same inputs.

Each folder holds one sub-folder per model, as scripts/test_aarch64.sh writes them:

  MODEL/predictions.csv   `imagenetx evaluate --out` (top-5 classes and probabilities)
  MODEL/tensors/*.npy     `imagenetx preprocess --model MODEL --out` (one tensor per image)

The other build must give, for every model and image, the same top-5 classes in the same
order, every probability within --tolerance of the reference's, and tensor files that are
byte-identical. Each difference is printed with the model, the image and the class or
tensor element; the last line counts the checks: `N passed, N failed`. Exits 1 on any
failure (or when a folder holds nothing to compare).

`compare_targets.py --describe FILE.npy...` prints each file's dtype and shape as NumPy reads
them (`FILE float32 [1, 3, 224, 224]`).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def read_predictions(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """file name -> (top-5 classes, top-5 probabilities)."""
    rows = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            classes = [int(c) for c in row["top5_classes"].split()]
            probabilities = [float(p) for p in row["top5_probabilities"].split()]
            rows[row["file_name"]] = (classes, probabilities)
    return rows


def compare_predictions(
    model: str, ref: Path, other: Path, tolerance: float, failures: list[str]
) -> tuple[int, float]:
    """Checks one model's predictions; returns the number of images checked and the largest
    probability difference."""
    a, b = read_predictions(ref), read_predictions(other)
    for image in sorted(set(a) ^ set(b)):
        where = "reference" if image in a else "other build"
        failures.append(f"{model}: {image} is predicted only by the {where}")
    largest = 0.0
    for image in sorted(set(a) & set(b)):
        (ca, pa), (cb, pb) = a[image], b[image]
        if ca != cb:
            failures.append(f"{model}: {image}: top-5 classes differ: reference {ca}, other build {cb}")
            continue
        for cls, x, y in zip(ca, pa, pb):
            largest = max(largest, abs(x - y))
            if not abs(x - y) <= tolerance:
                failures.append(
                    f"{model}: {image}: class {cls}: probability {y!r} differs from the reference's {x!r} "
                    f"by {abs(x - y):.3g} (tolerance {tolerance:g})"
                )
    return len(set(a) & set(b)), largest


def compare_tensors(model: str, ref: Path, other: Path, failures: list[str]) -> int:
    """Checks one model's tensors byte for byte; returns the number of tensors checked."""
    a = {p.name for p in ref.glob("*.npy")}
    b = {p.name for p in other.glob("*.npy")}
    for name in sorted(a ^ b):
        where = "reference" if name in a else "other build"
        failures.append(f"{model}: tensor {name} was written only by the {where}")
    for name in sorted(a & b):
        x_bytes, y_bytes = (ref / name).read_bytes(), (other / name).read_bytes()
        if x_bytes == y_bytes:
            continue
        x, y = np.load(ref / name), np.load(other / name)
        if x.shape != y.shape or x.dtype != y.dtype:
            failures.append(
                f"{model}: tensor {name}: reference {x.dtype} {list(x.shape)}, other build {y.dtype} {list(y.shape)}"
            )
            continue
        differ = np.argwhere(x.view(np.uint32) != y.view(np.uint32)) if x.dtype == np.float32 else np.argwhere(x != y)
        if len(differ) == 0:
            failures.append(f"{model}: tensor {name}: same values, different file bytes (header)")
            continue
        first = tuple(int(i) for i in differ[0])
        failures.append(
            f"{model}: tensor {name}: {len(differ)} of {x.size} elements differ; first at {list(first)}: "
            f"reference {float(x[first])!r}, other build {float(y[first])!r}; largest difference "
            f"{float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))):.3g}"
        )
    return len(a & b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, help="folder of the reference build's outputs")
    parser.add_argument("--other", type=Path, help="folder of the other build's outputs")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest probability difference")
    parser.add_argument("--describe", type=Path, nargs="+", metavar="NPY", help="print dtype and shape of these .npy files")
    args = parser.parse_args()
    if args.describe:
        for path in args.describe:
            array = np.load(path)
            print(f"{path} {array.dtype} {list(array.shape)}")
        return 0
    if args.reference is None or args.other is None:
        parser.error("--reference and --other are required (or --describe)")

    models = sorted(p.name for p in args.reference.iterdir() if p.is_dir()) if args.reference.is_dir() else []
    if not models:
        print(f"error: {args.reference} holds no model folders to compare", file=sys.stderr)
        return 1
    passed = failed = 0
    for model in models:
        failures: list[str] = []
        ref, other = args.reference / model, args.other / model
        if not other.is_dir():
            failures.append(f"{model}: the other build wrote nothing ({other} is missing)")
            images = tensors = 0
            largest = float("nan")
        else:
            images, largest = compare_predictions(
                model, ref / "predictions.csv", other / "predictions.csv", args.tolerance, failures
            )
            tensors = compare_tensors(model, ref / "tensors", other / "tensors", failures)
            if images == 0 or tensors == 0:
                failures.append(f"{model}: nothing compared ({images} predictions, {tensors} tensors)")
        for failure in failures:
            print(f"FAIL {failure}")
        status = "ok" if not failures else "FAILED"
        print(
            f"{status:6} {model}: {images} images' top-5 and probabilities (largest difference {largest:.2g}), "
            f"{tensors} tensors"
        )
        passed, failed = passed + (not failures), failed + bool(failures)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
