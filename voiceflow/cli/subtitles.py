"""``voiceflow subtitles``: readable subtitle files, as spoken and in English, for many videos.

``clase1.mp4`` gets ``clase1.es.srt`` and ``clase1.en.srt`` beside it (or in
``--output_dir``), the names media players pick up. A rerun skips what is done: each output
folder keeps a small record (``.voiceflow-subtitles.json``) of the sources finished there,
with their size, time and the settings used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from voiceflow.cli import (
    EXIT_ERROR,
    add_model_args,
    add_ray_args,
    csv_list,
    model_args,
    ray_options,
)
from voiceflow.errors import VoiceflowError

RECORD = ".voiceflow-subtitles.json"
TRACKS = ("original", "en")
FORMATS = ("srt", "vtt")


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "subtitles",
        help="readable subtitles (as spoken, and English) for recordings and videos",
        description="Write NAME.LANG.srt/.vtt for each recording or video: cues of at most "
        "--max_line_count lines of --max_line_width characters, --max_duration seconds, "
        "readable at --max_cps characters a second. A rerun skips finished files.",
    )
    p.add_argument("sources", nargs="+", help="audio/video files and folders (recursive)")
    p.add_argument(
        "--languages",
        type=csv_list,
        default=["original", "en"],
        help="tracks: original (as spoken) and/or en (English); default original,en",
    )
    p.add_argument("--format", type=csv_list, default=["srt"], help="srt and/or vtt; default srt")
    p.add_argument(
        "--output_dir", "-o", default=None, help="default: beside each source, as players expect"
    )
    p.add_argument("--language", default=None, help="force the spoken language (e.g. es)")
    p.add_argument("--beam_size", type=int, default=5)
    p.add_argument("--max_line_width", type=int, default=42)
    p.add_argument("--max_line_count", type=int, default=2)
    p.add_argument("--max_duration", type=float, default=7.0, help="seconds a cue")
    p.add_argument("--max_cps", type=float, default=17.0, help="reading speed, characters/s")
    add_model_args(p)
    add_ray_args(p)
    p.set_defaults(func=subtitles)


def subtitles(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from voiceflow.batch import audio_seconds, transcribe_many
    from voiceflow.speech.audio import expand_inputs
    from voiceflow.speech.subtitles import CueRules

    bad = [t for t in args.languages if t not in TRACKS]
    if bad or not args.languages:
        raise VoiceflowError(
            f"--languages {','.join(args.languages)}: tracks are 'original' (as spoken) and "
            "'en' (Whisper translates into English only), e.g. --languages original,en"
        )
    bad = [f for f in args.format if f not in FORMATS]
    if bad or not args.format:
        raise VoiceflowError(f"--format {','.join(args.format)}: use srt, vtt or srt,vtt")
    rules = CueRules(
        max_line_width=args.max_line_width,
        max_line_count=args.max_line_count,
        max_duration=args.max_duration,
        max_cps=args.max_cps,
    )
    if min(args.max_line_width, args.max_line_count) < 1 or rules.max_cps <= 0:
        raise VoiceflowError("--max_line_width, --max_line_count and --max_cps must be positive")
    if rules.max_duration < rules.min_duration:
        raise VoiceflowError(f"--max_duration must be at least {rules.min_duration} s")
    options = {
        "word_timestamps": True,
        "translate": "en" in args.languages,
        "beam_size": args.beam_size,
        "language": args.language,
    }
    settings = {
        **model_args(args),
        **options,
        "tracks": sorted(args.languages),
        "formats": sorted(args.format),
        "rules": asdict(rules),
    }
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    files, errors = expand_inputs(args.sources)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    places = _places(args.sources, files, args.output_dir)
    todo = [f for f in files if not _done(f, places[f], fingerprint)]
    skipped = len(files) - len(todo)
    seconds = {f: audio_seconds(f) for f in todo}
    started, written, audio_done = time.perf_counter(), 0, 0.0
    results = transcribe_many(todo, model_args(args), options, ray_options(args))
    total_h = sum(seconds.values()) / 3600
    bar = tqdm(
        total=round(total_h, 4),
        unit="h",
        desc="audio",
        bar_format="{desc}: {n:.2f}/{total:.2f} h |{bar}| {postfix} [{elapsed}<{remaining}]",
        disable=not sys.stderr.isatty() or not todo,
    )
    with bar:
        for k, (path, result, _) in enumerate(results, start=1):
            bar.set_postfix_str(f"{k}/{len(todo)} files")
            bar.update(round(seconds.get(path, 0.0) / 3600, 4))
            if isinstance(result, VoiceflowError):
                errors.append(str(result))
                print(f"error: {result}", file=sys.stderr)
                continue
            outputs = _write(result, path, places[path], args.languages, args.format, rules)
            _record(path, places[path], fingerprint, outputs)
            written += 1
            audio_done += result.duration
            for out in outputs:
                print(out)
    minutes = (time.perf_counter() - started) / 60
    speed = f", {audio_done / 60 / minutes:.1f} audio min/min" if written and minutes else ""
    print(
        f"{written} subtitled, {skipped} already done, {len(errors)} failed "
        f"({audio_done / 3600:.2f} h of audio in {minutes:.1f} min{speed})",
        file=sys.stderr,
    )
    return EXIT_ERROR if errors else 0


def _places(sources: list[str], files: list[Path], output_dir: str | None) -> dict[Path, Path]:
    """Each file's output folder: beside it, or under ``output_dir`` keeping the layout of a
    source folder (a channel's playlists stay apart, two ``intro.mp4`` do not collide)."""
    if output_dir is None:
        return {f: f.parent for f in files}
    out = Path(output_dir)
    roots = [Path(s) for s in sources if Path(s).is_dir()]
    places = {}
    for f in files:
        root = next((r for r in roots if f.is_relative_to(r)), None)
        places[f] = out / f.parent.relative_to(root) if root else out
    return places


def _write(
    t: Any, path: Path, folder: Path, tracks: list[str], formats: list[str], rules: Any
) -> list[Path]:
    from voiceflow.files import atomic_write
    from voiceflow.speech.subtitles import render_cues, transcript_cues

    spoken = t.language or "und"  # no speech: empty files, so the rerun knows it is done
    names = {"original": spoken, "en": "en"}
    outputs = []
    for track in dict.fromkeys(names[name] for name in tracks):  # English speech: one track
        cues = transcript_cues(t, rules, "en" if track == "en" else "original")
        for fmt in formats:
            target = folder / f"{path.stem}.{track}.{fmt}"
            atomic_write(target, render_cues(cues, fmt))
            outputs.append(target)
    return outputs


def _load_record(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _done(path: Path, folder: Path, fingerprint: str) -> bool:
    entry = _load_record(folder).get(path.name)
    return (
        isinstance(entry, dict)
        and entry.get("stamp") == _stamp(path)
        and entry.get("settings") == fingerprint
        and all((folder / name).is_file() for name in entry.get("outputs", ()))
    )


def _record(path: Path, folder: Path, fingerprint: str, outputs: list[Path]) -> None:
    from voiceflow.files import atomic_write

    record = _load_record(folder)
    record[path.name] = {
        "stamp": _stamp(path),
        "settings": fingerprint,
        "outputs": [o.name for o in outputs],
    }
    atomic_write(folder / RECORD, json.dumps(record, indent=1, ensure_ascii=False))
