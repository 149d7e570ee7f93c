"""Voice activity detection: Silero VAD's network in numpy (no torch, no onnxruntime).

The model ships in the silero-vad package: its weights are read from its ONNX file, and
its Python module is never imported, as it loads torch. The network is small (an STFT,
four convolutions, one LSTM cell), so numpy runs it: the convolutions of many frames at
once and only the LSTM frame by frame, about 0.25 s a minute of audio (half of
onnxruntime's frame-by-frame time), without onnxruntime's 35 MB in the process.
Stretches quieter than any speech are skipped before the model runs, so an hour of
digital silence costs almost nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceflow.errors import MissingDependencyError, VoiceflowError
from voiceflow.speech.audio import FRAME, SAMPLE_RATE, frame_levels_db

CONTEXT = 64  # samples of the previous frame the model sees before each 512-sample frame
HIDDEN = 128  # the LSTM's size
BLOCK_FRAMES = 256  # frames (8 s) whose convolutions run at once: ~4 MB of work arrays


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 500
    speech_pad_ms: int = 300  # generous: a clipped first syllable costs a word
    max_speech_s: float = 29.0  # regions must fit one 30 s Whisper window
    energy_floor_db: float = -90.0  # below this RMS (near digital silence) no frame is speech


_weights: dict[str, np.ndarray] | None = None
_weights_lock = threading.Lock()


def _model() -> dict[str, np.ndarray]:
    """The network's weights, read once for every stream (they are never written)."""
    global _weights
    with _weights_lock:
        if _weights is None:
            _weights = _load_weights()
        return _weights


def preload() -> None:
    """Start reading the weights in a thread of their own (beside Whisper's, at start-up);
    a failure is left for the first frame to raise."""

    def load() -> None:
        with contextlib.suppress(Exception):  # raised again, clearly, where it is used
            _model()

    threading.Thread(target=load, name="vad-load", daemon=True).start()


def _load_weights() -> dict[str, np.ndarray]:
    spec = importlib.util.find_spec("silero_vad")  # finds the package's files, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("silero-vad", "", "voice activity detection")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    try:
        w = _onnx_weights(path.read_bytes())
        stft = w["stft.forward_basis_buffer"]
        # the weights the network below needs, in the shapes it needs
        return {
            "stft": stft.reshape(stft.shape[0], -1).T.copy(),  # (256, 258): real, imaginary
            **{f"conv{i}": w[f"encoder.{i - 1}.reparam_conv.weight"] for i in range(1, 5)},
            **{f"conv{i}_b": w[f"encoder.{i - 1}.reparam_conv.bias"] for i in range(1, 5)},
            "w_ih": w["decoder.rnn.weight_ih"].T.copy(),
            "w_hh": w["decoder.rnn.weight_hh"].T.copy(),
            "b": w["decoder.rnn.bias_ih"] + w["decoder.rnn.bias_hh"],
            "out": w["decoder.decoder.2.weight"].reshape(-1),
            "out_b": w["decoder.decoder.2.bias"].reshape(-1),
        }
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise VoiceflowError(
            f"silero-vad's model {path} is missing or not the one expected ({type(e).__name__}: "
            f"{e}): reinstall silero-vad"
        ) from None


# -- the model's weights, read from its ONNX file (protobuf) without onnx or onnxruntime -----
def _varint(b: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(b: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of a protobuf message: ints, or bytes of nested messages."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        kind = key & 7
        if kind == 0:
            value, i = _varint(b, i)
            yield key >> 3, value
        elif kind == 2:
            size, i = _varint(b, i)
            yield key >> 3, b[i : i + size]
            i += size
        elif kind in (1, 5):
            i += 8 if kind == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {kind}")


def _tensor(b: memoryview) -> tuple[str, np.ndarray | None]:
    """A TensorProto's name and, if float32, its data (dims 1, data_type 2, name 8,
    raw_data 9); the network's weights are all float32."""
    dims: list[int] = []
    name, raw, kind = "", b"", 0
    for field, v in _fields(b):
        if field == 1 and isinstance(v, int):
            dims.append(v)
        elif field == 1 and isinstance(v, memoryview):  # packed
            j = 0
            while j < len(v):
                d, j = _varint(v, j)
                dims.append(d)
        elif field == 2 and isinstance(v, int):
            kind = v
        elif field == 8 and isinstance(v, memoryview):
            name = bytes(v).decode()
        elif field == 9 and isinstance(v, memoryview):
            raw = bytes(v)
    return name, np.frombuffer(raw, "<f4").reshape(dims).copy() if kind == 1 else None


def _graph_tensors(graph: memoryview) -> list[dict[str, np.ndarray]]:
    """The named constants of a GraphProto and of each subgraph, a dict per graph: the file
    holds a 16 kHz and an 8 kHz network, one in each branch of an If node."""
    found: dict[str, np.ndarray] = {}
    subgraphs: list[dict[str, np.ndarray]] = []
    for field, v in _fields(graph):
        if not isinstance(v, memoryview):
            continue
        if field == 5:  # initializer
            name, t = _tensor(v)
            if t is not None:
                found[name] = t
        elif field == 1:  # a node: its attributes (5) hold tensors (5) and graphs (6)
            for nf, attr in _fields(v):
                if nf != 5 or not isinstance(attr, memoryview):
                    continue
                for af, av in _fields(attr):
                    if af == 5 and isinstance(av, memoryview):
                        name, t = _tensor(av)
                        if t is not None:
                            found[name] = t
                    elif af == 6 and isinstance(av, memoryview):
                        subgraphs += _graph_tensors(av)
    return [found, *subgraphs]


def _onnx_weights(data: bytes) -> dict[str, np.ndarray]:
    """The 16 kHz network's weights: the graph whose STFT has 256-sample windows."""
    graph = next((v for f, v in _fields(memoryview(data)) if f == 7), None)  # ModelProto.graph
    if not isinstance(graph, memoryview):
        raise ValueError("no graph in the file")
    for tensors in _graph_tensors(graph):
        stft = tensors.get("stft.forward_basis_buffer")
        if stft is not None and stft.shape[-1] == 256:
            return tensors
    raise ValueError("no 16 kHz network in the file")


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """Conv1d with kernel 3 and padding 1 over (frames, channels, time), then ReLU."""
    t = x.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    out = [
        sum(xp[:, :, j * stride + k] @ w[:, :, k].T for k in range(3)) + b
        for j in range((t - 1) // stride + 1)
    ]
    return np.maximum(np.stack(out, axis=2), 0.0)


def _lstm_inputs(windows: np.ndarray, m: dict[str, np.ndarray]) -> np.ndarray:
    """The LSTM's input projections of (frames, CONTEXT + FRAME) windows: every frame's
    work but the recurrence, for all frames at once."""
    x = np.pad(windows, ((0, 0), (0, CONTEXT)), mode="reflect")
    n_fft, hop = 256, 128
    spec = np.stack([x[:, i : i + n_fft] for i in range(0, x.shape[1] - n_fft + 1, hop)], axis=1)
    spec = spec @ m["stft"]  # (frames, 4, 258)
    half = spec.shape[2] // 2
    mag = np.sqrt(spec[:, :, :half] ** 2 + spec[:, :, half:] ** 2).transpose(0, 2, 1)
    h = _conv(mag, m["conv1"], m["conv1_b"], 1)
    h = _conv(h, m["conv2"], m["conv2_b"], 2)
    h = _conv(h, m["conv3"], m["conv3_b"], 2)
    h = _conv(h, m["conv4"], m["conv4_b"], 1)[:, :, 0]  # (frames, 128)
    return np.asarray(h @ m["w_ih"] + m["b"], dtype=np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float32)


class SileroStream:
    """Speech probability of successive 512-sample frames; the model keeps state between
    frames, so each stream of audio has its own. Reads the weights on the first frame."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(HIDDEN, dtype=np.float32)
        self._c = np.zeros(HIDDEN, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        return self.frames(frame.reshape(1, FRAME))[0]

    def frames(self, frames: np.ndarray) -> list[float]:
        """The probabilities of (n, 512) successive frames: their convolutions at once."""
        x = np.concatenate([self._context, frames.reshape(-1).astype(np.float32, copy=False)])
        starts = np.arange(len(frames))[:, None] * FRAME
        windows = x[starts + np.arange(CONTEXT + FRAME)]
        self._context = x[-CONTEXT:].copy()
        m = _model()
        return list(self._run(_lstm_inputs(windows, m), m))

    def probabilities(self, audio: np.ndarray) -> Iterator[float]:
        """One probability a frame, from a fresh state; the last frame is padded with zeros."""
        self.reset()
        padded = np.pad(audio.astype(np.float32, copy=False), (0, -len(audio) % FRAME))
        frames = padded.reshape(-1, FRAME)
        for a in range(0, len(frames), BLOCK_FRAMES):
            yield from self.frames(frames[a : a + BLOCK_FRAMES])

    def _run(self, inputs: np.ndarray, m: dict[str, np.ndarray]) -> Iterator[float]:
        """The recurrence over the frames' input projections, and each frame's output."""
        w_hh, out, out_b = m["w_hh"], m["out"], float(m["out_b"][0])
        for gates_x in inputs:
            gates = gates_x + self._h @ w_hh
            i, f, g, o = np.split(gates, 4)  # torch's LSTMCell order
            self._c = _sigmoid(f) * self._c + _sigmoid(i) * np.tanh(g)
            self._h = _sigmoid(o) * np.tanh(self._c)
            logit = float(np.maximum(self._h, 0.0) @ out) + out_b
            yield 1.0 / (1.0 + float(np.exp(-logit)))


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
