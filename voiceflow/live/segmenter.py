"""Streaming voice activity: 16 kHz blocks of any size in, whole utterances out (Silero)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from voiceflow.errors import ConfigError
from voiceflow.speech.audio import FRAME, SAMPLE_RATE
from voiceflow.speech.vad import SileroStream

FRAME_MS = FRAME * 1000 // SAMPLE_RATE  # 32


@dataclass(frozen=True)
class SegmenterOptions:
    threshold: float = 0.5
    silence_ms: int = 500  # silence that ends an utterance
    min_utterance_s: float = 0.3
    max_utterance_s: float = 28.0  # fits one Whisper window
    pre_roll_ms: int = 300  # audio kept from before speech starts: the first syllable
    # The closing silence an utterance keeps (Whisper ends words better with some). Once
    # this much silence is heard, a tentative utterance with exactly those samples is
    # offered, so transcription can start before the utterance is known to be over; if
    # speech does not resume, the final utterance is the same audio and takes that result.
    # 0 keeps no silence and offers nothing early.
    early_ms: int = 200

    def __post_init__(self) -> None:
        if not 0 <= self.early_ms < self.silence_ms:
            raise ConfigError(
                f"early_ms ({self.early_ms}) must be at least 0 and below silence_ms "
                f"({self.silence_ms}): the closing silence kept is part of the silence that "
                "ends an utterance"
            )
        if self.silence_ms < FRAME_MS or self.max_utterance_s <= self.min_utterance_s:
            raise ConfigError(
                f"silence_ms must be at least {FRAME_MS} and max_utterance_s above min_utterance_s"
            )


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray
    start: float  # seconds since listening began
    end: float  # where speech ended (before the closing silence)
    speech_ended_at: float  # time.monotonic() of the end of speech, for latency
    final: bool = True  # False: speech may still resume (see SegmenterOptions.early_ms)

    def same_audio(self, other: Utterance) -> bool:
        return self.start == other.start and len(self.samples) == len(other.samples)


class Segmenter:
    """Streaming voice activity: feed 16 kHz blocks of any size, get whole utterances.

    Silero keeps state between frames, so each segmenter has its own stream; the model
    loads on the first block.
    """

    def __init__(self, options: SegmenterOptions | None = None) -> None:
        self.o = options or SegmenterOptions()
        self.model = SileroStream()
        self._pending = np.zeros(0, dtype=np.float32)
        self._pre: deque[np.ndarray] = deque(maxlen=max(1, self.o.pre_roll_ms // FRAME_MS))
        self._speech: list[np.ndarray] = []
        self._silent_frames = 0
        self._frames_seen = 0
        self._start_frame = 0
        self.in_speech = False

    def feed(self, block: np.ndarray) -> list[Utterance]:
        self._pending = np.concatenate([self._pending, block.astype(np.float32, copy=False)])
        n = len(self._pending) // FRAME
        frames, self._pending = self._pending[: n * FRAME], self._pending[n * FRAME :]
        out: list[Utterance] = []
        end_frames = max(1, self.o.silence_ms // FRAME_MS)
        early_frames = self.o.early_ms // FRAME_MS
        max_frames = int(self.o.max_utterance_s * SAMPLE_RATE / FRAME)
        frames = frames.reshape(n, FRAME)
        probs = self.model.frames(frames) if n else []  # a block's frames at once: cheaper
        for i, frame in enumerate(frames):
            prob = probs[i]
            self._frames_seen += 1
            if not self.in_speech:
                if prob >= self.o.threshold:
                    self.in_speech = True
                    self._speech = [*self._pre, frame]
                    self._start_frame = self._frames_seen - len(self._speech)
                    self._silent_frames = 0
                else:
                    self._pre.append(frame)
                continue
            self._speech.append(frame)
            self._silent_frames = self._silent_frames + 1 if prob < self.o.threshold - 0.15 else 0
            if self._silent_frames >= end_frames or len(self._speech) >= max_frames:
                out.extend(self._close())
                if i + 1 < n:  # the model starts afresh after an utterance
                    probs[i + 1 :] = self.model.frames(frames[i + 1 :])
            elif 0 < early_frames == self._silent_frames:
                out.extend(self._utterance(final=False))
        return out

    @property
    def speaking(self) -> bool:
        """In an utterance and its last frame was speech (no pause has begun)."""
        return self.in_speech and self._silent_frames == 0

    def current(self) -> Utterance | None:
        """What has been heard of the utterance in progress, for partial text."""
        if not self.in_speech:
            return None
        samples = np.concatenate(self._speech)
        start = self._start_frame * FRAME / SAMPLE_RATE
        return Utterance(
            samples, start, start + len(samples) / SAMPLE_RATE, time.monotonic(), final=False
        )

    def flush(self) -> list[Utterance]:
        """End the utterance in progress (end of input, push-to-talk released, Ctrl-C)."""
        return self._close() if self.in_speech else []

    def _close(self) -> list[Utterance]:
        out = self._utterance(final=True)
        self.in_speech, self._speech, self._silent_frames = False, [], 0
        self._pre = deque(maxlen=self._pre.maxlen)
        self.model.reset()
        return out

    def _utterance(self, final: bool) -> list[Utterance]:
        silent = min(self._silent_frames, len(self._speech))
        voiced = len(self._speech) - silent
        if voiced * FRAME / SAMPLE_RATE < self.o.min_utterance_s:
            return []
        # The closing silence kept is the same for a tentative and a final utterance.
        samples = np.concatenate(self._speech[: voiced + min(silent, self.o.early_ms // FRAME_MS)])
        start = self._start_frame * FRAME / SAMPLE_RATE
        ended_at = time.monotonic() - silent * FRAME / SAMPLE_RATE
        return [Utterance(samples, start, start + voiced * FRAME / SAMPLE_RATE, ended_at, final)]
