"""``voiceflow listen``: the microphone into a graph, with dictation and a wake phrase."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from voiceflow.cli import describe, print_result
from voiceflow.errors import VoiceflowError

STORE = "archive.store"  # the node type that keeps a session with --ingest


def add_commands(commands: argparse._SubParsersAction) -> None:
    from voiceflow.live import PARTIAL_EVERY_S, SegmenterOptions  # their defaults are the CLI's

    li = commands.add_parser("listen", help="listen to the microphone and act on what is said")
    li.add_argument(
        "--config",
        default="default",
        help="graph config file or built-in name (default: the assistant, 'default')",
    )
    li.add_argument("--device", default=None, help="input device number or name")
    li.add_argument("--list-devices", dest="list_devices", action="store_true")
    li.add_argument(
        "--dictate",
        default=None,
        metavar="FILE",
        help="also write everything said to FILE (.txt .srt .vtt .tsv .json) as it goes; "
        "an existing file is continued",
    )
    li.add_argument("--overwrite", action="store_true", help="with --dictate: start FILE afresh")
    li.add_argument(
        "--ingest",
        action="store_true",
        help="with --dictate: add the session to the archive at the end",
    )
    li.add_argument(
        "--wake",
        default=None,
        metavar="PHRASE",
        help='act only on speech that starts with PHRASE, e.g. "hey voiceflow"',
    )
    li.add_argument(
        "--push-to-talk",
        dest="push_to_talk",
        action="store_true",
        help="press Enter to start talking and Enter again to stop",
    )
    seg = SegmenterOptions()
    li.add_argument(
        "--silence_ms",
        type=int,
        default=seg.silence_ms,
        help="silence that ends an utterance (%(default)s)",
    )
    li.add_argument(
        "--min_utterance_s",
        type=float,
        default=seg.min_utterance_s,
        help="shorter is ignored (%(default)s)",
    )
    li.add_argument(
        "--max_utterance_s",
        type=float,
        default=seg.max_utterance_s,
        help="longer is cut (%(default)s)",
    )
    li.add_argument(
        "--pre_roll_ms",
        type=int,
        default=seg.pre_roll_ms,
        help="audio kept from before speech (%(default)s)",
    )
    li.add_argument(
        "--early_ms",
        type=int,
        default=seg.early_ms,
        help="closing silence kept with each utterance; transcription starts once this much "
        "silence is heard (%(default)s; 0: keep none and wait for the end)",
    )
    li.add_argument(
        "--partial_every",
        type=float,
        default=PARTIAL_EVERY_S,
        help="show the words so far every this many seconds of speech (0: off)",
    )
    li.add_argument("--json", action="store_true", help="print results as JSON lines")
    li.set_defaults(func=listen)


def listen(args: argparse.Namespace) -> int:
    from voiceflow.graph import load_graph
    from voiceflow.live import (
        Capture,
        DictationWriter,
        Listener,
        Segmenter,
        SegmenterOptions,
        check_accepts_text,
        list_devices,
    )

    if args.list_devices:
        print(list_devices())
        return 0
    if (args.ingest or args.overwrite) and not args.dictate:
        raise VoiceflowError(
            "--ingest and --overwrite are about the dictation: give --dictate FILE"
        )
    graph = load_graph(args.config)
    check_accepts_text(graph)
    if args.ingest and graph.registry.get(STORE) is None:
        raise VoiceflowError(
            f"--ingest keeps the session with the {STORE} node, which no installed plugin "
            "provides: pip install 'voiceflow[rag]'"
        )
    options = SegmenterOptions(
        **{f.name: getattr(args, f.name) for f in fields(SegmenterOptions) if f.name in args}
    )
    # a dictation file that cannot be written is reported before the microphone opens
    dictation = DictationWriter(args.dictate, args.overwrite) if args.dictate else None
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    capture = Capture(device)
    capture.start()  # a missing or busy microphone is reported before any model loads
    if dictation is not None and dictation.offset:
        print(
            f"continuing {args.dictate}: this session starts at {dictation.offset:.0f} s",
            file=sys.stderr,
        )
    events = _Printer(args.json)
    listener = Listener(
        graph,
        capture,
        Segmenter(options),
        events,
        wake=args.wake,
        dictation=dictation,
        partial_every=args.partial_every,
        english=args.ingest,
    )
    print("loading the speech model...", file=sys.stderr, flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)  # Ctrl-C: finish and flush
        if args.push_to_talk:
            listener.set_talking(False)
            print("press Enter to talk, Enter again to stop; Ctrl-C to quit", file=sys.stderr)

            def keys() -> None:
                for _ in sys.stdin:
                    listener.set_talking(not listener.talking)
                    state = "talking" if listener.talking else "push Enter to talk"
                    loop.call_soon_threadsafe(events.status, state)

            threading.Thread(target=keys, daemon=True).start()
        await listener.run(stop)

    asyncio.run(main())
    stats = listener.stats
    if stats.dropped_seconds:
        print(
            f"warning: {stats.dropped_seconds:.1f} s of audio were dropped (the computer "
            "could not keep up)",
            file=sys.stderr,
        )
    if args.ingest and listener.delivered:
        _store_session(graph, listener.delivered, Path(args.dictate), dictation)
    return 0


class _Printer:
    """Shows the listener's events: transcripts and results on stdout, the rest on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.tty = sys.stderr.isatty()
        self.ready = False

    def status(self, text: str) -> None:
        if self.tty:
            print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)

    def __call__(self, event: Any) -> None:
        from voiceflow import live

        if isinstance(event, live.StateChanged):
            if not self.ready:  # once the model is loaded and the microphone open
                self.ready = True
                print("listening (Ctrl-C to stop)", file=sys.stderr, flush=True)
            self.status(f"[{event.state}]")
        elif isinstance(event, live.PartialText):
            width = max(20, shutil.get_terminal_size().columns - 20)
            text = event.transcript.text.strip()
            if not event.whole or len(text) > width:
                text = "..." + text[-width + 3 :]
            self.status(f"[hearing speech] {text}")
        elif isinstance(event, live.Behind):
            self._line(f"transcription is behind: {event.queued_seconds:.1f} s of speech queued")
        elif isinstance(event, live.Problem):
            self._line(f"warning: {event.message}")
        elif isinstance(event, live.Overflowed):
            self._line(
                f"warning: the microphone overflowed ({event.count} so far): some audio was "
                "lost because the computer was too busy"
            )
        elif isinstance(event, live.Heard):
            self.status("")
            t = event.transcript
            if not self.as_json:
                lang = f"{t.language} {t.language_probability:.2f}" if t.language else "-"
                print(
                    f"[{event.utterance.start:7.1f}s] ({lang}) {t.text or '(nothing)'}", flush=True
                )
        elif isinstance(event, live.Acted):
            r = event.result
            if self.as_json:
                print_result(r.node, r.message, True)
            elif r.node != "input":
                print("    -> " + describe(r.node, r.message), flush=True)

    def _line(self, text: str) -> None:
        self.status("")
        print(text, file=sys.stderr, flush=True)


def _store_session(graph: Any, heard: list[Any], path: Path, dictation: Any) -> None:
    from voiceflow.live import session_transcript
    from voiceflow.testing import run_node

    spec = next((s for s in graph.nodes.values() if s.type == STORE), None)
    cls = graph.registry.nodes[STORE]
    session = session_transcript(heard, str(path.absolute()), dictation.offset)
    run_node(cls, session, params=spec.config.model_dump() if spec else None)
    print(f"added the session to the archive as {path}", file=sys.stderr)
