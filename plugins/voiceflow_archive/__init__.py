"""The transcript archive: store what was said, answer questions about it, count words.

Nodes ``archive.store`` (Transcript in) and ``archive.ask`` (question Command or typed
Transcript in, Answer with citations out), and the commands ``ingest``, ``ask`` and
``stats`` (``commands.py``), all on the same ``Archive``.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Literal

from pydantic import Field

import voiceflow
from voiceflow.messages import Answer, Command, Message, Transcript

from .qa import LLMConfig, answer
from .store import Archive

__all__ = ["Archive", "AskNode", "LLMConfig", "StoreNode", "answer"]


class ArchiveParams(voiceflow.NodeConfig):
    path: str | None = None  # default: the user's data directory
    chroma_url: str | None = None  # a Chroma server instead of the embedded store
    embedder: str = voiceflow.SHIPPED_EMBEDDER

    def archive(self) -> Archive:
        return Archive(self.path, voiceflow.TextEmbedder(self.embedder), self.chroma_url)


class StoreNode(voiceflow.Node):
    type_name = "archive.store"
    accepts = (Transcript,)
    emits = ()
    description = "keep transcripts in the searchable archive"

    Config = ArchiveParams
    config: ArchiveParams

    async def start(self, ctx: voiceflow.Context) -> None:
        self.archive = self.config.archive()

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        assert isinstance(msg, Transcript)
        key = hashlib.sha256(f"{msg.source}\n{msg.text}".encode()).hexdigest()
        await ctx.run_blocking(self.archive.store, key, msg.source or "speech", msg)
        return
        yield  # an async generator that yields nothing: archiving ends the branch

    def wants_english(self, transcript: Transcript) -> bool:
        return True  # chunks are embedded in English, so English questions find them


class AskNode(voiceflow.Node):
    type_name = "archive.ask"
    accepts = (Command, Transcript)
    emits = (Answer,)
    description = "answer questions from the archive, citing recording and time"

    class Config(ArchiveParams):
        llm: Literal["local", "openai", "ollama", "none"] = "local"
        llm_model: str | None = None
        base_url: str | None = None
        api_key_env: str = "OPENAI_API_KEY"
        threads: int = Field(default=1, ge=1)
        top_k: int = Field(default=4, ge=1, le=50)

    config: Config

    async def start(self, ctx: voiceflow.Context) -> None:
        c = self.config
        self.archive = c.archive()
        self.llm = LLMConfig(c.llm, c.llm_model, c.base_url, c.api_key_env, c.threads)

    async def process(self, msg: Message, ctx: voiceflow.Context) -> AsyncIterator[Message]:
        if isinstance(msg, Command):
            # Search with the English question: the stored chunks are embedded in English.
            question = msg.args.get("question") or msg.transcript.english
            language = msg.transcript.language
        else:
            assert isinstance(msg, Transcript)
            question, language = msg.english, msg.language
        result = await ctx.run_blocking(answer, question, self.archive, self.llm, self.config.top_k)
        yield Answer(result.text, language or "en", result.citations)

    def wants_english(self, transcript: Transcript) -> bool:
        return True  # the search runs on English


@voiceflow.hookimpl
def register_nodes(register: Callable[[type[voiceflow.Node]], None]) -> None:
    register(StoreNode)
    register(AskNode)


@voiceflow.hookimpl
def register_commands(commands: argparse._SubParsersAction) -> None:
    from .commands import add_commands

    add_commands(commands)
