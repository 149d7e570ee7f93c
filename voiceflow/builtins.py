"""Core nodes, registered through the same hook as every plugin."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from voiceflow.intents import DEFAULT_TABLE, IntentRecognizer
from voiceflow.messages import AudioClip, Command, Message, Transcript
from voiceflow.node import Context, Node, NodeConfig
from voiceflow.plugins import hookimpl

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
        threads: int = Field(default=0, ge=0)
        language: str | None = None
        languages: list[str] | None = None  # pick the most probable among these
        # auto: English only for commands (see recognise_speech); always: all foreign speech
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

    async def start(self, ctx: Context) -> None:
        from voiceflow.speech.transcriber import SpeechModel

        c = self.config
        self.model = await ctx.run_blocking(
            SpeechModel, c.model, c.engine, c.device, c.compute_type, c.threads, c.vad
        )

    async def process(self, msg: Message, ctx: Context) -> AsyncIterator[Message]:
        assert isinstance(msg, AudioClip) and self.model is not None
        transcript = await ctx.run_blocking(recognise_speech, self.model, msg.samples, self.config)
        if transcript.text:  # silence and noise route nowhere
            yield replace(transcript, source=msg.source)


def recognise_speech(
    model: SpeechModel, samples: np.ndarray, c: WhisperNode.Config, **options: Any
) -> Transcript:
    """Transcribe with a whisper node's settings, translating as ``c.translate`` asks;
    ``options`` go to ``SpeechModel.transcribe`` as well.

    ``auto`` translates only speech that is a command (an intent pattern matches it in its
    own language): the English is needed for the image prompt or the archive search, and
    translating everything would double the work of every utterance.
    """
    t = model.transcribe(
        samples,
        language=c.language,
        languages=c.languages,
        translate=c.translate == "always",
        beam_size=c.beam_size,
        word_timestamps=c.word_timestamps,
        initial_prompt=c.initial_prompt,
        hotwords=c.hotwords,
        **options,
    )
    if c.translate == "always" and t.translation is None:
        return replace(t, translation=t.text)
    if (
        c.translate == "auto"
        and t.language not in ("", "en")
        and _commands().recognize(t.text, t.language)
    ):
        return model.add_translation(samples, t, c.beam_size)
    return t


@functools.cache
def _commands() -> IntentRecognizer:
    return IntentRecognizer.from_file(DEFAULT_TABLE)


class IntentNode(Node):
    """Transcript in; a Command when an intent matches, else the Transcript unchanged."""

    type_name = "intent"
    accepts = (Transcript,)
    emits = (Command, Transcript)
    description = "recognise intents (paint, question, ...) in five languages"

    class Config(NodeConfig):
        table: str | None = None  # a YAML intent table; the built-in one by default

    config: Config

    async def start(self, ctx: Context) -> None:
        path = ctx.base_dir / self.config.table if self.config.table else DEFAULT_TABLE
        self.recognizer = IntentRecognizer.from_file(path)

    async def process(self, msg: Message, ctx: Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Transcript)
        match = self.recognizer.recognize(msg.text, msg.language, msg.translation)
        yield Command(match.intent, match.args, msg) if match else msg


@hookimpl
def register_nodes(register) -> None:  # type: ignore[no-untyped-def]
    register(WhisperNode)
    register(IntentNode)
