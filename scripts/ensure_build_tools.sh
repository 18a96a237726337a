#!/usr/bin/env bash
# Makes sure the system tools a build needs are installed before cargo starts, instead of a
# build-script panic minutes later. Idempotent: does nothing when everything is found.
#
#   scripts/ensure_build_tools.sh [WHAT...]
#
#   (always)            cmake (the bundled libjpeg-turbo is built from source) and, on an x86
#                       host, nasm (its SIMD code)
#   aarch64             the cross toolchain of `just build-aarch64`: Rust's standard library for
#                       aarch64-unknown-linux-gnu (rustup), zig and cargo-zigbuild (PyPI, pinned,
#                       in the venv $IMAGENETX_CACHE/cross-tools), readelf (binutils)
#   aarch64-emulation   what runs that binary here (`just test-aarch64`): qemu-user and Debian's
#                       arm64 C and C++ runtime libraries (in /usr/aarch64-linux-gnu)
#   image               what builds the container image (`just image`): umoci, a static busybox
#                       (busybox-static) and strip (binutils)
#
# Debian packages are installed with apt-get as root (or through sudo -n); rustup targets and
# the PyPI tools are installed for the user. Where that cannot be done, or with
# IMAGENETX_NO_INSTALL=1, it prints one line with the exact command to run and exits 1.
# IMAGENETX_CROSS_LIBS names another folder of arm64 libraries (default /usr/aarch64-linux-gnu).
set -euo pipefail

cache="${IMAGENETX_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}"
cross_libs="${IMAGENETX_CROSS_LIBS:-/usr/aarch64-linux-gnu}"
# The cross toolchain from PyPI, pinned (cargo-zigbuild links against an old glibc's symbols).
cross_tools="$cache/cross-tools"
cross_pins=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
rust_target=aarch64-unknown-linux-gnu

apt=() # Debian packages missing
user=() # commands that install what is missing for the user
why=() # what is missing, in words

have() { command -v "$1" >/dev/null 2>&1; }

have cmake || { apt+=(cmake); why+=(cmake); }
case "$(uname -m)" in
    x86_64 | i?86) have nasm || { apt+=(nasm); why+=(nasm); } ;;
esac

for what in "$@"; do
    case "$what" in
        aarch64)
            have readelf || { apt+=(binutils); why+=(readelf); }
            if ! have rustup; then
                echo "the aarch64 build needs Rust's $rust_target standard library, and rustup is not installed: install it from your Rust distribution, then again" >&2
                exit 1
            fi
            # Read whole before matching: `grep -q` leaving early would make a pipeline fail.
            installed=$(rustup target list --installed 2>/dev/null || true)
            if ! grep -qx "$rust_target" <<<"$installed"; then
                user+=("rustup target add $rust_target")
                why+=("the Rust target $rust_target")
            fi
            stamp="$cross_tools/.pins"
            if [[ ! -x "$cross_tools/bin/cargo-zigbuild" || "$(cat "$stamp" 2>/dev/null)" != "${cross_pins[*]}" ]]; then
                user+=("python3 -m venv $cross_tools && $cross_tools/bin/pip install ${cross_pins[*]} && echo '${cross_pins[*]}' > $stamp")
                why+=("zig and cargo-zigbuild")
            fi
            ;;
        aarch64-emulation)
            have qemu-aarch64 || { apt+=(qemu-user); why+=(qemu-aarch64); }
            [[ -e "$cross_libs/lib/ld-linux-aarch64.so.1" ]] \
                || { apt+=(libc6-arm64-cross); why+=("the arm64 C library ($cross_libs/lib)"); }
            [[ -e "$cross_libs/lib/libstdc++.so.6" ]] \
                || { apt+=(libstdc++6-arm64-cross); why+=("the arm64 C++ library ($cross_libs/lib)"); }
            ;;
        image)
            have umoci || { apt+=(umoci); why+=(umoci); }
            # Debian's busybox-static: the image's shell needs no library of its own.
            if ! have busybox || ldd "$(command -v busybox)" >/dev/null 2>&1; then
                apt+=(busybox-static)
                why+=("a static busybox")
            fi
            have strip || { apt+=(binutils); why+=(strip); }
            ;;
        *)
            echo "scripts/ensure_build_tools.sh: unknown tool set '$what' (known: aarch64, aarch64-emulation, image)" >&2
            exit 2
            ;;
    esac
done
((${#why[@]} == 0)) && exit 0

# One line: what is missing and every command that installs it.
say_how() {
    local commands=()
    ((${#apt[@]})) && commands+=("sudo apt-get install -y ${apt[*]}")
    commands+=("${user[@]}")
    local joined
    joined=$(printf ' && %s' "${commands[@]}")
    echo "the build needs ${why[*]}, which are not installed: run \`${joined:4}\` (or your system's equivalent), then again" >&2
    exit 1
}
[[ "${IMAGENETX_NO_INSTALL:-}" == 1 ]] && say_how

if ((${#apt[@]})); then
    have apt-get || say_how
    sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        { have sudo && sudo -n true 2>/dev/null; } || say_how
        sudo=(sudo -n)
    fi
    echo "installing ${apt[*]} (needed by the build)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${apt[@]}" >/dev/null; then
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${apt[@]}" >/dev/null
    fi
fi
for command in "${user[@]}"; do
    echo "installing: $command" >&2
    if ! bash -c "$command" >/dev/null; then
        echo "could not install ${why[*]}: \`$command\` failed (see above); run it by hand, then again" >&2
        exit 1
    fi
done
