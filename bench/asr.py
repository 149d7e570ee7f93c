"""Speech engine benchmark: both engines, same clip, same threads, beam 1 and 5.

    python bench/asr.py [--threads 2] [--repeat 1]

Each configuration runs in its own process so peak RSS is its own. The clip is the five
English FLEURS recordings plus jfk.flac back to back (52 s, speakers at very different
levels); WER is against their references. The first row is the reference as users run it:
`whisper.transcribe` with the CLI's beam 5 and no voice activity detection.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
JFK = (
    "and so my fellow americans ask not what your country can do for you ask what you can "
    "do for your country"
)
STOCK = "openai-whisper CLI"  # whisper.transcribe as `whisper audio` runs it: no VAD
FULL = "faster-whisper, 30 s window"  # without fitting the encoder to short chunks
CONFIGS = [
    (STOCK, "float32", 5),
    ("openai-whisper", "float32", 1),
    ("openai-whisper", "float32", 5),
    ("faster-whisper", "float32", 1),
    ("faster-whisper", "float32", 5),
    ("faster-whisper", "int8", 1),
    ("faster-whisper", "int8", 5),
    (FULL, "int8", 5),
]


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def clip():  # type: ignore[no-untyped-def]
    import numpy as np

    from voiceflow.speech.audio import load_audio

    parts, refs = [], []
    for ogg in sorted((DATA / "fleurs").glob("fleurs-en-*.ogg")):
        parts.append(load_audio(ogg))
        refs.append(ogg.with_suffix(".txt").read_text(encoding="utf-8"))
    parts.append(load_audio(DATA / "jfk.flac"))
    refs.append(JFK)
    return np.concatenate(parts), normalize(" ".join(refs))


def child(engine: str, compute_type: str, beam: int, threads: int, repeat: int) -> None:
    import jiwer

    from voiceflow.speech.transcriber import SpeechModel

    audio, reference = clip()
    if engine == STOCK:
        import torch
        import whisper

        from voiceflow.speech.convert import openai_checkpoint
        from voiceflow.speech.models import cache_dir, resolve_model

        torch.set_num_threads(threads)
        stock = whisper.load_model(str(openai_checkpoint(resolve_model("base").path, cache_dir())))

        def run(x):  # type: ignore[no-untyped-def]
            r = whisper.transcribe(stock, x, beam_size=beam, best_of=beam, fp16=False)
            return type("T", (), {"text": r["text"]})
    else:
        model = SpeechModel(
            "base",
            "faster-whisper" if engine == FULL else engine,
            compute_type=compute_type,
            threads=threads,
        )
        if engine == FULL:
            model.engine.fit_window = False  # type: ignore[attr-defined]

        def run(x):  # type: ignore[no-untyped-def]
            return model.transcribe(x, beam_size=beam)

    run(audio[: 16000 * 5])  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        t = run(audio)
        times.append(time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": min(times),
                "duration": len(audio) / 16000,
                "rss_mb": rss,
                "wer": jiwer.wer(reference, normalize(t.text)),
            }
        )
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        engine, compute_type, beam = args.child
        child(engine, compute_type, int(beam), args.threads, args.repeat)
        return 0
    rows = []
    for engine, compute_type, beam in CONFIGS:
        out = (
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--threads",
                    str(args.threads),
                    "--repeat",
                    str(args.repeat),
                    "--child",
                    engine,
                    compute_type,
                    str(beam),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        rows.append((engine, compute_type, beam, json.loads(out)))
    same_beam = {beam: r["seconds"] for e, _, beam, r in rows if e == "openai-whisper"}
    cli = next(r["seconds"] for e, _, _, r in rows if e == STOCK)
    duration = rows[0][3]["duration"]
    print(f"Whisper base, {duration:.0f} s clip, {args.threads} threads, best of {args.repeat}\n")
    print(
        "| engine | compute | beam | seconds | RTF | peak RSS MB | WER "
        "| speed vs voiceflow openai-whisper, same beam | speed vs openai-whisper CLI |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for engine, compute_type, beam, r in rows:
        ratio = "-" if engine == STOCK else f"{same_beam[beam] / r['seconds']:.1f}x"
        print(
            f"| {engine} | {compute_type} | {beam} | {r['seconds']:.2f} | "
            f"{r['seconds'] / duration:.3f} | {r['rss_mb']:.0f} | {r['wer']:.3f} | "
            f"{ratio} | {cli / r['seconds']:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
