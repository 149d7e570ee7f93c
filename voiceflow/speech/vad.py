"""Voice activity detection with Silero VAD, run through torch.

The ONNX build of Silero would need onnxruntime, whose sessions start a telemetry thread
that reaches for the network; the TorchScript build shipped in the same package does not.
Stretches quieter than any speech are skipped before the model runs, so an hour of
digital silence costs almost nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from voiceflow.speech.audio import FRAME, SAMPLE_RATE, frame_levels_db


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 500
    speech_pad_ms: int = 300  # generous: a clipped first syllable costs a word
    max_speech_s: float = 29.0  # regions must fit one 30 s Whisper window
    energy_floor_db: float = -90.0  # below this RMS (near digital silence) no frame is speech


class SileroVad:
    """Finds speech regions; the model loads on first use and is shared by all instances."""

    _model = None
    _lock = threading.Lock()

    def __init__(self, options: VadOptions | None = None) -> None:
        self.options = options or VadOptions()

    @classmethod
    def model(cls):  # type: ignore[no-untyped-def]
        with cls._lock:
            if cls._model is None:
                from silero_vad import load_silero_vad

                cls._model = load_silero_vad(onnx=False)
            return cls._model

    def regions(self, audio: np.ndarray) -> list[tuple[int, int]]:
        """Speech regions as ``(start, end)`` sample indices, sorted and disjoint."""
        out: list[tuple[int, int]] = []
        for a, b in _active_ranges(audio, self.options.energy_floor_db):
            out.extend((a + s, a + e) for s, e in self._silero(audio[a:b]))
        return out

    def _silero(self, audio: np.ndarray) -> list[tuple[int, int]]:
        import torch
        from silero_vad import get_speech_timestamps

        o = self.options
        model = self.model()
        with self._lock, torch.inference_mode():  # the model keeps state between frames
            model.reset_states()
            stamps = get_speech_timestamps(
                torch.from_numpy(audio),
                model,
                threshold=o.threshold,
                sampling_rate=SAMPLE_RATE,
                min_speech_duration_ms=o.min_speech_ms,
                min_silence_duration_ms=o.min_silence_ms,
                speech_pad_ms=o.speech_pad_ms,
                max_speech_duration_s=o.max_speech_s,
            )
        return [(int(s["start"]), int(s["end"])) for s in stamps]


def _active_ranges(audio: np.ndarray, floor_db: float, pad_s: float = 0.5) -> list[tuple[int, int]]:
    """Ranges whose frames rise above the energy floor, padded and merged."""
    loud = np.flatnonzero(frame_levels_db(audio) > floor_db)
    if loud.size == 0:
        return []
    pad = int(pad_s * SAMPLE_RATE / FRAME)
    ranges: list[tuple[int, int]] = []
    start = prev = int(loud[0])
    for i in map(int, loud[1:]):
        if i - prev > 2 * pad:
            ranges.append((start, prev))
            start = i
        prev = i
    ranges.append((start, prev))
    return [(max(0, (a - pad) * FRAME), min(len(audio), (b + 1 + pad) * FRAME)) for a, b in ranges]
