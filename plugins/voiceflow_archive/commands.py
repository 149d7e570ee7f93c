"""The archive's commands: ``voiceflow ingest``, ``ask`` and ``stats``."""

from __future__ import annotations

import argparse
import json
import sys
import time

import voiceflow
from voiceflow import VoiceflowError
from voiceflow.cli import (
    EXIT_ERROR,
    add_model_args,
    add_ray_args,
    jsonable,
    model_args,
    print_result,
    ray_options,
)

from .store import Archive

ARCHIVE_HELP = "archive folder (default: the user's data directory, or $VOICEFLOW_ARCHIVE)"
EMBEDDER_HELP = (
    "sentence-transformers model name or folder (default: the shipped all-MiniLM-L6-v2; "
    "the archive remembers it)"
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    ing = commands.add_parser("ingest", help="transcribe recordings into the searchable archive")
    ing.add_argument("paths", nargs="+", help="audio/video files and folders")
    _archive_args(ing)
    add_model_args(ing)
    add_ray_args(ing)
    ing.set_defaults(func=ingest_command)

    ask = commands.add_parser("ask", help="ask the archive a question; the answer cites sources")
    ask.add_argument("question")
    _archive_args(ask)
    ask.add_argument(
        "--no-llm",
        dest="no_llm",
        action="store_true",
        help="return the best passages with citations, without an LLM",
    )
    ask.add_argument("--llm", default="local", choices=["local", "openai", "ollama"])
    ask.add_argument("--llm_model", default=None, help="a .gguf path, or the endpoint's model")
    ask.add_argument("--base_url", default=None, help="OpenAI-compatible or Ollama URL")
    ask.add_argument("--top_k", type=int, default=4)
    ask.add_argument("--threads", type=int, default=2)
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(func=ask_command)

    st = commands.add_parser("stats", help="how often a word or phrase was said, and when")
    st.add_argument("phrase")
    st.add_argument("--archive", default=None, help=ARCHIVE_HELP)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=stats_command)


def _archive_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--archive", default=None, help=ARCHIVE_HELP)
    p.add_argument("--chroma_url", default=None, help="a Chroma server, e.g. http://host:8000")
    p.add_argument("--embedder", default=None, help=EMBEDDER_HELP)


def open_archive(args: argparse.Namespace) -> Archive:
    name = getattr(args, "embedder", None)
    embedder = voiceflow.TextEmbedder(name) if name else voiceflow.TextEmbedder()
    return Archive(args.archive, embedder, chroma_url=getattr(args, "chroma_url", None))


def ingest_command(args: argparse.Namespace) -> int:
    from .ingest import ingest

    archive = open_archive(args)
    start = time.perf_counter()
    report = ingest(args.paths, archive, model_args(args), ray=ray_options(args))
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    minutes = (time.perf_counter() - start) / 60
    speed = f", {report.audio_seconds / 60 / minutes:.1f} audio min/min" if report.added else ""
    print(
        f"{len(report.added)} added, {len(report.replaced)} replaced, "
        f"{len(report.skipped)} already in the archive, {len(report.errors)} failed{speed}; "
        f"archive: {archive.path if not archive.chroma_url else archive.chroma_url}"
    )
    return EXIT_ERROR if report.errors else 0


def ask_command(args: argparse.Namespace) -> int:
    from voiceflow.messages import Answer

    from .qa import LLMConfig, answer

    if not args.question.strip():
        raise VoiceflowError("the question is empty: ask something, e.g. voiceflow ask 'what ...?'")
    llm = LLMConfig(
        "none" if args.no_llm else args.llm, args.llm_model, args.base_url, threads=args.threads
    )
    result = answer(args.question, open_archive(args), llm, args.top_k)
    print_result("ask", result, args.json)
    return 0 if isinstance(result, Answer) else EXIT_ERROR


def stats_command(args: argparse.Namespace) -> int:
    from voiceflow import format_timestamp

    found = open_archive(args).occurrences(args.phrase)
    total = sum(len(v) for v in found.values())
    if args.json:
        recordings = {k: [jsonable(o) for o in v] for k, v in found.items()}
        print(
            json.dumps(
                {"phrase": args.phrase, "total": total, "recordings": recordings},
                ensure_ascii=False,
            )
        )
        return 0
    print(f"{args.phrase!r}: said {total} time(s) in {len(found)} recording(s)")
    for path, occurrences in found.items():
        print(f"  {len(occurrences):>4}  {path}")
        for o in occurrences:
            print(f"        {format_timestamp(o.start)}-{format_timestamp(o.end)}  {o.context}")
    return 0
