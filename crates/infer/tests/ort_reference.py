#!/usr/bin/env python3
"""Reference for the inference parity tests: Python onnxruntime on a raw f32 tensor.

Reads a little-endian float32 tensor of the given shape, casts it to the model's input type,
runs the model with onnxruntime's CPU provider one image at a time (a model with a fixed
batch B gets the image and B-1 zero images), and prints JSON: per image, the top-5 ImageNet
classes and their probabilities (float64), or "nan" when the scores hold NaN.

    ort_reference.py MODEL TENSOR.f32 N,C,H,W --output NAME [--probabilities] [--background]

--probabilities: the output is already softmaxed (used as given); otherwise softmax is applied.
--background: column 0 is a background class and is dropped first (1001-class models).
"""

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("tensor")
    parser.add_argument("shape")
    parser.add_argument("--output", required=True)
    parser.add_argument("--probabilities", action="store_true")
    parser.add_argument("--background", action="store_true")
    args = parser.parse_args()
    shape = tuple(int(d) for d in args.shape.split(","))
    batch = np.fromfile(args.tensor, dtype="<f4").reshape(shape)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    dtype = np.float16 if feed.type == "tensor(float16)" else np.float32
    fixed_batch = feed.shape[0] if isinstance(feed.shape[0], int) and feed.shape[0] > 0 else 1
    results = []
    for image in batch:
        # One image per run; a model with a fixed batch B gets the image plus B-1 zero images.
        padded = np.zeros((fixed_batch, *image.shape), dtype=np.float32)
        padded[0] = image
        (scores,) = session.run([args.output], {feed.name: padded.astype(dtype)})
        row = scores[0].reshape(-1).astype(np.float64)
        if args.background:
            row = row[1:]
        if np.isnan(row).any():
            results.append("nan")
            continue
        if args.probabilities:
            probs = row
        else:
            shifted = np.exp(row - row.max())
            probs = shifted / shifted.sum()
        top = np.argsort(-row, kind="stable")[:5]
        results.append({"classes": [int(i) for i in top], "probabilities": [float(probs[i]) for i in top]})
    json.dump({"onnxruntime": ort.__version__, "images": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
