"""The listener: microphone -> utterances -> transcripts -> the graph.

Three things run at once. Capture (PortAudio's thread) fills a queue; a reader task
segments it into utterances in a worker thread; and one scheduler, on the event loop,
decides what the speech model does next. The model does one job at a time, of four kinds:

- ``final``: transcribe a finished utterance (the first waiting one);
- ``speculative``: transcribe a tentative utterance while its closing silence is still
  being heard; if the utterance ends there, the result is the final one;
- ``english``: the English of a transcript, for a graph that wants it;
- ``partial``: a quick look at speech still going on, shown and never acted on.

Every change of state happens in ``Listener._handle``, one input at a time, so the rules
are in one place: finals come first, then speculation (as soon as the model is free, while
the pause lasts), then English; partials use only an idle model.
Transcripts go on to dictation, the wake phrase and the graph in order, in their own task,
so the model can transcribe the next utterance while the graph acts on the last one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from voiceflow.builtins import WhisperNode
from voiceflow.errors import VoiceflowError
from voiceflow.graph import INPUT, OUTPUT, Graph
from voiceflow.live.capture import Capture
from voiceflow.live.dictation import DictationWriter
from voiceflow.live.segmenter import Segmenter, Utterance
from voiceflow.messages import Transcript
from voiceflow.runtime import GraphRunner, Result
from voiceflow.speech.audio import SAMPLE_RATE
from voiceflow.text import normalize

_NO_SAMPLES = np.zeros(0, dtype=np.float32)

log = logging.getLogger(__name__)

PARTIAL_EVERY_S = 1.0  # seconds of new speech between partial texts
PARTIAL_WINDOW_S = 10.0  # a partial looks at most at this much of the latest speech


# -- what the listener reports ---------------------------------------------------------------
@dataclass(frozen=True)
class StateChanged:
    state: Literal["listening", "hearing speech", "transcribing"]


@dataclass(frozen=True)
class PartialText:
    start: float  # the utterance's start
    transcript: Transcript
    whole: bool  # False: only the last PARTIAL_WINDOW_S of the utterance


@dataclass(frozen=True)
class Heard:
    utterance: Utterance
    transcript: Transcript  # times on the session's timeline


@dataclass(frozen=True)
class Acted:
    result: Result  # a message the graph sent to its output


@dataclass(frozen=True)
class Behind:
    queued_seconds: float  # speech waiting to be transcribed


@dataclass(frozen=True)
class Problem:
    message: str  # something failed; listening goes on


@dataclass(frozen=True)
class Overflowed:
    count: int  # input overflows PortAudio reported so far


ListenEvent = StateChanged | PartialText | Heard | Acted | Behind | Problem | Overflowed


# -- what the scheduler reacts to ------------------------------------------------------------
@dataclass(frozen=True)
class _Tentative:
    utterance: Utterance


@dataclass(frozen=True)
class _Final:
    utterance: Utterance


@dataclass(frozen=True)
class _Tick:
    """After each read of the microphone: whether someone is speaking, and (when a partial
    could be wanted) what was heard so far of the utterance in progress."""

    in_speech: bool
    speaking: bool  # the last frame was speech: no pause has begun
    current: Utterance | None


@dataclass(frozen=True)
class _Done:
    future: asyncio.Future[Transcript]


@dataclass(frozen=True)
class _Ended:
    """The input ended or listening was stopped; nothing more will be read."""


_Input = _Tentative | _Final | _Tick | _Done | _Ended


JobKind = Literal["final", "english", "speculative", "partial"]


@dataclass(frozen=True)
class _Job:
    kind: JobKind
    utterance: Utterance
    future: asyncio.Future[Transcript]
    whole: bool = True  # a partial of the whole utterance, not just its latest seconds


@dataclass
class _Delivery:
    """A transcript on its way to dictation and the graph; ``english`` is set while its
    translation is still to come."""

    utterance: Utterance
    transcript: Transcript  # as transcribed, on the utterance's own clock
    english: asyncio.Future[Transcript] | None = None


@dataclass
class ListenStats:
    utterances: int = 0
    partials: int = 0  # partial texts shown while speech went on
    failed: int = 0  # utterances whose transcription raised (reported, skipped)
    transcript_latency: list[float] = field(default_factory=list)  # end of speech -> text, s
    action_latency: list[float] = field(default_factory=list)  # end of speech -> results, s
    dropped_seconds: float = 0.0
    overflows: int = 0
    max_queued_seconds: float = 0.0


class Listener:
    """Listen until stopped, sending each transcript into the graph at ``input``.

    The listener transcribes with the graph's ``whisper`` node (its model, loaded once, and
    its settings) so dictation sees every word, then sends the ``Transcript`` in as typed
    text is: the graph needs a route from ``input`` for transcripts. ``wake`` gates what
    reaches the graph, never dictation. ``english=True`` translates all foreign speech
    (for archiving the session); otherwise the graph's nodes decide (``wants_english``).
    """

    def __init__(
        self,
        graph: Graph,
        capture: Capture,
        segmenter: Segmenter,
        on_event: Callable[[ListenEvent], None] | None = None,
        *,
        wake: str | None = None,
        dictation: DictationWriter | None = None,
        partial_every: float = PARTIAL_EVERY_S,
        english: bool = False,
    ) -> None:
        self.graph, self.capture, self.segmenter = graph, capture, segmenter
        self.on_event = on_event or (lambda event: None)
        self.wake, self.dictation = wake, dictation
        self.partial_every, self.english = partial_every, english
        self.talking = True  # push-to-talk turns this off between presses
        self.stats = ListenStats()
        self.speech: WhisperNode | None = None
        # the scheduler's state
        self._job: _Job | None = None  # what the model is doing
        self._waiting: deque[Utterance] = deque()  # finished utterances not yet transcribed
        self._untranslated: deque[_Delivery] = deque()  # transcribed, English still to make
        # Speech paused long enough that it may have ended: transcribed as soon as the model
        # is free (a partial may be running), so the final transcript is often ready by the
        # time the pause is long enough to be the end.
        self._paused: Utterance | None = None
        self._ready: tuple[Utterance, Transcript] | None = None  # a speculation that finished
        self._partial_mark = (-1.0, 0.0)  # (utterance start, seconds heard) at the last partial
        self._last_final = -1.0  # start of the last utterance known to be complete
        self._state = ""
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        self._deliveries: asyncio.Queue[_Delivery | None] = asyncio.Queue()
        # transcripts on their way into the graph: a slow graph never holds back dictation
        self._actions: asyncio.Queue[tuple[Utterance, Transcript] | None] = asyncio.Queue()
        # what reached dictation and the graph, in order, without the audio: an hour of
        # listening would otherwise hold every utterance's samples (~0.5 MB each)
        self.delivered: list[Heard] = []
        self._needs_english: Callable[[Transcript], bool] = lambda t: english

    def set_talking(self, talking: bool) -> None:
        self.talking = talking

    async def run(self, stop: asyncio.Event | None = None) -> ListenStats:
        """Listen until ``stop`` is set or the input stream ends; returns the statistics."""
        stop = stop or asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        async with GraphRunner(self.graph, lambda r: self.on_event(Acted(r))) as runner:
            try:
                # One utterance at a time: one decoder with every thread transcribes one
                # 30-45 % sooner than two with a thread each (docs/benchmarks.md).
                self.speech = await runner.speech_node(workers=1)
                # The nodes every utterance reaches next load now, not during the first
                # words (the intent embedder's imports would starve transcription).
                routed = {r.target for r in runner.graph.successors(self.speech.name)}
                if after := sorted(routed & set(runner.nodes)):
                    await runner.warm(*after)
                if not self.english:
                    self._needs_english = runner.english_after(INPUT)
                if not self.capture.started:
                    self.capture.start()
                deliverer = asyncio.create_task(self._deliver())
                actor = asyncio.create_task(self._act(runner))
                tasks = [asyncio.create_task(self._read(stop)), deliverer, actor]
                self._set_state("listening")
                ended = False
                while not (
                    ended and self._job is None and not self._waiting and not self._untranslated
                ):
                    item = await self._inbox.get()
                    ended = ended or isinstance(item, _Ended)
                    self._handle(item)
                await self._deliveries.put(None)
                await deliverer
                await self._actions.put(None)
                await actor
            finally:
                self.capture.stop()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        self.stats.dropped_seconds = self.capture.dropped_seconds
        self.stats.overflows = self.capture.overflows
        return self.stats

    # -- reading the microphone (a task; segmentation in a worker thread) ----------------------
    async def _read(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set() and not self.capture.ended:
                for item in await asyncio.to_thread(self._pump, 0.1):
                    self._inbox.put_nowait(item)
            # what was captured before the stop, then the utterance in progress
            for item in await asyncio.to_thread(self._pump, 0):
                if not isinstance(item, _Tentative):
                    self._inbox.put_nowait(item)
            for u in self.segmenter.flush():
                self._inbox.put_nowait(_Final(u))
        finally:
            self._inbox.put_nowait(_Ended())

    def _pump(self, timeout: float) -> list[_Input]:
        """Segment what the microphone delivered (waiting up to ``timeout`` for it)."""
        out: list[_Input] = []
        block = self.capture.read(timeout=timeout)
        while block is not None:
            # Released push-to-talk: what is heard is ignored, and releasing ends speech.
            found = self.segmenter.feed(block) if self.talking else self.segmenter.flush()
            out += [_Final(u) if u.final else _Tentative(u) for u in found]
            block = self.capture.read(timeout=0)
        want_partial = self.partial_every > 0 and self.segmenter.speaking
        out.append(
            _Tick(
                self.segmenter.in_speech,
                self.segmenter.speaking,
                self.segmenter.current() if want_partial else None,
            )
        )
        return out

    # -- the scheduler ----------------------------------------------------------------------
    def _handle(self, item: _Input) -> None:
        if isinstance(item, _Tentative):
            self._paused = item.utterance
        elif isinstance(item, _Final):
            self._on_final(item.utterance)
        elif isinstance(item, _Tick):
            self._on_tick(item)
        elif isinstance(item, _Done):
            self._on_done(item.future)
        self._next()

    def _on_final(self, u: Utterance) -> None:
        self._last_final = u.start
        self._paused = None
        ready, self._ready = self._ready, None
        job = self._job
        if job is not None and job.kind == "speculative" and job.utterance.same_audio(u):
            self._job = _Job("final", u, job.future)  # its result is this utterance's
        elif ready is not None and ready[0].same_audio(u):
            self._finish(u, ready[1])
        else:
            self._waiting.append(u)
            busy = [job.utterance] if job is not None and job.kind == "final" else []
            queued = sum(len(x.samples) for x in [*busy, *self._waiting]) / SAMPLE_RATE
            self.stats.max_queued_seconds = max(self.stats.max_queued_seconds, queued)
            if len(busy) + len(self._waiting) > 1:
                self.on_event(Behind(queued))  # transcription is slower than speech, for now

    def _on_tick(self, tick: _Tick) -> None:
        if self.capture.overflows > self.stats.overflows:
            self.stats.overflows = self.capture.overflows
            self.on_event(Overflowed(self.capture.overflows))
        if self._job is None or self._job.kind != "final":
            self._set_state("hearing speech" if tick.in_speech else "listening")
        if tick.speaking:
            self._paused = None  # speech went on: that pause was not its end
        u = tick.current
        if u is None or self._job is not None or self._waiting or self._untranslated:
            return
        heard = len(u.samples) / SAMPLE_RATE
        mark_start, mark_heard = self._partial_mark
        if heard - (mark_heard if mark_start == u.start else 0.0) >= self.partial_every:
            self._partial_mark = (u.start, heard)
            tail = u.samples[-int(PARTIAL_WINDOW_S * SAMPLE_RATE) :]
            self._start("partial", replace(u, samples=tail), whole=len(tail) == len(u.samples))

    def _on_done(self, future: asyncio.Future[Transcript]) -> None:
        job, self._job = self._job, None
        assert job is not None and job.future is future
        error = future.exception()
        if job.kind == "final":
            if error is None:
                self._finish(job.utterance, future.result())
            else:
                self.stats.failed += 1
                log.debug("transcription failed", exc_info=error)
                self.on_event(
                    Problem(
                        f"the utterance at {job.utterance.start:.1f} s could not be transcribed "
                        f"({type(error).__name__}: {error}); listening goes on"
                    )
                )
        elif job.kind == "english":
            delivery = self._untranslated.popleft()
            assert delivery.english is not None
            if error is not None:
                self.on_event(Problem(f"no English for the utterance ({error}); sent as heard"))
                delivery.english.set_result(delivery.transcript)
            else:
                delivery.english.set_result(future.result())
        elif error is not None:  # a speculation's final will meet the error itself
            log.debug("%s transcription failed", job.kind, exc_info=error)
        elif job.kind == "speculative":
            self._ready = (job.utterance, future.result())
        elif job.utterance.start > self._last_final:  # its final transcript is not out yet
            self.stats.partials += 1
            self.on_event(PartialText(job.utterance.start, future.result(), job.whole))

    def _next(self) -> None:
        if self._job is not None:
            return
        if self._waiting:
            self._start("final", self._waiting.popleft())
        elif self._paused is not None:
            self._start("speculative", self._paused)
            self._paused = None
        elif self._untranslated:
            assert self.speech is not None
            d = self._untranslated[0]
            self._run(
                "english", d.utterance, self.speech.translate, d.utterance.samples, d.transcript
            )

    def _start(self, kind: JobKind, u: Utterance, whole: bool = True) -> None:
        assert self.speech is not None
        if kind == "final":
            self._set_state("transcribing")
        # the English comes later, as its own job, once the transcript is out
        quick = kind == "partial"
        self._run(kind, u, self.speech.recognise, u.samples, quick=quick, vad=False, whole=whole)

    def _run(
        self, kind: JobKind, u: Utterance, fn: Any, *args: Any, whole: bool = True, **kw: Any
    ) -> None:
        assert self._job is None
        future = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kw))
        future.add_done_callback(lambda f: self._inbox.put_nowait(_Done(f)))
        self._job = _Job(kind, u, future, whole)

    def _finish(self, u: Utterance, t: Transcript) -> None:
        self.stats.utterances += 1
        self.stats.transcript_latency.append(time.monotonic() - u.speech_ended_at)
        self.on_event(Heard(u, _on_timeline(t, u.start)))
        delivery = _Delivery(u, t)
        if t.language not in ("", "en") and t.translation is None and self._needs_english(t):
            delivery.english = asyncio.get_running_loop().create_future()
            self._untranslated.append(delivery)
        self._deliveries.put_nowait(delivery)
        self._set_state("listening")

    def _set_state(self, state: Literal["listening", "hearing speech", "transcribing"]) -> None:
        if state != self._state:
            self._state = state
            self.on_event(StateChanged(state))

    # -- what happens with a transcript (a task, in order) ------------------------------------
    async def _deliver(self) -> None:
        """Dictation first, as each transcript is ready; then on to the graph (``_act``)."""
        while (delivery := await self._deliveries.get()) is not None:
            u, t = delivery.utterance, delivery.transcript
            try:
                if delivery.english is not None:
                    t = await delivery.english
                t = _on_timeline(t, u.start)
                self.delivered.append(Heard(replace(u, samples=_NO_SAMPLES), t))
                if self.dictation is not None:
                    self.dictation.write(t, u.start, u.end)
                self._actions.put_nowait((u, t))
            except Exception as e:  # a full disk: say so and keep listening
                log.debug("delivery failed", exc_info=True)
                self.on_event(Problem(f"{type(e).__name__}: {e}"))

    async def _act(self, runner: GraphRunner) -> None:
        while (action := await self._actions.get()) is not None:
            u, t = action
            try:
                command: Transcript | None = t
                if self.wake:
                    stripped = strip_wake_phrase(t.text, self.wake)
                    command = replace(t, text=stripped) if stripped else None
                if command is not None and command.text:
                    await runner.run([command])
                    self.stats.action_latency.append(time.monotonic() - u.speech_ended_at)
            except Exception as e:  # a full disk, a graph bug: say so and keep listening
                log.debug("delivery failed", exc_info=True)
                self.on_event(Problem(f"{type(e).__name__}: {e}"))


def strip_wake_phrase(text: str, phrase: str, similarity: float = 0.8) -> str | None:
    """The command after the wake phrase, or None when the text does not start with it.

    Matching ignores case, punctuation and spaces ("Hey, Voice Flow!") and tolerates a
    letter or two misheard, since Whisper spells invented names freely.
    """
    from difflib import SequenceMatcher

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


def _on_timeline(t: Transcript, offset: float) -> Transcript:
    """Segment times relative to when listening began, as one recording would have them."""

    def move(segments: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(replace(s, start=s.start + offset, end=s.end + offset) for s in segments)

    return replace(
        t,
        source="microphone",
        segments=move(t.segments),
        translation_segments=move(t.translation_segments),
    )


def check_accepts_text(graph: Graph) -> None:
    for route in graph.successors(INPUT):
        if route.target == OUTPUT or issubclass(
            Transcript, graph.registry.nodes[graph.nodes[route.target].type].accepts
        ):
            return
    raise VoiceflowError(
        f"{graph.path}: live speech enters as transcripts, but no route from input takes "
        "one; add e.g. {from: input, to: intent}"
    )


def session_transcript(heard: list[Heard], source: str, offset: float = 0.0) -> Transcript:
    """One Transcript of a whole listening session (for the archive), times moved by
    ``offset`` (where the session starts in its dictation file)."""
    segments: list[Any] = []
    english: list[Any] = []
    for h in heard:
        t = h.transcript
        segments += [
            replace(s, id=len(segments) + i, start=s.start + offset, end=s.end + offset)
            for i, s in enumerate(t.segments)
        ]
        english += [
            replace(s, id=len(english) + i, start=s.start + offset, end=s.end + offset)
            for i, s in enumerate(t.translation_segments)
        ]
    first = heard[0].transcript
    translated = [h.transcript.english for h in heard]
    foreign = any(h.transcript.translation is not None for h in heard)
    return Transcript(
        " ".join(h.transcript.text for h in heard),
        first.language,
        first.language_probability,
        heard[-1].utterance.end + offset,
        segments=tuple(segments),
        source=source,
        translation=" ".join(translated) if foreign else None,
        translation_segments=tuple(english),
    )
