#!/usr/bin/env bash
# Synthesise the sample commands the quick start runs on (espeak-ng, 16 kHz WAV).
set -euo pipefail
out=${1:-examples/audio}
mkdir -p "$out"
say() { [ -s "$out/$1.wav" ] || espeak-ng -v "$2" -s 130 -w "$out/$1.wav" "$3"; }
say paint_lighthouse en-us "Generate a painting of a lighthouse at dawn."
say question_lecture en-us "What did the lecturer say about neural networks?"
say dictation en-us "The meeting is moved to Thursday afternoon at three o'clock."
