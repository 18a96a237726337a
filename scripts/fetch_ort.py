#!/usr/bin/env python3
"""Fetch the ONNX Runtime shared library into the cache, verified by SHA-256.

`imagenetx` loads ONNX Runtime at run time (the `ort` crate's `load-dynamic` mode), so the
library is taken from the official PyPI wheel instead of being downloaded at build time:

  cpu  onnxruntime==1.31.1      -> $CACHE/onnxruntime/libonnxruntime.so.1.31.1
  gpu  onnxruntime-gpu==1.31.1  -> $CACHE/onnxruntime-gpu/ (the library, the shared-provider
                                   bridge and the CUDA execution provider; x86_64 only)

The wheel is the one of the host's architecture (x86_64 or aarch64), each pinned by its own
SHA-256; `--arch` fetches another architecture's library (for a cross-built binary run under
emulation) into `$CACHE/onnxruntime-<arch>/` instead, so the host's copy stays where the
runtime search looks for it.

The GPU wheel is built against CUDA 13 and cuDNN 9; those libraries are not fetched here and
must be on the loader path (system packages, or `pip install "onnxruntime-gpu[cuda,cudnn]"`).

The wheel is fetched for a pinned platform and Python version so the choice of file, and
therefore the digests below, do not depend on the interpreter running this script (the shared
library is the same in every cp3XX wheel). Idempotent; offline once the folder is complete.
Prints the path of the library.
"""

import argparse
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wheelcache import FetchError, fetch_members  # noqa: E402

VERSION = "1.31.1"
LIBRARY = f"libonnxruntime.so.{VERSION}"
# The wheel's platform tag, by architecture.
PLATFORMS = {
    "x86_64": "manylinux_2_28_x86_64",
    "aarch64": "manylinux_2_28_aarch64",
}


def pip_platform(arch: str) -> tuple:
    return (
        "--only-binary=:all:",
        "--platform", PLATFORMS[arch],
        "--python-version", "3.11",
        "--implementation", "cp",
    )


# The files taken from each wheel, by architecture, with their SHA-256.
FLAVOURS = {
    "cpu": {
        "requirement": f"onnxruntime=={VERSION}",
        "folder": "onnxruntime",
        "files": {
            "x86_64": {
                LIBRARY: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
            },
            "aarch64": {
                LIBRARY: "8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467",
            },
        },
    },
    "gpu": {
        "requirement": f"onnxruntime-gpu=={VERSION}",
        "folder": "onnxruntime-gpu",
        "files": {
            "x86_64": {
                LIBRARY: "5104254339ecadae808da771bd0b63b240f0dbd466514234905e54372435c303",
                "libonnxruntime_providers_shared.so": "086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d",
                "libonnxruntime_providers_cuda.so": "d5290158115fa5569a3fe8f1f4037ee9b0e86658a96e52f852bbb7039aa88137",
            },
        },
    },
}


def host_arch() -> str:
    """The host's architecture as the wheels name it (x86_64, aarch64)."""
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="cache root (…/onnxruntime[-gpu] is filled)")
    parser.add_argument("--flavour", choices=sorted(FLAVOURS), default="cpu", help="which wheel to take the library from")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose pip fetches the wheel")
    parser.add_argument(
        "--arch",
        choices=sorted(PLATFORMS),
        default=None,
        help="architecture of the library [default: the host's]; another one goes to onnxruntime-<arch>/",
    )
    args = parser.parse_args()
    host = host_arch()
    arch = args.arch or host
    if not sys.platform.startswith("linux") or arch not in PLATFORMS:
        print(
            f"error: scripts/fetch_ort.py fetches the Linux library for {', '.join(sorted(PLATFORMS))} "
            f"(this is {sys.platform} {host}); elsewhere install `onnxruntime` with pip or pass --ort-lib",
            file=sys.stderr,
        )
        return 2
    flavour = FLAVOURS[args.flavour]
    files = flavour["files"].get(arch)
    if files is None:
        print(
            f"error: no {flavour['requirement']} wheel for {arch} on PyPI; "
            f"available for {', '.join(sorted(flavour['files']))}",
            file=sys.stderr,
        )
        return 2
    folder = flavour["folder"] if arch == host else f"{flavour['folder']}-{arch}"
    members = {f"onnxruntime/capi/{name}": digest for name, digest in files.items()}
    try:
        dest = fetch_members(
            flavour["requirement"],
            members,
            args.cache / folder,
            python=args.python,
            extra_pip_args=pip_platform(arch),
        )
    except FetchError as err:
        print(f"error: could not fetch ONNX Runtime ({flavour['requirement']}): {err}", file=sys.stderr)
        return 2
    print(dest / LIBRARY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
