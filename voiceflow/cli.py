"""The ``voiceflow`` command line. Errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from voiceflow.errors import VoiceflowError

log = logging.getLogger("voiceflow")
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def _flag(p: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    # Accepts whisper's `--word_timestamps True` as well as a bare `--word_timestamps`.
    p.add_argument(name, type=_bool, nargs="?", const=True, default=default, help=help)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="base",
        help="model name (base, tiny.en, small, ...), a "
        "CTranslate2 folder or an openai-whisper .pt file (default: base, shipped)",
    )
    p.add_argument("--engine", default="auto", choices=["auto", "faster-whisper", "openai-whisper"])
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--compute_type", default="auto", help="faster-whisper: int8, float32, float16")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: library default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voiceflow", description=__doc__)
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe audio or video files and folders")
    t.add_argument("audio", nargs="+", help="files or folders")
    _add_model_args(t)
    t.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    t.add_argument("--language", default=None, help="force a language code (e.g. en, de)")
    t.add_argument(
        "--languages",
        type=_csv,
        default=None,
        help="restrict language identification to these codes, e.g. en,es,de",
    )
    t.add_argument(
        "--output_format", "-f", default="all", choices=["txt", "vtt", "srt", "tsv", "json", "all"]
    )
    t.add_argument("--output_dir", "-o", default=".")
    _flag(t, "--word_timestamps", False, "word-level timestamps")
    t.add_argument("--beam_size", type=int, default=5)
    t.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="first temperature; falls back upward on failed decodes",
    )
    t.add_argument("--initial_prompt", default=None)
    t.add_argument("--hotwords", default=None, help="words to favour (names, jargon)")
    t.add_argument("--channel", default="mix", help="mix, left, right or a channel number")
    _flag(t, "--vad_filter", True, "skip non-speech with Silero VAD")
    _flag(t, "--verbose", True, "print segments as they are decoded")
    t.set_defaults(func=cmd_transcribe)

    r = sub.add_parser("run", help="run a graph config on audio files (or typed --text)")
    r.add_argument("config")
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
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check a graph config without loading any model")
    v.add_argument("config")
    v.set_defaults(func=cmd_validate)

    archive_help = "archive folder (default: the user's data directory, or $VOICEFLOW_ARCHIVE)"
    embedder_help = (
        "sentence-transformers model name or folder (default: the shipped all-MiniLM-L6-v2; "
        "the archive remembers it)"
    )
    ing = sub.add_parser("ingest", help="transcribe recordings into the searchable archive")
    ing.add_argument("paths", nargs="+", help="audio/video files and folders")
    ing.add_argument("--archive", default=None, help=archive_help)
    ing.add_argument("--chroma_url", default=None, help="a Chroma server, e.g. http://host:8000")
    ing.add_argument("--embedder", default=None, help=embedder_help)
    _add_model_args(ing)
    ing.set_defaults(func=cmd_ingest)

    ask = sub.add_parser("ask", help="ask the archive a question; the answer cites sources")
    ask.add_argument("question")
    ask.add_argument("--archive", default=None, help=archive_help)
    ask.add_argument("--chroma_url", default=None)
    ask.add_argument("--embedder", default=None, help=embedder_help)
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
    ask.set_defaults(func=cmd_ask)

    st = sub.add_parser("stats", help="how often a word or phrase was said, and when")
    st.add_argument("phrase")
    st.add_argument("--archive", default=None, help=archive_help)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_stats)

    li = sub.add_parser("listen", help="listen to the microphone and act on what is said")
    li.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="graph config (default: the assistant, configs/default.yaml)",
    )
    li.add_argument("--device", default=None, help="input device number or name")
    li.add_argument("--list-devices", dest="list_devices", action="store_true")
    li.add_argument(
        "--dictate",
        default=None,
        metavar="FILE",
        help="also write everything said to FILE (.txt .srt .vtt .json) as it goes",
    )
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
    from voiceflow.live import PARTIAL_EVERY_S, SegmenterOptions  # their defaults are the CLI's

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
        help="start transcribing after this much silence (%(default)s; 0: wait for the end)",
    )
    li.add_argument(
        "--partial_every",
        type=float,
        default=PARTIAL_EVERY_S,
        help="show the words so far every this many seconds of speech (0: off)",
    )
    li.add_argument("--json", action="store_true", help="print results as JSON lines")
    li.set_defaults(func=cmd_listen)

    pl = sub.add_parser("plugins", help="list installed plugins and their node types")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plugins)
    return parser


def _progress(args: argparse.Namespace) -> bool:
    return bool(args.verbose) and sys.stderr.isatty()


def cmd_transcribe(args: argparse.Namespace) -> int:
    from voiceflow.speech.audio import expand_inputs
    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow.speech.writers import format_timestamp, write_transcript

    files, failed = expand_inputs(args.audio)
    for error in failed:
        print(f"error: {error}", file=sys.stderr)
    if not files:
        return EXIT_ERROR
    model = SpeechModel(
        args.model, args.engine, args.device, args.compute_type, args.threads, vad=args.vad_filter
    )
    temps = tuple(t for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if t >= args.temperature)
    for path in files:
        try:
            result = model.transcribe(
                path,
                task=args.task,
                language=args.language,
                languages=args.languages,
                channel=args.channel,
                beam_size=args.beam_size,
                temperature=temps or (1.0,),
                initial_prompt=args.initial_prompt,
                hotwords=args.hotwords,
                word_timestamps=args.word_timestamps,
                progress=_progress(args),
            )
        except VoiceflowError as e:
            print(f"error: {e}", file=sys.stderr)
            failed.append(str(e))
            continue
        if args.verbose:
            for s in result.segments:
                print(
                    f"[{format_timestamp(s.start)} --> {format_timestamp(s.end)}] "
                    f"[{s.language}] {s.text.strip()}"
                )
        lang = f"{result.language} ({result.language_probability:.2f})" if result.language else "-"
        print(f"{path}: language {lang}: {result.text or '(no speech)'}")
        write_transcript(result, path, args.output_dir, args.output_format)
    return EXIT_ERROR if failed else 0


def _parse_sets(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not node or not param:
            raise VoiceflowError(f"--set {item!r}: expected NODE.PARAM=VALUE")
        out.setdefault(node, {})[param] = yaml.safe_load(value)
    return out


def _describe(result: Any) -> str:
    from voiceflow.messages import Answer, Command, Failure, ImageResult, Transcript

    m = result.message
    if isinstance(m, Failure):
        return f"[{result.node}] FAILED: {m.error}"
    if isinstance(m, Transcript):
        return f"[{result.node}] ({m.language}) {m.text}"
    if isinstance(m, Command):
        args = ", ".join(f"{k}={v!r}" for k, v in m.args.items())
        return (
            f"[{result.node}] {m.intent}({args}) <- ({m.transcript.language}) {m.transcript.text}"
        )
    if isinstance(m, ImageResult):
        return f"[{result.node}] image: {m.path} (seed {m.seed}) <- {m.prompt!r}"
    if isinstance(m, Answer):
        cites = "".join(f"\n    [{i}] {c.label()}: {c.text}" for i, c in enumerate(m.citations, 1))
        return f"[{result.node}] {m.text}{cites}"
    return f"[{result.node}] {m!r}"


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        data = {k: v for k, v in asdict(obj).items() if k != "samples"}
        return {"type": type(obj).__name__, **{k: _jsonable(v) for k, v in data.items()}}
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def cmd_run(args: argparse.Namespace) -> int:
    from voiceflow.graph import load_graph
    from voiceflow.messages import AudioClip, Failure, Message, Transcript
    from voiceflow.runtime import GraphRunner, Result
    from voiceflow.speech.audio import expand_inputs, load_audio

    graph = load_graph(args.config, overrides=_parse_sets(args.set))
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
        if args.json:
            print(
                json.dumps({"node": result.node, **_jsonable(result.message)}, ensure_ascii=False),
                flush=True,
            )
        else:
            print(_describe(result), flush=True)

    async def main() -> None:
        async with GraphRunner(graph, show) as runner:
            for text in args.text:
                await runner.run(
                    [
                        Transcript(
                            text=text,
                            language="",
                            language_probability=0.0,
                            duration=0.0,
                            source="text",
                        )
                    ]
                )
            for path in files:
                try:
                    samples = load_audio(path)
                except VoiceflowError as e:
                    print(f"error: {e}", file=sys.stderr)
                    failed.append(str(e))
                    continue
                if not args.json:
                    print(f"{path}:", flush=True)
                messages: list[Message] = [AudioClip(samples, source=str(path))]
                await runner.run(messages)

    asyncio.run(main())
    return EXIT_ERROR if failed or (args.strict and failures) else 0


def _archive(args: argparse.Namespace) -> Any:
    try:
        from voiceflow_archive import Archive
        from voiceflow_archive.store import SentenceEmbedder
    except ImportError:
        raise VoiceflowError("the archive needs its plugin: pip install 'voiceflow[rag]'") from None
    name = getattr(args, "embedder", None)  # listen has no --embedder
    embedder = SentenceEmbedder(name) if name else SentenceEmbedder()
    return Archive(args.archive, embedder, chroma_url=getattr(args, "chroma_url", None))


def cmd_ingest(args: argparse.Namespace) -> int:
    import time

    from voiceflow.speech.transcriber import SpeechModel
    from voiceflow_archive.ingest import ingest

    archive = _archive(args)
    start = time.perf_counter()
    report = ingest(
        args.paths,
        archive,
        lambda: SpeechModel(args.model, args.engine, args.device, args.compute_type, args.threads),
    )
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


def cmd_ask(args: argparse.Namespace) -> int:
    from voiceflow.messages import Answer
    from voiceflow_archive import LLMConfig, answer

    llm = LLMConfig(
        "none" if args.no_llm else args.llm, args.llm_model, args.base_url, threads=args.threads
    )
    result = answer(args.question, _archive(args), llm, args.top_k)
    if args.json:
        print(json.dumps(_jsonable(result), ensure_ascii=False))
    else:
        print(_describe(_Shown("ask", result)))
    return 0 if isinstance(result, Answer) else EXIT_ERROR


def cmd_stats(args: argparse.Namespace) -> int:
    from voiceflow.speech.writers import format_timestamp

    found = _archive(args).occurrences(args.phrase)
    total = sum(len(v) for v in found.values())
    if args.json:
        print(
            json.dumps(
                {
                    "phrase": args.phrase,
                    "total": total,
                    "recordings": {k: [_jsonable(o) for o in v] for k, v in found.items()},
                },
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


@dataclass(frozen=True)
class _Shown:
    node: str
    message: Any


def cmd_listen(args: argparse.Namespace) -> int:
    import shutil
    import signal
    import threading

    from voiceflow.graph import load_graph
    from voiceflow.live import (
        Capture,
        DictationWriter,
        Listener,
        Segmenter,
        SegmenterOptions,
        check_accepts_text,
        list_devices,
        speech_settings,
    )
    from voiceflow.speech.transcriber import SpeechModel

    if args.list_devices:
        print(list_devices())
        return 0
    if args.ingest and not args.dictate:
        raise VoiceflowError("--ingest stores the dictation: give --dictate FILE too")
    graph = load_graph(args.config)
    check_accepts_text(graph)
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    capture = Capture(device)
    capture.start()  # a missing or busy microphone is reported before any model loads
    dictation = DictationWriter(args.dictate) if args.dictate else None
    model_args, speech_config = speech_settings(graph)
    print("loading the speech model...", file=sys.stderr)
    model = SpeechModel(**model_args)
    given = {f.name: getattr(args, f.name) for f in fields(SegmenterOptions) if f.name in args}
    segmenter = Segmenter(SegmenterOptions(**given))
    tty = sys.stderr.isatty()
    spoken: list[Any] = []

    def event(kind: str, data: Any) -> None:
        if kind == "state" and tty:
            print(f"\r\033[K[{data}]", end="", file=sys.stderr, flush=True)
        elif kind == "partial" and tty:
            _, t, whole = data
            width = max(20, shutil.get_terminal_size().columns - 20)
            text = t.text.strip()
            if not whole or len(text) > width:
                text = "..." + text[-width + 3 :]
            print(f"\r\033[K[hearing speech] {text}", end="", file=sys.stderr, flush=True)
        elif kind == "behind":
            print(f"\rtranscription is behind: {data:.1f} s of speech queued", file=sys.stderr)
        elif kind == "transcript":
            u, t = data
            spoken.append((u, t))
            if tty:
                print("\r\033[K", end="", file=sys.stderr)
            if not args.json:
                lang = f"{t.language} {t.language_probability:.2f}" if t.language else "-"
                print(f"[{u.start:7.1f}s] ({lang}) {t.text or '(nothing)'}", flush=True)
        elif kind == "result":
            if args.json:
                print(
                    json.dumps({"node": data.node, **_jsonable(data.message)}, ensure_ascii=False),
                    flush=True,
                )
            elif data.node != "input":
                print("    -> " + _describe(data), flush=True)

    listener = Listener(
        graph,
        capture,
        segmenter,
        model,
        speech_config,
        args.wake,
        dictation,
        event,
        args.partial_every,
    )

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
                    loop.call_soon_threadsafe(event, "state", state)

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
    if args.ingest and spoken:
        _ingest_dictation(args, spoken)
    return 0


def _ingest_dictation(args: argparse.Namespace, spoken: list[Any]) -> None:
    import hashlib
    from dataclasses import replace

    from voiceflow.messages import Transcript

    segments: list[Any] = []
    for _, t in spoken:
        # the listener already put segment times on the session's timeline
        segments += [replace(s, id=len(segments) + i) for i, s in enumerate(t.segments)]
    first = spoken[0][1]
    session = Transcript(
        " ".join(t.text for _, t in spoken),
        first.language,
        first.language_probability,
        spoken[-1][0].end,
        segments=tuple(segments),
        source=str(Path(args.dictate).absolute()),
    )
    key = hashlib.sha256(session.text.encode()).hexdigest()
    chunks = _archive(args).store(key, session.source, session)
    print(f"added the session to the archive ({chunks} chunks)", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from voiceflow.graph import load_graph

    graph = load_graph(args.config)
    print(f"{args.config}: ok ({len(graph.nodes)} nodes, {len(graph.routes)} routes)")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from voiceflow.plugins import load_registry

    registry = load_registry()
    if args.json:
        print(json.dumps({p: types for p, types in registry.plugins.items()}))
        return 0
    for plugin, types in registry.plugins.items():
        print(plugin)
        for t in types:
            cls = registry.nodes[t]
            io = (
                f"{', '.join(a.__name__ for a in cls.accepts)} -> "
                f"{', '.join(e.__name__ for e in cls.emits) or '-'}"
            )
            print(f"  {t:<20} {io:<40} {cls.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Files may follow options (`run CONFIG --json a.wav b.wav`): argparse leaves such
    # positionals unclaimed, so they are appended to the file list here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "audio") or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.audio = [*args.audio, *extra]
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except VoiceflowError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug, not bad input: still one line, details on request
        log.debug("unexpected error", exc_info=True)
        print(
            f"error: unexpected {type(e).__name__}: {e} (--log-level DEBUG shows where)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
