"""Audio input: any container ffmpeg's libraries decode, to 16 kHz mono float32."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from voiceflow.errors import AudioError

SAMPLE_RATE = 16000  # what Whisper and Silero take; every sample array in voiceflow is at it
FRAME = 512  # Silero's frame at 16 kHz (32 ms); also the unit of levelling and energy gating
BLOCK = 1 << 20  # samples (about 65 s) processed at a time, so long recordings stay small
log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".webm"}
    | {".mp4", ".mkv", ".mov", ".avi", ".aiff", ".aif"}
)

ChannelSpec = int | str | None  # None/"mix": downmix; 0/"left"; 1/"right"; N: that channel


def _channel_index(channel: ChannelSpec) -> int | None:
    if channel is None or channel == "mix":
        return None
    if channel == "left":
        return 0
    if channel == "right":
        return 1
    try:
        return int(channel)
    except (TypeError, ValueError):
        raise AudioError(f"unknown channel {channel!r}: use mix, left, right or a number") from None


def load_audio(path: str | Path, channel: ChannelSpec = None) -> np.ndarray:
    """Decode a file to 16 kHz float32 samples.

    Stereo recordings with one speaker per channel turn into nonsense when mixed, so a
    single channel can be selected. A file cut short mid-stream yields what could be
    decoded, with a warning; a file with no decodable audio raises ``AudioError``.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(_missing(path))
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if not path.is_file():
        raise AudioError(
            f"{path}: not a regular file (a pipe, socket or device); save the audio to a file"
        )
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    want = _channel_index(channel)
    if want in (None, 0) and (samples := _pcm_wav(path)) is not None:
        return samples
    import av  # here: PyAV loads ffmpeg's libraries (0.15 s), which a 16 kHz WAV needs not

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise AudioError(f"{path}: not a readable audio or video file ({_reason(e)})") from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path}: contains no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise AudioError(f"{path}: its audio is in an unknown or damaged codec")
        n_channels = stream.codec_context.channels or 1
        described = bool(stream.codec_context.sample_rate)  # a header was read
        if want is not None and want >= n_channels:
            raise AudioError(f"{path}: has {n_channels} channel(s), channel {want} asked for")
        layout = "mono" if want is None else ("stereo" if n_channels == 2 else None)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        seconds = max(0.0, container.duration / 1e6) if container.duration else 0.0
        out = _Samples(int(min(seconds, 4 * 3600) * SAMPLE_RATE * 1.01) + SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for resampled in resampler.resample(frame):
                    out.append(_pick(resampled.to_ndarray(), want))
        except (av.error.FFmpegError, ValueError) as e:
            if not out.size:
                raise AudioError(f"{path}: corrupt audio ({_reason(e)})") from None
            log.warning(
                "%s: audio is truncated or corrupt after %.1f s; using what decoded",
                path,
                out.size / SAMPLE_RATE,
            )
        for resampled in resampler.resample(None):
            out.append(_pick(resampled.to_ndarray(), want))
    if not out.size and not described:
        raise AudioError(f"{path}: not a readable audio file (no audio header found)")
    if not out.size and path.stat().st_size > 4096:
        # A header with no frames is a valid empty recording; kilobytes that decode to
        # nothing are damage, not silence.
        raise AudioError(f"{path}: corrupt audio (no decodable frames)")
    return out.array()


def _pcm_wav(path: Path) -> np.ndarray | None:
    """The samples of a whole 16 kHz 16-bit mono PCM WAV (what voiceflow, Home Assistant and
    many recorders write), read without ffmpeg's libraries: the same floats PyAV gives.
    None for any other file, and for a short or empty one, whose warnings PyAV's path gives."""
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
                return None
            frames = w.getnframes()
            if not 0 < frames <= 600 * SAMPLE_RATE:  # longer: PyAV's path, in bounded memory
                return None
            data = w.readframes(frames)
    except Exception:  # wave raises RuntimeError, struct.error, ... on damage: PyAV reports it
        return None
    if len(data) != 2 * frames:
        return None
    return pcm_to_float(data, 2, 1)


class _Samples:
    """A growing float32 buffer: decoding an hour must not hold it twice (a list of
    frames joined at the end would), so the buffer is sized from the container's duration
    and grows only when that was wrong."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(capacity, dtype=np.float32)
        self.size = 0

    def append(self, x: np.ndarray) -> None:
        end = self.size + len(x)
        if end > len(self._data):
            grown = np.empty(max(end, len(self._data) * 3 // 2), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = x
        self.size = end

    def array(self) -> np.ndarray:
        # A view keeps the whole buffer alive: copy when much of it is unused.
        if len(self._data) - self.size > max(SAMPLE_RATE * 10, self.size // 20):
            return self._data[: self.size].copy()
        return self._data[: self.size]


def _pick(planes: np.ndarray, want: int | None) -> np.ndarray:
    # fltp frames come as (channels, samples)
    return planes[0] if want is None else planes[min(want, planes.shape[0] - 1)]


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.split(":")[-1].strip() or type(e).__name__


def _missing(path: Path) -> str:
    if path.is_symlink():
        return f"{path}: a symbolic link to nothing (broken, or a loop)"
    return f"{path}: no such file"


def expand_inputs(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files as given, folders expanded (recursively, sorted) to the audio/video inside.

    Returns the files and one error line per argument that yields none, so a batch goes
    on past a bad argument.
    """
    files: list[Path] = []
    errors: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                errors.append(f"{p}: folder contains no audio or video files")
            files.extend(found)
        elif not p.exists():
            errors.append(_missing(p))
        else:
            files.append(p)
    return files, errors


def frame_levels_db(audio: np.ndarray) -> np.ndarray:
    """The RMS level of each whole ``FRAME`` of samples, in dBFS (block by block)."""
    n = len(audio) // FRAME
    out = np.empty(n, dtype=np.float64)
    step = BLOCK // FRAME
    for i in range(0, n, step):
        frames = audio[i * FRAME : min(n, i + step) * FRAME].reshape(-1, FRAME)
        out[i : i + len(frames)] = 10 * np.log10(
            np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-20
        )
    return out


def level_speech(
    audio: np.ndarray,
    target_db: float = -23.0,
    window_s: float = 3.0,
    max_gain_db: float = 30.0,
    floor_db: float = -90.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Slow automatic gain: bring each few seconds of sound to about ``target_db`` RMS.

    A quiet speaker next to a loud one is missed by voice activity detection and skipped
    by Whisper within the same 30 s window; levelling first lets both hear it. Only the
    copy given to the models changes; timestamps do not move. Near-silence is left alone.
    Works block by block, into ``out`` when given (``out=audio`` levels in place), so an
    hour of audio needs little beyond itself.
    """
    if out is None:
        out = np.empty_like(audio, dtype=np.float32)
    db = frame_levels_db(audio)
    n = len(db)
    if n == 0:
        out[:] = audio
        return out
    half = max(1, int(window_s * SAMPLE_RATE / FRAME) // 2)
    padded = np.pad(db, half, mode="edge")
    level = np.empty(n, dtype=np.float64)
    step = 8192
    for i in range(0, n, step):
        windows = np.lib.stride_tricks.sliding_window_view(
            padded[i : min(n, i + step) + 2 * half], 2 * half + 1
        )
        level[i : i + len(windows)] = np.percentile(windows, 90, axis=1)  # speech, not pauses
    gain_db = np.clip(target_db - level, -10.0, max_gain_db)
    gain_db[level < floor_db] = 0.0
    gain = 10 ** (gain_db / 20)
    centres = np.arange(n) * FRAME + FRAME / 2
    for a in range(0, len(audio), BLOCK):
        b = min(len(audio), a + BLOCK)
        g = np.interp(np.arange(a, b), centres, gain)
        np.clip(audio[a:b] * g, -1.0, 1.0, out=out[a:b])
    return out


def pcm_to_float(data: bytes, width: int, channels: int) -> np.ndarray:
    """Interleaved little-endian PCM (8-bit unsigned; 16-, 24- or 32-bit signed) as mono
    float32 in [-1, 1], channels averaged."""
    if width not in (1, 2, 3, 4) or channels < 1:
        raise AudioError(f"unsupported PCM format: {width}-byte samples, {channels} channel(s)")
    frame = width * channels
    data = data[: len(data) - len(data) % frame]
    if width == 1:
        x = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    else:
        dtype, scale = ("<i2", 32768.0) if width == 2 else ("<i4", 2147483648.0)
        x = (np.frombuffer(data, dtype=dtype) / scale).astype(np.float32)
    return x.reshape(-1, channels).mean(axis=1, dtype=np.float32) if channels > 1 else x


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples from ``rate`` to ``target`` Hz (ffmpeg's resampler)."""
    if rate == target or not len(samples):
        return np.ascontiguousarray(samples, dtype=np.float32)
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono"
    )
    frame.sample_rate = rate
    out = [f.to_ndarray()[0] for f in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)
