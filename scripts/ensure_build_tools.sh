#!/usr/bin/env bash
# Makes sure the system tools the build needs are installed before cargo starts: cmake (the
# bundled libjpeg-turbo is built from source) and, on x86, nasm (its SIMD code). Idempotent:
# does nothing when they are found. Installs Debian's packages with apt-get as root (or
# through sudo); otherwise, or with IMAGENETX_NO_INSTALL=1, prints the one command to run and
# fails, instead of a build-script panic minutes later.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
case "$(uname -m)" in
    x86_64 | i?86) command -v nasm >/dev/null 2>&1 || need+=(nasm) ;;
esac
((${#need[@]} == 0)) && exit 0

say_how() {
    echo "the build needs ${need[*]}, which are not installed: run \`sudo apt-get install -y ${need[*]}\` (or your system's equivalent), then again" >&2
    exit 1
}
[[ "${IMAGENETX_NO_INSTALL:-}" == 1 ]] && say_how
command -v apt-get >/dev/null 2>&1 || say_how
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || say_how
    sudo=(sudo -n)
fi
echo "installing ${need[*]} (needed to build libjpeg-turbo)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
