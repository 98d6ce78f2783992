#!/usr/bin/env bash
# Screenshots of every pane of the desktop app on a real (virtual) X display.
#
# Installs Debian's Xvfb and the xcb libraries Qt's xcb platform plugin needs (when missing and run
# as root), then runs `boltzmatch gui --screenshots DIR` under xvfb-run with QT_QPA_PLATFORM=xcb:
# the app walks every pane through a small workflow (xTB ethanol data, the network builder, a tiny
# SchNet trained and Fisher-fine-tuned, compare with KS plots, landscapes of the SchNet and of a digits
# classifier, MD and a collapse in 3-D, a four-trial sweep, a VAE, a GFlowNet) and saves one PNG per
# step into DIR (default docs/screenshots). About a minute on two cores.
#
# Usage: bash scripts/screenshots.sh [DIR]      (in the project's virtual environment, extra gui)
set -euo pipefail
out="${1:-docs/screenshots}"
packages=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-cursor0
          libxkbcommon-x11-0)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: screenshots.sh: missing Debian packages ${missing[*]} (apt-get install them, or run as root)" >&2
        exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# a run of its own: working folder and settings in a temporary folder, only the PNGs are kept
QT_QPA_PLATFORM=xcb xvfb-run --auto-servernum --server-args="-screen 0 1400x900x24" \
    boltzmatch gui --screenshots "$work"
mkdir -p "$out"
cp "$work"/*.png "$out"/
ls "$out"/*.png
