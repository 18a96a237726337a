#!/usr/bin/env python3
"""Write light ImageNet classifiers whose inference costs almost nothing next to decoding.

`python python/light_models.py --out DIR [--count 4] [--size 224]` writes DIR/light_K.onnx
for K in 0..count: x [N,3,S,S] (float32, NCHW) -> AveragePool to an 8x8 grid ->
Flatten -> Gemm with seeded weights (a different seed per model) -> logits [N,1000].
One image costs one read of its tensor plus a 192x1000 product (~0.05 ms on one core), so
in a benchmark with them decoding dominates: the many-models-in-one-pass benchmark
(`just bench-zoo`) uses them for its "decoding dominates" case.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

GRID = 8
CLASSES = 1000


def light_model(seed: int, size: int) -> onnx.ModelProto:
    if size % GRID:
        raise SystemExit(f"--size {size} is not a multiple of {GRID}")
    rng = np.random.default_rng(seed)
    features = 3 * GRID * GRID
    weights = (rng.standard_normal((features, CLASSES)) / np.sqrt(features)).astype(np.float32)
    bias = (0.1 * rng.standard_normal(CLASSES)).astype(np.float32)
    kernel = size // GRID
    nodes = [
        helper.make_node("AveragePool", ["image"], ["grid"], kernel_shape=[kernel, kernel],
                         strides=[kernel, kernel]),
        helper.make_node("Flatten", ["grid"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "weights", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"light_{seed}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for k in range(args.count):
        path = args.out / f"light_{k}.onnx"
        onnx.save(light_model(1000 + k, args.size), path)
        print(path)


if __name__ == "__main__":
    main()
