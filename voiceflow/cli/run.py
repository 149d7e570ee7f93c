"""``voiceflow run``: a graph config on audio files, folders or typed text."""

from __future__ import annotations

import argparse
import asyncio
import sys

from voiceflow.cli import EXIT_ERROR, parse_sets, print_result
from voiceflow.errors import VoiceflowError


def add_commands(commands: argparse._SubParsersAction) -> None:
    r = commands.add_parser("run", help="run a graph config on audio files (or typed --text)")
    r.add_argument("config", help="a config file, or the name of a built-in one (default, ...)")
    r.add_argument("audio", nargs="*", help="files or folders")
    r.add_argument("--text", action="append", default=[], help="typed input instead of speech")
    r.add_argument("--json", action="store_true", help="print results as JSON lines")
    r.add_argument(
        "--strict", action="store_true", help="exit non-zero when any node reports a failure"
    )
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter (value parsed as YAML)",
    )
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voiceflow.graph import load_graph
    from voiceflow.messages import AudioClip, Failure, Transcript
    from voiceflow.runtime import GraphRunner, Result
    from voiceflow.speech.audio import expand_inputs, load_audio

    graph = load_graph(args.config, overrides=parse_sets(args.set))
    files, failed = expand_inputs(args.audio)
    for error in failed:
        print(f"error: {error}", file=sys.stderr)
    if not files and not args.text:
        if not failed:
            print("error: give audio files or folders, or --text", file=sys.stderr)
        return EXIT_ERROR
    failures = 0

    def show(result: Result) -> None:
        nonlocal failures
        failures += isinstance(result.message, Failure)
        print_result(result.node, result.message, args.json)

    async def main() -> None:
        async with GraphRunner(graph, show) as runner:
            for text in args.text:
                typed = Transcript(text, "", language_probability=0.0, duration=0.0, source="text")
                await runner.run([typed])
            for path in files:
                try:
                    samples = load_audio(path)
                except VoiceflowError as e:
                    print(f"error: {e}", file=sys.stderr)
                    failed.append(str(e))
                    continue
                if not args.json:
                    print(f"{path}:", flush=True)
                await runner.run([AudioClip(samples, source=str(path))])

    asyncio.run(main())
    return EXIT_ERROR if failed or (args.strict and failures) else 0
