#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed, for the browser test of the HTML
# report (crates/cli/tests/integration/report_browser.rs). Idempotent: does nothing when one is found.
# Installs Debian's `chromium` with apt-get (as root, or through sudo when available).
set -euo pipefail

for candidate in "${IMAGENETX_CHROMIUM:-}" chromium chromium-browser google-chrome; do
    if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1; then
        echo "chromium: $(command -v "$candidate")"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing and apt-get is not available: install Chromium and set IMAGENETX_CHROMIUM" >&2
    exit 1
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "chromium is missing and installing it needs root: apt-get install -y chromium" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y --no-install-recommends chromium; then
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends chromium
fi
echo "chromium: $(command -v chromium)"
