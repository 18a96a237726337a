# imagenetx — run `just --list` for every recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where set-up caches what it fetches (annotations, ONNX Runtime, the Python venv).
export IMAGENETX_CACHE := env("IMAGENETX_CACHE", justfile_directory() / ".cache")

python := env("PYTHON", "python3")
venv := IMAGENETX_CACHE / "venv"

import? "just/preprocess.just"
import? "just/infer.just"
import? "just/parity.just"
import? "just/models.just"
import? "just/report.just"
import? "just/bench.just"
import? "just/dist.just"
import? "just/cross.just"
import? "just/cluster.just"

default:
    @just --list

# Fetch and verify everything the tool needs at run time (annotations, ONNX Runtime).
setup: setup-annotations setup-ort

# Fetch the ImageNet-X annotations (CC BY-NC 4.0) into the cache and verify their SHA-256.
setup-annotations:
    {{python}} scripts/fetch_annotations.py --cache "$IMAGENETX_CACHE"

# Make the Python venv with the reference implementations the tests compare against.
venv:
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv}}/.requirements.sha256"
    want=$(sha256sum python/requirements.txt | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then exit 0; fi
    {{python}} -m venv "{{venv}}"
    "{{venv}}/bin/pip" install --quiet --disable-pip-version-check -r python/requirements.txt
    echo "$want" > "$stamp"

# Every recipe that runs cargo depends on this, so a fresh machine needs nothing but the README:
# missing tools are installed (apt-get as root or through sudo -n), or one line names the exact
# command to run, instead of a build-script panic. `scripts/ensure_build_tools.sh aarch64`
# (cross toolchain) and `aarch64-emulation` (qemu) are the cross recipes' versions.
# Make sure the build's system tools are there (cmake, nasm): installed as root, else the command to run.
build-tools:
    scripts/ensure_build_tools.sh

# Build the release binary.
build: build-tools
    cargo build --release --locked -p imagenetx-cli

# fmt --check, clippy -D warnings, doc build.
check: build-tools
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    # The edge build (no PNG plots) compiles and is lint-clean too.
    cargo clippy -p imagenetx-cli --no-default-features --features load-dynamic --locked -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

# imagenetx-test-support is not published (a path-only dev-dependency, dropped from the other
# manifests); crates whose tests reach into the workspace leave tests/ out of their package.
# About 25 s on a 2-core machine, mostly crates.io index look-ups; `package-verify` about 4 min.
# `cargo package` of every published crate, no build: manifests, file lists, READMEs, licences.
package: build-tools
    cargo package --workspace --exclude imagenetx-test-support --locked --allow-dirty --no-verify

# `just package`, then build each package from its .crate alone, as a user of crates.io would.
package-verify: build-tools
    cargo package --workspace --exclude imagenetx-test-support --locked --allow-dirty

# After the checks, the packaging check (`package`) and the committed fixture models, the unit,
# integration, parity and browser tests run (one integration-test binary per crate, `--test
# integration`, a module per concern), then `test-paper` (the paper's published predictions;
# required under CI), then `test-aarch64` (the cross-built aarch64 binary under qemu gives this
# machine's answers; required under CI). `test-build-tools` checks the fresh-machine messages.
# Everything CI runs: checks, packaging, fixture models, all tests, the paper's predictions, aarch64.
test: setup venv model-lite0 test-build-tools check package check-fixture-models && test-paper test-aarch64
    scripts/ensure_chromium.sh
    # The container image test (kubernetes::) builds the image with umoci and busybox.
    scripts/ensure_build_tools.sh image
    # The examples (workspace members) are built first: the tests run them against the CLI.
    cargo build --locked --release -p embed_evaluate -p embed_analyze
    IMAGENETX_VENV="{{venv}}" cargo test --workspace --locked --release

# The container image of deploy/kubernetes/ as an OCI archive, dist/imagenetx-VERSION-oci.tar (no daemon or registry needed; load it with skopeo or podman).
image: build setup-ort
    scripts/ensure_build_tools.sh image
    scripts/build_image.sh target/release/imagenetx

# Many models in one pass: every model of DIR (its .onnx files) over IMAGES, each image decoded once per preprocessing group; outputs in out/zoo (FLAGS go to `imagenetx evaluate`, e.g. --resume, --report FILE).
eval-zoo DIR IMAGES *FLAGS: build
    target/release/imagenetx evaluate {{DIR}} --images {{IMAGES}} --out-dir out/zoo {{FLAGS}}

# The main job on bundled inputs: EfficientNet-Lite0 on the fixture photos, predictions and factors.
demo: setup model-lite0 build
    mkdir -p out/demo
    target/release/imagenetx evaluate onnx_models/efficientnet_lite0.onnx \
        --images fixtures/photos --image-annotations fixtures/photos/annotations.jsonl \
        --out out/demo/efficientnet_lite0.predictions.csv --analysis-out out/demo/factors \
        --report out/demo/report.html --plots out/demo/plots
    @echo "report: out/demo/report.html (self-contained; open it in a browser); plots as SVG and PNG: out/demo/plots/"

# Evaluate any ONNX classifier on a folder of images: just eval MODEL IMAGES [FLAGS...]
[positional-arguments]
eval MODEL IMAGES *ARGS: setup build
    target/release/imagenetx evaluate "$1" --images "$2" "${@:3}"

# Error-ratio analysis of prediction CSVs (the paper's toolkit format): just analyze PRED... [FLAGS...]
[positional-arguments]
analyze *ARGS: setup-annotations build
    target/release/imagenetx analyze "$@"
