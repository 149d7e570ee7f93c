"""Live voice: microphone capture, utterance segmentation, dictation files.

Capture runs on PortAudio's thread and only copies blocks into a bounded queue; the
segmenter (streaming Silero VAD) and transcription run elsewhere, so transcription never
blocks capture. When the queue is full, audio is dropped and counted, never silently.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceflow.errors import VoiceflowError
from voiceflow.messages import Transcript

if TYPE_CHECKING:
    from voiceflow.builtins import WhisperNode
    from voiceflow.speech.transcriber import SpeechModel

log = logging.getLogger(__name__)

PARTIAL_EVERY_S = 1.0  # seconds of new speech between partial texts

SAMPLE_RATE = 16000
FRAME = 512  # Silero's frame at 16 kHz: 32 ms


class MicrophoneError(VoiceflowError):
    """The microphone could not be opened; the message says what to do."""


@dataclass(frozen=True)
class SegmenterOptions:
    threshold: float = 0.5
    silence_ms: int = 500  # silence that ends an utterance
    min_utterance_s: float = 0.3
    max_utterance_s: float = 28.0  # fits one Whisper window
    pre_roll_ms: int = 300  # audio kept from before speech starts: the first syllable
    # After this much silence a tentative utterance is offered, so transcription can start
    # before the utterance is known to be over (0: never). It equals the closing silence
    # an utterance keeps, so a tentative and its final utterance hold the same samples.
    early_ms: int = 200


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray
    start: float  # seconds since listening began
    end: float  # where speech ended (before the closing silence)
    speech_ended_at: float  # time.monotonic() of the end of speech, for latency
    final: bool = True  # False: speech may still resume (see SegmenterOptions.early_ms)


class Segmenter:
    """Streaming voice activity: feed 16 kHz blocks of any size, get whole utterances."""

    def __init__(self, options: SegmenterOptions | None = None) -> None:
        from silero_vad import load_silero_vad

        self.o = options or SegmenterOptions()
        self.model = load_silero_vad(onnx=False)  # its own copy: it keeps streaming state
        self._pending = np.zeros(0, dtype=np.float32)
        self._pre: deque[np.ndarray] = deque(maxlen=max(1, self.o.pre_roll_ms * 16 // FRAME))
        self._speech: list[np.ndarray] = []
        self._silent_frames = 0
        self._frames_seen = 0
        self._start_frame = 0
        self.in_speech = False

    def feed(self, block: np.ndarray) -> list[Utterance]:
        import torch

        self._pending = np.concatenate([self._pending, block.astype(np.float32, copy=False)])
        n = len(self._pending) // FRAME
        frames, self._pending = self._pending[: n * FRAME], self._pending[n * FRAME :]
        out: list[Utterance] = []
        end_frames = max(1, self.o.silence_ms * 16 // FRAME)
        early_frames = self.o.early_ms * 16 // FRAME
        max_frames = int(self.o.max_utterance_s * SAMPLE_RATE / FRAME)
        with torch.inference_mode():
            for frame in frames.reshape(n, FRAME):
                prob = float(self.model(torch.from_numpy(frame), SAMPLE_RATE))
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
                self._silent_frames = (
                    self._silent_frames + 1 if prob < self.o.threshold - 0.15 else 0
                )
                if self._silent_frames >= end_frames or len(self._speech) >= max_frames:
                    out.extend(self._close())
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
        self.model.reset_states()
        return out

    def _utterance(self, final: bool) -> list[Utterance]:
        silent = min(self._silent_frames, len(self._speech))
        voiced = len(self._speech) - silent
        if voiced * FRAME / SAMPLE_RATE < self.o.min_utterance_s:
            return []
        # Keep about 200 ms of the closing silence: Whisper ends words better with some.
        samples = np.concatenate(self._speech[: voiced + min(silent, 200 * 16 // FRAME)])
        start = self._start_frame * FRAME / SAMPLE_RATE
        ended_at = time.monotonic() - silent * FRAME / SAMPLE_RATE
        return [Utterance(samples, start, start + voiced * FRAME / SAMPLE_RATE, ended_at, final)]


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
        self.blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=int(queue_seconds / 0.032))
        self.dropped_seconds = 0.0
        self._stream: Any = None
        self._resampler: Any = None

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """Runs on the audio thread: copy and hand over, nothing else."""
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
                blocksize=int(self.rate * 0.032),
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
            block = self.blocks.get(timeout=timeout)
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


def strip_wake_phrase(text: str, phrase: str, similarity: float = 0.8) -> str | None:
    """The command after the wake phrase, or None when the text does not start with it.

    Matching ignores case, punctuation and spaces ("Hey, Voice Flow!") and tolerates a
    letter or two misheard, since Whisper spells invented names freely.
    """
    from difflib import SequenceMatcher

    from voiceflow.intents import normalize

    wake = normalize(phrase).replace(" ", "")
    if not wake:
        return text
    words = text.split()
    best: tuple[float, int] = (0.0, 0)
    for i in range(1, len(words) + 1):
        head = normalize(" ".join(words[:i])).replace(" ", "")
        if len(head) > len(wake) + 3:
            break
        best = max(best, (SequenceMatcher(None, head, wake).ratio(), i))
    if best[0] < similarity:
        return None
    return " ".join(words[best[1] :]).lstrip(" ,.!?;:")


class DictationWriter:
    """Writes each transcript as it arrives, so a crash loses at most the current utterance.

    ``.txt``, ``.srt`` and ``.vtt`` are appended to and flushed to disk; ``.json`` is
    rewritten atomically each time.
    """

    def __init__(self, path: str | Path) -> None:
        from voiceflow.speech.writers import FORMATS

        self.path = Path(path)
        self.format = self.path.suffix.lstrip(".").lower()
        if self.format not in FORMATS:
            raise VoiceflowError(f"{path}: dictation writes {', '.join(FORMATS)} files")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.items: list[dict[str, Any]] = []
        if self.format == "json":
            self._save_json()
        else:
            self.path.write_text("WEBVTT\n\n" if self.format == "vtt" else "", encoding="utf-8")

    def _append(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def _save_json(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"segments": self.items}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, t: Transcript, start: float, end: float) -> None:
        from voiceflow.speech.writers import format_timestamp

        text = t.text.strip()
        if not text:
            return
        self.count += 1
        if self.format == "txt":
            self._append(text + "\n")
        elif self.format == "srt":
            self._append(
                f"{self.count}\n{format_timestamp(start, True, ',')} --> "
                f"{format_timestamp(end, True, ',')}\n{text}\n\n"
            )
        elif self.format == "vtt":
            self._append(f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n\n")
        else:
            self.items.append(
                {
                    "start": start,
                    "end": end,
                    "text": text,
                    "language": t.language,
                    "translation": t.translation,
                }
            )
            self._save_json()


@dataclass
class ListenStats:
    utterances: int = 0
    partials: int = 0  # partial texts shown while speech went on
    transcript_latency: list[float] = field(default_factory=list)  # end of speech -> text, s
    action_latency: list[float] = field(default_factory=list)  # end of speech -> results, s
    dropped_seconds: float = 0.0
    max_queued_seconds: float = 0.0


class Listener:
    """Microphone -> utterances -> transcripts -> the graph, with dictation and wake phrase.

    The listener transcribes each utterance itself (with the graph's ``whisper`` node
    settings) so dictation sees every word, then sends the ``Transcript`` in at the graph's
    ``input``, as typed text is: the graph needs a route from ``input`` for transcripts.

    While someone speaks and nothing else is being transcribed, the words so far (the last
    ``PARTIAL_WINDOW_S`` of them, so a long utterance costs no more) are transcribed every
    ``partial_every`` seconds of new speech, greedy and untranslated, and reported as
    ``partial`` events ``(utterance start, transcript, whole)``; 0 turns that off.
    """

    PARTIAL_WINDOW_S = 10.0

    def __init__(
        self,
        graph: Any,
        capture: Capture,
        segmenter: Segmenter,
        model: Any,
        config: Any = None,
        wake: str | None = None,
        dictation: DictationWriter | None = None,
        on_event: Callable[[str, Any], None] | None = None,
        partial_every: float = PARTIAL_EVERY_S,
    ) -> None:
        self.graph, self.capture, self.segmenter, self.model = graph, capture, segmenter, model
        from voiceflow.builtins import WhisperNode

        self.config = config or WhisperNode.Config()
        self.wake, self.dictation = wake, dictation
        self.on_event = on_event or (lambda kind, data: None)
        self.talking = True  # push-to-talk turns this off between presses
        self.stats = ListenStats()
        self._queued: list[Utterance] = []
        self._busy = False
        # A transcription started on a tentative utterance: (start, samples, task)
        self._speculation: tuple[float, int, Any] | None = None
        self.partial_every = partial_every
        self._partial: Any = None  # the partial transcription in flight
        self._partial_mark = (-1.0, 0.0)  # (utterance start, seconds heard) at the last one
        self._last_final = -1.0  # start of the last utterance known to be complete

    def set_talking(self, talking: bool) -> None:
        self.talking = talking

    async def run(self, stop: Any = None) -> ListenStats:
        """Listen until ``stop`` (an asyncio.Event) is set or the input stream ends."""
        import asyncio

        from voiceflow.runtime import GraphRunner

        stop = stop or asyncio.Event()
        utterances: asyncio.Queue[Utterance | None] = asyncio.Queue()
        async with GraphRunner(self.graph, lambda r: self.on_event("result", r)) as runner:
            if not self.capture.started:
                self.capture.start()
            self.on_event("state", "listening")
            try:
                worker = asyncio.create_task(self._work(utterances, runner))
                await self._read(utterances, stop)
                await utterances.put(None)
                await worker
                if self._partial is not None:
                    await asyncio.wait([self._partial])
            finally:
                self.capture.stop()
        self.stats.dropped_seconds = self.capture.dropped_seconds
        return self.stats

    def _pump(self) -> list[Utterance]:
        """Read what the microphone delivered for up to 0.1 s and segment it (a thread)."""
        out: list[Utterance] = []
        block = self.capture.read(timeout=0.1)
        while block is not None:
            out.extend(self._segment(block))
            block = self.capture.read(timeout=0) if self.capture.blocks.qsize() else None
        return out

    def _segment(self, block: np.ndarray) -> list[Utterance]:
        # Released push-to-talk: what is heard is ignored, and a released key ends speech.
        return self.segmenter.feed(block) if self.talking else self.segmenter.flush()

    async def _read(self, utterances: Any, stop: Any) -> None:
        import asyncio

        hearing = False
        while not stop.is_set() and not self.capture.ended:
            for u in await asyncio.to_thread(self._pump):
                if u.final:
                    await self._enqueue(utterances, u)
                else:
                    self._speculate(u)
            self._start_partial()
            if self.segmenter.in_speech != hearing:
                hearing = self.segmenter.in_speech
                self.on_event("state", "hearing speech" if hearing else "listening")
        for _ in range(self.capture.blocks.qsize()):  # what was captured before the stop
            block = self.capture.read(timeout=0)
            for u in self._segment(block) if block is not None else ():
                if u.final:
                    await self._enqueue(utterances, u)
        for u in self.segmenter.flush():
            await self._enqueue(utterances, u)

    def _speculate(self, u: Utterance) -> None:
        """Start transcribing a tentative utterance while the worker is idle: if speech
        does not resume, the final utterance holds the same samples and takes the result."""
        import asyncio

        from voiceflow.builtins import recognise_speech

        if self._busy or self._queued:
            return
        task = asyncio.ensure_future(
            asyncio.to_thread(recognise_speech, self.model, u.samples, self.config)
        )
        self._speculation = (u.start, len(u.samples), task)

    def _start_partial(self) -> None:
        """Transcribe the speech so far when enough is new and nothing else needs the model."""
        import asyncio

        if not self.partial_every or self._busy or self._queued or not self.segmenter.speaking:
            return
        running = [self._partial, self._speculation[2] if self._speculation else None]
        if any(task is not None and not task.done() for task in running):
            return
        u = self.segmenter.current()
        assert u is not None
        heard = len(u.samples) / SAMPLE_RATE
        mark_start, mark_heard = self._partial_mark
        if heard - (mark_heard if mark_start == u.start else 0.0) < self.partial_every:
            return
        self._partial_mark = (u.start, heard)
        tail = u.samples[-int(self.PARTIAL_WINDOW_S * SAMPLE_RATE) :]
        self._partial = asyncio.ensure_future(
            asyncio.to_thread(recognise_partial, self.model, tail, self.config)
        )
        whole = len(tail) == len(u.samples)
        self._partial.add_done_callback(lambda task: self._show_partial(u.start, whole, task))

    def _show_partial(self, start: float, whole: bool, task: Any) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:  # the final transcription will meet it too
            log.debug("partial transcription failed", exc_info=task.exception())
            return
        if start <= self._last_final:
            return  # the final transcript of that utterance is already out
        self.stats.partials += 1
        self.on_event("partial", (start, task.result(), whole))

    async def _enqueue(self, utterances: Any, u: Utterance) -> None:
        self._last_final = u.start
        self._queued.append(u)
        queued = sum(len(x.samples) for x in self._queued) / SAMPLE_RATE
        self.stats.max_queued_seconds = max(self.stats.max_queued_seconds, queued)
        if len(self._queued) > 1:
            self.on_event("behind", queued)  # transcription is slower than speech, for now
        await utterances.put(u)

    async def _work(self, utterances: Any, runner: Any) -> None:
        import asyncio
        from dataclasses import replace

        from voiceflow.builtins import recognise_speech

        while (u := await utterances.get()) is not None:
            self.on_event("state", "transcribing")
            self._busy = True
            spec, self._speculation = self._speculation, None
            if spec is not None and spec[:2] == (u.start, len(u.samples)):
                t = await spec[2]  # started when the silence began: the same samples
            else:
                if spec is not None:  # speech resumed after it started: let it finish first
                    await asyncio.wait([spec[2]])
                t = await asyncio.to_thread(recognise_speech, self.model, u.samples, self.config)
            self._queued = [x for x in self._queued if x is not u]  # arrays: no ==
            self.stats.utterances += 1
            self.stats.transcript_latency.append(time.monotonic() - u.speech_ended_at)
            t = _on_timeline(t, u.start)
            self.on_event("transcript", (u, t))
            if self.dictation is not None:
                self.dictation.write(t, u.start, u.end)
            command: Transcript | None = t
            if self.wake:
                stripped = strip_wake_phrase(t.text, self.wake)
                command = replace(t, text=stripped) if stripped else None
            if command is not None and command.text:
                await runner.run([command])
                self.stats.action_latency.append(time.monotonic() - u.speech_ended_at)
            self._busy = False
            self.on_event("state", "listening")


def recognise_partial(model: SpeechModel, samples: np.ndarray, c: WhisperNode.Config) -> Transcript:
    """A quick look at an utterance in progress: greedy, no translation, no word times,
    and no temperature fallback (a final transcript may be waiting behind it)."""
    from voiceflow.builtins import recognise_speech

    quick = c.model_copy(update={"beam_size": 1, "translate": "never", "word_timestamps": False})
    return recognise_speech(model, samples, quick, temperature=0.0)


def _on_timeline(t: Transcript, offset: float) -> Transcript:
    """Segment times relative to when listening began, as one recording would have them."""
    from dataclasses import replace

    def move(segments: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(replace(s, start=s.start + offset, end=s.end + offset) for s in segments)

    return replace(
        t,
        source="microphone",
        segments=move(t.segments),
        translation_segments=move(t.translation_segments),
    )


def speech_settings(graph: Any) -> tuple[dict[str, Any], Any]:
    """The graph's whisper node settings: (SpeechModel arguments, the node's config).

    Utterances are already cut by the segmenter, so the model runs without its own VAD.
    """
    from voiceflow.builtins import WhisperNode

    spec = next((s for s in graph.nodes.values() if s.type == WhisperNode.type_name), None)
    c = spec.config if spec is not None else WhisperNode.Config()
    assert isinstance(c, WhisperNode.Config)
    model = {
        "model": c.model,
        "engine": c.engine,
        "device": c.device,
        "compute_type": c.compute_type,
        "threads": c.threads,
        "vad": False,
    }
    return model, c


def check_accepts_text(graph: Any) -> None:
    from voiceflow.graph import INPUT, OUTPUT

    for route in graph.successors(INPUT):
        if route.target == OUTPUT or issubclass(
            Transcript, graph.registry.nodes[graph.nodes[route.target].type].accepts
        ):
            return
    raise VoiceflowError(
        f"{graph.path}: live speech enters as transcripts, but no route from input takes "
        "one; add e.g. {from: input, to: intent}"
    )
