"""A Wyoming server: Home Assistant's speech-to-text protocol, and spoken commands acted on
through the graph.

Each connection gets a ``Connection`` that reads events itself, with caps (a header line,
an event's data, its payload, the audio of one request, a silent client), so a broken or
hostile client gets an ``error`` event and a clean close without touching the others. The
speech model loads once and is shared; transcription runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from wyoming.asr import Transcribe, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.asr import Transcript as WyomingTranscript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.handle import Handled, NotHandled
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    HandleModel,
    HandleProgram,
    Info,
)
from wyoming.ping import Ping, Pong

import voiceflow
from voiceflow import LANGUAGES, VoiceflowError
from voiceflow.messages import Answer, Command, Failure, ImageResult, Transcript

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024  # bytes in one header line
MAX_DATA = 1 << 20  # bytes of one event's JSON data
MAX_PAYLOAD = 4 << 20  # bytes of one event's payload (audio chunks are a few kB)
IDLE_S = 120.0  # a client that sends nothing for this long is closed
PROJECT = Attribution(name="voiceflow", url="https://github.com/voiceflow/voiceflow")
WHISPER = Attribution(name="OpenAI", url="https://github.com/openai/whisper")


class ProtocolError(Exception):
    """The client broke the protocol; the message says how. The connection is closed."""


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """One event, or None at a clean end of the stream; ``ProtocolError`` when the client
    sends something that is not an event, or more than the caps allow."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise ProtocolError("the connection closed in the middle of a header line") from None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"a header line longer than {MAX_LINE} bytes") from None
    try:
        header = json.loads(line)
    except ValueError:
        raise ProtocolError("a header line that is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("a header without an event type")
    lengths = {}
    for key, cap in (("data_length", MAX_DATA), ("payload_length", MAX_PAYLOAD)):
        n = header.get(key) or 0
        if not isinstance(n, int) or n < 0:
            raise ProtocolError(f"{key} must be a whole number of bytes, got {n!r}")
        if n > cap:
            raise ProtocolError(f"{key} {n} is over the cap of {cap} bytes")
        lengths[key] = n
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise ProtocolError("event data must be a JSON object")
    try:
        if lengths["data_length"]:
            extra = json.loads(await reader.readexactly(lengths["data_length"]))
            if not isinstance(extra, dict):
                raise ProtocolError("event data must be a JSON object")
            data.update(extra)
        payload = await reader.readexactly(lengths["payload_length"]) or None
    except asyncio.IncompleteReadError:
        raise ProtocolError("the connection closed in the middle of an event") from None
    except ValueError:
        raise ProtocolError("event data that is not JSON") from None
    return Event(type=header["type"], data=data, payload=payload)


@dataclass
class Request:
    """One transcription: what the client asked for and the audio so far."""

    language: str | None = None
    hotwords: str | None = None
    started: bool = False  # audio-start seen
    runs: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (rate, mono samples)
    seconds: float = 0.0

    def add(self, chunk: AudioChunk) -> None:
        samples = voiceflow.pcm_to_float(chunk.audio, chunk.width, chunk.channels)
        if self.runs and self.runs[-1][0] == chunk.rate:
            self.runs[-1] = (chunk.rate, np.concatenate([self.runs[-1][1], samples]))
        else:
            self.runs.append((chunk.rate, samples))
        self.seconds += len(samples) / chunk.rate

    def samples(self) -> np.ndarray:
        parts = [voiceflow.resample(s, rate) for rate, s in self.runs]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class Service:
    """What every connection shares: the graph (started once), its speech node, settings."""

    def __init__(
        self,
        graph: Any,
        language: str | None = None,
        max_seconds: float = 300.0,
        streaming: bool = True,
    ) -> None:
        self.graph, self.language = graph, language
        self.max_seconds, self.streaming = max_seconds, streaming
        self.runner = voiceflow.GraphRunner(graph)
        self.speech: Any = None
        self.handle_lock = asyncio.Lock()  # one graph run at a time: results stay apart

    async def start(self) -> None:
        await self.runner.start()
        # A voice assistant sends one command at a time: one decoder with every thread
        # answers it 30-45 % sooner than two with a thread each (docs/benchmarks.md).
        self.speech = await self.runner.speech_node(workers=1)
        self.needs_english = self.runner.english_after()

    async def stop(self) -> None:
        await self.runner.stop()

    def languages(self) -> list[str]:
        c = self.speech.config
        if c.language:
            return [c.language]
        if not self.speech.model.engine.multilingual:
            return ["en"]
        return list(c.languages or LANGUAGES)

    def has_actions(self) -> bool:
        """Whether typed or spoken text can reach a node that takes commands."""
        return any(Command in cls.accepts for cls in self._reachable())

    def _reachable(self) -> list[type[voiceflow.Node]]:
        seen, todo = set(), ["input"]
        while todo:
            for route in self.graph.successors(todo.pop()):
                if route.target in self.graph.nodes and route.target not in seen:
                    seen.add(route.target)
                    todo.append(route.target)
        return [self.graph.registry.nodes[self.graph.nodes[n].type] for n in seen]

    def info(self) -> Info:
        c = self.speech.config
        model = AsrModel(
            name=c.model,
            description=f"Whisper {c.model} ({self.speech.model.engine.name})",
            attribution=WHISPER,
            installed=True,
            languages=self.languages(),
            version=None,
        )
        asr = AsrProgram(
            name="voiceflow",
            description="voiceflow speech node: Whisper with voice activity detection",
            attribution=PROJECT,
            installed=True,
            version=voiceflow.__version__,
            models=[model],
            supports_transcript_streaming=self.streaming,
        )
        handle = []
        if self.has_actions():
            handle.append(
                HandleProgram(
                    name="voiceflow-graph",
                    description=f"voiceflow graph {self.graph.path.name}: acts on commands",
                    attribution=PROJECT,
                    installed=True,
                    version=voiceflow.__version__,
                    models=[
                        HandleModel(
                            name=self.graph.path.stem,
                            description="painting, questions about recordings, and plugins",
                            attribution=PROJECT,
                            installed=True,
                            languages=["en", "es", "de", "fr", "pt"],
                            version=None,
                        )
                    ],
                )
            )
        return Info(asr=[asr], handle=handle)

    def transcribe(self, request: Request) -> tuple[Transcript, np.ndarray]:
        samples = request.samples()
        language = request.language or self.language
        options: dict[str, Any] = {"language": language} if language else {}
        if request.hotwords:
            options["hotwords"] = request.hotwords
        return self.speech.recognise(samples, **options), samples

    async def act(self, said: Transcript) -> Event:
        """Run the graph on a transcript; ``handled`` with what was done, or ``not-handled``."""
        async with self.handle_lock:
            results = await self.runner.run([said])
        messages = [r.message for r in results]
        done: list[str] = []
        for m in messages:
            if isinstance(m, ImageResult):
                done.append(f"Painted {m.prompt!r}: {m.path}")
            elif isinstance(m, Answer):
                cites = "; ".join(c.label() for c in m.citations)
                done.append(m.text + (f" (from {cites})" if cites else ""))
        failures = [f"{m.node}: {m.error}" for m in messages if isinstance(m, Failure)]
        if done:
            return Handled(text="\n".join(done)).event()
        if failures:
            return NotHandled(text="; ".join(failures)).event()
        if any(isinstance(m, Command) for m in messages):
            return NotHandled(text="the command was understood, but nothing acted on it").event()
        return NotHandled(text="not a command voiceflow acts on").event()


class Connection:
    """One client: reads its events in order and answers each."""

    def __init__(
        self, service: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.service, self.reader, self.writer = service, reader, writer
        self.request: Request | None = None
        self.last: tuple[Transcript, np.ndarray] | None = None  # for a later `transcript`

    async def write(self, event: Event) -> None:
        await async_write_event(event, self.writer)

    async def error(self, text: str, code: str) -> None:
        log.info("client error (%s): %s", code, text)
        await self.write(Error(text=text, code=code).event())

    async def run(self) -> None:
        try:
            while True:
                try:
                    event = await asyncio.wait_for(read_event(self.reader), IDLE_S)
                except TimeoutError:
                    await self.error(f"nothing received for {IDLE_S:g} s: closing", "timeout")
                    break
                except ProtocolError as e:
                    await self.error(f"{e}; closing the connection", "protocol")
                    break
                if event is None:
                    break
                await self.handle(event)
        except (ConnectionError, BrokenPipeError):
            log.info("client went away")
        finally:
            self.writer.close()

    async def handle(self, event: Event) -> None:
        kind = event.type
        if Describe.is_type(kind):
            await self.write(self.service.info().event())
        elif Ping.is_type(kind):
            await self.write(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(kind):
            t = Transcribe.from_event(event)
            names = [*(t.transcript_names or []), *(t.transcript_terms or [])]
            self.request = Request(t.language or None, " ".join(names) or None)
        elif AudioStart.is_type(kind):
            self.request = replace(self.request or Request(), started=True, runs=[], seconds=0.0)
        elif AudioChunk.is_type(kind):
            await self.audio(event)
        elif AudioStop.is_type(kind):
            await self.finish()
        elif WyomingTranscript.is_type(kind):
            await self.act(WyomingTranscript.from_event(event))
        elif kind == "select-program":
            pass  # one program of each kind: nothing to select
        else:
            await self.error(f"unknown event {kind!r}", "unknown-event")

    async def audio(self, event: Event) -> None:
        if self.request is None or not self.request.started:
            await self.error("audio-chunk before audio-start: send audio-start first", "order")
            return
        try:
            chunk = AudioChunk.from_event(event)
            self.request.add(chunk)
        except (KeyError, TypeError, ValueError, VoiceflowError) as e:
            self.request = None
            await self.error(f"bad audio-chunk ({e}); the request is dropped", "audio")
            return
        if self.request.seconds > self.service.max_seconds:
            self.request = None
            await self.error(
                f"more than {self.service.max_seconds:g} s of audio in one request", "too-long"
            )

    async def finish(self) -> None:
        request, self.request = self.request, None
        if request is None or not request.started:
            await self.error("audio-stop before audio-start", "order")
            return
        try:
            said, samples = await asyncio.to_thread(self.service.transcribe, request)
        except VoiceflowError as e:
            await self.error(str(e), "transcribe")
            return
        self.last = (said, samples)
        if self.service.streaming:
            await self.write(TranscriptStart(language=said.language or None).event())
            for segment in said.segments:
                await self.write(TranscriptChunk(text=segment.text).event())
        text = said.text.strip()
        await self.write(WyomingTranscript(text=text, language=said.language or None).event())
        if self.service.streaming:
            await self.write(TranscriptStop().event())

    async def act(self, t: WyomingTranscript) -> None:
        said = Transcript(t.text, t.language or "", 1.0 if t.language else 0.0, 0.0)
        if self.last is not None and voiceflow.normalize(self.last[0].text) == voiceflow.normalize(
            t.text
        ):
            # The client sends back what it was told: use the whole transcript, with the
            # English a command needs (the translation is made only now, when asked for).
            said, samples = self.last
            if said.translation is None and self.service.needs_english(said):
                said = await asyncio.to_thread(self.service.speech.add_translation, samples, said)
        await self.write(await self.service.act(replace(said, source="wyoming")))


def check_uri(uri: str) -> None:
    url = urlparse(uri)
    if url.scheme not in ("tcp", "unix", "stdio"):
        raise VoiceflowError(f"{uri}: use tcp://HOST:PORT, unix://PATH or stdio://")
    if url.scheme == "tcp" and (not url.hostname or url.port is None):
        raise VoiceflowError(f"{uri}: give a host and a port, e.g. tcp://127.0.0.1:10300")


async def serve(service: Service, uri: str, ready: Any = None) -> None:
    """Serve ``uri`` (tcp://HOST:PORT, unix://PATH or stdio://) until SIGINT or SIGTERM."""
    check_uri(uri)
    url = urlparse(uri)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clients: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        clients.add(task)
        try:
            await Connection(service, reader, writer).run()
        finally:
            clients.discard(task)

    if url.scheme == "stdio":
        reader = asyncio.StreamReader(limit=MAX_LINE)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(sys.stdout.fileno(), "wb")
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        if ready:
            ready(uri)
        done = asyncio.create_task(Connection(service, reader, writer).run())
        await asyncio.wait([done, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
        return
    if url.scheme == "tcp":
        assert url.hostname and url.port is not None
        server = await asyncio.start_server(connected, url.hostname, url.port, limit=MAX_LINE)
    else:
        path = Path(url.path)
        path.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(connected, path, limit=MAX_LINE)
    async with server:
        if ready:
            ready(uri)
        await stop.wait()
    for task in list(clients):
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
