"""The core plugin: the ``whisper`` and ``intent`` nodes and the core commands, registered
through the same hooks as every other plugin."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from voiceflow.hooks import hookimpl
from voiceflow.intents import DEFAULT_TABLE, IntentRecognizer
from voiceflow.messages import AudioClip, Command, Message, Transcript
from voiceflow.node import Context, Node, NodeConfig

if TYPE_CHECKING:
    from voiceflow.speech.transcriber import SpeechModel


class WhisperNode(Node):
    """Speech to text: AudioClip in, Transcript (with language and timestamps) out."""

    type_name = "whisper"
    accepts = (AudioClip,)
    emits = (Transcript,)
    description = "Whisper speech recognition (faster-whisper or openai-whisper)"

    class Config(NodeConfig):
        model: str = "base"
        engine: Literal["auto", "faster-whisper", "openai-whisper"] = "auto"
        device: str = "auto"
        compute_type: str = "auto"
        threads: int = Field(default=0, ge=0)  # in all; 0: every core
        workers: int = Field(default=0, ge=0)  # decodes at once; 0: two on a CPU
        language: str | None = None
        languages: list[str] | None = None  # pick the most probable among these
        # auto: English when a node after this one needs it (Node.wants_english);
        # always: all foreign speech; never: none
        translate: Literal["auto", "always", "never"] = "auto"
        beam_size: int = Field(default=5, ge=1, le=20)
        word_timestamps: bool = False
        initial_prompt: str | None = None
        hotwords: str | None = None
        vad: bool = True

    config: Config

    def __init__(self, config: NodeConfig | None = None, name: str = "") -> None:
        super().__init__(config, name)
        self.model: SpeechModel | None = None

    async def load(self, ctx: Context) -> None:
        from voiceflow.speech.transcriber import SpeechModel

        c = self.config
        self.model = await ctx.run_blocking(
            SpeechModel.shared, c.model, c.engine, c.device, c.compute_type, c.threads, c.workers
        )

    async def process(self, msg: Message, ctx: Context) -> AsyncIterator[Message]:
        assert isinstance(msg, AudioClip)
        transcript = await ctx.run_blocking(self.recognise, msg.samples, ctx.needs_english)
        if transcript.text:  # silence and noise route nowhere
            yield replace(transcript, source=msg.source)

    def recognise(
        self,
        samples: np.ndarray,
        needs_english: Callable[[Transcript], bool] = lambda t: False,
        *,
        quick: bool = False,
        vad: bool | None = None,
        **options: Any,
    ) -> Transcript:
        """Transcribe with this node's settings, adding the English translation when
        ``translate`` asks for it: ``auto`` asks ``needs_english`` (whether a node after
        this one wants it), since translating everything would double the work of every
        utterance.

        ``quick``: a look at speech in progress (greedy, no translation, no word times, no
        temperature fallback, a 10 s encoder input for short speech instead of 20 s). ``vad``
        overrides the node's voice activity setting (live utterances are already cut);
        ``options`` go to ``SpeechModel.transcribe``.
        """
        assert self.model is not None, "load() first"
        c = self.config
        settings: dict[str, Any] = {
            "language": c.language,
            "languages": c.languages,
            "translate": c.translate == "always" and not quick,
            "beam_size": c.beam_size,
            "word_timestamps": c.word_timestamps,
            "initial_prompt": c.initial_prompt,
            "hotwords": c.hotwords,
            "vad": c.vad if vad is None else vad,
        }
        if quick:
            settings.update(beam_size=1, word_timestamps=False, temperature=0.0, min_window_s=10.0)
        t = self.model.transcribe(samples, **{**settings, **options})
        if (
            not quick
            and c.translate == "auto"
            and t.language not in ("", "en")
            and t.translation is None
            and needs_english(t)
        ):
            return self.translate(samples, t)
        return t

    def translate(self, samples: np.ndarray, t: Transcript) -> Transcript:
        """``t`` with its English translation (Whisper's translate task on ``samples``)."""
        assert self.model is not None, "load() first"
        return self.model.add_translation(samples, t, self.config.beam_size)


class IntentNode(Node):
    """Transcript in; a Command when an intent matches, else the Transcript unchanged."""

    type_name = "intent"
    accepts = (Transcript,)
    emits = (Command, Transcript)
    description = "recognise intents (paint, question, ...) by pattern and by meaning"

    class Config(NodeConfig):
        table: str | None = None  # a YAML intent table; the built-in one by default

    config: Config

    async def start(self, ctx: Context) -> None:
        path = ctx.base_dir / self.config.table if self.config.table else DEFAULT_TABLE
        self.recognizer = IntentRecognizer.from_file(path)

    async def load(self, ctx: Context) -> None:
        await ctx.run_blocking(self.recognizer.warm)

    async def process(self, msg: Message, ctx: Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Transcript)
        # in a worker thread: matching by meaning embeds the text (and loads the embedder once)
        match = await ctx.run_blocking(
            self.recognizer.recognize, msg.text, msg.language, msg.translation
        )
        yield Command(match.intent, match.args, msg) if match else msg

    def wants_english(self, transcript: Transcript) -> bool:
        # Commands are understood by meaning in English, and their arguments (an image
        # prompt, a question) are taken from the English; a table of patterns alone needs
        # English only for speech that matches one.
        if self.recognizer.understands_meaning:
            return True
        return self.recognizer.by_pattern(transcript.text, transcript.language) is not None


@hookimpl
def register_nodes(register: Callable[[type[Node]], None]) -> None:
    register(WhisperNode)
    register(IntentNode)


@hookimpl
def register_commands(commands: argparse._SubParsersAction) -> None:
    from voiceflow.cli import inspect, listen, run, subtitles, transcribe

    for module in (transcribe, subtitles, run, listen, inspect):
        module.add_commands(commands)
