#!/usr/bin/env bash
# Tests scripts/ensure_build_tools.sh as a fresh machine sees it: each case runs it with a PATH
# of links to this machine's commands less the ones the case takes away (cmake, apt-get, sudo,
# qemu-aarch64, rustup, umoci, busybox), plus stand-ins (`id` of a user or of root, an `apt-get` that only
# records its arguments), and checks the exit status and what it prints. Nothing is installed.
# The last line counts the cases: `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
script="$(pwd)/scripts/ensure_build_tools.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A folder of links to every command on PATH except those named (each case adds a folder of
# stand-ins before it; stand-ins are files of their own, never written through a link).
make_path() {
    local bin=$1 dir cmd name
    shift
    local -A skip=()
    for name in "$@"; do skip[$name]=1; done
    mkdir -p "$bin"
    local dirs
    IFS=: read -ra dirs <<<"$PATH"
    for dir in "${dirs[@]}"; do
        [[ -d "$dir" ]] || continue
        for cmd in "$dir"/*; do
            name=${cmd##*/}
            [[ -x "$cmd" && ! -e "$bin/$name" && -z "${skip[$name]:-}" ]] || continue
            ln -s "$cmd" "$bin/$name"
        done
    done
}
stub() { # stub BIN NAME BODY: a command NAME in BIN that runs BODY
    # Never through a link: the link would lead to the real command.
    rm -f "$1/$2"
    printf '#!/bin/sh\n%s\n' "$3" >"$1/$2"
    chmod +x "$1/$2"
}

passed=0 failed=0
# check NAME WANT_STATUS WANT_STDERR_REGEX STATUS STDERR: WANT_STDERR_REGEX "" means no output.
check() {
    local name=$1 want_status=$2 want=$3 status=$4 err=$5 problem=""
    if [[ "$status" != "$want_status" ]]; then
        problem="exit status $status, expected $want_status"
    elif [[ -z "$want" && -n "$err" ]]; then
        problem="printed something, expected nothing"
    elif [[ -n "$want" && "$(wc -l <<<"$err")" != 1 ]]; then
        problem="printed $(wc -l <<<"$err") lines, expected one"
    elif [[ -n "$want" ]] && ! grep -Eq -- "$want" <<<"$err"; then
        problem="the message does not match /$want/"
    fi
    if [[ -z "$problem" ]]; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name: $problem; it printed:"
        sed 's/^/     /' <<<"$err"
    fi
}
# run BIN ARGS...: the script with PATH=BIN (the case's stand-ins), then the links, and a clean
# environment; sets status and err.
run() {
    local bin=$1
    shift
    status=0
    err=$(env -i PATH="$bin:$links" HOME="$work" IMAGENETX_CACHE="$work/cache" "$@" "$script" "${args[@]}" 2>&1 >/dev/null) || status=$?
}

# Every case has nasm (x86 hosts need it too), readelf and a rustup that knows only the host's
# target as stand-ins, and never the real cmake, apt-get, sudo, qemu-aarch64 or rustup.
base_stubs() {
    stub "$1" nasm 'exit 0'
    stub "$1" readelf 'exit 0'
    stub "$1" rustup 'echo x86_64-unknown-linux-gnu'
}
taken=(cmake apt-get sudo qemu-aarch64 rustup nasm readelf id umoci busybox)
links="$work/links"
make_path "$links" "${taken[@]}"
install_line='run `sudo apt-get install -y cmake` \(or your system.s equivalent\), then again$'

# 1. No cmake; installing not allowed (IMAGENETX_NO_INSTALL=1).
bin="$work/no-install"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" id 'echo 0'
stub "$bin" apt-get "touch '$work/apt-called'"
args=()
run "$bin" IMAGENETX_NO_INSTALL=1
check "no cmake, IMAGENETX_NO_INSTALL=1: one line with the command" 1 "^the build needs cmake, which are not installed: $install_line" "$status" "$err"
[[ ! -e "$work/apt-called" ]] || { failed=$((failed + 1)); echo "FAIL IMAGENETX_NO_INSTALL=1 ran apt-get"; }

# 2. No cmake, no apt-get.
bin="$work/no-apt"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" id 'echo 0'
run "$bin"
check "no cmake, no apt-get: one line with the command" 1 "$install_line" "$status" "$err"

# 3. No cmake, apt-get, but not root and no sudo.
bin="$work/user"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" id 'echo 1000'
stub "$bin" apt-get "touch '$work/apt-called'"
run "$bin"
check "no cmake, not root, no sudo: one line with the command" 1 "$install_line" "$status" "$err"
[[ ! -e "$work/apt-called" ]] || { failed=$((failed + 1)); echo "FAIL apt-get was run without root"; }

# 4. No cmake, root with apt-get: it installs (the stand-in records the arguments).
bin="$work/root"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" id 'echo 0'
stub "$bin" apt-get "echo \"\$*\" >> '$work/apt-args'"
run "$bin"
check "no cmake, root: installs it" 0 '^installing cmake' "$status" "$err"
if ! grep -qx 'install -y -qq --no-install-recommends cmake' "$work/apt-args" 2>/dev/null; then
    failed=$((failed + 1))
    echo "FAIL root install: apt-get was called with: $(cat "$work/apt-args" 2>/dev/null || echo nothing)"
fi

# 5. Everything there: silent, exit 0.
bin="$work/complete"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" cmake 'exit 0'
run "$bin"
check "cmake found: nothing to do" 0 "" "$status" "$err"

# 6. The emulation of the aarch64 test: no qemu, no arm64 libraries, not root.
bin="$work/emulation"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" cmake 'exit 0'
stub "$bin" id 'echo 1000'
args=(aarch64-emulation)
run "$bin" IMAGENETX_CROSS_LIBS="$work/no-such-libs"
check "aarch64-emulation, nothing installed: one line with the command" 1 \
    'run `sudo apt-get install -y qemu-user libc6-arm64-cross libstdc\+\+6-arm64-cross`' "$status" "$err"

# 7. The cross toolchain: no Rust target, no zig, installing not allowed.
bin="$work/cross"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" cmake 'exit 0'
args=(aarch64)
run "$bin" IMAGENETX_NO_INSTALL=1
check "aarch64, no target, no zig: one line with the commands" 1 \
    "run \`rustup target add aarch64-unknown-linux-gnu && python3 -m venv $work/cache/cross-tools && .*pip install ziglang==[0-9.]+ cargo-zigbuild==[0-9.]+" \
    "$status" "$err"

# 8. The container image's tools: no umoci, no busybox, not root.
bin="$work/image"
mkdir -p "$bin"
base_stubs "$bin"
stub "$bin" cmake 'exit 0'
stub "$bin" strip 'exit 0'
stub "$bin" id 'echo 1000'
args=(image)
run "$bin"
check "image, no umoci, no busybox: one line with the command" 1 \
    'run `sudo apt-get install -y umoci busybox-static`' "$status" "$err"

# 9. An unknown tool set is refused.
args=(riscv)
run "$bin"
check "unknown tool set: refused" 2 "unknown tool set 'riscv'" "$status" "$err"

# 10. Every recipe that runs cargo (or its cross wrapper) depends on build-tools, directly or
#    through another recipe, or runs scripts/ensure_build_tools.sh itself, so the tools are
#    checked before cargo starts.
if command -v just >/dev/null; then
    status=0
    err=$(just --dump --dump-format json | python3 -c '
import json, sys
recipes = json.load(sys.stdin)["recipes"]
def text(body):
    return " ".join(part if isinstance(part, str) else "{{}}" for line in body for part in line)
def needs(name, seen=()):
    recipe = recipes[name]
    deps = [d["recipe"] for d in recipe["dependencies"]]
    if name == "build-tools" or "scripts/ensure_build_tools.sh" in text(recipe["body"]):
        return True
    return any(needs(d, seen + (name,)) for d in deps if d not in seen)
bad = [n for n, r in recipes.items() if "cargo " in text(r["body"]) and not needs(n)]
if bad:
    print("recipes that run cargo without build-tools first: " + ", ".join(sorted(bad)), file=sys.stderr)
    sys.exit(1)
' 2>&1) || status=$?
    check "every recipe that runs cargo depends on build-tools" 0 "" "$status" "$err"
else
    echo "NOT RUN: the justfile check (just is not installed)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
