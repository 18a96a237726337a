#!/usr/bin/env python3
"""Fetch the ImageNet-X annotations (CC BY-NC 4.0, Meta Platforms) into the cache.

They ship in the PyPI wheel `imagenet-x==0.0.7` under `imagenet_x/annotations/`.
Every file is verified against the SHA-256 below. Idempotent; offline once done.
Prints the folder that holds them.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wheelcache import FetchError, fetch_members  # noqa: E402

REQUIREMENT = "imagenet-x==0.0.7"
FILES = {
    "filename_label.csv": "e279a4972518474b373b02b06a35ad21c3572626715eea574d5f7d55302a92bf",
    "imagenet_1k_classes_to_100_metaclasses.csv": "a973495d1cbe6c73f994fa7083e454602d6d0dc831ff0257598a02a23aa633c4",
    "imagenet_labels.txt": "1d322cd0385b977ea9f8fa6a7088a8d01d8ad101117e1ec534fcb88debfc4854",
    "imagenet_real_labels.jsonl": "d83e9bff374c631aae8439eb064c7019acc56e1b3bc3f56b8380c2a710b0220b",
    "imagenet_x_train_multi_factor.jsonl": "219eb8ee090bbca93ce4dec3c004655a4cef2ab27cd99ef46622807e9f14220d",
    "imagenet_x_train_top_factor.jsonl": "b8089f8249ec354b7fd468e2c260a05b6deed7b75117d137b76a534b581e6756",
    "imagenet_x_val_multi_factor.jsonl": "85b5a1fd60e627dd26b963530e31eea5906f25465e66e77f7295d726b23281e7",
    "imagenet_x_val_top_factor.jsonl": "083253dfe7c3491c76c4745d00d2c1c6eb19615f3935cfc80c6b914dcd4bd177",
    "prototypical_paths.csv": "3f693c9e056560d9d7bd2242909ae549325e78b763aedb59e5f0c9afdb8a9ea3",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, required=True, help="cache root (…/annotations is filled)")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose pip fetches the wheel")
    args = parser.parse_args()
    members = {f"imagenet_x/annotations/{name}": digest for name, digest in FILES.items()}
    try:
        dest = fetch_members(REQUIREMENT, members, args.cache / "annotations", python=args.python)
    except FetchError as err:
        print(f"error: could not fetch the ImageNet-X annotations: {err}", file=sys.stderr)
        return 2
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
