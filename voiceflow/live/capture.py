"""Microphone capture: PortAudio's callback only copies blocks into a bounded queue.

Transcription never blocks capture. When the queue is full, audio is dropped and counted;
when PortAudio itself overflows (the process was not scheduled in time), that is counted
too: never silently.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

import numpy as np

from voiceflow.errors import VoiceflowError
from voiceflow.speech.audio import FRAME, SAMPLE_RATE


class MicrophoneError(VoiceflowError):
    """The microphone could not be opened; the message says what to do."""


class Capture:
    """Microphone blocks, resampled to 16 kHz mono, through a bounded queue."""

    def __init__(
        self,
        device: int | str | None = None,
        queue_seconds: float = 60.0,
        stream_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.device = device
        self.stream_factory = stream_factory
        self.rate = SAMPLE_RATE
        self.blocks: queue.Queue[np.ndarray] = queue.Queue(
            maxsize=int(queue_seconds * SAMPLE_RATE / FRAME)
        )
        self.dropped_seconds = 0.0  # blocks that found the queue full
        self.overflows = 0  # input overflows PortAudio reported
        self._stream: Any = None
        self._resampler: Any = None

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """Runs on the audio thread: copy and hand over, nothing else."""
        if status is not None and getattr(status, "input_overflow", False):
            self.overflows += 1
        try:
            self.blocks.put_nowait(
                np.array(indata[:, 0] if indata.ndim == 2 else indata, dtype=np.float32)
            )
        except queue.Full:
            self.dropped_seconds += frames / self.rate

    @property
    def started(self) -> bool:
        return self._stream is not None

    def start(self) -> None:
        if self.stream_factory is not None:
            self._stream = self.stream_factory(samplerate=self.rate, callback=self.callback)
            self._stream.start()
            return
        sd = import_sounddevice()
        try:
            info = sd.query_devices(self.device, kind="input")
        except (ValueError, sd.PortAudioError) as e:
            raise MicrophoneError(
                f"no input device{'' if self.device is None else f' {self.device!r}'} ({e}); "
                "plug in a microphone or pick one with --device (see --list-devices)"
            ) from None
        try:
            sd.check_input_settings(self.device, samplerate=SAMPLE_RATE, channels=1)
        except (ValueError, sd.PortAudioError):
            self.rate = int(info["default_samplerate"])  # resampled to 16 kHz below
        try:
            self._stream = sd.InputStream(
                samplerate=self.rate,
                channels=1,
                dtype="float32",
                device=self.device,
                blocksize=int(self.rate * FRAME / SAMPLE_RATE),
                callback=self.callback,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as e:
            raise MicrophoneError(
                f"cannot open {info['name']!r} at {self.rate} Hz ({e}); it may be busy in "
                "another program, or pick another device with --device"
            ) from None

    @property
    def ended(self) -> bool:
        """A replayed input (see ``voiceflow.testing.ReplayStream``) has no more audio."""
        return bool(getattr(self._stream, "finished", False))

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """The next block at 16 kHz, or None when nothing arrived within ``timeout``."""
        try:
            block = self.blocks.get(timeout=timeout) if timeout else self.blocks.get_nowait()
        except queue.Empty:
            return None
        return block if self.rate == SAMPLE_RATE else self._to_16k(block)

    def _to_16k(self, block: np.ndarray) -> np.ndarray:
        import av

        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
        frame.sample_rate = self.rate
        out = [f.to_ndarray()[0] for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def import_sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError:
        raise VoiceflowError("listening needs sounddevice: pip install 'voiceflow[mic]'") from None
    except OSError:
        raise MicrophoneError(
            "the PortAudio library is not installed: apt-get install libportaudio2 "
            "(Debian/Ubuntu) or brew install portaudio (macOS)"
        ) from None
    return sounddevice


def list_devices() -> str:
    sd = import_sounddevice()
    lines = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] > 0:
            lines.append(
                f"{i:>3}  {d['name']}  ({d['max_input_channels']} ch, "
                f"{int(d['default_samplerate'])} Hz)"
            )
    return "\n".join(lines) or "no input devices found"
