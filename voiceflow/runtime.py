"""Run a graph on asyncio: a queue and a worker per node, fan-out along matching routes.

A node that raises, or outlives its timeout, turns that message into a ``Failure`` sent to
the output; every other branch carries on. A node loads its model when its first message
arrives (``Node.ensure_loaded``), so a run that never needs a node never loads it; a node
whose ``start()`` or ``load()`` failed answers each message with a ``Failure`` explaining
why, so one missing model never stops the graph.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from voiceflow.builtins import WhisperNode
from voiceflow.graph import INPUT, OUTPUT, Graph
from voiceflow.messages import Failure, Message, Transcript
from voiceflow.node import Context, Node

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    node: str  # the node that emitted the message
    message: Message


class GraphRunner:
    """Start the nodes once, then feed any number of message batches through the graph."""

    def __init__(self, graph: Graph, on_result: Callable[[Result], None] | None = None) -> None:
        self.graph = graph
        self.on_result = on_result
        self.nodes: dict[str, Node] = {
            name: graph.registry.nodes[spec.type](spec.config, name)
            for name, spec in graph.nodes.items()
        }
        self.contexts = {
            name: Context(name, graph.path.parent, needs_english=self.english_after(name))
            for name in self.nodes
        }
        self.unavailable: dict[str, str] = {}  # node -> why each of its messages fails
        self._grown = {name: (0, 0.0) for name in self.nodes}  # messages, MB grown
        # Loads and first messages fill memory for good (models, caches); while one runs,
        # no other node's growth is counted, or a model loading beside it would be blamed.
        self._warming = 0
        self._warm_epoch = 0
        self._results: list[Result] = []
        self._queues: dict[str, asyncio.Queue[Message]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._pending = 0
        self._idle: asyncio.Event | None = None
        self._started = False

    async def start(self) -> None:
        for name, node in self.nodes.items():
            try:
                await node.start(self.contexts[name])
            except Exception as e:  # a node that cannot start must not stop the others
                self.unavailable[name] = f"{name} could not start: {e}"
                log.warning("%s", self.unavailable[name])
        self._idle = asyncio.Event()
        self._idle.set()
        for name in self.nodes:
            self._queues[name] = asyncio.Queue()
            self._workers.append(asyncio.create_task(self._work(name), name=f"node:{name}"))
        self._started = True

    async def speech_node(self, workers: int = 0) -> WhisperNode:
        """The graph's speech node, its model loaded; a default one when the graph takes
        typed text only (the listener and the servers still hear speech). ``workers``
        replaces the node's automatic choice (0) of decodes at once, for a caller that
        knows better."""
        for name, node in self.nodes.items():
            if isinstance(node, WhisperNode):
                if workers and not node.config.workers and node.model is None:
                    node.config = node.config.model_copy(update={"workers": workers})
                await node.ensure_loaded(self.contexts[name])
                return node
        node = WhisperNode(WhisperNode.Config(workers=workers))
        await node.ensure_loaded(Context("speech", self.graph.path.parent))
        return node

    def english_after(self, name: str = INPUT) -> Callable[[Transcript], bool]:
        """Whether a node downstream of ``name`` wants a transcript in English."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            for route in self.graph.successors(todo.pop()):
                if route.target in self.nodes and route.target not in seen:
                    seen.add(route.target)
                    todo.append(route.target)
        after = [self.nodes[n] for n in sorted(seen - {name})]
        return lambda t: any(node.wants_english(t) for node in after)

    async def warm(self, *names: str) -> dict[str, str]:
        """Load these nodes' models now (all nodes when none are named), concurrently;
        returns the errors by node. A failed node still answers messages with a Failure."""
        chosen = names or tuple(self.nodes)
        self._warming += 1
        self._warm_epoch += 1
        try:
            results = await asyncio.gather(
                *(self.nodes[n].ensure_loaded(self.contexts[n]) for n in chosen),
                return_exceptions=True,
            )
        finally:
            self._warming -= 1
        return {n: str(r) for n, r in zip(chosen, results, strict=True) if r is not None}

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        for node in self.nodes.values():
            try:
                await node.stop()
            except Exception as e:
                log.warning("%s: error while stopping: %s", node.name, e)

    async def __aenter__(self) -> GraphRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, messages: Iterable[Message]) -> list[Result]:
        """Send messages in from ``input`` and wait until every branch has finished."""
        if not self._started:
            raise RuntimeError("GraphRunner.start() must be awaited before run()")
        assert self._idle is not None
        self._results = []
        for msg in messages:
            self._dispatch(INPUT, msg)
        await self._idle.wait()
        return self._results

    def _dispatch(self, source: str, msg: Message) -> None:
        if isinstance(msg, Failure):  # failures always surface, whatever the routes
            self._emit(Result(source, msg))
            return
        for route in self.graph.successors(source):
            if not route.when(msg):
                continue
            if route.target == OUTPUT:
                self._emit(Result(source, msg))
            elif isinstance(msg, self.nodes[route.target].accepts):
                self._pending += 1
                assert self._idle is not None
                self._idle.clear()
                self._queues[route.target].put_nowait(msg)

    def _emit(self, result: Result) -> None:
        self._results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    async def call(self, name: str, msg: Message) -> list[Message]:
        """Node ``name`` alone on ``msg``, its load, timeout and failures as in a run, without
        following routes: what a server asks of one node (an image, an answer)."""
        if not self._started:
            raise RuntimeError("GraphRunner.start() must be awaited before call()")
        out: list[Message] = []
        await self._process(name, msg, out.append)
        return out

    async def _work(self, name: str) -> None:
        queue = self._queues[name]
        while True:
            msg = await queue.get()
            try:
                await self._process(name, msg, lambda out: self._dispatch(name, out))
            finally:
                self._pending -= 1
                if self._pending == 0:
                    assert self._idle is not None
                    self._idle.set()

    async def _process(self, name: str, msg: Message, emit: Callable[[Message], None]) -> None:
        node, ctx = self.nodes[name], self.contexts[name]
        timeout = self.graph.nodes[name].timeout
        try:
            if name in self.unavailable:
                emit(Failure(name, self.unavailable[name], type(msg).__name__))
                return
            first = self._grown[name][0] == 0
            if first:
                self._warming += 1
                self._warm_epoch += 1
            calm, epoch, before = self._warming == 0, self._warm_epoch, rss_mb()
            try:
                try:  # outside the timeout: a first load may legitimately take long
                    await node.ensure_loaded(ctx)
                except Exception as e:
                    emit(Failure(name, f"{name} could not start: {e}", type(msg).__name__))
                    return
                async with asyncio.timeout(timeout):
                    await self._relay(name, node, msg, emit)
            finally:
                self._warming -= first
                self._account(name, rss_mb() - before, calm and epoch == self._warm_epoch)
        except TimeoutError:
            emit(Failure(name, f"timed out after {timeout:g} s", type(msg).__name__))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.debug("node %s failed", name, exc_info=True)
            emit(Failure(name, f"{type(e).__name__}: {e}", type(msg).__name__))

    async def _relay(
        self, name: str, node: Node, msg: Message, emit: Callable[[Message], None]
    ) -> None:
        async for out in node.process(msg, self.contexts[name]):
            if not isinstance(out, (*node.emits, Failure)):
                declared = ", ".join(t.__name__ for t in node.emits) or "nothing"
                emit(
                    Failure(
                        name,
                        f"{name} ({node.type_name}) emitted a {type(out).__name__}, "
                        f"but declares it emits {declared}: a bug in its plugin",
                        type(msg).__name__,
                    )
                )
                return
            emit(out)

    def _account(self, name: str, grown_mb: float, counted: bool) -> None:
        """Add what the process grew during a message of ``name`` (``counted``: no load or
        first message ran meanwhile) and stop the node once the sum passes its
        ``memory_mb``. Other nodes' messages blur one figure, not the sum over many."""
        messages, total = self._grown[name]
        total += grown_mb if counted else 0.0
        self._grown[name] = (messages + 1, total)
        limit = self.graph.nodes[name].memory_mb
        if total > limit and name not in self.unavailable:
            self.unavailable[name] = (
                f"{name} stopped: the process grew by {total:.0f} MB over {messages} of its "
                f"messages (memory_mb: {limit:g}), a memory leak in its plugin?"
            )
            log.warning("%s", self.unavailable[name])


def rss_mb() -> float:
    """This process's resident memory (Linux); elsewhere its peak, which a leak also raises."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        try:
            import resource
        except ImportError:  # Windows: no measure, no limit
            return 0.0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


async def run_graph_async(
    graph: Graph, messages: Iterable[Message], on_result: Callable[[Result], None] | None = None
) -> list[Result]:
    async with GraphRunner(graph, on_result) as runner:
        return await runner.run(messages)


def run_graph(
    graph: Graph, messages: Iterable[Message], on_result: Callable[[Result], None] | None = None
) -> list[Result]:
    """Start the graph, run the messages through it, stop it; returns what reached output."""
    return asyncio.run(run_graph_async(graph, messages, on_result))
