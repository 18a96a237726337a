#!/usr/bin/env bash
# Builds the container image of the Kubernetes manifests (deploy/kubernetes/) as an OCI image
# archive, without a container daemon or a registry:
#
#   scripts/build_image.sh BINARY [OUT.tar [TAG]]
#
# (OUT.tar defaults to dist/imagenetx-VERSION-oci.tar.)
# The image holds the binary, stripped, as /usr/local/bin/imagenetx; a POSIX shell and the basic
# tools (busybox, as /bin/sh and its applets); the C and C++ runtime libraries that the binary
# and ONNX Runtime's library need, taken from this machine (`ldd`); an empty /tmp. It holds no
# ONNX Runtime: the manifests mount it (CPU or GPU build) on the `runtime` volume and name it
# with ORT_DYLIB_PATH, so one image serves every node. The runtime library whose dependencies
# are copied is $ORT_DYLIB_PATH, else the one `just setup-ort` fetched.
#
# OUT.tar is an OCI image layout in a tar (tag TAG, default latest), made with umoci. Load it
# with `skopeo copy oci-archive:OUT.tar docker-daemon:imagenetx:latest` or
# `podman load -i OUT.tar`, or push it with `skopeo copy oci-archive:OUT.tar
# docker://REGISTRY/imagenetx:latest`. Contents under their own licences: busybox (GPL-2.0),
# the GNU C library (LGPL-2.1), libstdc++ and libgcc (GPL-3.0 with the runtime exception),
# from this machine's distribution, which publishes their sources.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BINARY [OUT.tar [TAG]]" >&2
    exit 2
fi
binary=$(realpath -e -- "$1") || { echo "build_image: no binary $1" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
out=${2:-dist/imagenetx-$version-oci.tar}
tag=${3:-latest}
cache="${IMAGENETX_CACHE:-$root/.cache}"
ort="${ORT_DYLIB_PATH:-$cache/onnxruntime/libonnxruntime.so.1.31.1}"
[[ -f "$ort" ]] || { echo "build_image: no ONNX Runtime library at $ort (run just setup-ort)" >&2; exit 2; }
for tool in umoci busybox ldd strip; do
    command -v "$tool" >/dev/null || {
        echo "build_image: $tool is not installed (scripts/ensure_build_tools.sh image installs it)" >&2
        exit 2
    }
done
busybox=$(command -v busybox)
# A dynamically linked busybox would need its own libraries: Debian's busybox-static is not.
if ldd "$busybox" >/dev/null 2>&1; then
    echo "build_image: $busybox is dynamically linked; install busybox-static" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,usr/local/bin,tmp,etc,imagenetx}
chmod 1777 "$rootfs/tmp"
strip -o "$rootfs/usr/local/bin/imagenetx" "$binary"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
# Every library the binary and ONNX Runtime load, at the path the loader looks for it.
libraries=$( { ldd "$binary"; ldd "$ort"; } | awk '/=> \// { print $3 } /^\t\// { print $1 }' | sort -u)
for lib in $libraries; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
# The loader also as the path the binaries name (e.g. /lib64/ld-linux-x86-64.so.2).
for lib in $libraries; do
    real=$(readlink -f "$lib")
    if [[ "$real" != "$lib" && ! -e "$rootfs$real" ]]; then
        mkdir -p "$rootfs$(dirname "$real")"
        cp -L "$lib" "$rootfs$real"
    fi
done

layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
cp -a "$rootfs/." "$work/bundle/rootfs/"
umoci repack --image "$layout:$tag" "$work/bundle"
umoci config --image "$layout:$tag" \
    --config.env PATH=/usr/local/bin:/bin \
    --config.workingdir / \
    --config.cmd imagenetx --config.cmd --help \
    --config.label "org.opencontainers.image.title=imagenetx" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.licenses=MIT OR Apache-2.0"
umoci gc --layout "$layout"
mkdir -p "$(dirname "$out")"
tar -C "$layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "wrote $out ($(du -h "$out" | cut -f1), OCI image layout, tag $tag)"
