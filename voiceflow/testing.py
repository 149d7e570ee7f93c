"""Helpers for testing nodes and graphs, for voiceflow itself and for plugin authors.

from voiceflow.testing import run_node
out = run_node(MyNode, Transcript(...), params={"prefix": "> "})
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voiceflow.graph import Graph, load_graph
from voiceflow.messages import Message, Transcript
from voiceflow.node import Context, Node
from voiceflow.plugins import load_registry
from voiceflow.runtime import Result, run_graph


def transcript(
    text: str,
    language: str = "en",
    probability: float = 0.99,
    translation: str | None = None,
    source: str = "test",
) -> Transcript:
    """A Transcript as the speech node would emit it, for feeding nodes in tests."""
    return Transcript(
        text=text,
        language=language,
        language_probability=probability,
        duration=1.0,
        source=source,
        translation=translation,
    )


async def run_node_async(
    node: Node, messages: Sequence[Message], base_dir: Path | None = None
) -> list[Message]:
    ctx = Context(node.name, base_dir or Path.cwd())
    await node.start(ctx)
    try:
        if messages:
            await node.ensure_loaded(ctx)  # as the runtime does, before the first message
        out: list[Message] = []
        for msg in messages:
            async for result in node.process(msg, ctx):
                out.append(result)
        return out
    finally:
        await node.stop()


def run_node(
    node_cls: type[Node],
    messages: Message | Sequence[Message],
    params: dict[str, Any] | None = None,
) -> list[Message]:
    """Construct a node from ``params``, start it, feed it messages, return what it yields."""
    node = node_cls(node_cls.Config(**(params or {})))
    batch = [messages] if not isinstance(messages, Sequence) else list(messages)
    return asyncio.run(run_node_async(node, batch))


def graph_from(
    config: str | Path, plugins: Iterable[tuple[str, object]] = (), **overrides: dict[str, Any]
) -> Graph:
    """Load a graph with extra in-process plugins (``(name, module_or_object)`` pairs)."""
    registry = load_registry(extra=plugins)
    return load_graph(config, registry=registry, overrides=overrides)


def run_graph_on(
    config: str | Path, messages: Sequence[Message], plugins: Iterable[tuple[str, object]] = ()
) -> list[Result]:
    """Run a graph config on messages; returns every result that reached ``output``."""
    return run_graph(graph_from(config, plugins), messages)


class ReplayStream:
    """A stand-in for ``sounddevice.InputStream``: plays samples into a capture callback.

    ``speed=1.0`` paces blocks in real time, as a microphone delivers them; ``speed=None``
    delivers as fast as the callback returns. ``finished`` turns true at the end.
    """

    def __init__(
        self,
        samples: np.ndarray,
        samplerate: int,
        callback: Any,
        speed: float | None = 1.0,
        block: int = 512,
    ) -> None:
        self.samples, self.rate, self.callback = samples, samplerate, callback
        self.speed, self.block = speed, block
        self.finished = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)

    def _play(self) -> None:
        began = time.monotonic()
        for i in range(0, len(self.samples), self.block):
            if self._stop.is_set():
                break
            chunk = self.samples[i : i + self.block].astype(np.float32)[:, None]
            self.callback(chunk, len(chunk), None, None)
            if self.speed:
                delay = began + (i + self.block) / self.rate / self.speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        self.finished = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()
