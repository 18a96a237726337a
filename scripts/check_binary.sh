#!/usr/bin/env bash
# Checks a built binary before it is shipped or tested: an ELF executable for MACHINE (as
# readelf names it: AArch64, Advanced Micro Devices X86-64) whose highest GLIBC_ symbol version
# is at most MAX_GLIBC, so that it runs on every system with that glibc or newer.
#
#   scripts/check_binary.sh BINARY MACHINE MAX_GLIBC
#
# Prints one line (the machine and the glibc it needs); exits 1 with the reason otherwise.
set -euo pipefail

if (($# != 3)); then
    echo "usage: scripts/check_binary.sh BINARY MACHINE MAX_GLIBC" >&2
    exit 2
fi
binary=$1 machine=$2 max=$3

[[ -f "$binary" ]] || { echo "error: $binary: no such file" >&2; exit 1; }
header=$(readelf -h "$binary" 2>/dev/null) \
    || { echo "error: $binary is not an ELF file" >&2; exit 1; }
got=$(sed -n 's/^ *Machine: *//p' <<<"$header")
if [[ "$got" != "$machine" ]]; then
    echo "error: $binary is an ELF file for $got, expected $machine" >&2
    exit 1
fi
# The version needs of the dynamic symbols: GLIBC_2.17, GLIBC_2.28, ...
needed=$(readelf --version-info --wide "$binary" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
if [[ -z "$needed" ]]; then
    echo "error: $binary names no GLIBC_ symbol version (not a dynamically linked glibc binary?)" >&2
    exit 1
fi
if [[ "$(printf '%s\n%s\n' "$needed" "$max" | sort -V | tail -n 1)" != "$max" ]]; then
    echo "error: $binary needs glibc $needed (symbols versioned GLIBC_$needed), more than the $max it must run on; list them with: readelf --version-info --wide $binary | grep GLIBC_$needed" >&2
    exit 1
fi
echo "$binary: $machine, needs glibc $needed (at most $max)"
