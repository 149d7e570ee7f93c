"""The node contract: what a plugin author implements.

A node declares the message types it ``accepts`` and ``emits``, validates its ``params``
through a pydantic ``Config``, is cheap to construct, loads heavy state in ``start()`` and
yields messages from ``process()``. Blocking calls go through ``ctx.run_blocking`` so the
event loop keeps serving the other branches.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from voiceflow.messages import Message

T = TypeVar("T")


class NodeConfig(BaseModel):
    """Base for a node's validated ``params``; unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Context:
    """What the runtime gives a node: its name, where the config lives, a thread pool."""

    node: str
    base_dir: Path = field(default_factory=Path.cwd)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("voiceflow"))

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))


class Node:
    type_name: ClassVar[str] = ""
    accepts: ClassVar[tuple[type, ...]] = ()
    emits: ClassVar[tuple[type, ...]] = ()
    Config: ClassVar[type[NodeConfig]] = NodeConfig
    description: ClassVar[str] = ""

    def __init__(self, config: NodeConfig | None = None, name: str = "") -> None:
        self.config = config if config is not None else self.Config()
        self.name = name or self.type_name

    async def start(self, ctx: Context) -> None:
        """Load models and open resources. Called once before the first message."""

    async def stop(self) -> None:
        """Release resources. Called once, also after errors and Ctrl-C."""

    def process(self, msg: Message, ctx: Context) -> AsyncIterator[Message]:
        raise NotImplementedError(f"{type(self).__name__} does not implement process()")
