"""Word error rate and language ID on the FLEURS reference clips, per language.

    python -m bench.wer [--engine faster-whisper|openai-whisper] [--beam_size 5] [--data DIR]

Language ID on each whole clip (no language given); WER with the spoken language, on text
normalised by voiceflow.text.normalize against the references. Saves bench/results/wer.json.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import DATA, parser, save
from voiceflow.text import normalize

FLEURS = DATA / "fleurs"


@dataclass
class ClipResult:
    name: str
    language: str
    detected: str
    probability: float
    wer: float
    reference_words: int


def evaluate(model, beam_size: int = 5, folder: Path = FLEURS) -> list[ClipResult]:  # type: ignore[no-untyped-def]
    import jiwer

    results = []
    for audio in sorted(folder.glob("*.ogg")):
        lang = audio.stem.split("-")[1]
        reference = normalize(audio.with_suffix(".txt").read_text(encoding="utf-8"))
        # Transcribe in the spoken language so WER measures recognition, not language ID.
        detected = model.transcribe(audio, beam_size=beam_size)
        forced = (
            detected
            if detected.language == lang
            else model.transcribe(audio, language=lang, beam_size=beam_size)
        )
        hypothesis = normalize(forced.text)
        results.append(
            ClipResult(
                audio.stem,
                lang,
                detected.language,
                detected.language_probability,
                jiwer.wer(reference, hypothesis) if hypothesis else 1.0,
                len(reference.split()),
            )
        )
    return results


def table(results: list[ClipResult]) -> str:
    lines = ["| language | clips | language ID correct | WER |", "|---|---|---|---|"]
    for lang in sorted({r.language for r in results}):
        rs = [r for r in results if r.language == lang]
        words = sum(r.reference_words for r in rs)
        wer = sum(r.wer * r.reference_words for r in rs) / words
        lines.append(f"| {lang} | {len(rs)} | {sum(r.detected == lang for r in rs)} | {wer:.3f} |")
    correct = sum(r.detected == r.language for r in results)
    lines.append(f"| all | {len(results)} | {correct} | |")
    return "\n".join(lines)


def main() -> int:
    from voiceflow.speech.transcriber import SpeechModel

    p = parser(__doc__)
    p.add_argument("--model", default="base")
    p.add_argument("--engine", default="faster-whisper")
    p.add_argument("--beam_size", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--full_window", action="store_true", help="faster-whisper: encode whole 30 s windows"
    )
    args = p.parse_args()
    model = SpeechModel(args.model, args.engine, threads=args.threads)
    if args.full_window:
        model.engine.fit_window = False  # type: ignore[attr-defined]
    start = time.perf_counter()
    results = evaluate(model, args.beam_size, args.data / "fleurs")
    print(
        f"Whisper {args.model}, {args.engine}{', 30 s window' if args.full_window else ''}, "
        f"beam {args.beam_size} "
        f"({time.perf_counter() - start:.0f} s)\n"
    )
    print(table(results))
    save("wer", args, [asdict(r) for r in results])
    return 0


if __name__ == "__main__":
    sys.exit(main())
