"""The node contract: what a plugin author implements.

A node declares the message types it ``accepts`` and ``emits``, validates its ``params``
through a pydantic ``Config`` and is cheap to construct. ``start()`` opens cheap resources;
heavy models load in ``load()``, which the runtime calls when the first message for the
node arrives (or ahead of time, when a caller warms the node up), so a graph never loads a
model it does not use. ``process()`` yields messages; blocking calls go through
``ctx.run_blocking`` so the event loop keeps serving the other branches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from voiceflow.messages import Message, Transcript
from voiceflow.threads import finishing

T = TypeVar("T")


class NodeConfig(BaseModel):
    """Base for a node's validated ``params``; unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_english(t: Transcript) -> bool:
    return False


@dataclass
class Context:
    """What the runtime gives a node: its name, where the config lives, a thread pool, and
    whether any node after it needs an English translation of a transcript."""

    node: str
    base_dir: Path = field(default_factory=Path.cwd)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("voiceflow"))
    needs_english: Callable[[Transcript], bool] = _no_english

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a thread of its own. The thread is a daemon: a call
        that never returns, once its node's timeout has given up on it, cannot keep the
        program from exiting (a thread pool's workers would)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():  # cancelled: the node timed out or the run was stopped
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def work() -> None:
            try:
                result, error = fn(*args, **kwargs), None
            except BaseException as e:
                result, error = None, e
            finishing()  # what it lets go of may be the last reference to a tensor
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=work, name=f"voiceflow:{self.node}", daemon=True).start()
        return await future


class Node:
    type_name: ClassVar[str] = ""
    accepts: ClassVar[tuple[type, ...]] = ()
    emits: ClassVar[tuple[type, ...]] = ()
    Config: ClassVar[type[NodeConfig]] = NodeConfig
    description: ClassVar[str] = ""

    def __init__(self, config: NodeConfig | None = None, name: str = "") -> None:
        self.config = config if config is not None else self.Config()
        self.name = name or self.type_name
        self._loaded = False
        self._load_error: BaseException | None = None
        self._load_lock: asyncio.Lock | None = None

    async def start(self, ctx: Context) -> None:
        """Check settings and open cheap resources. Called once before any message."""

    async def load(self, ctx: Context) -> None:
        """Load heavy models. Called once, when the node is first needed."""

    async def stop(self) -> None:
        """Release resources. Called once, also after errors and Ctrl-C."""

    def process(self, msg: Message, ctx: Context) -> AsyncIterator[Message]:
        raise NotImplementedError(f"{type(self).__name__} does not implement process()")

    def wants_english(self, transcript: Transcript) -> bool:
        """Whether this node needs the English translation of a non-English transcript
        (the speech node before it then makes one)."""
        return False

    async def ensure_loaded(self, ctx: Context) -> None:
        """Run ``load()`` once; concurrent callers wait for the same load. A load that failed
        raises its error again without retrying (a missing model stays missing)."""
        if self._loaded:
            return
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            if self._load_error is not None:
                raise self._load_error
            if not self._loaded:
                try:
                    await self.load(ctx)
                except Exception as e:
                    self._load_error = e
                    raise
                self._loaded = True
