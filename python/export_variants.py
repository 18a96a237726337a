#!/usr/bin/env python3
"""Write the forms an exporter gives an ONNX image classifier, from one float32 NCHW model.

Converters and quantizers change a model's inputs and outputs without changing
what it computes. This script makes each of those forms from one source model
(a float32 input [N,3,H,W] and one class output [N,1000]), so that a consumer
can be checked on every one of them against onnxruntime on the same file:

  qdq_static      static int8 quantization, QDQ format (QuantizeLinear /
                  DequantizeLinear pairs), calibrated on --calibration-images
  qop_static      static int8 quantization, QOperator format (QLinearConv,
                  QLinearMatMul, ...), same calibration
  dynamic         dynamic int8 quantization (weights int8, activations
                  quantized per batch at run time)
  external        the weights (tensors over 1 KiB) in an external data file
                  (<file>.data); small shape constants stay inline, as
                  onnxruntime needs them for shape inference
  nc11            the class output reshaped to [N,1000,1,1] (SqueezeNet style)
  indices         three outputs: `class_index` int64 [N] (ArgMax), `top5_indices`
                  int64 [N,5] (TopK), then `probabilities` f32 [N,1000] (Softmax)
  uint8_nhwc      input `image` uint8 [N,H,W,3] of raw pixels 0..255: Cast,
                  the source's normalisation and a Transpose inside the graph
                  (TFLite-converted and edge models)
  int8            input `image` int8 [N,3,H,W] of pixels minus 128 (-128..127,
                  TFLite's int8 convention): Cast, +128 and the normalisation
                  inside the graph
  hf              Hugging Face (Optimum) style: input `pixel_values`
                  [batch_size,num_channels,height,width], every dim symbolic;
                  output `logits` [batch_size,1000]
  hf_nhwc         the same channels-last: `pixel_values`
                  [batch_size,height,width,num_channels] and a Transpose

The source's preprocessing (its `imagenetx.preprocess` metadata over
torchvision's defaults, as `onnx_reference.py --metadata` reads it) is what
the calibration images get and what the uint8/int8 variants fold into their
graph; those two drop the metadata record (their exporter documents raw
pixels, resize 256, centre crop 224, bilinear). The others keep it.

Usage: export_variants.py --model SRC.onnx --out DIR [--name NAME]
       [--calibration-images DIR ...] [--only qdq_static,hf,...]
writes DIR/NAME_<variant>.onnx (NAME: the source's file stem) and prints one
line per file. Deterministic for a given source, images and pinned packages.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_reference import METADATA_KEY, PRESETS, apply_overrides, list_images, preprocess_image  # noqa: E402

VARIANTS = ("qdq_static", "qop_static", "dynamic", "external", "nc11", "indices", "uint8_nhwc", "int8", "hf",
            "hf_nhwc")


class ExportError(Exception):
    """A fatal problem, with a message meant for the user."""


def source_preprocess(model: onnx.ModelProto):
    """The source's preprocessing: torchvision, then its metadata record."""
    pre = PRESETS["torchvision"]
    meta = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY in meta:
        fields = json.loads(meta[METADATA_KEY])
        if "preset" in fields:
            pre = PRESETS[fields["preset"]]
        pre = apply_overrides(pre, fields, METADATA_KEY)
    return pre


def io_of(model: onnx.ModelProto):
    """The source's single input and its class output, checked."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ExportError(f"expected one input, found {[i.name for i in inputs]}")
    inp = inputs[0]
    dims = inp.type.tensor_type.shape.dim
    if inp.type.tensor_type.elem_type != TensorProto.FLOAT or len(dims) != 4 or dims[1].dim_value != 3:
        raise ExportError(f"input {inp.name!r} must be float32 [N,3,H,W]")
    outputs = [o for o in graph.output if [d.dim_value for d in o.type.tensor_type.shape.dim][1:] == [1000]]
    if len(outputs) != 1:
        raise ExportError(f"expected one output [N,1000], found {[o.name for o in graph.output]}")
    return inp, outputs[0]


def fresh(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def drop_metadata(model: onnx.ModelProto) -> None:
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)


def set_dims(value: onnx.ValueInfoProto, dims: list) -> None:
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d


def new_input_in_front(model: onnx.ModelProto, name: str, elem_type: int, dims: list, nodes: list,
                       inits: list) -> None:
    """Replaces the model's input by `name`, feeding the old input through `nodes`."""
    graph = model.graph
    old, _ = io_of(model)
    old_name = old.name
    new = helper.make_tensor_value_info(name, elem_type, None)
    set_dims(new, dims)
    kept_inputs = [i for i in graph.input if i.name != old_name]
    del graph.input[:]
    graph.input.extend([new] + kept_inputs)
    all_nodes = list(nodes) + list(graph.node)
    del graph.node[:]
    graph.node.extend(all_nodes)
    graph.initializer.extend(inits)
    del graph.value_info[:]


def normalise_nodes(pre, source: str, target: str, prefix: str) -> tuple[list, list]:
    """float32 pixels 0..255 in `source` → the source model's normalised input in `target`."""
    nodes, inits = [], []
    x = source
    if pre.channel_order != "RGB":
        raise ExportError("only RGB sources are supported")
    if pre.scale == "unit":
        inits.append(numpy_helper.from_array(np.array(255.0, dtype=np.float32), f"{prefix}_255"))
        nodes.append(helper.make_node("Div", [x, f"{prefix}_255"], [f"{prefix}_unit"]))
        x = f"{prefix}_unit"
    shape = (1, 1, 1, 3)
    inits.append(numpy_helper.from_array(np.array(pre.mean, dtype=np.float32).reshape(shape), f"{prefix}_mean"))
    inits.append(numpy_helper.from_array(np.array(pre.std, dtype=np.float32).reshape(shape), f"{prefix}_std"))
    nodes.append(helper.make_node("Sub", [x, f"{prefix}_mean"], [f"{prefix}_centred"]))
    nodes.append(helper.make_node("Div", [f"{prefix}_centred", f"{prefix}_std"], [target]))
    return nodes, inits


def uint8_nhwc(model: onnx.ModelProto, pre) -> onnx.ModelProto:
    m = fresh(model)
    inp, _ = io_of(m)
    size = [inp.type.tensor_type.shape.dim[i].dim_value or "size" for i in (2, 3)]
    nodes = [helper.make_node("Cast", ["image"], ["pixels_f32"], to=TensorProto.FLOAT)]
    norm, inits = normalise_nodes(pre, "pixels_f32", "normalised_nhwc", "u8")
    nodes += norm
    nodes.append(helper.make_node("Transpose", ["normalised_nhwc"], [inp.name], perm=[0, 3, 1, 2]))
    new_input_in_front(m, "image", TensorProto.UINT8, ["N", size[0], size[1], 3], nodes, inits)
    drop_metadata(m)
    return m


def int8(model: onnx.ModelProto, pre) -> onnx.ModelProto:
    m = fresh(model)
    inp, _ = io_of(m)
    size = [inp.type.tensor_type.shape.dim[i].dim_value or "size" for i in (2, 3)]
    # The normalisation is per channel on the last axis: work channels-last, then transpose.
    nodes = [
        helper.make_node("Cast", ["image"], ["signed_f32"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["signed_f32", "i8_offset"], ["pixels_nchw"]),
        helper.make_node("Transpose", ["pixels_nchw"], ["pixels_nhwc"], perm=[0, 2, 3, 1]),
    ]
    inits = [numpy_helper.from_array(np.array(128.0, dtype=np.float32), "i8_offset")]
    norm, norm_inits = normalise_nodes(pre, "pixels_nhwc", "normalised_nhwc", "i8")
    nodes += norm
    nodes.append(helper.make_node("Transpose", ["normalised_nhwc"], [inp.name], perm=[0, 3, 1, 2]))
    new_input_in_front(m, "image", TensorProto.INT8, ["N", 3, size[0], size[1]], nodes, inits + norm_inits)
    drop_metadata(m)
    return m


def rename_output_batch(model: onnx.ModelProto, batch: str) -> None:
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_param = batch


def hf(model: onnx.ModelProto) -> onnx.ModelProto:
    m = fresh(model)
    inp, _ = io_of(m)
    nodes = [helper.make_node("Identity", ["pixel_values"], [inp.name])]
    new_input_in_front(m, "pixel_values", TensorProto.FLOAT, ["batch_size", "num_channels", "height", "width"],
                       nodes, [])
    rename_output_batch(m, "batch_size")
    return m


def hf_nhwc(model: onnx.ModelProto) -> onnx.ModelProto:
    m = fresh(model)
    inp, _ = io_of(m)
    nodes = [helper.make_node("Transpose", ["pixel_values"], [inp.name], perm=[0, 3, 1, 2])]
    new_input_in_front(m, "pixel_values", TensorProto.FLOAT, ["batch_size", "height", "width", "num_channels"],
                       nodes, [])
    rename_output_batch(m, "batch_size")
    return m


def nc11(model: onnx.ModelProto) -> onnx.ModelProto:
    m = fresh(model)
    _, out = io_of(m)
    graph = m.graph
    graph.initializer.append(numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "nc11_axes"))
    graph.node.append(helper.make_node("Unsqueeze", [out.name, "nc11_axes"], ["scores"]))
    new_out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    set_dims(new_out, [out.type.tensor_type.shape.dim[0].dim_param or "N", 1000, 1, 1])
    del graph.output[:]
    graph.output.append(new_out)
    return m


def indices(model: onnx.ModelProto) -> onnx.ModelProto:
    m = fresh(model)
    _, out = io_of(m)
    graph = m.graph
    batch = out.type.tensor_type.shape.dim[0].dim_param or "N"
    graph.initializer.append(numpy_helper.from_array(np.array([5], dtype=np.int64), "top_k"))
    graph.node.extend([
        helper.make_node("Softmax", [out.name], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["class_index"], axis=1, keepdims=0),
        helper.make_node("TopK", ["probabilities", "top_k"], ["top5_values", "top5_indices"], axis=1),
    ])
    outputs = [
        ("class_index", TensorProto.INT64, [batch]),
        ("top5_indices", TensorProto.INT64, [batch, 5]),
        ("probabilities", TensorProto.FLOAT, [batch, 1000]),
    ]
    del graph.output[:]
    for name, elem, dims in outputs:
        value = helper.make_tensor_value_info(name, elem, None)
        set_dims(value, dims)
        graph.output.append(value)
    return m


class Calibration:
    """The calibration images, preprocessed as the source expects, one per batch."""

    def __init__(self, images: list[Path], pre, input_name: str):
        self.batches = [
            {input_name: preprocess_image(p, pre).transpose(2, 0, 1)[None].astype(np.float32)} for p in images
        ]
        self.index = 0

    def get_next(self):
        if self.index >= len(self.batches):
            return None
        self.index += 1
        return self.batches[self.index - 1]

    def rewind(self):
        self.index = 0


def quantized(variant: str, source: Path, target: Path, images: list[Path], pre, input_name: str) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, \
        quantize_static

    if variant == "dynamic":
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        return
    if not images:
        raise ExportError(f"{variant} needs --calibration-images")

    class Reader(Calibration, CalibrationDataReader):
        pass

    quantize_static(
        str(source),
        str(target),
        Reader(images, pre, input_name),
        quant_format=QuantFormat.QDQ if variant == "qdq_static" else QuantFormat.QOperator,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=False,
    )


def export(model_path: Path, out: Path, name: str, images: list[Path], only: list[str]) -> list[Path]:
    model = onnx.load(str(model_path))
    pre = source_preprocess(model)
    inp, _ = io_of(model)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for variant in only:
        target = out / f"{name}_{variant}.onnx"
        if variant in ("qdq_static", "qop_static", "dynamic"):
            with tempfile.TemporaryDirectory() as tmp:
                # The quantizer reads the file; drop inferred shapes that could pin dims.
                plain = fresh(model)
                del plain.graph.value_info[:]
                src = Path(tmp) / "source.onnx"
                onnx.save(plain, str(src))
                quantized(variant, src, target, images, pre, inp.name)
        elif variant == "external":
            data = target.with_name(target.name + ".data")
            data.unlink(missing_ok=True)
            onnx.save_model(fresh(model), str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data.name, size_threshold=1024)
        else:
            made = {
                "nc11": lambda: nc11(model),
                "indices": lambda: indices(model),
                "uint8_nhwc": lambda: uint8_nhwc(model, pre),
                "int8": lambda: int8(model, pre),
                "hf": lambda: hf(model),
                "hf_nhwc": lambda: hf_nhwc(model),
            }[variant]()
            onnx.checker.check_model(made)
            onnx.save(made, str(target))
        written.append(target)
        print(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="float32 NCHW source model")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the variants into")
    parser.add_argument("--name", help="file name prefix (default: the source's file stem)")
    parser.add_argument("--calibration-images", type=Path, nargs="+", default=[],
                        help="image files or folders for static quantization")
    parser.add_argument("--only", help=f"comma-separated variants (default: all of {', '.join(VARIANTS)})")
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else list(VARIANTS)
    unknown = sorted(set(only) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    try:
        images = list_images(args.calibration_images) if args.calibration_images else []
        export(args.model, args.out, args.name or args.model.stem, images, only)
    except Exception as err:  # noqa: BLE001 - one message, exit 2, for any failure
        print(f"error: {args.model}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
