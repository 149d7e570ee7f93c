"""``voiceflow transcribe``: openai-whisper's command line, on voiceflow's speech node."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from voiceflow.cli import EXIT_ERROR, add_model_args, csv_list, flag, speech_model
from voiceflow.errors import VoiceflowError


def add_commands(commands: argparse._SubParsersAction) -> None:
    t = commands.add_parser("transcribe", help="transcribe audio or video files and folders")
    t.add_argument("audio", nargs="+", help="files or folders")
    add_model_args(t)
    t.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    t.add_argument("--language", default=None, help="force a language code (e.g. en, de)")
    t.add_argument(
        "--languages",
        type=csv_list,
        default=None,
        help="restrict language identification to these codes, e.g. en,es,de",
    )
    t.add_argument(
        "--output_format", "-f", default="all", choices=["txt", "vtt", "srt", "tsv", "json", "all"]
    )
    t.add_argument("--output_dir", "-o", default=".")
    flag(t, "--word_timestamps", False, "word-level timestamps")
    # openai-whisper's subtitle layout options (they turn word timestamps on).
    t.add_argument("--max_line_width", type=int, default=None, help="characters a line (srt/vtt)")
    t.add_argument("--max_line_count", type=int, default=None, help="lines a cue (srt/vtt)")
    t.add_argument("--max_words_per_line", type=int, default=None, help="words a line (srt/vtt)")
    flag(t, "--highlight_words", False, "underline each word as it is spoken (srt/vtt)")
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
    flag(t, "--vad_filter", True, "skip non-speech with Silero VAD")
    flag(t, "--verbose", True, "print segments as they are decoded")
    t.set_defaults(func=transcribe)


def transcribe(args: argparse.Namespace) -> int:
    from voiceflow.messages import Transcript
    from voiceflow.speech.audio import expand_inputs
    from voiceflow.speech.subtitles import CueRules, transcript_cues
    from voiceflow.speech.transcriber import ordered_map
    from voiceflow.speech.writers import format_timestamp, write_transcript

    layout = [args.max_line_width, args.max_line_count, args.max_words_per_line]
    if any(v is not None and v < 1 for v in layout):
        raise VoiceflowError(
            "--max_line_width, --max_line_count and --max_words_per_line must be positive"
        )
    rules = CueRules.whisper(*layout) if any(layout) or args.highlight_words else None
    files, failed = expand_inputs(args.audio)
    for error in failed:
        print(f"error: {error}", file=sys.stderr)
    if not files:
        return EXIT_ERROR
    model = speech_model(args, vad=args.vad_filter)
    temps = tuple(t for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if t >= args.temperature)
    progress = bool(args.verbose) and sys.stderr.isatty()

    stop = threading.Event()

    def write(path: Path, result: Transcript) -> None:
        if args.verbose:
            for s in result.segments:
                print(
                    f"[{format_timestamp(s.start)} --> {format_timestamp(s.end)}] "
                    f"[{s.language}] {s.text.strip()}"
                )
        lang = f"{result.language} ({result.language_probability:.2f})" if result.language else "-"
        print(f"{path}: language {lang}: {result.text or '(no speech)'}")
        cues = (
            transcript_cues(result, rules, highlight_words=args.highlight_words) if rules else None
        )
        write_transcript(result, path, args.output_dir, args.output_format, cues)

    def one(path: Path) -> tuple[Transcript | None, VoiceflowError | None]:
        try:
            transcript = model.transcribe(
                path,
                task=args.task,
                language=args.language,
                languages=args.languages,
                channel=args.channel,
                beam_size=args.beam_size,
                temperature=temps or (1.0,),
                initial_prompt=args.initial_prompt,
                hotwords=args.hotwords,
                word_timestamps=args.word_timestamps or rules is not None,
                progress=progress,
                cancel=stop,
            )
            return transcript, None
        except VoiceflowError as e:
            return None, e

    # Files overlap as the chunks of one recording do (a short clip is one chunk): while one
    # decodes, the next is read, its voice found and encoded. Results come out in order.
    results = ordered_map(one, iter(files), model.engine.parallel)
    try:
        for path, (result, problem) in zip(files, results, strict=True):
            if result is None:
                print(f"error: {problem}", file=sys.stderr)
                failed.append(str(problem))
                continue
            write(path, result)
    except BaseException:  # Ctrl-C, or a bug: a file under way stops at its next chunk
        stop.set()
        raise
    return EXIT_ERROR if failed else 0
