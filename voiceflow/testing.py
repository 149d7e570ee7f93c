"""Helpers for testing nodes and graphs, for voiceflow itself and for plugin authors.

from voiceflow.testing import run_node
out = run_node(MyNode, Transcript(...), params={"prefix": "> "})
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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
