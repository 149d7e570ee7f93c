"""Voice activity detection with Silero VAD's ONNX model on onnxruntime (no torch).

The model file ships in the silero-vad package; its Python module is never imported, as it
loads torch. onnxruntime's telemetry is off: ``import voiceflow`` sets ORT_DISABLE_TELEMETRY
(Linux, macOS) and the session switches off Windows' events. Stretches quieter than any speech are
skipped before the model runs, so an hour of digital silence costs almost nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voiceflow.errors import MissingDependencyError, VoiceflowError
from voiceflow.speech.audio import FRAME, SAMPLE_RATE, frame_levels_db

CONTEXT = 64  # samples of the previous frame the model sees before each 512-sample frame


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 500
    speech_pad_ms: int = 300  # generous: a clipped first syllable costs a word
    max_speech_s: float = 29.0  # regions must fit one 30 s Whisper window
    energy_floor_db: float = -90.0  # below this RMS (near digital silence) no frame is speech


_session: Any = None
_session_lock = threading.Lock()


def _model_session() -> Any:
    """One onnxruntime session for every stream: ``run`` is thread-safe, state is the
    caller's."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _load_session()
        return _session


def preload() -> None:
    """Start loading the model in a thread of its own (beside Whisper's, at start-up); a
    failure is left for the first frame to raise."""

    def load() -> None:
        with contextlib.suppress(Exception):  # raised again, clearly, where it is used
            _model_session()

    threading.Thread(target=load, name="vad-load", daemon=True).start()


def _load_session() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime", "", "voice activity detection") from None
    spec = importlib.util.find_spec("silero_vad")  # finds the package's files, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("silero-vad", "", "voice activity detection")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise VoiceflowError(f"silero-vad is installed but has no {path.name}: reinstall it")
    if hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1  # one frame is tiny
    opts.log_severity_level = 3  # the model's unused initializers are not news
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class SileroStream:
    """Speech probability of successive 512-sample frames; the model keeps state between
    frames, so each stream of audio has its own. Loads the model on the first frame."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        x = np.concatenate([self._context, frame.reshape(1, FRAME).astype(np.float32)], axis=1)
        out, self._state = _model_session().run(
            None, {"input": x, "state": self._state, "sr": np.array(SAMPLE_RATE, dtype=np.int64)}
        )
        self._context = x[:, -CONTEXT:]
        return float(out[0, 0])

    def probabilities(self, audio: np.ndarray) -> Iterator[float]:
        """One probability a frame, from a fresh state; the last frame is padded with zeros."""
        self.reset()
        padded = np.pad(audio.astype(np.float32, copy=False), (0, -len(audio) % FRAME))
        return (self(frame) for frame in padded.reshape(-1, FRAME))


class SileroVad:
    """Finds speech regions with Silero's rules (its ``get_speech_timestamps``)."""

    def __init__(self, options: VadOptions | None = None) -> None:
        self.options = options or VadOptions()

    def regions(self, audio: np.ndarray) -> Iterator[tuple[int, int]]:
        """Speech regions as ``(start, end)`` sample indices, sorted and disjoint, each as
        soon as the audio after it settles it (a caller may decode while this runs)."""
        stream = SileroStream()
        for a, b in _active_ranges(audio, self.options.energy_floor_db):
            probs = stream.probabilities(audio[a:b])
            for s, e in speech_regions(probs, b - a, self.options):
                yield a + s, a + e


def speech_regions(
    probs: Iterable[float], n_samples: int, o: VadOptions
) -> Iterator[tuple[int, int]]:
    """Silero's ``get_speech_timestamps`` rules over frame probabilities: speech starts at
    ``threshold``, ends after ``min_silence_ms`` below ``threshold - 0.15``; a region that
    reaches the longest allowed is cut at its longest inner pause of over 98 ms (or where it
    stands); regions shorter than ``min_speech_ms`` are dropped; each is padded by
    ``speech_pad_ms``, or meets its neighbour halfway across a shorter gap. A region comes
    out once the next one is found (its padding depends on the gap) or the audio ends."""
    pad = SAMPLE_RATE * o.speech_pad_ms / 1000
    last: list[int] | None = None
    for span in _raw_spans(probs, n_samples, o):
        if last is None:
            span[0] = int(max(0, span[0] - pad))
        else:
            gap = span[0] - last[1]
            if gap < 2 * pad:
                last[1] += int(gap // 2)
                span[0] = int(max(0, span[0] - gap // 2))
            else:
                last[1] = int(min(n_samples, last[1] + pad))
                span[0] = int(max(0, span[0] - pad))
            yield last[0], last[1]
        last = span
    if last is not None:
        yield last[0], int(min(n_samples, last[1] + pad))


def _raw_spans(probs: Iterable[float], n_samples: int, o: VadOptions) -> Iterator[list[int]]:
    """Speech spans before padding (see ``speech_regions``)."""
    pad = SAMPLE_RATE * o.speech_pad_ms / 1000
    min_speech = SAMPLE_RATE * o.min_speech_ms / 1000
    min_silence = SAMPLE_RATE * o.min_silence_ms / 1000
    max_speech = SAMPLE_RATE * o.max_speech_s - FRAME - 2 * pad
    min_cut_pause = SAMPLE_RATE * 98 / 1000
    quiet = max(o.threshold - 0.15, 0.01)

    start: int | None = None  # of the region in progress
    silence_from = 0  # where the pause in progress began (0: none)
    pauses: list[tuple[int, int]] = []  # (start, length) of the region's pauses
    for i, p in enumerate(probs):
        at = i * FRAME
        if p >= o.threshold and silence_from:
            if at - silence_from > min_cut_pause:
                pauses.append((silence_from, at - silence_from))
            silence_from = 0
        if start is None:
            if p >= o.threshold:
                start = at
            continue
        if at - start > max_speech:
            if not pauses:
                yield [start, at]
                start, silence_from = None, 0
                continue
            cut, length = max(pauses, key=lambda pause: pause[1])
            yield [start, cut]
            start, silence_from, pauses = cut + length, 0, []
        if p < quiet:
            silence_from = silence_from or at
            if at - silence_from >= min_silence:
                if silence_from - start > min_speech:
                    yield [start, silence_from]
                start, silence_from, pauses = None, 0, []
    if start is not None and n_samples - start > min_speech:
        yield [start, n_samples]


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
