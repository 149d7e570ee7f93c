#!/usr/bin/env bash
# Set up everything voiceflow needs on a fresh Debian machine: system packages, a virtual
# environment with the CPU build of torch first, then voiceflow with all extras.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(ffmpeg espeak-ng strace libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins chromium)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first: this exact version is the CPU wheel; a looser request can pull a CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[all,dev]"
