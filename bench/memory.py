"""Memory of long recordings: peak RSS of a 1-minute and a 60-minute file, end to end.

    python -m bench.memory [--minutes 1 60] [--data DIR]

Each recording is the reference clips, each followed by 20 s of quiet room noise
(-60 dBFS), looped to the length; written as a 16 kHz WAV and transcribed from the file by
`SpeechModel.transcribe` (decode, levelling, voice activity, Whisper base int8, 2 threads)
in a process of its own, so its peak RSS is its own. Goal: the hour costs at most 300 MB
more than the minute. Saves bench/results/memory.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, parser, pcm16, peak_rss_mb, save, table


def make_recording(data: Path, minutes: float, path: Path) -> None:
    import wave

    from voiceflow.speech.audio import load_audio

    rng = np.random.default_rng(0)
    clips = [load_audio(c) for c in [*sorted((data / "fleurs").glob("*.ogg")), data / "jfk.flac"]]
    total = int(minutes * 60 * 16000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        written, i = 0, 0
        while written < total:
            noise = rng.normal(0, 10 ** (-60 / 20), 20 * 16000).astype(np.float32)
            block = np.concatenate([clips[i % len(clips)], noise])[: total - written]
            w.writeframes(pcm16(block))
            written += len(block)
            i += 1


def child(path: Path) -> None:
    from voiceflow.speech.transcriber import SpeechModel

    model = SpeechModel("base", threads=2)
    start = time.perf_counter()
    t = model.transcribe(path)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "audio_s": t.duration,
                "segments": len(t.segments),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 60])
    p.add_argument("--child", type=Path, help="(internal) transcribe this file")
    args = p.parse_args()
    if args.child:
        child(args.child)
        return 0
    results = []
    with tempfile.TemporaryDirectory() as d:
        for minutes in args.minutes:
            path = Path(d) / f"{minutes:g}min.wav"
            make_recording(args.data, minutes, path)
            out = subprocess.run(
                [sys.executable, "-m", "bench.memory", "--child", str(path)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            ).stdout.strip()
            results.append({"minutes": minutes, **json.loads(out.splitlines()[-1])})
            print(f"  {minutes:g} min done", file=sys.stderr, flush=True)
    base = results[0]["peak_rss_mb"]
    rows = [
        (
            f"{r['minutes']:g}",
            f"{r['seconds']:.0f}",
            r["segments"],
            f"{r['peak_rss_mb']:.0f}",
            f"{r['peak_rss_mb'] - base:+.0f}",
        )
        for r in results
    ]
    print("Whisper base int8, 2 threads, transcribed from a 16 kHz WAV file\n")
    print(table(["minutes", "seconds", "segments", "peak RSS MB", "vs the first"], rows))
    save("memory", args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
