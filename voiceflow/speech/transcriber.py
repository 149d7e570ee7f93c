"""The speech model: audio in, a typed ``Transcript`` out, for any engine.

Pipeline: decode -> voice activity -> chunks of at most one Whisper window, cut at pauses ->
language per chunk (so a recording that switches language is tagged per segment) ->
decode each chunk -> filter hallucinations -> one Transcript.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from voiceflow.errors import VoiceflowError
from voiceflow.messages import Segment, Transcript, Word
from voiceflow.speech.audio import SAMPLE_RATE, ChannelSpec, level_speech, load_audio
from voiceflow.speech.engines import DecodeOptions, SpeechEngine, create_engine
from voiceflow.speech.models import resolve_model
from voiceflow.speech.subtitles import spread
from voiceflow.speech.vad import SileroVad, VadOptions
from voiceflow.speech.vad import preload as preload_vad
from voiceflow.threads import finishing, wait_at_exit

log = logging.getLogger(__name__)

WINDOW_S = 30.0
T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Chunk:
    start: int  # samples
    end: int
    regions: tuple[tuple[int, int], ...]


def make_chunks(
    regions: Iterable[tuple[int, int]], max_len_s: float = WINDOW_S, max_gap_s: float = 2.0
) -> Iterator[Chunk]:
    """Group speech regions into chunks that fit one window, breaking at long pauses; each
    chunk comes out as soon as the region after it (or the end) closes it.

    Long pauses are where a speaker or a language changes and where Whisper invents text,
    so they never sit inside a chunk.
    """
    max_len, max_gap = int(max_len_s * SAMPLE_RATE), int(max_gap_s * SAMPLE_RATE)
    group: list[tuple[int, int]] = []
    for start, end in regions:
        if group and (start - group[-1][1] > max_gap or end - group[0][0] > max_len):
            yield Chunk(group[0][0], group[-1][1], tuple(group))
            group = []
        group.append((start, end))
    if group:
        yield Chunk(group[0][0], group[-1][1], tuple(group))


def _in_background(items: Iterator[T]) -> Iterator[T]:
    """``items``, computed ahead by a thread of their own (started now) while the caller
    works on the ones it has; the thread stops early when the caller stops taking them."""
    found: queue.Queue[tuple[bool, Any]] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                found.put((True, item))
            else:
                found.put((False, None))
        except BaseException as e:  # the caller raises it
            found.put((False, e))
        finishing()

    def take() -> Iterator[T]:
        try:
            while True:
                more, item = found.get()
                if not more:
                    if item is not None:
                        raise item
                    return
                yield item
        finally:
            stop.set()
            wait_at_exit(thread)  # it stops at its next item: killed at exit, it could abort

    thread = threading.Thread(target=run, name="voice-activity", daemon=True)
    thread.start()
    return take()


def ordered_map(fn: Callable[[T], U], items: Iterator[T], at_once: int) -> Iterator[U]:
    """``map(fn, items)`` with up to ``at_once`` calls running on threads. Unlike
    ``Executor.map``, which takes every item before it runs one, it takes an item when a
    thread is free for it: the first chunk decodes while voice activity finds the next.
    A caller that stops early (an error, Ctrl-C) is not held until the calls under way end."""
    if at_once < 2:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(at_once)
    running: deque[Future[U]] = deque()
    try:
        for item in items:
            running.append(pool.submit(fn, item))
            if len(running) >= at_once:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def pick_language(probs: dict[str, float], allowed: Sequence[str] | None) -> tuple[str, float]:
    """Most probable language, restricted to ``allowed``; probability renormalised over it."""
    if allowed:
        sub = {k: probs.get(k, 0.0) for k in allowed}
        total = sum(sub.values()) or 1.0
        lang = max(sub, key=lambda k: sub[k])
        return lang, sub[lang] / total
    lang = max(probs, key=lambda k: probs[k])
    return lang, probs[lang]


class SpeechModel:
    """A Whisper model behind one interface; ``voiceflow.load_model`` returns one."""

    def __init__(
        self,
        model: str = "base",
        engine: str = "auto",
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        vad: VadOptions | bool | None = True,
        level: bool = True,
        workers: int = 0,
    ) -> None:
        self.source = resolve_model(model)
        self.vad = SileroVad(vad if isinstance(vad, VadOptions) else None) if vad else None
        if self.vad is not None:
            preload_vad()  # while Whisper loads
        self.engine: SpeechEngine = create_engine(
            self.source, engine, device, compute_type, threads, workers
        )
        self.level = level  # automatic gain before VAD and decoding
        # Transcriptions at once: as many as the engine decodes at once (its workers share
        # the weights and pass the encoder one at a time); openai-whisper's torch model: one.
        self._turns = threading.Semaphore(self.engine.parallel)

    _shared: ClassVar[dict[tuple[Any, ...], SpeechModel]] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def shared(
        cls,
        model: str = "base",
        engine: str = "auto",
        device: str = "auto",
        compute_type: str = "auto",
        threads: int = 0,
        workers: int = 0,
    ) -> SpeechModel:
        """One model per set of settings in this process: every node, listener and request
        that asks for the same model gets the same weights in memory."""
        key = (model, engine, device, compute_type, threads, workers)
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(
                    model, engine, device, compute_type, threads, workers=workers
                )
            return cls._shared[key]

    def transcribe(
        self,
        audio: str | Path | np.ndarray,
        *,
        task: str = "transcribe",
        language: str | None = None,
        languages: Sequence[str] | None = None,
        translate: bool = False,
        channel: ChannelSpec = None,
        beam_size: int = 5,
        temperature: float | Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        word_timestamps: bool = False,
        no_speech_threshold: float | None = 0.6,
        log_prob_threshold: float | None = -1.0,
        compression_ratio_threshold: float | None = 2.4,
        condition_on_previous_text: bool = False,
        min_window_s: float = DecodeOptions.min_window_s,
        language_recheck_below: float = 0.8,
        progress: bool = False,
        vad: bool = True,
        on_segment: Callable[[Segment], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Transcript:
        """Transcribe a file path or 16 kHz mono float32 samples.

        ``languages`` restricts language identification to a set (short utterances make it
        unreliable); ``translate`` also fills ``Transcript.translation`` with English for
        speech that is not English; ``vad=False`` skips voice activity detection for audio
        that is already one stretch of speech; ``min_window_s``: the shortest encoder input
        for a short clip (faster-whisper; less is faster and less accurate); ``on_segment``
        is called with each segment as soon as it is decoded (streaming); once ``cancel`` is
        set, the transcription ends at the next chunk with a ``VoiceflowError``.
        """
        if task not in ("transcribe", "translate"):
            raise VoiceflowError(f"unknown task {task!r}: use transcribe or translate")
        source = str(audio) if isinstance(audio, (str, Path)) else ""
        if isinstance(audio, (str, Path)):
            samples = load_audio(audio, channel)
            owned = True  # a fresh array: levelling may work in place
        else:
            samples = _as_samples(audio)
            owned = samples is not audio
        duration = len(samples) / SAMPLE_RATE
        if language and not self.engine.multilingual and language != "en":
            raise VoiceflowError(
                f"model {self.source.name!r} is English-only; cannot force {language!r}"
            )
        temps = (temperature,) if isinstance(temperature, (int, float)) else tuple(temperature)
        options = DecodeOptions(
            task=task,
            beam_size=beam_size,
            temperature=temps,
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            word_timestamps=word_timestamps,
            no_speech_threshold=no_speech_threshold,
            log_prob_threshold=log_prob_threshold,
            compression_ratio_threshold=compression_ratio_threshold,
            condition_on_previous_text=condition_on_previous_text,
            min_window_s=min_window_s,
        )
        if self.level:
            samples = level_speech(samples, out=samples if owned else None)
        chunks: Iterator[Chunk]
        if self.vad is not None and vad:
            # Voice activity runs ahead in a thread (no lock: it needs no model) while the
            # model decodes the chunks already found; decoding leaves part of a core idle.
            chunks = _in_background(make_chunks(self.vad.regions(samples)))
        else:
            chunks = iter([Chunk(0, len(samples), ((0, len(samples)),))] if len(samples) else [])

        with self._turns:
            labelled, segments = self._recognise(
                samples,
                chunks,
                language,
                languages,
                language_recheck_below,
                options,
                progress,
                source,
                on_segment,
                cancel,
            )
            translation: str | None = None
            english: list[Segment] = []
            if translate and task == "transcribe" and any(lang != "en" for _, lang, _ in labelled):
                foreign = [item for item in labelled if item[1] != "en"]
                english = self._translate(
                    samples,
                    foreign,
                    replace(options, task="translate", word_timestamps=False),
                    segments,
                )
                translation = _join(_merge_translation(segments, english))
        transcript = _assemble(segments, labelled, duration, task, source, translation)
        return replace(transcript, translation_segments=tuple(english))

    def add_translation(self, audio: np.ndarray, t: Transcript, beam_size: int = 5) -> Transcript:
        """The English for a non-English transcript: Whisper's translate task, in its language."""
        if t.language in ("", "en") or not t.text:
            return t
        english = self.transcribe(audio, task="translate", language=t.language, beam_size=beam_size)
        return replace(t, translation=english.text, translation_segments=english.segments)

    def _recognise(
        self,
        samples: np.ndarray,
        chunks: Iterator[Chunk],
        forced: str | None,
        allowed: Sequence[str] | None,
        recheck_below: float,
        options: DecodeOptions,
        progress: bool,
        source: str,
        on_segment: Callable[[Segment], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[list[tuple[Chunk, str, float]], list[Segment]]:
        """Identify each chunk's language and decode it; returns the labels and segments."""
        from tqdm import tqdm

        total = len(samples) / SAMPLE_RATE
        bar = tqdm(
            total=round(total, 1),
            unit="s",
            disable=not progress or total < 1,
            desc=Path(source).name or "audio",
            leave=False,
        )
        labelled: list[tuple[Chunk, str, float]] = []
        segments: list[Segment] = []

        def decode(chunk: Chunk) -> tuple[Chunk, list[tuple[Chunk, str, float, list[Segment]]]]:
            if cancel is not None and cancel.is_set():
                raise VoiceflowError(f"{source or 'audio'}: transcription cancelled")
            return chunk, self._decode_chunk(
                samples, chunk, forced, allowed, recheck_below, options
            )

        # Chunks are decoded independently (no conditioning on earlier text), so they may
        # overlap in time; results are taken in order.
        with bar:
            for chunk, parts in ordered_map(decode, chunks, self.engine.parallel):
                for part, lang, prob, found in parts:
                    labelled.append((part, lang, prob))
                    kept = _keep(found, part, prob, options, len(segments))
                    segments.extend(kept)
                    if on_segment is not None:
                        for segment in kept:
                            on_segment(segment)
                bar.update(round(chunk.end / SAMPLE_RATE - bar.n, 1))  # the recording heard so far
            bar.update(bar.total - bar.n)
        return labelled, segments

    def _decode_chunk(
        self,
        samples: np.ndarray,
        chunk: Chunk,
        forced: str | None,
        allowed: Sequence[str] | None,
        recheck_below: float,
        options: DecodeOptions,
    ) -> list[tuple[Chunk, str, float, list[Segment]]]:
        audio = samples[chunk.start : chunk.end]
        if forced or not self.engine.multilingual:
            lang = forced or "en"
            return [(chunk, lang, 1.0, self.engine.decode(audio, lang, options).segments())]
        # Detection and decoding share one encoder pass where the engine allows it.
        decoding = self.engine.decode(audio, None, options)
        lang, prob = pick_language(decoding.language_probs, allowed)
        if prob < recheck_below and len(chunk.regions) > 1:
            # Unsure about a chunk of several regions: the language may change inside it.
            return [
                (
                    part,
                    part_lang,
                    part_prob,
                    self.engine.decode(
                        samples[part.start : part.end], part_lang, options
                    ).segments(),
                )
                for part, part_lang, part_prob in self._split_by_language(samples, chunk, allowed)
            ]
        if lang != decoding.language:  # the detected language is outside the allowed set
            decoding = self.engine.decode(audio, lang, options)
        return [(chunk, lang, prob, decoding.segments())]

    def _split_by_language(
        self, samples: np.ndarray, chunk: Chunk, allowed: Sequence[str] | None
    ) -> list[tuple[Chunk, str, float]]:
        runs: list[tuple[list[tuple[int, int]], str, list[float]]] = []
        for region in chunk.regions:
            lang, prob = pick_language(
                self.engine.language_probs(samples[region[0] : region[1]]), allowed
            )
            if runs and runs[-1][1] == lang:
                runs[-1][0].append(region)
                runs[-1][2].append(prob)
            else:
                runs.append(([region], lang, [prob]))
        return [
            (Chunk(r[0][0], r[-1][1], tuple(r)), lang, float(np.mean(p))) for r, lang, p in runs
        ]

    def _translate(
        self,
        samples: np.ndarray,
        labelled: list[tuple[Chunk, str, float]],
        options: DecodeOptions,
        spoken: list[Segment],
    ) -> list[Segment]:
        """English for each chunk, timed over the chunk's original speech (the times Whisper
        gives a translation are loose), so English subtitles line up with the speaker."""
        out: list[Segment] = []
        for chunk, lang, prob in labelled:
            found = self.engine.decode(samples[chunk.start : chunk.end], lang, options).segments()
            kept = _keep(found, chunk, prob, options, len(out))
            lo, hi = chunk.start / SAMPLE_RATE - 1e-3, chunk.end / SAMPLE_RATE + 1e-3
            spans = [(s.start, s.end) for s in spoken if s.start >= lo and s.end <= hi]
            if kept and spans:
                times = spread([len(e.text.strip()) + 1 for e in kept], spans)
                kept = [replace(e, start=a, end=b) for e, (a, b) in zip(kept, times, strict=True)]
            out.extend(kept)
        return out


def _keep(
    found: list[Segment], chunk: Chunk, prob: float, options: DecodeOptions, first_id: int
) -> list[Segment]:
    """Drop empty and hallucinated segments; move the rest to the recording's timeline."""
    kept = [s for s in found if s.text.strip() and not _is_hallucination(s, options)]
    offset, limit = chunk.start / SAMPLE_RATE, chunk.end / SAMPLE_RATE
    return [_shift(s, offset, first_id + i, prob, limit) for i, s in enumerate(kept)]


def _is_hallucination(s: Segment, o: DecodeOptions) -> bool:
    """Whisper's own rule, applied again per segment: likely silence and low confidence."""
    return (
        o.no_speech_threshold is not None
        and o.log_prob_threshold is not None
        and s.no_speech_prob > o.no_speech_threshold
        and s.avg_logprob < o.log_prob_threshold
    )


def _shift(s: Segment, offset: float, index: int, prob: float, limit: float) -> Segment:
    def t(x: float) -> float:
        return round(float(min(x + offset, limit)), 3)

    return replace(
        s,
        id=index,
        start=t(s.start),
        end=t(s.end),
        language_probability=round(prob, 4),
        words=tuple(Word(t(w.start), t(w.end), w.word, float(w.probability)) for w in s.words),
    )


def _merge_translation(original: list[Segment], english: list[Segment]) -> list[str]:
    """English text in time order: translated segments for foreign speech, originals for English."""
    parts = [(s.start, s.text) for s in original if s.language == "en"]
    parts += [(s.start, s.text) for s in english]
    return [text for _, text in sorted(parts)]


def _join(texts: list[str]) -> str:
    return " ".join(t.strip() for t in texts if t.strip())


def _assemble(
    segments: list[Segment],
    labelled: list[tuple[Chunk, str, float]],
    duration: float,
    task: str,
    source: str,
    translation: str | None,
) -> Transcript:
    if not labelled:
        return Transcript(
            text="",
            language="",
            language_probability=0.0,
            duration=duration,
            task=task,
            source=source,
        )
    # The recording's language is the one spoken longest; its probability, duration-weighted.
    weight: dict[str, float] = {}
    prob: dict[str, float] = {}
    for chunk, lang, p in labelled:
        n = chunk.end - chunk.start
        weight[lang] = weight.get(lang, 0.0) + n
        prob[lang] = prob.get(lang, 0.0) + p * n
    language = max(weight, key=lambda k: weight[k])
    return Transcript(
        text=_join([s.text for s in segments]),
        language=language,
        language_probability=round(prob[language] / weight[language], 4),
        duration=round(duration, 3),
        task=task,
        segments=tuple(segments),
        source=source,
        translation=translation,
    )


def _as_samples(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio)
    if a.dtype.kind == "u":  # unsigned PCM (8-bit WAV) is centred on half its range
        mid = (int(np.iinfo(a.dtype).max) + 1) // 2
        a = (a.astype(np.float64) - mid) / mid
    elif a.dtype.kind == "i":  # PCM integers: scale before any mixing turns them into floats
        a = a / float(-int(np.iinfo(a.dtype).min))
    if a.ndim == 2:  # (samples, channels) or (channels, samples): mix down
        a = a.mean(axis=0 if a.shape[0] < a.shape[1] else 1)
    if a.ndim != 1:
        raise VoiceflowError(f"audio array must be 1-D mono samples at 16 kHz, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def load_model(
    name: str = "base",
    engine: str = "auto",
    device: str = "auto",
    compute_type: str = "auto",
    threads: int = 0,
) -> SpeechModel:
    """Load a Whisper model: ``voiceflow.load_model("base").transcribe("talk.mp3")``."""
    return SpeechModel(name, engine, device, compute_type, threads)
