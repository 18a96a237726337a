"""Reference preprocessing of Hugging Face and timm exports, from their side files.

Neither transformers nor timm is installed: the steps their evaluation preprocessing
documents are written out here with PIL and numpy, read straight from the side files.

Hugging Face (`preprocessor_config.json`, the slow PIL image processors,
`transformers.image_transforms`):
    img = Image.open(path).convert("RGB"); x = np.asarray(img)            # uint8 HWC
    resize: PIL `Image.resize((w, h), resample)` to
        size {height, width}                    -> (height, width)       ViT / DeiT / BEiT
        size {shortest_edge} + crop_pct, edge < 384 (ConvNeXt)
                                                -> shorter side int(edge / crop_pct), long side
                                                   int(short * long / short_in); then centre
                                                   crop (edge, edge)
        size {shortest_edge} + crop_pct, edge >= 384 -> (edge, edge), no crop
        size {shortest_edge}                    -> shorter side edge (get_resize_output_image_size)
    center_crop(crop_size): top = (h - ch) // 2, left = (w - cw) // 2; when the image is
        smaller, zero padding with ceil((c - len) / 2) before
    rescale: (x.astype(float64) * rescale_factor).astype(float32)
    normalize: (x - mean) / std with mean, std as float32 arrays (float32 arithmetic)

timm (`config.json` `pretrained_cfg`, or top-level keys; `transforms_imagenet_eval`):
    scale_size = floor(size / crop_pct) per side
    center:  square -> Resize(scale) (shorter side, torchvision), else ResizeKeepRatio(scale)
             (bilinear, longest=0); then CenterCrop(input_size)
    squash:  Resize((scale_h, scale_w)); CenterCrop(input_size)
    border:  ResizeKeepRatio(scale, longest=1): size = round(side / max(ratio_h, ratio_w));
             CenterCropOrPad(input_size, fill=round(255 * mean))
    ToTensor (x / 255 in float32), Normalize(mean, std) in float32

Subcommands
  tensors   for each image, write the uint8 crop `<i>.crop` and the float32 NCHW tensor
            `<i>.tensor` that the export folder's side files give
  predict   the top-5 classes and probabilities of each image (softmax of the model's
            output, by Python onnxruntime) as JSON lines {"file", "top5", "probs"}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from preprocess_reference import center_crop as torchvision_center_crop  # noqa: E402

PIL_RESAMPLE = {2: Image.BILINEAR, 3: Image.BICUBIC}
TIMM_INTERPOLATION = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- Hugging Face


def hf_shortest_edge_size(width: int, height: int, size: int) -> tuple[int, int]:
    """`get_resize_output_image_size(default_to_square=False)` as (width, height)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def hf_center_crop(x: np.ndarray, crop_h: int, crop_w: int) -> np.ndarray:
    """`transformers.image_transforms.center_crop` on an HWC array."""
    h, w = x.shape[:2]
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    bottom, right = top + crop_h, left + crop_w
    if top >= 0 and bottom <= h and left >= 0 and right <= w:
        return x[top:bottom, left:right]
    new_h, new_w = max(crop_h, h), max(crop_w, w)
    padded = np.zeros((new_h, new_w) + x.shape[2:], dtype=x.dtype)
    top_pad, left_pad = math.ceil((new_h - h) / 2), math.ceil((new_w - w) / 2)
    padded[top_pad : top_pad + h, left_pad : left_pad + w] = x
    top, bottom, left, right = top + top_pad, bottom + top_pad, left + left_pad, right + left_pad
    return padded[max(0, top) : min(new_h, bottom), max(0, left) : min(new_w, right)]


def hf_preprocess(img: Image.Image, cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    kind = cfg.get("image_processor_type") or cfg.get("feature_extractor_type") or ""
    resample = PIL_RESAMPLE[cfg.get("resample", 2)]
    size = cfg.get("size")
    crop_size = cfg.get("crop_size")
    do_center_crop = cfg.get("do_center_crop", False)
    crop_pct = cfg.get("crop_pct")
    x = np.asarray(img, dtype=np.uint8)

    def resize(x: np.ndarray, width: int, height: int) -> np.ndarray:
        return np.asarray(Image.fromarray(x).resize((width, height), resample=resample))

    if cfg.get("do_resize", True):
        if "height" in size:
            x = resize(x, size["width"], size["height"])
        elif kind.startswith("ConvNext") or crop_pct is not None and not do_center_crop:
            edge = size["shortest_edge"]
            pct = crop_pct if crop_pct is not None else 224 / 256
            if edge < 384:
                w, h = hf_shortest_edge_size(x.shape[1], x.shape[0], int(edge / pct))
                x = hf_center_crop(resize(x, w, h), edge, edge)
            else:
                x = resize(x, edge, edge)
        else:
            w, h = hf_shortest_edge_size(x.shape[1], x.shape[0], size["shortest_edge"])
            x = resize(x, w, h)
    if do_center_crop:
        x = hf_center_crop(x, crop_size["height"], crop_size["width"])
    crop = np.ascontiguousarray(x)
    t = crop
    if cfg.get("do_rescale", True):
        t = (t.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    if cfg.get("do_normalize", True):
        if not np.issubdtype(t.dtype, np.floating):
            t = t.astype(np.float32)
        mean = np.array(cfg.get("image_mean", IMAGENET_DEFAULT_MEAN), dtype=t.dtype)
        std = np.array(cfg.get("image_std", IMAGENET_DEFAULT_STD), dtype=t.dtype)
        t = (t - mean) / std
    return crop, np.ascontiguousarray(t.astype(np.float32).transpose(2, 0, 1), dtype="<f4")


# ---------------------------------------------------------------- timm


def timm_resize_keep_ratio(img: Image.Image, target_h: int, target_w: int, longest: float, resample) -> Image.Image:
    """timm `ResizeKeepRatio.get_params` (no random scale or aspect) + `F.resize`."""
    h, w = img.height, img.width
    ratio_h, ratio_w = h / target_h, w / target_w
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    new_h, new_w = (round(x * 1.0 / ratio) for x in (h, w))
    if (new_h, new_w) == (h, w):
        return img
    return img.resize((new_w, new_h), resample)


def torchvision_resize_shorter(img: Image.Image, size: int, resample) -> Image.Image:
    """torchvision `Resize(int)` on a PIL image."""
    w, h = hf_shortest_edge_size(img.width, img.height, size)
    if (w, h) == img.size:
        return img
    return img.resize((w, h), resample)


def timm_preprocess(img: Image.Image, cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    _, height, width = cfg.get("input_size", (3, 224, 224))
    crop_pct = cfg.get("crop_pct") or 0.875
    mode = cfg.get("crop_mode") or "center"
    interpolation = cfg.get("interpolation", "bilinear")
    mean = cfg.get("mean", IMAGENET_DEFAULT_MEAN)
    std = cfg.get("std", IMAGENET_DEFAULT_STD)
    scale_h, scale_w = math.floor(height / crop_pct), math.floor(width / crop_pct)
    resample = TIMM_INTERPOLATION[interpolation]
    fill = 0
    if mode == "squash":
        if (scale_w, scale_h) != img.size:
            img = img.resize((scale_w, scale_h), resample)
    elif mode == "border":
        fill = tuple(round(255 * v) for v in mean)
        img = timm_resize_keep_ratio(img, scale_h, scale_w, 1.0, resample)
    elif scale_h == scale_w:
        img = torchvision_resize_shorter(img, scale_h, resample)
    else:
        # ResizeKeepRatio(scale_size) is built without the interpolation: bilinear.
        img = timm_resize_keep_ratio(img, scale_h, scale_w, 0.0, Image.BILINEAR)
    img = torchvision_center_crop(img, height, width, fill)
    crop = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    t = crop.astype(np.float32) / np.float32(255.0)
    t = (t - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return crop, np.ascontiguousarray(t.transpose(2, 0, 1), dtype="<f4")


# ---------------------------------------------------------------- export folders


def preprocessor(folder: Path):
    """The preprocessing function of an export folder's side files."""
    hf = folder / "preprocessor_config.json"
    if hf.is_file():
        cfg = json.loads(hf.read_text())
        return lambda img: hf_preprocess(img, cfg)
    config = json.loads((folder / "config.json").read_text())
    cfg = config.get("pretrained_cfg") or config
    return lambda img: timm_preprocess(img, cfg)


def load(path: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def cmd_tensors(args: argparse.Namespace) -> int:
    prep = preprocessor(Path(args.dir))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i, name in enumerate(args.images):
        crop, tensor = prep(load(name))
        (out / f"{i}.crop").write_bytes(crop.tobytes())
        (out / f"{i}.tensor").write_bytes(tensor.tobytes())
        records.append({"file": name, "index": i, "height": crop.shape[0], "width": crop.shape[1]})
    (out / "reference.json").write_text(json.dumps(records, indent=1))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    prep = preprocessor(Path(args.dir))
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    for name in args.images:
        _, tensor = prep(load(name))
        (logits,) = session.run(None, {input_name: tensor[None]})[:1]
        z = logits[0].astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        top5 = sorted(range(len(p)), key=lambda k: (-z[k], k))[:5]
        print(json.dumps({"file": Path(name).name, "top5": top5, "probs": [float(p[k]) for k in top5]}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tensors")
    p.add_argument("--dir", required=True, help="the export folder (side files)")
    p.add_argument("--out", required=True)
    p.add_argument("images", nargs="+")
    p = sub.add_parser("predict")
    p.add_argument("--dir", required=True, help="the export folder (side files)")
    p.add_argument("--model", required=True)
    p.add_argument("images", nargs="+")
    args = parser.parse_args()
    return {"tensors": cmd_tensors, "predict": cmd_predict}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
