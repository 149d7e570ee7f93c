#!/usr/bin/env bash
# Synthesise the demo's recordings with espeak-ng (16 kHz WAV): three spoken commands in
# DIR/audio/ and a short spoken lecture in DIR/lectures/ for the archive to answer from.
set -euo pipefail
dir=${1:-examples}
mkdir -p "$dir/audio" "$dir/lectures"
say() { [ -s "$dir/$1.wav" ] || espeak-ng -v en-us -s 130 -w "$dir/$1.wav" "$2"; }
say audio/paint_lighthouse "Generate a painting of a lighthouse at dawn."
say audio/question_lecture "Who built the first neural network?"
say audio/dictation "The meeting is moved to Thursday afternoon at three o'clock."
say lectures/neural_networks "Today we talk about neural networks. \
A neural network is made of layers of simple units called neurons. \
Each connection between two neurons has a weight. \
Training changes these weights with gradient descent, so that the network makes fewer mistakes. \
The first neural network that could learn, the perceptron, was built by Frank Rosenblatt in 1958."
